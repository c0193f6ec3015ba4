"""What every OGC face shares: KVP parameters (names case-insensitive, values not), the exception
value each face renders in its own document, version negotiation and ISO 8601 times."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime

from ..engine import MAX_COORDINATE, TimeWindow, iso_to_epoch_ms


class OGCError(Exception):
    """An OGC exception: a code from the service's list, the parameter at fault, a message."""

    def __init__(self, code: str | None, message: str, locator: str | None = None, status: int = 200):
        super().__init__(message)
        self.code, self.message, self.locator, self.status = code, message, locator, status


class KVP:
    """Request parameters by upper-cased name; the first value of a repeated name wins, and every
    value is kept for the services (WCS 2.0 SUBSET) that repeat names."""

    def __init__(self, pairs: Iterable[tuple[str, str]]):
        self.all: dict[str, list[str]] = {}
        for key, value in pairs:
            self.all.setdefault(key.strip().upper(), []).append(value if value is not None else "")

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.all.get(name.upper())
        return values[0] if values else default

    def required(self, name: str) -> str:
        value = self.get(name)
        if value is None or not value.strip():
            raise OGCError("MissingParameterValue", f"parameter {name} is required", name)
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.get(name)
        if value is None or not value.strip():
            return default
        low = value.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise OGCError("InvalidParameterValue", f"{name}={value!r} is neither TRUE nor FALSE", name)

    def integer(self, name: str, *, lo: int | None = None, required: bool = True) -> int | None:
        raw = self.required(name) if required else self.get(name)
        if raw is None or not raw.strip():
            return None
        try:
            value = float(raw.strip())
        except ValueError:
            value = math.nan
        if not value.is_integer() or (lo is not None and value < lo):
            raise OGCError("InvalidParameterValue", f"{name}={raw!r} is not a whole number"
                           + (f" of at least {lo}" if lo is not None else ""), name)
        return int(value)


def check_update_sequence(kvp: KVP, current: int) -> None:
    """WMS / WCS 1.0 UPDATESEQUENCE: the current value is CurrentUpdateSequence, a later one
    InvalidUpdateSequence; an earlier or unreadable one asks for the full document."""
    asked = (kvp.get("UPDATESEQUENCE") or "").strip()
    if asked.isdigit():
        if int(asked) == current:
            raise OGCError("CurrentUpdateSequence", f"the capabilities are at update sequence {current}",
                           "UPDATESEQUENCE")
        if int(asked) > current:
            raise OGCError("InvalidUpdateSequence", f"update sequence {asked} is ahead of the server's "
                           f"{current}", "UPDATESEQUENCE")


def ows_is_current(kvp: KVP, current: int) -> bool:
    """OWS 1.1 UPDATESEQUENCE (WCS 1.1, WMTS): True when the client has the current document (the
    answer is a minimal one); a later value is InvalidUpdateSequence; an earlier or unreadable one
    asks for the full document."""
    asked = (kvp.get("UPDATESEQUENCE") or "").strip()
    if not asked.isdigit():
        return False
    if int(asked) > current:
        raise OGCError("InvalidUpdateSequence", f"update sequence {asked} is ahead of the server's {current}",
                       "updatesequence")
    return int(asked) == current


def ows_sections(kvp: KVP, known: tuple[str, ...], *, empty_is_missing: bool = False) -> set[str]:
    """OWS 1.1 SECTIONS: names matched case-insensitively, `All` for every one, absent for every
    one; an empty value is every one too, or MissingParameterValue where the service's test suite
    says so (WMTS)."""
    raw = kvp.get("SECTIONS")
    if raw is None or (not raw.strip() and not empty_is_missing):
        return set(known)
    if not raw.strip():
        raise OGCError("MissingParameterValue", "SECTIONS is empty", "sections")
    chosen = set()
    for name in (s.strip() for s in raw.split(",")):
        if name.lower() == "all":
            chosen.update(known)
            continue
        match = next((s for s in known if s.lower() == name.lower()), None)
        if match is None:
            raise OGCError("InvalidParameterValue", f"SECTIONS: {name!r} is not a section ({', '.join(known)}, "
                           "All)", "sections")
        chosen.add(match)
    return chosen


def numbers(raw: str, name: str, count: int) -> list[float]:
    """Comma-separated numbers (a leading '+', spaces and exponents are fine)."""
    parts = raw.split(",")
    if len(parts) != count:
        raise OGCError("InvalidParameterValue", f"{name} needs {count} comma-separated numbers", name)
    try:
        values = [float(p.strip()) for p in parts]
    except ValueError:
        raise OGCError("InvalidParameterValue", f"{name}={raw!r} holds something that is not a number", name)
    if not all(math.isfinite(v) and abs(v) <= MAX_COORDINATE for v in values):
        raise OGCError("InvalidParameterValue", f"{name} values must be finite numbers within "
                       f"+-{MAX_COORDINATE:g}", name)
    return values


def number(value: float) -> str:
    """A coordinate or scale as the shortest text that reads back as the same double (integers
    without a fraction), for the documents of WCS 1.1.1, WCS 2.0.1 and WMTS."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _version_key(text: str) -> tuple[int, ...] | None:
    if not re.fullmatch(r"\d+(\.\d+)*", text.strip()):
        return None
    return tuple(int(p) for p in text.strip().split("."))


def negotiate(requested: str | None, supported: tuple[str, ...]) -> str:
    """WMS/WCS 1.0 version negotiation: none or above all -> the highest; between two -> the
    next lower; below all -> the lowest; a supported one -> itself. `supported` is ascending."""
    want = _version_key(requested) if requested else None
    if want is None:
        return supported[-1]
    lower = [v for v in supported if _version_key(v) <= want]
    return lower[-1] if lower else supported[0]


# --- time -----------------------------------------------------------------------------------------

def iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC with a Z (milliseconds only when there are any)."""
    when = datetime.fromtimestamp(ms / 1000, tz=UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if ms % 1000:
        text += f".{ms % 1000:03d}"
    return text + "Z"


def parse_instant(text: str, name: str = "TIME") -> int:
    """An ISO 8601 instant (reduced precision such as 2024-03 or 2024 allowed) in epoch ms."""
    value = text.strip()
    if re.fullmatch(r"\d{4}", value):
        value += "-01-01"
    elif re.fullmatch(r"\d{4}-\d{2}", value):
        value += "-01"
    ms = iso_to_epoch_ms(value.replace("z", "Z"))
    if ms is None:
        raise OGCError("InvalidDimensionValue", f"{text!r} is not an ISO 8601 time", name)
    return ms


def parse_time(text: str, name: str = "TIME") -> TimeWindow | None:
    """'t', 't1,t2,...', 'start/end[/period]' or 'current' (None: the caller's current): an interval
    is a window, a list of instants a window that keeps its `instants`."""
    value = text.strip()
    if value.lower() in ("current", "now"):
        return None
    if "/" in value:
        parts = value.split("/")
        if len(parts) not in (2, 3):
            raise OGCError("InvalidDimensionValue", f"{text!r}: an interval is start/end[/period]", name)
        start, end = parse_instant(parts[0], name), parse_instant(parts[1], name)
        if start > end:
            raise OGCError("InvalidDimensionValue", f"{text!r}: the start is after the end", name)
        return TimeWindow(start, end)
    return TimeWindow.of_instants(tuple(parse_instant(p, name) for p in value.split(",")))
