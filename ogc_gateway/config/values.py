"""The value checks every section shares: one Checker collects the problems of a whole document.

Each check returns a usable value (None or the default) and records a problem when the value is
wrong, so one pass both builds the objects and reports everything at once; the checks and the
construction can never disagree.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from ..engine import Limits

LIMIT_KEYS = tuple(f.name for f in fields(Limits))

_HTTP_URL = re.compile(r"^https?://[^/\s]+\S*$")
_MIME_TYPE = re.compile(r"^[A-Za-z0-9][\w!#$&^.+-]*/[A-Za-z0-9][\w!#$&^.+-]*(\s*;\s*\S.*)?$")


def is_int(value: Any) -> bool:
    """A whole number that is not a bool (YAML's true is an int to Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


class Checker:
    """The problems of one document (`label: key: what`), and where its relative paths start."""

    def __init__(self, label: str, base: Path):
        self.label, self.base = label, base
        self.problems: list[str] = []

    def problem(self, key: str, what: str) -> None:
        self.problems.append(f"{self.label}: {key}: {what}")

    def mapping(self, value: Any, key: str, valid: tuple[str, ...]) -> dict[str, Any]:
        """`value` as a dict of its known keys; unknown keys are problems with a suggestion."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(key, f"must be a mapping, not {value!r}")
            return {}
        known = {}
        for k, v in value.items():
            if k in valid:
                known[k] = v
                continue
            close = difflib.get_close_matches(str(k), valid, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self.problem(f"{key}.{k}" if key else str(k), f"unknown key{hint}")
        return known

    def path(self, value: str) -> Path:
        return Path(os.path.normpath(self.base / Path(value).expanduser()))

    def text(self, d: dict, key: str, where: str) -> str | None:
        value = d.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.problem(f"{where}.{key}", f"must be a string, not {value!r}")
            return None
        return str(value)

    def text_or(self, d: dict, key: str, where: str, default: str) -> str:
        value = self.text(d, key, where)
        return default if value is None else value

    def url(self, d: dict, key: str, where: str) -> str | None:
        value = self.text(d, key, where)
        if value is not None and not _HTTP_URL.match(value):
            self.problem(f"{where}.{key}", f"must be an http:// or https:// URL, not {value!r}")
            return None
        return value

    def mime_type(self, d: dict, key: str, where: str, default: str) -> str:
        value = self.text(d, key, where)
        if value is None:
            return default
        if not _MIME_TYPE.match(value.strip()):
            self.problem(f"{where}.{key}",
                         f"must be a MIME type such as {default!r}, not {value!r}")
            return default
        return value.strip()

    def positive_int(self, d: dict, key: str, where: str) -> int | None:
        value = d.get(key)
        if value is None:
            return None
        if not (is_int(value) and value > 0):
            self.problem(f"{where}.{key}", f"must be a positive integer, not {value!r}")
            return None
        return value

    def flag(self, d: dict, key: str, where: str, default: bool) -> bool:
        value = d.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(f"{where}.{key}", f"must be true or false, not {value!r}")
            return default
        return value

    def bounded_int(self, d: dict, key: str, where: str, lo: int, hi: int, default: int) -> int:
        value = d.get(key)
        if value is None:
            return default
        if not (is_int(value) and lo <= value <= hi):
            self.problem(f"{where}.{key}", f"must be a whole number from {lo} to {hi}, not {value!r}")
            return default
        return value

    def choice(self, d: dict, key: str, where: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.text(d, key, where)
        if value is None:
            return default
        if value not in allowed:
            self.problem(f"{where}.{key}", f"must be one of {', '.join(allowed)}, not {value!r}")
            return default
        return value

    def limits(self, d: dict, where: str, base: Limits) -> Limits:
        overrides = {}
        for key in LIMIT_KEYS:
            value = d.get(key)
            if value is None:
                continue
            if is_int(value) and value > 0:
                overrides[key] = value
            else:
                self.problem(f"{where}.{key}", f"must be a positive integer, not {value!r}")
        return replace(base, **overrides)

