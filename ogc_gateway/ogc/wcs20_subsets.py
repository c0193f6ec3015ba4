"""WCS 2.0.1 subsetting (OGC 09-110r4 8.4.2, the CRS extension 11-053r1): SUBSET values parsed,
sorted into trims of the CRS axes, a time and the coverage's other dimensions, and the output grid
they select before scaling.

Subsetting selects the native pixels whose centres lie inside the trims (GDAL sends outer pixel
edges), so a request on the native grid with nearest neighbour returns the source pixels; in
another output CRS the trimmed box is cut at about the native resolution.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..engine import MAX_COORDINATE, GatewayError, Grid, TimeWindow, default_resolution, extent_in, reproject_bounds
from .common import KVP, OGCError, parse_instant
from .common import number as num
from .coverage import Coverage
from .crs import Axes
from .layers import subset_values

TIME_AXES = ("time", "t", "ansi", "phenomenontime")      # compared case-insensitively
_EPS = 1e-6          # pixels: a trim edge this close to a pixel centre counts as reaching it


@dataclass(frozen=True)
class Subset:
    label: str
    low: str | None           # None: unbounded ('*')
    high: str | None
    is_slice: bool
    crs: str | None = None    # the 2.0.0-era `axis,crsURI(...)` form


_SUBSET = re.compile(r"^\s*([^\s(),]+)\s*(?:,\s*([^\s()]+)\s*)?\((.*)\)\s*$", re.S)


def _value(text: str) -> str | None:
    value = text.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].strip()
    return None if value == "*" else value


def parse_subsets(kvp: KVP) -> list[Subset]:
    """Every SUBSET, SUBSET0, SUBSETx… value (SUBSETTINGCRS aside)."""
    out = []
    for key, values in kvp.all.items():
        if not key.startswith("SUBSET") or key == "SUBSETTINGCRS":
            continue
        for raw in values:
            match = _SUBSET.match(raw or "")
            if not match:
                raise OGCError("InvalidEncodingSyntax", f"SUBSET={raw!r} is not axis(low,high) or axis(point)",
                               "subset")
            label, crs, inner = match.groups()
            parts = inner.split(",")
            if len(parts) == 1:
                point = _value(parts[0])
                if point is None:
                    raise OGCError("InvalidSubsetting", f"SUBSET={raw!r}: a slice needs a point", label)
                out.append(Subset(label, point, point, True, crs))
            elif len(parts) == 2:
                out.append(Subset(label, _value(parts[0]), _value(parts[1]), False, crs))
            else:
                raise OGCError("InvalidEncodingSyntax", f"SUBSET={raw!r} has more than two values", "subset")
    return out


def _number(text: str, label: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise OGCError("InvalidSubsetting", f"{label}: {text!r} is not a number", label) from None
    if not (math.isfinite(value) and abs(value) <= MAX_COORDINATE):
        raise OGCError("InvalidSubsetting", f"{label}: {text!r} is not a finite number within "
                       f"+-{MAX_COORDINATE:g}", label)
    return value


@dataclass(frozen=True)
class Trim:
    low: float | None
    high: float | None
    is_slice: bool
    label: str


def _time_request(cov: Coverage, s: Subset) -> TimeWindow:
    try:
        if s.is_slice:
            if s.low is None:           # parse_subsets gives every slice its point
                raise OGCError("InvalidSubsetting", f"{s.label}: a slice needs a point", s.label)
            return TimeWindow.of_instants((parse_instant(s.low, s.label),))
        extent = cov.service.info.time_extent
        if extent is None:              # asked only of a coverage with times
            raise OGCError("InvalidAxisLabel", f"{s.label}: the coverage has no time axis", s.label)
        lo, hi = extent
        start = lo if s.low is None else parse_instant(s.low, s.label)
        end = hi if s.high is None else parse_instant(s.high, s.label)
    except OGCError as exc:
        raise OGCError("InvalidSubsetting", exc.message, s.label) from None
    if start > end:
        raise OGCError("InvalidSubsetting", f"{s.label}: the low bound is after the high bound", s.label)
    return TimeWindow(start, end)


# --- GetCoverage: grids ----------------------------------------------------------------------------------

def _span(trim: Trim | None, lo_edge: float, hi_edge: float, res: float, count: int, from_top: bool
          ) -> tuple[int, int]:
    """First and last pixel index along one axis whose centres the trim holds (a slice: the pixel
    holding the point; a trim between two centres: the pixel holding its middle)."""
    if trim is None:
        return 0, count - 1
    lo = lo_edge if trim.low is None else trim.low
    hi = hi_edge if trim.high is None else trim.high
    if lo > hi:
        raise OGCError("InvalidSubsetting", f"{trim.label}: the low bound {num(lo)} is above the high "
                       f"bound {num(hi)}", trim.label)
    if hi < lo_edge or lo > hi_edge:
        raise OGCError("InvalidSubsetting", f"{trim.label}: ({num(lo)}, {num(hi)}) lies outside the coverage "
                       f"({num(lo_edge)}, {num(hi_edge)})", trim.label)
    a, b = ((hi_edge - hi) / res, (hi_edge - lo) / res) if from_top else ((lo - lo_edge) / res, (hi - lo_edge) / res)
    if trim.is_slice:
        k = min(max(int(math.floor(a)), 0), count - 1)
        return k, k
    first = max(int(math.ceil(a - 0.5 - _EPS)), 0)
    last = min(int(math.floor(b - 0.5 + _EPS)), count - 1)
    if first > last:
        k = min(max(int(math.floor((a + b) / 2)), 0), count - 1)
        return k, k
    return first, last


def native_window(grid: Grid, tx: Trim | None, ty: Trim | None) -> Grid:
    """The part of the native grid the trims select: whole native pixels, edges kept exact."""
    x0, y0, x1, y1 = grid.bounds
    rx, ry = grid.res
    c0, c1 = _span(tx, x0, x1, rx, grid.width, from_top=False)
    r0, r1 = _span(ty, y0, y1, ry, grid.height, from_top=True)
    left = x0 if c0 == 0 else x0 + c0 * rx
    right = x1 if c1 == grid.width - 1 else x0 + (c1 + 1) * rx
    top = y1 if r0 == 0 else y1 - r0 * ry
    bottom = y0 if r1 == grid.height - 1 else y1 - (r1 + 1) * ry
    return Grid(grid.crs, (left, bottom, right, top), c1 - c0 + 1, r1 - r0 + 1)


def _box(trims: dict[int, Trim], extent: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """The trims as an x/y box, open sides taken from `extent`; checked against it."""
    box = list(extent)
    for axis in (0, 1):
        t = trims.get(axis)
        if t is None:
            continue
        lo = extent[axis] if t.low is None else t.low
        hi = extent[axis + 2] if t.high is None else t.high
        if lo > hi:
            raise OGCError("InvalidSubsetting", f"{t.label}: the low bound {num(lo)} is above the high bound "
                           f"{num(hi)}", t.label)
        if hi < extent[axis] or lo > extent[axis + 2]:
            raise OGCError("InvalidSubsetting", f"{t.label}: ({num(lo)}, {num(hi)}) lies outside the coverage "
                           f"({num(extent[axis])}, {num(extent[axis + 2])})", t.label)
        box[axis], box[axis + 2] = lo, hi
    return box[0], box[1], box[2], box[3]


def _extent(cov: Coverage, ax: Axes) -> tuple[float, float, float, float]:
    try:
        return extent_in(cov.grid.bounds, cov.grid.crs, ax.crs)
    except GatewayError as exc:
        raise OGCError("InvalidSubsetting", f"the coverage lies outside {ax.uri}: {exc.message}", "subset") from None


def target_grid(cov: Coverage, native: Axes, sub: Axes, out: Axes, trims: dict[int, Trim]) -> Grid:
    """The output grid before scaling: native pixels when the output is in the native CRS, else the
    trimmed box in the output CRS at about the native resolution."""
    if out.uri == native.uri:
        if sub.uri == native.uri:
            return native_window(cov.grid, trims.get(0), trims.get(1))
        box = reproject_bounds(_box(trims, _extent(cov, sub)), sub.crs, native.crs)
        converted = {axis: Trim(box[axis], box[axis + 2], t.is_slice, t.label) for axis, t in trims.items()}
        if any(t.is_slice for t in converted.values()):      # the pixel holding the point's image
            converted = {axis: Trim((box[axis] + box[axis + 2]) / 2, (box[axis] + box[axis + 2]) / 2, True, t.label)
                         if t.is_slice else t for axis, t in converted.items()}
        return native_window(cov.grid, converted.get(0), converted.get(1))
    box = _box(trims, _extent(cov, sub))
    if sub.uri != out.uri:
        box = reproject_bounds(box, sub.crs, out.crs)
    ext = _extent(cov, out)
    x0, y0, x1, y1 = max(box[0], ext[0]), max(box[1], ext[1]), min(box[2], ext[2]), min(box[3], ext[3])
    if x0 > x1 or y0 > y1:
        raise OGCError("InvalidSubsetting", "the subset does not intersect the coverage", "subset")
    g = cov.grid
    res = default_resolution(g, out.crs)[0]
    if x1 - x0 < res:                     # a slice, or a trim thinner than a pixel: one pixel wide
        cx = (x0 + x1) / 2
        x0, x1 = cx - res / 2, cx + res / 2
    if y1 - y0 < res:
        cy = (y0 + y1) / 2
        y0, y1 = cy - res / 2, cy + res / 2
    return Grid(out.crs, (x0, y0, x1, y1), max(1, round((x1 - x0) / res)), max(1, round((y1 - y0) / res)))


def axis_subsets(subsets: list[Subset], cov: Coverage, sub: Axes
                 ) -> tuple[dict[int, Trim], TimeWindow | None, dict[str, tuple]]:
    """The SUBSETs sorted out: trims of the CRS axes (0: x, 1: y) in `sub`, the time asked for, and
    the values of the coverage's other dimensions by name; an axis subset twice or unknown is
    InvalidAxisLabel."""
    trims: dict[int, Trim] = {}
    time: TimeWindow | None = None
    dims: dict[str, tuple] = {}
    seen: set[str] = set()
    for s in subsets:
        if s.label in seen:
            raise OGCError("InvalidAxisLabel", f"axis {s.label!r} is subset twice", s.label)
        seen.add(s.label)
        if s.label.lower() in TIME_AXES and cov.layer.times:
            if time is not None:
                raise OGCError("InvalidAxisLabel", "the time axis is subset twice", s.label)
            time = _time_request(cov, s)
            continue
        axis = sub.axis_of(s.label)
        dim = cov.layer.dimension(s.label) if axis is None else None
        if dim is not None:
            if dim.name in dims:
                raise OGCError("InvalidAxisLabel", f"the {dim.name} axis is subset twice", s.label)
            dims[dim.name] = subset_values(dim, s.low, s.high, s.is_slice, s.label)
            continue
        if axis is None:
            extra = "".join(f", {d}" for d in (["time"] if cov.layer.times else [])
                            + [d.name for d in cov.layer.dimensions])
            raise OGCError("InvalidAxisLabel", f"{s.label!r} is not an axis of {cov.id} in {sub.uri} "
                           f"({' '.join(sub.labels)}{extra})", s.label)
        if axis in trims:
            raise OGCError("InvalidAxisLabel", f"axis {s.label!r} is subset twice", s.label)
        low = None if s.low is None else _number(s.low, s.label)
        high = None if s.high is None else _number(s.high, s.label)
        trims[axis] = Trim(low, high, s.is_slice, s.label)
    return trims, time, dims
