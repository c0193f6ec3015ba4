"""Cell-by-cell maths over rasters and constants: Arithmetic, Local (ArcGIS's operation codes), Con
and SetNull.

Inputs are read on the same grid; a one-band input is used with every band of a multiband one.
A cell is nodata where any input is, except for the "ignore NoData" statistics (codes 66-75, 94),
which use the inputs that have a value, and IsNull, which is 1 exactly there. Results are F32
(F64 when an input is F64); comparisons and boolean operations give 0 or 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import numpy as np

from ..requests import Grid, RenderingRule
from ..requests import Raster as RasterValue
from .registry import Function, FunctionContext, Signature, fail, finish, register
from .schema import Arg, ArgError, Boolean, Choice, Number, RasterOrNumber, Rasters


def mode(values: np.ndarray, minority: bool = False) -> np.ndarray:
    """The most (or least) frequent value along the last axis, NaN ignored (ties: the smallest);
    NaN where a row has no value."""
    rows = values.reshape(-1, values.shape[-1])
    s = np.sort(rows, axis=1)                                      # NaN last
    n, k = s.shape
    starts = np.ones_like(s, dtype=bool)
    starts[:, 1:] = s[:, 1:] != s[:, :-1]
    run = np.cumsum(starts, axis=1) - 1 + (np.arange(n) * k)[:, None]
    counts = np.bincount(run.ravel(), minlength=n * k)[run]
    nan = np.isnan(s)
    if minority:
        pick = np.where(nan, k + 1, counts).argmin(axis=1)
    else:
        pick = np.where(nan, -1, counts).argmax(axis=1)
    out: np.ndarray = s[np.arange(n), pick].reshape(values.shape[:-1])
    return out


def _variety(stack: np.ndarray) -> np.ndarray:
    s = np.sort(np.moveaxis(stack, 0, -1), axis=-1)
    distinct = np.concatenate([~np.isnan(s[..., :1]), (s[..., 1:] != s[..., :-1]) & ~np.isnan(s[..., 1:])], axis=-1)
    count: np.ndarray = distinct.sum(axis=-1).astype(np.float64)
    return count


def _as_int(x: np.ndarray) -> np.ndarray:
    whole: np.ndarray = np.nan_to_num(np.trunc(x)).astype(np.int64)
    return whole


_UNARY: dict[int, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    4: ("Sqrt", np.sqrt), 6: ("Acos", np.arccos), 7: ("Asin", np.arcsin), 8: ("Atan", np.arctan),
    9: ("ATanH", np.arctanh), 10: ("Abs", np.abs), 13: ("BitwiseNot", lambda a: ~_as_int(a)),
    18: ("BooleanNot", lambda a: a == 0), 21: ("Cos", np.cos), 22: ("CosH", np.cosh), 25: ("Exp", np.exp),
    26: ("Exp10", lambda a: np.power(10.0, a)), 27: ("Exp2", np.exp2), 30: ("Int", np.trunc),
    32: ("Float", lambda a: a), 35: ("Ln", np.log), 36: ("Log10", np.log10), 37: ("Log2", np.log2),
    45: ("Negate", np.negative), 48: ("RoundDown", np.floor), 49: ("RoundUp", np.ceil), 51: ("Sin", np.sin),
    52: ("SinH", np.sinh), 53: ("Square", np.square), 56: ("Tan", np.tan), 57: ("TanH", np.tanh),
    59: ("ACosH", np.arccosh), 60: ("ASinH", np.arcsinh),
}
_BINARY: dict[int, tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    1: ("Plus", np.add), 2: ("Minus", np.subtract), 3: ("Times", np.multiply), 5: ("Power", np.power),
    11: ("BitwiseAnd", lambda a, b: _as_int(a) & _as_int(b)),
    12: ("BitwiseLeftShift", lambda a, b: np.left_shift(_as_int(a), np.clip(_as_int(b), 0, 63))),
    14: ("BitwiseOr", lambda a, b: _as_int(a) | _as_int(b)),
    15: ("BitwiseRightShift", lambda a, b: np.right_shift(_as_int(a), np.clip(_as_int(b), 0, 63))),
    16: ("BitwiseXOr", lambda a, b: _as_int(a) ^ _as_int(b)),
    17: ("BooleanAnd", lambda a, b: (a != 0) & (b != 0)), 19: ("BooleanOr", lambda a, b: (a != 0) | (b != 0)),
    20: ("BooleanXOr", lambda a, b: (a != 0) ^ (b != 0)), 23: ("Divide", np.divide),
    24: ("EqualTo", np.equal), 28: ("GreaterThan", np.greater), 29: ("GreaterThanEqual", np.greater_equal),
    33: ("LessThan", np.less), 34: ("LessThanEqual", np.less_equal), 44: ("Mod", np.fmod),
    46: ("NotEqual", np.not_equal), 61: ("ATan2", np.arctan2), 64: ("FloatDivide", np.divide),
    65: ("FloorDivide", np.floor_divide),
}
# statistics over all inputs: code -> (name, reduction over axis 0 of a stack with NaN for nodata)
_STATS: dict[int, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    38: ("Majority", lambda s: mode(np.moveaxis(s, 0, -1))),
    39: ("Max", lambda s: np.nanmax(s, axis=0)), 40: ("Mean", lambda s: np.nanmean(s, axis=0)),
    41: ("Median", lambda s: np.nanmedian(s, axis=0)), 42: ("Min", lambda s: np.nanmin(s, axis=0)),
    43: ("Minority", lambda s: mode(np.moveaxis(s, 0, -1), minority=True)),
    47: ("Range", lambda s: np.nanmax(s, axis=0) - np.nanmin(s, axis=0)),
    54: ("Std", lambda s: np.nanstd(s, axis=0)), 55: ("Sum", lambda s: np.nansum(s, axis=0)),
    58: ("Variety", _variety),
}
_PERCENTILE_METHODS: dict[int, Literal["nearest", "linear"]] = {1: "nearest", 2: "linear"}
_IGNORING = {66: 38, 67: 39, 68: 40, 69: 41, 70: 42, 71: 43, 72: 47, 73: 54, 74: 55, 75: 58}
ISNULL, SETNULL, CON, PICK, PERCENTILE, PERCENTILE_IGNORING = 31, 50, 78, 84, 93, 94

OPERATIONS = {c: n for c, (n, _) in (_UNARY | _BINARY | _STATS).items()}
OPERATIONS |= {c: f"{OPERATIONS[s]}IgnoreNoData" for c, s in _IGNORING.items()}
OPERATIONS |= {ISNULL: "IsNull", SETNULL: "SetNull", CON: "Con", PICK: "Pick", PERCENTILE: "Percentile",
               PERCENTILE_IGNORING: "PercentileIgnoreNoData"}
OPERATIONS = dict(sorted(OPERATIONS.items()))


def arity(op: int) -> tuple[int, int]:
    """How many inputs an operation takes (at least, at most)."""
    if op in _UNARY or op == ISNULL:
        return 1, 1
    if op in _BINARY or op == SETNULL:
        return 2, 2
    if op == CON:
        return 2, 3
    if op == PICK:
        return 2, 32
    return 1, 32


def _inputs(rule: RenderingRule, ctx: FunctionContext, values: Sequence[Any]
            ) -> tuple[list[np.ndarray], list[np.ndarray], Grid, list[str]]:
    """(bands, rows, cols) float values and masks of each input (constants as one band), the grid,
    and the inputs' pixel types."""
    rasters = [ctx.raster(v) for v in values if not isinstance(v, (int, float))]
    grid = rasters[0].grid if rasters else ctx.target
    shape = (grid.height, grid.width)
    data, masks, types, k = [], [], [], 0
    for v in values:
        if isinstance(v, (int, float)):
            data.append(np.full((1,) + shape, float(v)))
            masks.append(np.zeros((1,) + shape, bool))
            types.append("F32")
        else:
            r = rasters[k]
            k += 1
            data.append(r.data.data.astype(np.float64))
            masks.append(np.ma.getmaskarray(r.data))
            types.append(r.pixel_type)
    bands = {d.shape[0] for d in data} - {1}
    if len(bands) > 1:
        raise fail(rule, "Rasters", f"mixes inputs of {', '.join(str(b) for b in sorted(bands))} bands "
                                    "(give inputs of one band count, or one band)")
    n = bands.pop() if bands else 1
    data = [np.broadcast_to(d, (n,) + shape) for d in data]
    masks = [np.broadcast_to(m, (n,) + shape) for m in masks]
    return data, masks, grid, types


