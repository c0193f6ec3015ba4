"""mypy ([tool.mypy] in pyproject.toml: the package at a baseline, the engine strict) has nothing to say about
the checkout. Run on every test run, so CI (`bash .ci/run`) enforces it; the same check by hand is
`python -m mypy` from the checkout's root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_finds_nothing(tmp_path):
    # a fresh cache: a stale one from another checkout or mypy version must not hide an error
    done = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
