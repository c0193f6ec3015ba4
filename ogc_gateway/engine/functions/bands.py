"""Band selection and combination: ExtractBand, CompositeBand, Grayscale; and how a band is found by
name or wavelength (also for NDVI).

Bands carry names, not wavelengths, so a wavelength matches the band whose name is one of the
usual band names (Blue, Red, NearInfrared, NIR, SWIR1 ...) with the range below containing it (or,
within WavelengthMatchTolerance, the nearest centre). Wavelengths are in micrometres, or in
nanometres when 100 or more.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from ..requests import Raster as RasterValue
from ..requests import RenderingRule
from .registry import Function, FunctionContext, Signature, fail, finish, pixel_type_of_values, register
from .schema import Arg, Choice, Number, Numbers, Raster, Rasters, Texts

# usual band names -> wavelength range in micrometres
WAVELENGTHS = {
    "coastal": (0.43, 0.45), "coastalaerosol": (0.43, 0.45), "blue": (0.45, 0.51), "green": (0.53, 0.59),
    "yellow": (0.585, 0.625), "red": (0.63, 0.69), "rededge": (0.69, 0.75), "nir": (0.76, 0.90),
    "nearinfrared": (0.76, 0.90), "nearir": (0.76, 0.90), "swir": (1.55, 1.75), "swir1": (1.55, 1.75),
    "shortwaveinfrared1": (1.55, 1.75), "swir2": (2.08, 2.35), "shortwaveinfrared2": (2.08, 2.35),
    "panchromatic": (0.50, 0.68), "pan": (0.50, 0.68), "cirrus": (1.36, 1.39), "thermal": (10.4, 12.5),
    "tir": (10.4, 12.5), "lwir": (10.4, 12.5),
}
BEST_MATCH, FAIL = 0, 1
MISSING = Arg("MissingBandAction", Choice({BEST_MATCH: "BestMatch", FAIL: "Fail"}), FAIL)
TOLERANCE = Arg("WavelengthMatchTolerance", Number(lo=0), 0.0)


def _range(name: str) -> tuple[float, float] | None:
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    return WAVELENGTHS.get(key) or WAVELENGTHS.get(key.rstrip("0123456789"))


def micrometres(value: float) -> float:
    return value / 1000.0 if value >= 100 else value


def band_by_name(names: tuple[str, ...], wanted: str) -> int | None:
    """A band's index by name: the same name (any case), else the same usual band (NIR = NearInfrared)."""
    for i, n in enumerate(names):
        if n.lower() == wanted.lower():
            return i
    target = _range(wanted)
    return next((i for i, n in enumerate(names) if target and _range(n) == target), None)


def band_by_wavelength(names: tuple[str, ...], wavelength: float, tolerance: float, best: bool) -> int | None:
    w, tol = micrometres(wavelength), micrometres(tolerance) if tolerance else 0.0
    known = [(i, r) for i, n in enumerate(names) if (r := _range(n))]
    for i, (lo, hi) in known:
        if lo <= w <= hi:
            return i
    if not known:
        return None
    i, (lo, hi) = min(known, key=lambda k: abs((k[1][0] + k[1][1]) / 2 - w))
    return i if best or abs((lo + hi) / 2 - w) <= tol else None


def _selection(rule: RenderingRule, names: tuple[str, ...]) -> list[int]:
    args = rule.arguments
    method = args.get("Method") or next((m for m, k in ((1, "BandIDs"), (2, "BandNames"), (3, "BandWavelengths"))
                                        if args.get(k)), 1)
    best = args["MissingBandAction"] == BEST_MATCH
    out = []
    if method == 1:
        for b in args.get("BandIDs") or ():
            if b < len(names):
                out.append(b)
            elif not best:
                raise fail(rule, "BandIDs", f"band {b} does not exist (the input has {len(names)} bands, "
                                            f"0..{len(names) - 1})")
    else:
        key = "BandNames" if method == 2 else "BandWavelengths"
        for wanted in args.get(key) or ():
            i = band_by_name(names, wanted) if method == 2 else \
                band_by_wavelength(names, wanted, args["WavelengthMatchTolerance"], best)
            if i is not None:
                out.append(i)
            elif not best:
                raise fail(rule, key, f"{wanted!r} matches no band (bands: {', '.join(names)})")
    if not out:
        raise fail(rule, "BandIDs", f"selects no band (bands: {', '.join(names)})")
    return out


