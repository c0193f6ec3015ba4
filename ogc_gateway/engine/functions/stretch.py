"""Stretch: map values into an output range (default 0..255) by one of ArcGIS's stretch types.

Statistics come from the `Statistics` argument, else the service's statistics, else (DRA, or the
types that need a histogram) the pixels of the request itself.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import InvalidParameter
from ..requests import Raster, RenderingRule
from .registry import FunctionContext, register

NONE, STDDEV, HISTEQ, MINMAX, PERCENT, SIGMOID = 0, 3, 4, 5, 6, 9


def _number(rule: RenderingRule, name: str, default: float) -> float:
    value = rule.arg(name, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidParameter("renderingRule", f"Stretch argument {name} must be a number, not {value!r}")


def _flag(rule: RenderingRule, name: str) -> bool:
    value = rule.arg(name, False)
    return value is True or str(value).lower() == "true"


def _band_stats(rule: RenderingRule, ctx: FunctionContext, raster: Raster, dra: bool):
    """Per band (min, max, mean, stdv): the Statistics argument, the service's, or the request's."""
    given = rule.arg("Statistics")
    n = raster.data.shape[0]
    if given and not dra:
        try:
            rows = [tuple(float(v) for v in row[:4]) for row in given]
        except (TypeError, ValueError, IndexError):
            raise InvalidParameter("renderingRule", "Statistics must be [[min, max, mean, stddev], ...]")
        if len(rows) < n or any(len(r) < 4 for r in rows):
            raise InvalidParameter("renderingRule", f"Statistics needs [min, max, mean, stddev] for each of {n} bands")
        return rows[:n]
    on_mosaic = rule.arg(rule.variable_name) in (None, "$$")
    if not dra and on_mosaic and len(ctx.stats) == n:
        return [(s.min, s.max, s.mean, s.stdv) for s in ctx.stats]
    out = []
    for band in raster.data:
        values = band.compressed().astype(np.float64)
        if values.size == 0:
            out.append((0.0, 1.0, 0.5, 0.0))
        else:
            out.append((values.min(), values.max(), values.mean(), values.std()))
    return out


class Stretch:
    name = "Stretch"

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> Raster:
        raster = ctx.raster(rule.arg(rule.variable_name))
        kind = int(_number(rule, "StretchType", NONE))
        if kind not in (NONE, STDDEV, HISTEQ, MINMAX, PERCENT, SIGMOID):
            raise InvalidParameter("renderingRule", f"StretchType {kind} is not supported "
                                   "(0 None, 3 StandardDeviation, 4 HistogramEqualization, "
                                   "5 MinimumMaximum, 6 PercentClip, 9 Sigmoid)")
        out_min, out_max = _number(rule, "Min", 0), _number(rule, "Max", 255)
        dra = _flag(rule, "DRA")
        data = raster.data.astype(np.float64)
        if kind == NONE:
            scaled = data
        else:
            stats = _band_stats(rule, ctx, raster, dra)
            bands = []
            for band, (lo, hi, mean, std) in zip(data, stats):
                bands.append(self._unit(kind, rule, band, lo, hi, mean, std))
            unit = np.ma.stack(bands)
            unit = self._gamma(rule, unit)
            scaled = out_min + unit * (out_max - out_min)
        pixel_type = "U8" if 0 <= out_min and out_max <= 255 else "F32"
        if kind == NONE:
            pixel_type = raster.pixel_type
        dtype = np.uint8 if pixel_type == "U8" else np.dtype(raster.data.dtype if kind == NONE else np.float32)
        values = np.clip(np.rint(scaled.data), 0, 255) if pixel_type == "U8" else scaled.data
        return replace(raster, data=np.ma.MaskedArray(values.astype(dtype), mask=np.ma.getmaskarray(data)),
                       pixel_type=pixel_type, nodata=None if pixel_type == "U8" else raster.nodata,
                       stretch=None)

    @staticmethod
    def _unit(kind, rule, band, lo, hi, mean, std) -> np.ma.MaskedArray:
        """The band mapped onto 0..1."""
        if kind == STDDEV:
            k = _number(rule, "NumberOfStandardDeviations", 2.0)
            lo, hi = mean - k * std, mean + k * std
        elif kind == PERCENT:
            values = band.compressed()
            if values.size:
                lo_pct, hi_pct = _number(rule, "MinPercent", 0.25), _number(rule, "MaxPercent", 0.25)
                if not (0 <= lo_pct < 100 and 0 <= hi_pct < 100 and lo_pct + hi_pct < 100):
                    raise InvalidParameter("renderingRule", "MinPercent and MaxPercent must be in 0..100")
                lo, hi = np.percentile(values, [lo_pct, 100 - hi_pct])
        elif kind == HISTEQ:
            values = np.sort(band.compressed())
            if values.size == 0:
                return band * 0
            ranks = np.searchsorted(values, band.filled(values[0]), side="right") / values.size
            return np.ma.MaskedArray(ranks, mask=np.ma.getmaskarray(band))
        elif kind == SIGMOID:
            level = _number(rule, "SigmoidStrengthLevel", 2)
            z = (band - mean) / (std or 1.0)
            return 1.0 / (1.0 + np.exp(-level * z))
        span = (hi - lo) or 1.0
        return np.ma.clip((band - lo) / span, 0.0, 1.0)

    @staticmethod
    def _gamma(rule: RenderingRule, unit: np.ma.MaskedArray) -> np.ma.MaskedArray:
        gamma = rule.arg("Gamma")
        if not _flag(rule, "UseGamma") or not gamma:
            return unit
        try:
            values = [float(g) for g in (gamma if isinstance(gamma, list) else [gamma])]
        except (TypeError, ValueError):
            raise InvalidParameter("renderingRule", "Gamma must be a number per band")
        if any(g <= 0 for g in values):
            raise InvalidParameter("renderingRule", "Gamma values must be positive")
        g = np.array((values * unit.shape[0])[:unit.shape[0]]).reshape(-1, 1, 1)
        return unit ** (1.0 / g)

    def describe(self, rule, bands, pixel_type):
        kind = rule.arg("StretchType", NONE)
        if str(kind) == str(NONE):
            return bands, pixel_type
        try:
            lo, hi = float(rule.arg("Min", 0)), float(rule.arg("Max", 255))
        except (TypeError, ValueError):
            lo, hi = 0, 255
        return bands, "U8" if 0 <= lo and hi <= 255 else "F32"


register(Stretch())