def _out_type(types: Iterable[str]) -> str:
    return "F64" if "F64" in types else "F32"


def compute(rule: RenderingRule, op: int, data: list[np.ndarray], masks: list[np.ndarray], options: dict[str, Any]
            ) -> tuple[np.ndarray, np.ndarray]:
    """Values and nodata mask of operation `op` over the inputs."""
    any_missing = np.logical_or.reduce(masks)
    with np.errstate(all="ignore"):
        if op in _UNARY:
            return np.asarray(_UNARY[op][1](data[0]), dtype=np.float64), any_missing
        if op in _BINARY:
            return np.asarray(_BINARY[op][1](data[0], data[1]), dtype=np.float64), any_missing
        if op == ISNULL:
            return masks[0].astype(np.float64), np.zeros_like(masks[0])
        if op == CON:
            cond = data[0] != 0
            false = data[2] if len(data) > 2 else np.full_like(data[0], np.nan)
            false_mask = masks[2] if len(data) > 2 else np.ones_like(masks[0])
            values = np.where(cond, data[1], false)
            return values, masks[0] | np.where(cond, masks[1], false_mask)
        if op == SETNULL:
            return data[1], masks[0] | masks[1] | (data[0] != 0)
        if op == PICK:
            position = np.rint(data[0]).astype(np.int64)
            choices = np.stack(data[1:])
            choice_masks = np.stack(masks[1:])
            valid = (position >= 1) & (position <= len(data) - 1)
            index = np.clip(position - 1, 0, len(data) - 2)[np.newaxis]
            values = np.take_along_axis(choices, index, axis=0)[0]
            picked_mask = np.take_along_axis(choice_masks, index, axis=0)[0]
            return values, masks[0] | ~valid | picked_mask
        ignoring = op in _IGNORING or op == PERCENTILE_IGNORING
        stack = np.stack([np.where(m, np.nan, d) for d, m in zip(data, masks)])
        mask = np.logical_and.reduce(masks) if ignoring else any_missing
        if op in (PERCENTILE, PERCENTILE_IGNORING):
            method: Literal["nearest", "linear"] = _PERCENTILE_METHODS.get(options["PercentileInterpolationType"]) or (
                "nearest" if options["integers"] else "linear")
            values = np.nanpercentile(stack, options["PercentileValue"], axis=0, method=method)
        else:
            values = _STATS[_IGNORING.get(op, op)][1](stack)
        return np.asarray(values, dtype=np.float64), mask


