"""ruff ([tool.ruff] in pyproject.toml) has nothing to say about the checkout. Run on every test run,
so CI (`bash .ci/run`) enforces it; `ruff check --fix .` repairs import order and the like."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
