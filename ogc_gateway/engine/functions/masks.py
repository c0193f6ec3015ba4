"""Functions that decide which cells hold data, or replace values by table: Mask, Remap, Clip.

Mask: a band's cell is a hit when its value is one of that band's NoDataValues or lies outside that
band's IncludedRanges pair; the cell becomes nodata in every band when any band with a rule hits
(NoDataInterpretation 0, MatchAny) or all of them do (1, MatchAll).
Remap: each InputRanges pair [from, to) (a single value when from = to) gives its OutputValues
entry, the first matching pair winning; NoDataRanges become nodata; unmatched cells keep their value
(AllowUnmatched, the default) or become nodata.
Clip: keeps the inside (ClipType 1) or the outside (2) of ClippingGeometry (polygon or envelope JSON,
in the service's CRS unless it carries a spatialReference), and nothing outside Extent; a cell is
inside when its centre is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from rasterio.crs import CRS
from rasterio.features import geometry_mask
from shapely.geometry.base import BaseGeometry

from .. import bounded
from ..errors import InvalidParameter
from ..esrijson import from_json
from ..geometry import to_crs
from ..requests import PIXEL_TYPES, Grid, RenderingRule, representable
from ..requests import Raster as RasterValue
from .registry import Function, FunctionContext, Signature, finish, register
from .schema import Arg, ArgError, Boolean, Choice, Kind, Numbers, Raster


class ValueLists(Kind):
    """Mask's NoDataValues: per band a string of space-separated values (or a number, or a list)."""

    what = "a list with, per band, a string of space-separated values"

    def parse(self, value: Any) -> Any:
        items = value if isinstance(value, list) else [value]
        if len(items) > 1024:
            raise ArgError("holds more than 1024 bands")
        out = []
        for k, item in enumerate(items):
            try:
                out.append(Numbers(max_length=10000).parse(item) if item not in ("", None) else ())
            except ArgError as exc:
                raise ArgError(f"band {k}: {exc}")
        return tuple(out)


class Pairs(Numbers):
    """A flat list of [from, to] pairs."""

    def __init__(self) -> None:
        super().__init__(max_length=20000)
        self.what = "a list of [from, to] pairs, flattened"

    def parse(self, value: Any) -> Any:
        values = super().parse(value)
        if len(values) % 2:
            raise ArgError(f"must hold pairs [from, to, from, to, ...]; {len(values)} values is odd")
        pairs = tuple(zip(values[::2], values[1::2]))
        if any(lo > hi for lo, hi in pairs):
            raise ArgError("a pair's first value must not exceed its second")
        return pairs


class Mask(Function):
    name = "Mask"
    args = (Arg("Raster", Raster()),
            Arg("NoDataValues", ValueLists(), doc='per band, e.g. ["0", "0 255"]'),
            Arg("IncludedRanges", Pairs(), doc="per band [min, max], flattened"),
            Arg("NoDataInterpretation", Choice({0: "MatchAny", 1: "MatchAll"},
                                               {"esriNoDataMatchAny": 0, "esriNoDataMatchAll": 1}), 0))
    summary = "Nodata where bands hold listed values or leave their included ranges."

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> RasterValue:
        raster = ctx.raster(rule.arguments["Raster"])
        args = rule.arguments
        data = raster.data.data.astype(np.float64)
        lists, ranges = args.get("NoDataValues") or (), args.get("IncludedRanges") or ()
        hits = []
        for b in range(data.shape[0]):
            if b >= len(lists) and b >= len(ranges):
                continue
            hit = np.zeros(data.shape[1:], bool)
            if b < len(lists) and lists[b]:
                hit |= np.isin(data[b], lists[b])
            if b < len(ranges):
                lo, hi = ranges[b]
                hit |= (data[b] < lo) | (data[b] > hi)
            hits.append(hit)
        mask = np.ma.getmaskarray(raster.data)
        if hits:
            pixel = np.logical_and.reduce(hits) if args["NoDataInterpretation"] == 1 else np.logical_or.reduce(hits)
            mask = mask | pixel
        return finish(raster.grid, raster.data.data, mask, raster.pixel_type, raster.band_names,
                      nodata=raster.nodata)


