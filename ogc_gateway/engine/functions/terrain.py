"""Surface functions of a DEM: Hillshade, Slope, Aspect, Curvature, ShadedRelief.

Each reads its input with one cell more on every side (so tiles and image edges have no seams) and
works on the 3x3 window of each cell, a b c / d e f / g h i, north up. Gradients are Horn's:
  dz/dx (east)  = ((c + 2f + i) - (a + 2d + g)) / (8 dx)
  dz/dy (north) = ((a + 2b + c) - (g + 2h + i)) / (8 dy)
with z multiplied by ZFactor, and dx, dy the cell size in metres: for a geographic CRS the length of
a degree of longitude and latitude on the CRS's ellipsoid at each row's latitude; for a Mercator
projection the projected size divided by the scale factor at the row; otherwise the CRS's units.
SlopeType 3 (scaled) adds (cell size in m)^PSPower * PSZFactor to ZFactor, so relief stays visible
at small scales.

Where a neighbour is nodata it takes the centre cell's value (ArcGIS's rule; cells at the data's
edge get a value). RemoveEdgeEffect makes those cells nodata instead, as gdaldem does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from pyproj import CRS as ProjCRS
from pyproj import Proj, Transformer

from ..requests import Grid, RenderingRule
from ..requests import Raster as RasterValue
from .colormap import RGB_NAMES, ramp_position
from .ramps import ColormapKind, RampKind, named_ramp
from .registry import Function, FunctionContext, Signature, finish, register
from .schema import Arg, Boolean, Choice, Number, Raster

DEGREE, PERCENT_RISE, SCALED = 1, 2, 3
SLOPE_TYPES = {DEGREE: "Degree", PERCENT_RISE: "PercentRise", SCALED: "Scaled"}
_SLOPE_ALIASES = {"Degrees": DEGREE, "Percent": PERCENT_RISE, "Adjusted": SCALED}

_DEM = Arg("Raster", Raster(), aliases=("DEM",), doc="the elevation model")
_Z = Arg("ZFactor", Number(), 1.0, doc="multiplies z (units to metres, exaggeration)")
_SURFACE = (_Z, Arg("SlopeType", Choice(SLOPE_TYPES, _SLOPE_ALIASES), DEGREE),
            Arg("PSPower", Number(0, 10), 0.664, doc="pixel-size power of SlopeType 3"),
            Arg("PSZFactor", Number(0, 10000), 0.024, doc="pixel-size factor of SlopeType 3"),
            Arg("RemoveEdgeEffect", Boolean(), False, doc="nodata where a neighbour is nodata"))
_SUN = (Arg("Azimuth", Number(0, 360), 315.0, doc="degrees clockwise from north"),
        Arg("Altitude", Number(0, 90), 45.0, doc="degrees above the horizon"),
        Arg("HillshadeType", Choice({0: "Traditional", 1: "Multidirectional"}), 0))


# --- cell sizes in metres ---------------------------------------------------------------------------

_Metric = (tuple[Literal["geographic"], float, float] | tuple[Literal["mercator"], Proj, Transformer]
           | tuple[Literal["plain"]])


@lru_cache(maxsize=64)
def _metric(wkt: str) -> _Metric:
    """How to turn this CRS's cell sizes into metres: ("geographic", a, e2), ("mercator", proj,
    to lon/lat) or ("plain",)."""
    crs = ProjCRS.from_wkt(wkt)
    ellipsoid = crs.ellipsoid
    if crs.is_geographic and ellipsoid is not None:
        a, f = ellipsoid.semi_major_metre, 1.0 / ellipsoid.inverse_flattening if ellipsoid.inverse_flattening else 0.0
        return ("geographic", a, f * (2 - f))
    method = (crs.coordinate_operation.method_name if crs.coordinate_operation else "") or ""
    if "mercator" in method.lower() and "transverse" not in method.lower() and "oblique" not in method.lower():
        return ("mercator", Proj(crs), Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True))
    return ("plain",)


def cell_metres(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """(dx, dy) of each row of the grid in metres, as (rows, 1) arrays."""
    rx, ry = grid.res
    rows = np.arange(grid.height)
    ys = grid.bounds[3] - (rows + 0.5) * ry
    kind = _metric(grid.crs.to_wkt())
    if kind[0] == "geographic":
        _, a, e2 = kind
        lat = np.radians(np.clip(ys, -89.999, 89.999))
        w = 1.0 - e2 * np.sin(lat) ** 2
        dx = np.radians(rx) * a * np.cos(lat) / np.sqrt(w)
        dy = np.radians(ry) * a * (1.0 - e2) / w ** 1.5
    elif kind[0] == "mercator":
        _, proj, to_geographic = kind
        cx = (grid.bounds[0] + grid.bounds[2]) / 2
        lon, lat = to_geographic.transform(np.full(ys.shape, cx), ys)
        k = np.asarray(proj.get_factors(lon, lat).parallel_scale, dtype=np.float64)
        dx, dy = rx / k, ry / k
    else:
        dx, dy = np.full(ys.shape, rx), np.full(ys.shape, ry)
    return dx[:, np.newaxis], dy[:, np.newaxis]


# --- the 3x3 window ---------------------------------------------------------------------------------

class Surface:
    """The DEM around each output cell, its metric cell sizes and horizontal gradients."""

    def __init__(self, rule: RenderingRule, ctx: FunctionContext, remove_edge: bool = False):
        dem = ctx.raster(rule.arguments["Raster"], extra=1)
        z = dem.data.data[0].astype(np.float64)
        invalid = np.ma.getmaskarray(dem.data)[0]
        rows, cols = z.shape[0] - 2, z.shape[1] - 2
        cells = [(r, c) for r in range(3) for c in range(3)]
        windows = [z[r:r + rows, c:c + cols] for r, c in cells]
        holes = [invalid[r:r + rows, c:c + cols] for r, c in cells]
        centre = windows[4]
        self.z = [np.where(h, centre, w) for w, h in zip(windows, holes)]     # a..i
        self.mask = holes[4] | (np.logical_or.reduce(holes) if remove_edge else False)
        self.grid, self.pixel_type = ctx.target, dem.pixel_type
        self.dx, self.dy = cell_metres(ctx.target)

    def gradients(self, zfactor: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, b, c, d, _, f, g, h, i = self.z
        gx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8 * self.dx) * zfactor
        gy = ((a + 2 * b + c) - (g + 2 * h + i)) / (8 * self.dy) * zfactor
        return gx, gy

    def zfactor(self, args: dict[str, Any]) -> float | np.ndarray:
        z: float | np.ndarray = args["ZFactor"]
        if args.get("SlopeType") == SCALED:
            z = z + ((self.dx + self.dy) / 2) ** args["PSPower"] * args["PSZFactor"]
        return z


def hillshade(gx: np.ndarray, gy: np.ndarray, azimuth: float, altitude: float,
              multidirectional: bool) -> np.ndarray:
    """Illumination 0..1 of surfaces of gradient (gx, gy): the cosine between the surface normal and
    the sun, or, multidirectional, four suns (225, 270, 315, 360 degrees) weighted by the aspect as in
    Mark (1992) and gdaldem -multidirectional."""
    alt = np.radians(altitude)
    norm: np.ndarray = np.sqrt(1.0 + gx * gx + gy * gy)

    def lit(az: float) -> np.ndarray:
        az = np.radians(az)
        light: np.ndarray = np.maximum(np.sin(alt) - np.cos(alt) * (gx * np.sin(az) + gy * np.cos(az)), 0.0)
        return light

    if not multidirectional:
        single: np.ndarray = lit(azimuth) / norm
        return single
    g2 = gx * gx + gy * gy
    weighted = ((0.5 * g2 + gx * gy) * lit(225) + gx * gx * lit(270) + (0.5 * g2 - gx * gy) * lit(315)
                + gy * gy * lit(360))
    with np.errstate(divide="ignore", invalid="ignore"):
        shade: np.ndarray = np.where(g2 > 0, weighted / (2 * g2), np.sin(alt)) / norm
    return shade


class Hillshade(Function):
    name = "Hillshade"
    args: tuple[Arg, ...] = (_DEM,) + _SUN + _SURFACE
    summary = "Grey shading of a DEM lit by the sun (or four suns), 0..255."

    @staticmethod
    def shade(rule: RenderingRule, ctx: FunctionContext) -> tuple[Surface, np.ndarray]:
        args = rule.arguments
        s = Surface(rule, ctx, args["RemoveEdgeEffect"])
        gx, gy = s.gradients(s.zfactor(args))
        return s, hillshade(gx, gy, args["Azimuth"], args["Altitude"], args["HillshadeType"] == 1)

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> RasterValue:
        s, shade = self.shade(rule, ctx)
        return finish(s.grid, 255.0 * shade, s.mask, "U8", ("Hillshade",), nodata=None)

    def describe(self, rule: RenderingRule, source: Callable[[Any], Signature]) -> Signature:
        return Signature(1, "U8", ("Hillshade",))


class Slope(Function):
    name = "Slope"
    args = (_DEM,) + _SURFACE
    summary = "Steepness: degrees (SlopeType 1, 3) or percent rise (2)."

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> RasterValue:
        args = rule.arguments
        s = Surface(rule, ctx, args["RemoveEdgeEffect"])
        gx, gy = s.gradients(s.zfactor(args))
        rise = np.hypot(gx, gy)
        values = 100.0 * rise if args["SlopeType"] == PERCENT_RISE else np.degrees(np.arctan(rise))
        return finish(s.grid, values, s.mask, "F32", ("Slope",))

    def describe(self, rule: RenderingRule, source: Callable[[Any], Signature]) -> Signature:
        return Signature(1, "F32", ("Slope",))


class Aspect(Function):
    name = "Aspect"
    args = (_DEM,)
    summary = "Downslope direction, degrees clockwise from north; -1 where flat."

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> RasterValue:
        s = Surface(rule, ctx)
        gx, gy = s.gradients(1.0)
        aspect = np.degrees(np.arctan2(-gx, -gy)) % 360.0
        aspect = np.where((gx == 0) & (gy == 0), -1.0, aspect)
        return finish(s.grid, aspect, s.mask, "F32", ("Aspect",))

    def describe(self, rule: RenderingRule, source: Callable[[Any], Signature]) -> Signature:
        return Signature(1, "F32", ("Aspect",))


class Curvature(Function):
    name = "Curvature"
    args = (_DEM, Arg("Type", Choice({0: "Standard", 1: "Profile", 2: "Planform"}), 0), _Z)
    summary = "Curvature of the surface (Zevenbergen and Thorne), 1/100 z-units."

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> RasterValue:
        s = Surface(rule, ctx)
        z1, z2, z3, z4, z5, z6, z7, z8, z9 = (v * rule.arguments["ZFactor"] for v in s.z)
        dx, dy = s.dx, s.dy
        d = ((z4 + z6) / 2 - z5) / dx ** 2
        e = ((z2 + z8) / 2 - z5) / dy ** 2
        f = (-z1 + z3 + z7 - z9) / (4 * dx * dy)
        g = (z6 - z4) / (2 * dx)
        h = (z2 - z8) / (2 * dy)
        kind = rule.arguments["Type"]
        if kind == 0:
            values = -2 * (d + e) * 100
        else:
            g2h2 = g * g + h * h
            with np.errstate(divide="ignore", invalid="ignore"):
                if kind == 1:
                    values = np.where(g2h2 > 0, -2 * (d * g * g + e * h * h + f * g * h) / g2h2, 0.0) * 100
                else:
                    values = np.where(g2h2 > 0, 2 * (d * h * h + e * g * g - f * g * h) / g2h2, 0.0) * 100
        return finish(s.grid, values, s.mask, "F32", ("Curvature",))

    def describe(self, rule: RenderingRule, source: Callable[[Any], Signature]) -> Signature:
        return Signature(1, "F32", ("Curvature",))


class ShadedRelief(Hillshade):
    name = "ShadedRelief"
    args = Hillshade.args + (
        Arg("Colormap", ColormapKind(), doc="[[elevation, r, g, b], ...], interpolated between entries"),
        Arg("ColorRamp", RampKind(), aliases=("Colorramp", "ColorrampName"),
            doc="stretched over the elevation range (default Elevation #1)"))
    summary = "Elevation colours shaded by the hillshade, 3-band RGB."

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> RasterValue:
        args = rule.arguments
        s, shade = self.shade(rule, ctx)
        elevation = s.z[4]
        if "Colormap" in args:
            colors = args["Colormap"].interpolate(elevation)
        else:
            ramp = args.get("ColorRamp") or named_ramp("Elevation #1")
            colors = ramp.at(ramp_position(ctx, s.pixel_type, elevation, args["Raster"]))
        return finish(s.grid, colors * shade, s.mask, "U8", RGB_NAMES, nodata=None)

    def describe(self, rule: RenderingRule, source: Callable[[Any], Signature]) -> Signature:
        return Signature(3, "U8", RGB_NAMES)


for _fn in (Hillshade(), Slope(), Aspect(), Curvature(), ShadedRelief()):
    register(_fn)
