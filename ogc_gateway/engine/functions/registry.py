"""The registry of raster functions, keyed by lower-cased ArcGIS function name.

A function is an object with `name`, `apply(rule, ctx) -> Raster` and
`describe(rule, bands, pixel_type) -> (bands, pixel_type)` (what the root JSON reports for a rule).
Each family lives in its own module and registers itself here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Protocol

import numpy as np

from ..catalog import BandStats
from ..errors import InvalidParameter
from ..requests import PIXEL_TYPES, SUB_BYTE_MAX, Raster, RenderingRule, representable


@dataclass
class FunctionContext:
    """What a function may ask of the engine: the mosaic ($$), one item ($<oid>), service stats."""

    mosaic: Callable[[], Raster]
    item: Callable[[int], Raster]
    stats: tuple[BandStats, ...]
    _cache: dict = field(default_factory=dict)

    def raster(self, value: Any) -> Raster:
        """Resolve a raster argument: absent or "$$" is the mosaic, "$3" item 3, a rule its result."""
        if value is None or value == "$$":
            if "$$" not in self._cache:
                self._cache["$$"] = self.mosaic()
            return self._cache["$$"]
        if isinstance(value, RenderingRule):
            return apply(value, self)
        if isinstance(value, str) and value.startswith("$") and value[1:].isdigit():
            return self.item(int(value[1:]))
        raise InvalidParameter("renderingRule", f"{str(value)[:60]!r} is not a raster "
                                                "(use \"$$\", \"$<rasterId>\" or a raster function)")


class RasterFunction(Protocol):
    name: str

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> Raster: ...

    def describe(self, rule: RenderingRule, bands: int, pixel_type: str) -> tuple[int, str]: ...


FUNCTIONS: dict[str, RasterFunction] = {}


def register(fn: RasterFunction) -> RasterFunction:
    FUNCTIONS[fn.name.lower()] = fn
    return fn


def apply(rule: RenderingRule, ctx: FunctionContext) -> Raster:
    """Run one rule (and, through its arguments, its inputs); cast to outputPixelType if given."""
    out = FUNCTIONS[rule.function.lower()].apply(rule, ctx)
    return cast(out, rule.output_pixel_type) if rule.output_pixel_type else out


def describe(rule: RenderingRule, bands: int, pixel_type: str) -> tuple[int, str]:
    """Band count and pixel type a rule produces from a service of `bands` x `pixel_type`."""
    out = FUNCTIONS[rule.function.lower()].describe(rule, bands, pixel_type)
    return (out[0], rule.output_pixel_type) if rule.output_pixel_type else out


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