class Local(Function):
    name = "Local"
    variable = "Rasters"
    args: tuple[Arg, ...] = (Arg("Rasters", Rasters()),
            Arg("Operation", Choice(OPERATIONS), 1),
            Arg("ExtentType", Choice({0: "FirstOf", 1: "IntersectionOf", 2: "UnionOf", 3: "LastOf"}), 0,
                doc="accepted; every input is read on the request's grid"),
            Arg("CellsizeType", Choice({0: "FirstOf", 1: "MinOf", 2: "MaxOf", 3: "MeanOf", 4: "LastOf"}), 0,
                doc="accepted; every input is read on the request's grid"),
            Arg("ProcessAsMultiband", Boolean(), True, doc="accepted; bands are always processed one by one"),
            Arg("PercentileValue", Number(0, 100), 90.0),
            Arg("PercentileInterpolationType", Choice({0: "AutoDetect", 1: "Nearest", 2: "Linear"}), 0))
    summary = "Cell-by-cell maths and statistics over rasters and constants (ArcGIS operation codes)."

    def operation(self, args: dict[str, Any]) -> int:
        op: int = args["Operation"]
        return op

    def rasters(self, args: dict[str, Any]) -> tuple[Any, ...]:
        rasters: tuple[Any, ...] = args["Rasters"]
        return rasters

    def check(self, args: dict[str, Any]) -> None:
        lo, hi = arity(self.operation(args))
        n = len(self.rasters(args))
        if not lo <= n <= hi:
            want = f"{lo}" if lo == hi else f"{lo} to {hi}"
            raise ArgError(f"Rasters: {OPERATIONS[self.operation(args)]} takes {want} inputs, not {n}")

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> RasterValue:
        args = rule.arguments
        data, masks, grid, types = _inputs(rule, ctx, self.rasters(args))
        options = {"PercentileValue": args.get("PercentileValue", 90.0),
                   "PercentileInterpolationType": args.get("PercentileInterpolationType", 0),
                   "integers": all(t[0] in "US" for t in types)}
        values, mask = compute(rule, self.operation(args), data, masks, options)
        return finish(grid, values, mask, _out_type(types))

    def describe(self, rule: RenderingRule, source: Callable[[Any], Signature]) -> Signature:
        parts = [source(v) for v in self.rasters(rule.arguments)]
        bands = {p.bands for p in parts} - {1}
        if len(bands) > 1:
            raise fail(rule, "Rasters", f"mixes inputs of {', '.join(str(b) for b in sorted(bands))} bands")
        return Signature(bands.pop() if bands else 1, _out_type([p.pixel_type for p in parts]))