class Remap(Function):
    name = "Remap"
    args = (Arg("Raster", Raster()),
            Arg("InputRanges", Pairs(), doc="[from, to) pairs, flattened"),
            Arg("OutputValues", Numbers(max_length=10000), doc="one value per InputRanges pair"),
            Arg("NoDataRanges", Pairs(), doc="[from, to) pairs that become nodata"),
            Arg("AllowUnmatched", Boolean(), True, doc="keep cells no range matches (else nodata)"))
    summary = "Replaces value ranges by values (classification)."

    def check(self, args: dict[str, Any]) -> None:
        ranges, values = args.get("InputRanges", ()), args.get("OutputValues", ())
        if len(ranges) != len(values):
            raise ArgError(f"OutputValues gives {len(values)} values for {len(ranges)} InputRanges pairs")
        if not ranges and not args.get("NoDataRanges"):
            raise ArgError("give InputRanges and OutputValues (or NoDataRanges)")

    @staticmethod
    def _inside(data: np.ndarray, lo: float, hi: float) -> np.ndarray:
        return data == lo if lo == hi else (data >= lo) & (data < hi)

    @staticmethod
    def _pixel_type(args: dict[str, Any], pixel_type: str) -> str:
        """The input's type when it can hold every output value, else F32."""
        dtype = np.dtype(PIXEL_TYPES[pixel_type])
        if dtype.kind in "iu" and all(representable(v, dtype, pixel_type) for v in args.get("OutputValues", ())):
            return pixel_type
        return "F32"

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> RasterValue:
        raster = ctx.raster(rule.arguments["Raster"])
        args = rule.arguments
        data = raster.data.data.astype(np.float64)
        out = data.copy()
        matched = np.zeros(data.shape, bool)
        for (lo, hi), value in zip(args.get("InputRanges", ()), args.get("OutputValues", ())):
            hit = self._inside(data, lo, hi) & ~matched
            out[hit] = value
            matched |= hit
        mask = np.ma.getmaskarray(raster.data)
        if not args["AllowUnmatched"]:
            mask = mask | ~matched
        for lo, hi in args.get("NoDataRanges", ()):
            mask = mask | self._inside(data, lo, hi)
        pixel_type = self._pixel_type(args, raster.pixel_type)
        nodata = raster.nodata if pixel_type == raster.pixel_type else "auto"
        return finish(raster.grid, out, mask, pixel_type, raster.band_names, nodata=nodata)

    def describe(self, rule: RenderingRule, source: Callable[[Any], Signature]) -> Signature:
        inner = source(rule.arguments["Raster"])
        pixel_type = self._pixel_type(rule.arguments, inner.pixel_type)
        return Signature(inner.bands, pixel_type, inner.names, inner.nodata if pixel_type == inner.pixel_type else "auto")


@dataclass(frozen=True)
class Shape:
    """A polygon or envelope argument and the CRS it came in (None: the service's)."""

    geometry: BaseGeometry
    crs: CRS | None

    @property
    def key(self) -> str:
        return f"{self.geometry.wkt}|{self.crs.to_wkt() if self.crs else ''}"


class ShapeKind(Kind):
    what = "polygon or envelope JSON"

    def parse(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = bounded.loads(value, "geometry")
            except InvalidParameter as exc:
                raise ArgError(f"must be {self.what}: {exc.why}")
        try:
            geometry, crs = from_json(value, "geometry")
        except InvalidParameter as exc:
            raise ArgError(f"is not {self.what}: {exc.why}")
        if geometry.geom_type not in ("Polygon", "MultiPolygon"):
            raise ArgError(f"must be a polygon or an envelope, not a {geometry.geom_type.lower()}")
        return Shape(geometry, crs)


class Clip(Function):
    name = "Clip"
    args = (Arg("Raster", Raster()),
            Arg("ClippingGeometry", ShapeKind()),
            Arg("ClipType", Choice({1: "ClippingOutside", 2: "ClippingInside"},
                                   {"Outside": 1, "Inside": 2, "esriRasterClippingOutside": 1,
                                    "esriRasterClippingInside": 2}), 1),
            Arg("Extent", ShapeKind(), doc="an envelope; nothing outside it is kept"))
    summary = "Keeps the inside (ClipType 1) or the outside (2) of a polygon or envelope."

    def check(self, args: dict[str, Any]) -> None:
        if "ClippingGeometry" not in args and "Extent" not in args:
            raise ArgError("give ClippingGeometry (or Extent)")

    @staticmethod
    def _outside(shape: Shape, ctx: FunctionContext, grid: Grid) -> np.ndarray:
        geometry = to_crs(shape.geometry, shape.crs or ctx.service_crs, grid.crs)
        outside: np.ndarray = geometry_mask([geometry], out_shape=(grid.height, grid.width), transform=grid.transform)
        return outside

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> RasterValue:
        raster = ctx.raster(rule.arguments["Raster"])
        args = rule.arguments
        mask = np.ma.getmaskarray(raster.data)
        if "ClippingGeometry" in args:
            outside = self._outside(args["ClippingGeometry"], ctx, raster.grid)
            mask = mask | (outside if args["ClipType"] == 1 else ~outside)
        if "Extent" in args:
            mask = mask | self._outside(args["Extent"], ctx, raster.grid)
        return finish(raster.grid, raster.data.data, mask, raster.pixel_type, raster.band_names,
                      nodata=raster.nodata)


for _fn in (Mask(), Remap(), Clip()):
    register(_fn)