class ExtractBand(Function):
    name = "ExtractBand"
    args = (Arg("Raster", Raster()),
            Arg("BandIDs", Numbers(Number(lo=0, integer=True), max_length=1024), doc="0-based band indexes"),
            Arg("BandNames", Texts()),
            Arg("BandWavelengths", Numbers(Number(above=0), max_length=1024)),
            Arg("Method", Choice({1: "BandIDs", 2: "BandNames", 3: "BandWavelengths"})),
            MISSING, TOLERANCE)
    summary = "Some bands of the input, in the order asked (by index, name or wavelength)."

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> RasterValue:
        raster = ctx.raster(rule.arguments["Raster"])
        idx = _selection(rule, raster.band_names)
        return finish(raster.grid, raster.data.data[idx], np.ma.getmaskarray(raster.data)[idx],
                      raster.pixel_type, tuple(raster.band_names[i] for i in idx), nodata=raster.nodata)

    def describe(self, rule: RenderingRule, source: Callable[[Any], Signature]) -> Signature:
        inner = source(rule.arguments["Raster"])
        names = inner.band_names()
        idx = _selection(rule, names)
        return Signature(len(idx), inner.pixel_type, tuple(names[i] for i in idx), inner.nodata)


class CompositeBand(Function):
    name = "CompositeBand"
    variable = "Rasters"
    args = (Arg("Rasters", Rasters(numbers=False)),
            Arg("CellsizeType", Choice({0: "FirstOf", 1: "MinOf", 2: "MaxOf", 3: "MeanOf", 4: "LastOf"}), 0,
                doc="accepted; every input is read on the request's grid"))
    summary = "The bands of several rasters, one after the other."

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> RasterValue:
        rasters = [ctx.raster(r) for r in rule.arguments["Rasters"]]
        pixel_type = pixel_type_of_values(*(r.pixel_type for r in rasters))
        values = np.concatenate([r.data.data.astype(np.float64) for r in rasters])
        mask = np.concatenate([np.ma.getmaskarray(r.data) for r in rasters])
        names = tuple(n for r in rasters for n in r.band_names)
        nodata = rasters[0].nodata if len({r.nodata for r in rasters}) == 1 else "auto"
        return finish(rasters[0].grid, values, mask, pixel_type, names, nodata=nodata)

    def describe(self, rule: RenderingRule, source: Callable[[Any], Signature]) -> Signature:
        parts = [source(r) for r in rule.arguments["Rasters"]]
        nodata = parts[0].nodata if len({p.nodata for p in parts}) == 1 else "auto"
        return Signature(sum(p.bands for p in parts), pixel_type_of_values(*(p.pixel_type for p in parts)),
                         tuple(n for p in parts for n in p.band_names()), nodata)


class Grayscale(Function):
    name = "Grayscale"
    args = (Arg("Raster", Raster()),
            Arg("ConversionParameters", Numbers(Number(lo=0), min_length=1, max_length=1024),
                doc="a weight per band (default: equal)"))
    summary = "One band: the weighted mean of the input's bands."

    def _weights(self, rule: RenderingRule, bands: int) -> np.ndarray:
        given = rule.arguments.get("ConversionParameters")
        if given is None:
            return np.full(bands, 1.0 / bands)
        if len(given) != bands:
            raise fail(rule, "ConversionParameters", f"gives {len(given)} weights; the input has {bands} bands")
        if sum(given) <= 0:
            raise fail(rule, "ConversionParameters", "must not all be zero")
        weights: np.ndarray = np.array(given) / sum(given)
        return weights

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> RasterValue:
        raster = ctx.raster(rule.arguments["Raster"])
        weights = self._weights(rule, raster.data.shape[0])
        values = np.tensordot(weights, raster.data.data.astype(np.float64), axes=1)
        mask = np.ma.getmaskarray(raster.data).any(axis=0)
        return finish(raster.grid, values, mask, raster.pixel_type, ("Gray",), nodata=raster.nodata)

    def describe(self, rule: RenderingRule, source: Callable[[Any], Signature]) -> Signature:
        inner = source(rule.arguments["Raster"])
        self._weights(rule, inner.bands)
        return Signature(1, inner.pixel_type, ("Gray",), inner.nodata)


for _fn in (ExtractBand(), CompositeBand(), Grayscale()):
    register(_fn)
