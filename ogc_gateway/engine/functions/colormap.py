"""Colormap and ColormapToRGB: one band becomes a 3-band 8-bit RGB picture.

Colormap takes exactly one of: `Colormap` (explicit `[[value, r, g, b], ...]`; values without an
entry become nodata), `ColormapName` (a colour for each value 0..255; Random: a fixed colour per
value) or `ColorRamp` (stretched along the ramp: an 8-bit input over 0..255, any other over the
input's value range — its statistics, not the request's pixels, so tiles agree).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..requests import Raster as RasterValue
from ..requests import RenderingRule
from .ramps import NAMED_COLORMAPS, ColormapKind, Ramp, RampKind, colormap_name, random_colors
from .registry import Function, FunctionContext, Signature, fail, finish, register
from .schema import Arg, ArgError, Raster, Text

RGB_NAMES = ("Red", "Green", "Blue")


def ramp_position(ctx: FunctionContext, pixel_type: str, band: np.ndarray, source: Any) -> np.ndarray:
    """Where each value lies along a ramp: 8-bit values over 0..255, others over the input's range."""
    if pixel_type == "U8":
        return band / 255.0
    dist = ctx.distribution(source, False)[0]
    span = (dist.max - dist.min) or 1.0
    return (band - dist.min) / span


class ColormapFunction(Function):
    name = "Colormap"
    args = (Arg("Raster", Raster()),
            Arg("Colormap", ColormapKind(), doc="[[value, r, g, b], ...]"),
            Arg("ColormapName", Text(), doc="Gray, Elevation, NDVI, NDVI2, NDVI3, Hillshade, Random"),
            Arg("ColorRamp", RampKind(), aliases=("ColorrampName", "Colorramp"),
                doc="a ramp name or Esri colour-ramp JSON"))
    summary = "Colours one band: an explicit colormap, a named colormap or a colour ramp."

    def check(self, args: dict[str, Any]) -> None:
        given = [k for k in ("Colormap", "ColormapName", "ColorRamp") if k in args]
        if len(given) != 1:
            raise ArgError("give exactly one of Colormap, ColormapName or ColorRamp"
                           + (f" (not {' and '.join(given)})" if given else ""))
        if "ColormapName" in args:
            args["ColormapName"] = colormap_name(args["ColormapName"])

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> RasterValue:
        source = rule.arguments["Raster"]
        raster = ctx.raster(source)
        band = raster.data.data[0].astype(np.float64)
        mask = np.ma.getmaskarray(raster.data)[0]
        args = rule.arguments
        if "Colormap" in args:
            rgb, missing = args["Colormap"].lookup(band)
            mask = mask | missing
        elif "ColorRamp" in args:
            rgb = args["ColorRamp"].at(ramp_position(ctx, raster.pixel_type, band, source))
        elif args["ColormapName"] == "Random":
            rgb = random_colors(band)
        else:
            index = np.clip(np.rint(np.nan_to_num(band)), 0, 255).astype(np.intp)
            rgb = np.moveaxis(NAMED_COLORMAPS[args["ColormapName"]][index], -1, 0)
        return finish(raster.grid, rgb, mask, "U8", RGB_NAMES, nodata=None)

    def describe(self, rule: RenderingRule, source: Callable[[Any], Signature]) -> Signature:
        return Signature(3, "U8", RGB_NAMES)


class ColormapToRGB(Function):
    name = "ColormapToRGB"
    args = (Arg("Raster", Raster()),)
    summary = "A single band with a colour table (or Colormap's output) as 3-band RGB."

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> RasterValue:
        raster = ctx.raster(rule.arguments["Raster"])
        if raster.data.shape[0] >= 3:
            return finish(raster.grid, raster.data.data[:3], np.ma.getmaskarray(raster.data)[:3], "U8", RGB_NAMES,
                          nodata=None)
        table = ctx.colortable()
        if not table:
            raise fail(rule, "Raster", "has no colour table: ColormapToRGB converts a paletted band "
                                       "or the output of Colormap")
        keys = sorted(table)
        colormap = ColormapKind().parse([[k, *table[k][:3]] for k in keys])
        rgb, missing = colormap.lookup(raster.data.data[0].astype(np.float64))
        return finish(raster.grid, rgb, np.ma.getmaskarray(raster.data)[0] | missing, "U8", RGB_NAMES, nodata=None)

    def describe(self, rule: RenderingRule, source: Callable[[Any], Signature]) -> Signature:
        return Signature(3, "U8", RGB_NAMES)


def legend_colors(rule: RenderingRule) -> tuple[str, Any] | None:
    """What a Colormap rule's legend shows: ("unique", [(value, rgb), ...]) for an explicit
    colormap, ("ramp", Ramp) for a ramp or a named colormap; None for another function."""
    if rule.function != "Colormap":
        return None
    args = rule.arguments
    if "Colormap" in args:
        cm = args["Colormap"]
        return "unique", list(zip(cm.values, cm.colors))
    if "ColorRamp" in args:
        return "ramp", args["ColorRamp"]
    name = args["ColormapName"]
    palette = random_colors(np.arange(0, 256, 32)).T if name == "Random" else NAMED_COLORMAPS[name][::17]
    return "ramp", Ramp.even(palette)


register(ColormapFunction())
register(ColormapToRGB())
