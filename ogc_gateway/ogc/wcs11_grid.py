"""WCS 1.1.1 output grids (06-083r8 10.3.4, pitfalls 33-36): the grid a coverage is described in,
and the one a GetCoverage asks for with BOUNDINGBOX, GRIDBASECRS, GRIDTYPE, GRIDCS, GRIDORIGIN
and GRIDOFFSETS.

Every coordinate is in the CRS's own axis order (lat, lon for urn:ogc:def:crs:EPSG::4326); the
engine works in x/y, so the order is swapped here where the CRS's first axis points north.
BOUNDINGBOX values are the centres of the outer cells, GRIDORIGIN the centre of the first cell,
GRIDOFFSETS the steps between cell centres: the output cells are the lattice origin + k * offset
whose centres lie in the box.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..engine import MAX_COORDINATE, Grid, crs_from_ogc, default_grid, default_resolution, reproject_bounds
from .common import KVP, OGCError
from .coverage import Coverage
from .crs import epsg_code, urn
from .crs import inverted as axis_inverted
from .crs import parse as parse_crs

SIMPLE_GRID = "urn:ogc:def:method:WCS:1.1:2dSimpleGrid"
GRID_CS = "urn:ogc:def:cs:OGC:0.0:Grid2dSquareCS"
IMAGE_CRS = "urn:ogc:def:crs:OGC::imageCRS"


@dataclass(frozen=True)
class Native:
    """The grid a coverage is described (and by default delivered) in: its native grid when the
    native CRS has an EPSG code, else that grid's default warp into EPSG:4326."""

    code: str               # "EPSG:n"
    grid: Grid

    @property
    def inverted(self) -> bool:
        return axis_inverted(self.code)


def native_of(cov: Coverage) -> Native:
    code = epsg_code(cov.grid.crs)
    if code is not None:
        return Native(code, cov.grid)
    return Native("EPSG:4326", default_grid(cov.grid, crs_from_ogc("EPSG:4326")))


def _numbers(raw: str, locator: str, counts: tuple[int, ...]) -> list[float]:
    parts = [p for p in re.split(r"[,\s]+", raw.strip()) if p]
    if len(parts) not in counts:
        raise OGCError("InvalidParameterValue", f"{locator.upper()} needs {' or '.join(map(str, counts))} "
                       "numbers", locator)
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise OGCError("InvalidParameterValue", f"{locator.upper()}={raw!r} holds something that is not a "
                       "number", locator) from None
    if not all(math.isfinite(v) and abs(v) <= MAX_COORDINATE for v in values):
        raise OGCError("InvalidParameterValue", f"{locator.upper()} values must be finite numbers within "
                       f"+-{MAX_COORDINATE:g}", locator)
    return values


def _crs(code: str, locator: str):
    return parse_crs(code, "InvalidParameterValue", f"{code!r} is not a supported CRS", locator)


def _bounding_box(kvp: KVP, cov: Coverage, nat: Native) -> tuple[str, tuple[float, float, float, float]]:
    """(CRS identifier, x/y bounds of the cell centres) of BOUNDINGBOX."""
    raw = kvp.get("BOUNDINGBOX")
    if raw is None or not raw.strip():
        raise OGCError("MissingParameterValue", "parameter BOUNDINGBOX is required", "boundingbox")
    parts = [p.strip() for p in raw.split(",")]
    code = None
    if parts and re.search(r"[A-Za-z]", parts[-1]) and not re.fullmatch(r"[-+.\deE]+|inf|nan", parts[-1],
                                                                         re.I):
        code = parts.pop()
    if len(parts) != 4:
        raise OGCError("InvalidParameterValue", "BOUNDINGBOX is minx,miny,maxx,maxy[,crs] (2-D lower and upper "
                       "corners, in the CRS's axis order)", "boundingbox")
    a0, a1, b0, b1 = _numbers(",".join(parts), "boundingbox", (4,))
    if code is None:
        code = (kvp.get("CRS") or "").strip() or urn(nat.code)
    if code.strip().lower() in (IMAGE_CRS.lower(), "urn:ogc:def:crs:ogc:0.0:imagecrs", "imagecrs"):
        return _image_box(nat, (a0, a1, b0, b1))
    _crs(code, "boundingbox")
    if axis_inverted(code):
        a0, a1, b0, b1 = a1, a0, b1, b0
    x0, y0, x1, y1 = a0, a1, b0, b1
    if _crs(code, "boundingbox").is_geographic and x0 > x1:
        x1 += 360.0                     # a box across the antimeridian
    if x0 > x1 or y0 > y1:
        raise OGCError("InvalidParameterValue", "BOUNDINGBOX: the lower corner is above the upper corner",
                       "boundingbox")
    return code, (x0, y0, x1, y1)


def _image_box(nat: Native, box) -> tuple[str, tuple[float, float, float, float]]:
    """An imageCRS box (column, row indices of the outer cells) as native cell centres."""
    i0, j0, i1, j1 = box
    if i0 > i1 or j0 > j1:
        raise OGCError("InvalidParameterValue", "BOUNDINGBOX: the lower corner is above the upper corner",
                       "boundingbox")
    g = nat.grid
    rx, ry = g.res
    x0, _, _, ymax = g.bounds
    return urn(nat.code), (x0 + (i0 + 0.5) * rx, ymax - (j1 + 0.5) * ry, x0 + (i1 + 0.5) * rx,
                           ymax - (j0 + 0.5) * ry)


