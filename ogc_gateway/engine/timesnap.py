"""Tile-cache time keys snapped to what the catalog holds (issue 15, item 5).

Why: the ImageServer tile resource takes any `time=` window, and each distinct window got its own cache
folder and a fresh metatile (200 requests made 3,184 files). Two windows that select the same items draw
the same tiles, so the key is made from the catalog's own times instead of the request's: an item is
selected when start_i <= window end and end_i >= window start, which stays true when the window's start
moves up to the smallest item end at or after it, and its end down to the largest item start at or
before it. Distinct keys are then bounded by the catalog (pairs of its times), not by the clients.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING

from .requests import TimeWindow

if TYPE_CHECKING:
    from .service import ImageService


def _bounds(service: ImageService) -> tuple[list[int], list[int]]:
    """(item starts, item ends), each distinct and ascending; memoised per service (a catalog change
    builds a new service object)."""
    def compute() -> tuple[list[int], list[int]]:
        rows = service.catalog.time_bounds()
        return sorted({s for s, _ in rows}), sorted({e for _, e in rows})
    bounds: tuple[list[int], list[int]] = service.cached("time_bounds", compute)
    return bounds


def time_key(service: ImageService, time: TimeWindow | None) -> str:
    """The cache key of a request time: 'all' without one; else the snapped window, or 'none' when it
    selects no item."""
    if time is None:
        return "all"
    starts, ends = _bounds(service)
    i = 0 if time.start is None else bisect_left(ends, time.start)
    j = len(starts) if time.end is None else bisect_right(starts, time.end)
    if i == len(ends) or j == 0:
        return "none"
    lo, hi = ends[i], starts[j - 1]
    return f"{lo}_{hi}"
