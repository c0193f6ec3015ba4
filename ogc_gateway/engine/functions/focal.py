"""Neighbourhood filters: Convolution (predefined or user kernels) and Statistics (focal min, max,
mean, standard deviation, median, majority, minority).

Both read their input grown by half the kernel, so tiles and image edges have no seams. The kernel
is laid over the cells as written, first row north (a correlation). Convolution, like the terrain
functions, gives a nodata neighbour the centre cell's value; Statistics uses the neighbours that
hold data (and, with FillNoDataOnly, fills only the nodata cells, keeping the others).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import deadline
from ..requests import Raster as RasterValue
from ..requests import RenderingRule
from .local import mode
from .registry import Function, FunctionContext, Signature, finish, register
from .schema import Arg, ArgError, Boolean, Choice, Number, Numbers, Raster

MAX_KERNEL = 25
_CHUNK = 2_000_000          # window values reduced at once (bounds memory for large kernels)

_Q = -0.25
KERNELS: dict[int, tuple[str, tuple[tuple[float, ...], ...]]] = {
    0: ("LineDetectionHorizontal", ((-1, -1, -1), (2, 2, 2), (-1, -1, -1))),
    1: ("LineDetectionVertical", ((-1, 2, -1), (-1, 2, -1), (-1, 2, -1))),
    2: ("LineDetectionLeftDiagonal", ((2, -1, -1), (-1, 2, -1), (-1, -1, 2))),
    3: ("LineDetectionRightDiagonal", ((-1, -1, 2), (-1, 2, -1), (2, -1, -1))),
    4: ("GradientNorth", ((-1, -2, -1), (0, 0, 0), (1, 2, 1))),
    5: ("GradientWest", ((-1, 0, 1), (-2, 0, 2), (-1, 0, 1))),
    6: ("GradientEast", ((1, 0, -1), (2, 0, -2), (1, 0, -1))),
    7: ("GradientSouth", ((1, 2, 1), (0, 0, 0), (-1, -2, -1))),
    8: ("GradientNorthEast", ((0, -1, -2), (1, 0, -1), (2, 1, 0))),
    9: ("GradientNorthWest", ((-2, -1, 0), (-1, 0, 1), (0, 1, 2))),
    10: ("SmoothArithmeticMean", ((1 / 9,) * 3,) * 3),
    11: ("Smoothing3x3", tuple(tuple(v / 16 for v in row) for row in ((1, 2, 1), (2, 4, 2), (1, 2, 1)))),
    12: ("Smoothing5x5", tuple(tuple(v / 60 for v in row) for row in (
        (1, 1, 1, 1, 1), (1, 4, 4, 4, 1), (1, 4, 12, 4, 1), (1, 4, 4, 4, 1), (1, 1, 1, 1, 1)))),
    13: ("Sharpening3x3", ((-1, -1, -1), (-1, 9, -1), (-1, -1, -1))),
    14: ("Sharpening5x5", ((-1, -3, -4, -3, -1), (-3, 0, 6, 0, -3), (-4, 6, 21, 6, -4), (-3, 0, 6, 0, -3),
                           (-1, -3, -4, -3, -1))),
    15: ("Laplacian3x3", ((0, -1, 0), (-1, 4, -1), (0, -1, 0))),
    16: ("Laplacian5x5", ((0, 0, -1, 0, 0), (0, -1, -2, -1, 0), (-1, -2, 17, -2, -1), (0, -1, -2, -1, 0),
                          (0, 0, -1, 0, 0))),
    17: ("SobelHorizontal", ((-1, -2, -1), (0, 0, 0), (1, 2, 1))),
    18: ("SobelVertical", ((-1, 0, 1), (-2, 0, 2), (-1, 0, 1))),
    19: ("Sharpen", ((0, _Q, 0), (_Q, 2, _Q), (0, _Q, 0))),
    20: ("Sharpen2", ((_Q, _Q, _Q), (_Q, 3, _Q), (_Q, _Q, _Q))),
    21: ("PointSpread", ((-0.627, 0.352, -0.627), (0.352, 2.923, 0.352), (-0.627, 0.352, -0.627))),
}
USER = -1
_SIZE = Number(1, MAX_KERNEL, integer=True)


def _odd(args: dict[str, Any], *keys: str) -> None:
    for key in keys:
        if key in args and args[key] % 2 == 0:
            raise ArgError(f"{key} must be odd (the kernel is centred on the cell), not {args[key]}")


class Convolution(Function):
    name = "Convolution"
    args = (Arg("Raster", Raster()),
            Arg("Type", Choice({USER: "UserDefined", **{c: k[0] for c, k in KERNELS.items()}}), USER),
            Arg("Columns", _SIZE), Arg("Rows", _SIZE),
            Arg("Kernel", Numbers(min_length=1, max_length=MAX_KERNEL ** 2), doc="row-major weights"))
    summary = "Weighted sum over a kernel (smoothing, sharpening, edges, or your own kernel)."

    def check(self, args: dict[str, Any]) -> None:
        if args["Type"] != USER:
            return
        kernel = args.get("Kernel")
        if kernel is None:
            raise ArgError("Kernel is required with Type -1 (UserDefined); or give a predefined Type 0..21")
        side = int(round(len(kernel) ** 0.5))
        columns = args.setdefault("Columns", side if "Rows" not in args else len(kernel) // args["Rows"])
        rows = args.setdefault("Rows", len(kernel) // columns if columns else 0)
        if columns * rows != len(kernel):
            raise ArgError(f"Kernel holds {len(kernel)} weights, not Columns x Rows = {columns} x {rows}")
        _odd(args, "Columns", "Rows")

    @staticmethod
    def kernel(args: dict[str, Any]) -> np.ndarray:
        if args["Type"] == USER:
            return np.array(args["Kernel"], dtype=np.float64).reshape(args["Rows"], args["Columns"])
        return np.array(KERNELS[args["Type"]][1], dtype=np.float64)

    def reach(self, rule: RenderingRule) -> int:
        """Cells of neighbours read around each output cell."""
        return int(max(self.kernel(rule.arguments).shape) // 2)

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> RasterValue:
        kernel = self.kernel(rule.arguments)
        extra = self.reach(rule)
        raster = ctx.raster(rule.arguments["Raster"], extra=extra)
        kr, kc = kernel.shape[0] // 2, kernel.shape[1] // 2
        data = raster.data.data.astype(np.float64)
        invalid = np.ma.getmaskarray(raster.data)
        rows, cols = data.shape[1] - 2 * extra, data.shape[2] - 2 * extra
        centre = data[:, extra:extra + rows, extra:extra + cols]
        centre_invalid = invalid[:, extra:extra + rows, extra:extra + cols]
        out = np.zeros_like(centre)
        for (u, v), weight in np.ndenumerate(kernel):
            if weight == 0:
                continue
            r0, c0 = extra - kr + u, extra - kc + v
            window = data[:, r0:r0 + rows, c0:c0 + cols]
            hole = invalid[:, r0:r0 + rows, c0:c0 + cols]
            out += weight * np.where(hole, centre, window)
        return finish(ctx.target, out, centre_invalid, "F32", raster.band_names)

    def describe(self, rule: RenderingRule, source: Callable[[Any], Signature]) -> Signature:
        inner = source(rule.arguments["Raster"])
        return Signature(inner.bands, "F32", inner.names)


STAT_TYPES = {1: "Min", 2: "Max", 3: "Mean", 4: "StandardDeviation", 5: "Median", 6: "Majority", 7: "Minority"}
_REDUCE = {
    1: lambda w: np.nanmin(w, axis=-1), 2: lambda w: np.nanmax(w, axis=-1), 3: lambda w: np.nanmean(w, axis=-1),
    4: lambda w: np.nanstd(w, axis=-1), 5: lambda w: np.nanmedian(w, axis=-1),
    6: lambda w: mode(w), 7: lambda w: mode(w, minority=True),
}


def focal(values: np.ndarray, kr: int, kc: int, reduce: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """`reduce` over each cell's (2kr+1) x (2kc+1) window of a 2-D array padded by (kr, kc), NaN
    for nodata; in row blocks, so large kernels stay within memory."""
    windows = sliding_window_view(values, (2 * kr + 1, 2 * kc + 1))
    rows, cols = windows.shape[:2]
    step = max(1, _CHUNK // max(1, cols * windows.shape[2] * windows.shape[3]))
    out = np.empty((rows, cols))
    with np.errstate(all="ignore"):
        for r in range(0, rows, step):
            deadline.check()                # a large kernel over a large grid: stop when over budget
            block = windows[r:r + step].reshape(min(step, rows - r), cols, -1)
            all_nan = np.isnan(block).all(axis=-1)
            block = np.where(all_nan[..., None], 0.0, block)        # no warnings from empty windows
            out[r:r + step] = np.where(all_nan, np.nan, reduce(block))
    return out


class Statistics(Function):
    name = "Statistics"
    args = (Arg("Raster", Raster()),
            Arg("KernelColumns", _SIZE, 3, aliases=("Columns",)),
            Arg("KernelRows", _SIZE, 3, aliases=("Rows",)),
            Arg("Type", Choice(STAT_TYPES, {"Minimum": 1, "Maximum": 2, "StdDev": 4, "Std": 4}), 3),
            Arg("FillNoDataOnly", Boolean(), False, doc="fill nodata cells only; others keep their value"))
    summary = "Focal statistics of each cell's neighbourhood."

    def check(self, args: dict[str, Any]) -> None:
        _odd(args, "KernelColumns", "KernelRows")

    def reach(self, rule: RenderingRule) -> int:
        """Cells of neighbours read around each output cell."""
        return int(max(rule.arguments["KernelColumns"], rule.arguments["KernelRows"]) // 2)

    def _pixel_type(self, rule: RenderingRule, pixel_type: str) -> str:
        return "F32" if rule.arguments["Type"] in (3, 4) else pixel_type

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> RasterValue:
        args = rule.arguments
        extra = self.reach(rule)
        kr, kc = args["KernelRows"] // 2, args["KernelColumns"] // 2
        raster = ctx.raster(args["Raster"], extra=extra)
        data = raster.data.data.astype(np.float64)
        invalid = np.ma.getmaskarray(raster.data)
        rows, cols = data.shape[1] - 2 * extra, data.shape[2] - 2 * extra
        out, mask = [], []
        for b in range(data.shape[0]):
            padded = np.where(invalid[b], np.nan, data[b])[extra - kr:extra + rows + kr, extra - kc:extra + cols + kc]
            stat = focal(padded, kr, kc, _REDUCE[args["Type"]])
            centre = data[b, extra:extra + rows, extra:extra + cols]
            hole = invalid[b, extra:extra + rows, extra:extra + cols]
            if args["FillNoDataOnly"]:
                out.append(np.where(hole, stat, centre))
                mask.append(hole & np.isnan(stat))
            else:
                out.append(stat)
                mask.append(hole | np.isnan(stat))
        pixel_type = self._pixel_type(rule, raster.pixel_type)
        nodata = raster.nodata if pixel_type == raster.pixel_type else "auto"
        return finish(ctx.target, np.stack(out), np.stack(mask), pixel_type, raster.band_names, nodata=nodata)

    def describe(self, rule: RenderingRule, source: Callable[[Any], Signature]) -> Signature:
        inner = source(rule.arguments["Raster"])
        pixel_type = self._pixel_type(rule, inner.pixel_type)
        return Signature(inner.bands, pixel_type, inner.names, inner.nodata if pixel_type == inner.pixel_type else "auto")


register(Convolution())
register(Statistics())
