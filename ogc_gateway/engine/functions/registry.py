"""The registry of raster functions (keyed by lower-cased ArcGIS name) and what they may ask of the
engine while running (FunctionContext).

A function is a `Function`: its name, its argument schema (schema.Arg), `apply(rule, ctx)` ->
Raster and `describe(rule, source)` -> Signature (what the root JSON reports for a rule, computed
before any pixel is read). Each family lives in its own module and registers itself here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import deadline
from ..errors import InvalidParameter
from ..requests import PIXEL_TYPES, SUB_BYTE_MAX, Grid, Raster, RenderingRule, representable, round_into
from .distribution import BandDistribution
from .schema import Arg

F32_NODATA = float(np.finfo(np.float32).min)     # ArcGIS's nodata of processed float rasters


@dataclass(frozen=True)
class Signature:
    """What a raster looks like before it is computed: band count, pixel type, band names."""

    bands: int
    pixel_type: str
    names: tuple[str, ...] | None = None
    nodata: Any = "auto"                 # as finish() takes it

    @property
    def nodata_value(self) -> float | None:
        return nodata_for(self.pixel_type, self.nodata)

    def band_names(self) -> tuple[str, ...]:
        return self.names if self.names and len(self.names) == self.bands else \
            tuple(f"Band_{i + 1}" for i in range(self.bands))


def grow(grid: Grid, cells: int) -> Grid:
    """The grid with `cells` more cells on each side (same resolution and alignment)."""
    if cells == 0:
        return grid
    rx, ry = grid.res
    xmin, ymin, xmax, ymax = grid.bounds
    return Grid(grid.crs, (xmin - cells * rx, ymin - cells * ry, xmax + cells * rx, ymax + cells * ry),
                grid.width + 2 * cells, grid.height + 2 * cells)


@dataclass
class FunctionContext:
    """What functions may ask of the engine while answering one request.

    Results cover the request's `grid` grown by `pad` cells on each side: a neighbourhood function
    asks for its input with `extra` cells more, so nested pads add up and every cell of the request
    sees real neighbours (no seams at tile or image edges). `read(oid, grid, resampling)` is the
    mosaic (oid None) or one catalog item on a grid; `distribution(value, shape)` the value
    distribution of a raster argument (statistics; with `shape`, percentiles too).
    """

    grid: Grid
    read: Callable[[int | None, Grid, str | None], Raster]
    distribution: Callable[[Any, bool], tuple[BandDistribution, ...]]
    service_crs: Any
    colortable: Callable[[], dict[int, tuple[int, int, int, int]] | None] = lambda: None   # value -> RGBA
    pad: int = 0
    resampling: str | None = None            # Resample's override of the request's resampling
    # rasters read for this request: (oid, bounds, width, height, resampling) -> raster
    cache: dict[tuple[int | None, tuple[float, float, float, float], int, int, str | None], Raster] = \
        field(default_factory=dict)

    @property
    def target(self) -> Grid:
        return grow(self.grid, self.pad)

    def raster(self, value: Any, extra: int = 0) -> Raster:
        """A raster argument ("$$" or absent: the mosaic; "$3": item 3; a rule: its result) on the
        target grid grown by `extra` cells."""
        pad = self.pad + extra
        if isinstance(value, RenderingRule):
            return apply(value, replace(self, pad=pad))
        oid = None if value in (None, "$$") else int(str(value)[1:])
        grid = grow(self.grid, pad)
        key = (oid, grid.bounds, grid.width, grid.height, self.resampling)
        if key not in self.cache:
            self.cache[key] = self.read(oid, grid, self.resampling)
        return self.cache[key]

    def core(self, array: np.ndarray) -> np.ndarray:
        """The part of a (..., rows, cols) array on the request's own grid (pads cut off)."""
        p = self.pad
        return array[..., p:array.shape[-2] - p, p:array.shape[-1] - p] if p else array

    def on_grid(self, grid: Grid) -> FunctionContext:
        """The same request, computed on another grid (Resample's output cell size)."""
        return replace(self, grid=grid, pad=0)


class Function:
    """Base of every raster function; subclasses set `name`, `args` and implement `apply`."""

    name = ""
    args: tuple[Arg, ...] = ()
    variable = "Raster"           # the argument the service's raster goes to by default
    summary = ""

    def check(self, args: dict[str, Any]) -> None:
        """Rules between arguments (raise schema.ArgError); `args` are validated and defaulted."""

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> Raster:
        raise NotImplementedError

    def describe(self, rule: RenderingRule, source: Callable[[Any], Signature]) -> Signature:
        return source(rule.arguments.get(self.variable))


FUNCTIONS: dict[str, Function] = {}


def register(fn: Function) -> Function:
    FUNCTIONS[fn.name.lower()] = fn
    return fn


def fail(rule: RenderingRule, arg: str, why: str) -> InvalidParameter:
    """The 400 error of a rule that turns out wrong while it runs (a band that does not exist)."""
    return InvalidParameter("rendering", f"{rule.function}: {arg} {why}")


