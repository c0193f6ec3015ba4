"""Functions about the grid rather than the values: Resample and Geometric.

Resample sets how its input is read into the request's grid (ResamplingType) and, with an
OutputCellsize coarser than the request's cells (in the service's CRS units, when the request is
in that CRS), reads the input at that cell size on a grid aligned with the CRS's origin and draws
each request cell from the coarse cell holding its centre.
Geometric is a pass-through: every raster here is already read onto the request's grid; its
orthorectification arguments are accepted and change nothing.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from ..requests import Grid, RenderingRule
from ..requests import Raster as RasterValue
from .registry import Function, FunctionContext, finish, register
from .schema import Anything, Arg, ArgError, Boolean, Choice, Kind, Number, Raster, short

RESAMPLING = {0: "NearestNeighbor", 1: "Bilinear", 2: "Cubic", 3: "Majority", 4: "BilinearInterpolationPlus",
              5: "BilinearGaussBlur", 6: "BilinearGaussBlurPlus", 7: "Average", 8: "Minimum", 9: "Maximum",
              10: "VectorAverage"}
# the reader's kernels; the "plus" and blur variants of bilinear read as bilinear
_READER = {0: "nearest", 1: "bilinear", 2: "cubic", 3: "mode", 4: "bilinear", 5: "bilinear", 6: "bilinear"}


class CellSize(Kind):
    """{"x": .., "y": ..} or one number for both."""

    what = "a cell size {\"x\": .., \"y\": ..} or a number"

    def parse(self, value: Any) -> Any:
        if isinstance(value, dict):
            x, y = value.get("x"), value.get("y", value.get("x"))
        else:
            x = y = value
        try:
            return (Number(above=0).parse(x), Number(above=0).parse(y))
        except ArgError:
            raise ArgError(f"must be {self.what} with positive sizes, not {short(value)}")


class Resample(Function):
    name = "Resample"
    args = (Arg("Raster", Raster()),
            Arg("ResamplingType", Choice(RESAMPLING, {"Nearest": 0, "Majority": 3}), 0),
            Arg("InputCellsize", CellSize(), aliases=("InputCellSize",),
                doc="accepted; the reader picks the overview for the output cell size"),
            Arg("OutputCellsize", CellSize(), aliases=("OutputCellSize",)))
    summary = "Reads its input with another resampling (and at a coarser cell size)."

    def check(self, args: dict[str, Any]) -> None:
        if args["ResamplingType"] not in _READER:
            raise ArgError(f"ResamplingType {args['ResamplingType']} ({RESAMPLING[args['ResamplingType']]}) "
                           "is not supported (0 NearestNeighbor to 6 BilinearGaussBlurPlus)")

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> RasterValue:
        args = rule.arguments
        inner = replace(ctx, resampling=_READER[args["ResamplingType"]])
        cells = args.get("OutputCellsize")
        target = ctx.target
        rx, ry = target.res
        if not cells or target.crs != ctx.service_crs or (cells[0] <= rx * 1.0001 and cells[1] <= ry * 1.0001):
            return inner.raster(args["Raster"])
        sx, sy = max(cells[0], rx), max(cells[1], ry)
        xmin, ymin, xmax, ymax = target.bounds
        x0, x1 = math.floor(xmin / sx) * sx, math.ceil(xmax / sx) * sx
        y0, y1 = math.floor(ymin / sy) * sy, math.ceil(ymax / sy) * sy
        coarse_grid = Grid(target.crs, (x0, y0, x1, y1), max(1, round((x1 - x0) / sx)), max(1, round((y1 - y0) / sy)))
        coarse = inner.on_grid(coarse_grid).raster(args["Raster"])
        cols = np.clip(((xmin + (np.arange(target.width) + 0.5) * rx) - x0) // sx, 0, coarse_grid.width - 1)
        rows = np.clip((y1 - (ymax - (np.arange(target.height) + 0.5) * ry)) // sy, 0, coarse_grid.height - 1)
        pick = np.ix_(rows.astype(np.intp), cols.astype(np.intp))
        data, mask = coarse.data.data[(slice(None),) + pick], np.ma.getmaskarray(coarse.data)[(slice(None),) + pick]
        return finish(target, data, mask, coarse.pixel_type, coarse.band_names, nodata=coarse.nodata)


class Geometric(Function):
    name = "Geometric"
    args = (Arg("Raster", Raster()),
            Arg("GeodataTransforms", Anything()), Arg("AppendGeodataXform", Boolean()),
            Arg("ZFactor", Number()), Arg("ZOffset", Number()), Arg("ConstantZ", Number()),
            Arg("CorrectGeoid", Boolean()), Arg("Tolerance", Number(lo=0)), Arg("DEM", Raster()))
    summary = "Pass-through: rasters are already on the request's grid."

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> RasterValue:
        return ctx.raster(rule.arguments["Raster"])


register(Resample())
register(Geometric())
