"""Parsing with bounds first (issue 15): JSON depth and size, coordinate magnitude, geometry vertices.

Why: `[` x 100,000 in a JSON parameter made json.loads raise RecursionError, a bbox of +-1e308 turned
into NaN sizes and OverflowErrors, and a 10^6-vertex polygon was built in full before anything counted
it. Each of these is now refused with an InvalidParameter naming the parameter, before the expensive
step: the JSON text is scanned (depth and bracket count, in numpy) before json.loads builds anything.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any, NoReturn

import numpy as np

from .errors import InvalidParameter, TooLarge

#: Deepest nesting of arrays/objects in a JSON parameter (a rendering rule chain of 30 functions is
#: about 90 levels deep once its arguments are counted).
MAX_JSON_DEPTH = 200
#: Vertices of one geometry; the JSON text may hold at most this many arrays (one per vertex, plus slack
#: for rings and paths), which bounds every geometry before it is parsed.
MAX_VERTICES = 100_000
_ARRAY_SLACK = 10_000
#: Largest coordinate magnitude taken: no CRS has coordinates near this (Earth in millimetres is 4e10),
#: and every size computed from such coordinates stays finite.
MAX_COORDINATE = 1e15

#: Times are epoch milliseconds from year 1 to year 9999 (beyond them SQLite's integers overflow).
MAX_EPOCH_MS = 253_402_300_799_999

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _no_constant(text: str) -> NoReturn:
    raise ValueError(f"{text} is not a number JSON allows")


def json_shape(text: str) -> tuple[int, int]:
    """(deepest nesting, number of arrays) of JSON text, ignoring brackets inside strings."""
    raw = _STRINGS.sub(b'""', text.encode("utf-8", "surrogatepass"))
    codes = np.frombuffer(raw, dtype=np.uint8)
    opens = (codes == ord("[")) | (codes == ord("{"))
    closes = (codes == ord("]")) | (codes == ord("}"))
    if not opens.any():
        return 0, 0
    depth = np.cumsum(opens.astype(np.int32) - closes.astype(np.int32))
    return int(depth.max()), int(np.count_nonzero(codes == ord("[")))


def loads(text: str, name: str) -> Any:
    """json.loads with its bounds checked first: depth, arrays (so vertices) and finite numbers."""
    depth, arrays = json_shape(text)
    if depth > MAX_JSON_DEPTH:
        raise InvalidParameter(name, f"JSON nested {depth} levels deep; at most {MAX_JSON_DEPTH} are taken")
    if arrays > MAX_VERTICES + _ARRAY_SLACK:
        raise TooLarge(name, f"JSON with {arrays} arrays; a geometry may have at most {MAX_VERTICES} vertices")
    try:
        return json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except RecursionError:               # cannot happen below MAX_JSON_DEPTH; kept as the last guard
        raise InvalidParameter(name, "JSON nested too deeply")
    except ValueError as exc:
        where = f" at position {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        raise InvalidParameter(name, f"not valid JSON ({getattr(exc, 'msg', exc)}{where})")


def check_coordinates(values: Iterable[float], name: str) -> None:
    """Refuse a coordinate whose magnitude no CRS has (sizes computed from it would overflow)."""
    for v in values:
        if not (math.isfinite(v) and abs(v) <= MAX_COORDINATE):
            raise InvalidParameter(name, f"coordinate {v!r} is out of range (at most +-{MAX_COORDINATE:g})")


def check_epoch_ms(values: Iterable[float | None], name: str) -> None:
    """Refuse a time outside years 1..9999 (as epoch milliseconds)."""
    for v in values:
        if v is not None and not abs(v) <= MAX_EPOCH_MS:
            raise InvalidParameter(name, f"{v:g} is not a time between the years 1 and 9999 in epoch milliseconds")


class VertexCounter:
    """Counts vertices while a geometry is read and stops at MAX_VERTICES (before building it)."""

    def __init__(self, name: str, limit: int = MAX_VERTICES):
        self.name, self.limit, self.count = name, limit, 0

    def add(self, n: int = 1) -> None:
        self.count += n
        if self.count > self.limit:
            raise TooLarge(self.name, f"the geometry has more than {self.limit} vertices")