def apply(rule: RenderingRule, ctx: FunctionContext) -> Raster:
    """Run one rule (and, through its arguments, its inputs); cast to outputPixelType if given."""
    deadline.check()
    out = FUNCTIONS[rule.function.lower()].apply(rule, ctx)
    return cast(out, rule.output_pixel_type) if rule.output_pixel_type else out


def signature(rule: RenderingRule | None, service: Signature) -> Signature:
    """What a rule produces from a service that looks like `service` (raises InvalidParameter for
    band references that cannot exist), without reading a pixel."""
    def source(value: Any) -> Signature:
        if isinstance(value, RenderingRule):
            return signature(value, service)
        if isinstance(value, (int, float)):
            return Signature(1, "F64")
        return service

    if rule is None:
        return service
    out = FUNCTIONS[rule.function.lower()].describe(rule, source)
    return replace(out, pixel_type=rule.output_pixel_type) if rule.output_pixel_type else out


def describe(rule: RenderingRule, bands: int, pixel_type: str) -> tuple[int, str]:
    """Band count and pixel type a rule produces from a service of `bands` x `pixel_type`."""
    out = signature(rule, Signature(bands, pixel_type))
    return out.bands, out.pixel_type


def is_raw(rule: RenderingRule | None) -> bool:
    """Whether a rule leaves the service's values as they are (none, or {"rasterFunction": "None"})."""
    return rule is None or (rule.function == "None" and rule.arguments.get("Raster", "$$") == "$$"
                            and rule.output_pixel_type is None)


def rule_key(rule: RenderingRule) -> str:
    """A canonical text of a parsed rule: equal rules, equal keys (for caches)."""
    def plain(value: Any) -> Any:
        if isinstance(value, RenderingRule):
            return {"f": value.function, "a": {k: plain(v) for k, v in sorted(value.arguments.items())},
                    "t": value.output_pixel_type}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, (str, int, float, bool)) or value is None:
            return value
        return getattr(value, "key", repr(value))
    return json.dumps(plain(rule), sort_keys=True, separators=(",", ":"))


def cast(raster: Raster, pixel_type: str) -> Raster:
    """Convert to an ArcGIS pixel type; values outside its range are clamped (truncated), not scaled."""
    dtype = np.dtype(PIXEL_TYPES[pixel_type])
    data = raster.data
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        hi = SUB_BYTE_MAX.get(pixel_type, info.max)
        filled = np.nan_to_num(data.data.astype(np.float64, copy=False), nan=0.0)
        values = np.clip(filled, info.min, hi).astype(dtype)
    else:
        values = data.data.astype(dtype)
    nodata = raster.nodata
    if nodata is not None and not representable(nodata, dtype, pixel_type):
        nodata = None
    return replace(raster, data=np.ma.MaskedArray(values, mask=np.ma.getmaskarray(data)),
                   pixel_type=pixel_type, nodata=nodata)


def finish(grid: Grid, values: np.ndarray, mask: npt.ArrayLike, pixel_type: str,
           names: tuple[str, ...] | None = None, nodata: Any = "auto") -> Raster:
    """A function's result on `grid`: (bands, rows, cols) `values` (any dtype; NaN and
    infinities become nodata) as `pixel_type`, integers rounded and clamped. `nodata` "auto" is
    F32_NODATA for float types and none (a mask) for integers."""
    values = np.asarray(values)
    if values.ndim == 2:
        values = values[np.newaxis]
    mask = np.broadcast_to(mask, values.shape)
    if values.dtype.kind == "f":
        mask = mask | ~np.isfinite(values)
        values = np.where(mask, 0, values)
    dtype = np.dtype(PIXEL_TYPES[pixel_type])
    if dtype.kind in "iu" and pixel_type in SUB_BYTE_MAX:
        values = np.clip(np.rint(values), 0, SUB_BYTE_MAX[pixel_type])
    out = round_into(values, dtype)
    nodata = nodata_for(pixel_type, nodata)
    names = names if names and len(names) == out.shape[0] else \
        tuple(f"Band_{i + 1}" for i in range(out.shape[0]))
    return Raster(np.ma.MaskedArray(out, mask=np.array(mask, dtype=bool)), grid, names, pixel_type, nodata)


def nodata_for(pixel_type: str, nodata: Any) -> float | None:
    """The nodata value a result of `pixel_type` carries: "auto" is F32_NODATA for float types and
    none (a mask) for integers; a given value only if the type holds it."""
    dtype = np.dtype(PIXEL_TYPES[pixel_type])
    if isinstance(nodata, str):
        nodata = F32_NODATA if dtype.kind == "f" else None
    if nodata is not None and not representable(nodata, dtype, pixel_type):
        return None
    given: float | None = nodata
    return given


def pixel_type_of_values(*types: str) -> str:
    """The ArcGIS type able to hold values of all `types` (S16 and U16 -> S32; any float -> F32 or F64)."""
    dtype = np.result_type(*[np.dtype(PIXEL_TYPES[t]) for t in types])
    if dtype.kind == "f":
        return "F64" if dtype.itemsize > 4 else "F32"
    for code, name in PIXEL_TYPES.items():
        if name == dtype.name and code not in SUB_BYTE_MAX:
            return code
    return "F64"