def _grid_type(kvp: KVP) -> str | None:
    raw = (kvp.get("GRIDTYPE") or "").strip()
    if not raw:
        return None
    for kind in ("2dSimpleGrid", "2dGridIn2dCrs", "2dGridIn3dCrs"):
        if raw.lower().endswith(":" + kind.lower()) or raw.lower() == kind.lower():
            return kind
    raise OGCError("InvalidParameterValue", f"GRIDTYPE={raw!r} is not supported (urn:ogc:def:method:WCS:1.1:"
                   "2dSimpleGrid, 2dGridIn2dCrs, 2dGridIn3dCrs)", "gridtype")


def _grid_cs(kvp: KVP) -> None:
    raw = (kvp.get("GRIDCS") or "").strip()
    if raw and not raw.lower().endswith(":grid2dsquarecs") and raw.lower() != "grid2dsquarecs":
        raise OGCError("InvalidParameterValue", f"GRIDCS={raw!r} is not supported ({GRID_CS})", "gridcs")


def _offsets(kvp: KVP, kind: str | None, inverted: bool) -> tuple[float, float] | None:
    """GRIDOFFSETS as positive x/y steps (None: not given)."""
    raw = kvp.get("GRIDOFFSETS")
    if raw is None or not raw.strip():
        return None
    by_kind: dict[str | None, tuple[int, ...]] = {"2dSimpleGrid": (2,), "2dGridIn2dCrs": (4,), "2dGridIn3dCrs": (6,)}
    counts = by_kind.get(kind, (2, 4))
    v = _numbers(raw, "gridoffsets", counts)
    if len(v) == 2:
        dx, dy = (v[1], v[0]) if inverted else (v[0], v[1])
    else:
        half = len(v) // 2
        c1, c2 = v[:2], v[half:half + 2]            # grid axis 1 (columns), grid axis 2 (rows)
        if inverted:
            c1, c2 = c1[::-1], c2[::-1]
        if c1[1] == 0 and c2[0] == 0:
            dx, dy = c1[0], c2[1]
        elif c1[0] == 0 and c2[1] == 0:             # the row vector given first: same lattice
            dx, dy = c2[0], c1[1]
        else:
            raise OGCError("InvalidParameterValue", "GRIDOFFSETS: rotated or sheared grids are not supported",
                           "gridoffsets")
    if dx == 0 or dy == 0:
        raise OGCError("InvalidParameterValue", "GRIDOFFSETS must not be zero", "gridoffsets")
    return abs(dx), abs(dy)


def _origin(kvp: KVP, inverted: bool) -> tuple[float, float] | None:
    raw = kvp.get("GRIDORIGIN")
    if raw is None or not raw.strip():
        return None
    v = _numbers(raw, "gridorigin", (2, 3))
    return (v[1], v[0]) if inverted else (v[0], v[1])


def _axis(lo: float, hi: float, origin: float, step: float) -> tuple[int, int]:
    """(first, last) lattice index k with origin + k*step in [lo, hi] (at least one: the nearest)."""
    eps = 1e-6
    k0 = math.ceil((lo - origin) / step - eps)
    k1 = math.floor((hi - origin) / step + eps)
    if k1 < k0:
        k0 = k1 = round(((lo + hi) / 2 - origin) / step)
    return k0, k1


def output_grid(kvp: KVP, cov: Coverage) -> Grid:
    """The grid a GetCoverage asks for: cells centred on GRIDORIGIN + k*GRIDOFFSETS inside BOUNDINGBOX,
    in GRIDBASECRS (default: the box's CRS), at the native resolution when no offsets are given."""
    nat = native_of(cov)
    box_code, box = _bounding_box(kvp, cov, nat)
    base_code = (kvp.get("GRIDBASECRS") or "").strip() or box_code
    base = _crs(base_code, "gridbasecrs")
    inverted = axis_inverted(base_code)
    box_crs = _crs(box_code, "boundingbox")
    if base != box_crs:
        box = reproject_bounds(box, box_crs, base)
    kind = _grid_type(kvp)
    _grid_cs(kvp)
    steps = _offsets(kvp, kind, inverted)
    origin = _origin(kvp, inverted)
    native = base == nat.grid.crs
    if steps is None:
        if native:
            steps = nat.grid.res
        else:
            steps = default_resolution(nat.grid, base)
    if origin is None:
        if native and all(math.isclose(s, r, rel_tol=1e-9) for s, r in zip(steps, nat.grid.res, strict=True)):
            g = nat.grid
            origin = (g.bounds[0] + g.res[0] / 2, g.bounds[3] - g.res[1] / 2)    # the native lattice
        else:
            origin = (box[0], box[3])
    rx, ry = steps
    i0, i1 = _axis(box[0], box[2], origin[0], rx)
    j0, j1 = _axis(box[1], box[3], origin[1], ry)
    width, height = i1 - i0 + 1, j1 - j0 + 1
    left = origin[0] + i0 * rx - rx / 2
    top = origin[1] + j1 * ry + ry / 2
    return Grid(base, (left, top - height * ry, left + width * rx, top), width, height)