class Arithmetic(Local):
    name = "Arithmetic"
    variable = "Raster"
    _OPS = {1: 1, 2: 2, 3: 3, 4: 23, 5: 5, 6: 44}
    args = (Arg("Raster", RasterOrNumber()),
            Arg("Raster2", RasterOrNumber(), aliases=("Raster1",)),
            Arg("Operation", Choice({1: "Plus", 2: "Minus", 3: "Multiply", 4: "Divide", 5: "Power", 6: "Mode"},
                                    {"Mod": 6, "Times": 3}), 1),
            Local.args[2], Local.args[3])
    summary = "Raster (op) Raster2: Plus, Minus, Multiply, Divide, Power, Mode (remainder)."

    def operation(self, args: dict[str, Any]) -> int:
        return self._OPS[args["Operation"]]

    def rasters(self, args: dict[str, Any]) -> tuple[Any, ...]:
        return (args["Raster"], args["Raster2"])

    def check(self, args: dict[str, Any]) -> None:
        if "Raster2" not in args:
            raise ArgError("Raster2 is required (a raster or a number)")


class _Conditional(Local):
    """Con and SetNull: one of Local's operations under its own name."""

    op = CON

    def operation(self, args: dict[str, Any]) -> int:
        return self.op


class Con(_Conditional):
    name, op = "Con", CON
    args = (Arg("Rasters", Rasters(min_length=2, max_length=3), doc="[condition, true value, false value]"),
            Local.args[2], Local.args[3])
    summary = "Where the first input is non-zero the second, elsewhere the third (or nodata)."


class SetNull(_Conditional):
    name, op = "SetNull", SETNULL
    args = (Arg("Rasters", Rasters(min_length=2, max_length=2), doc="[condition, false value]"),
            Local.args[2], Local.args[3])
    summary = "Nodata where the first input is non-zero, elsewhere the second."


for _fn in (Local(), Arithmetic(), Con(), SetNull()):
    register(_fn)
