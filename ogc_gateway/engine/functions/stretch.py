"""Stretch: map values onto an output range (Min..Max, default 0..255) by an ArcGIS stretch type.

Each band goes to 0..1 first, then optionally through gamma (u ** (1 / gamma)), then onto Min..Max:
  StandardDeviation  (x - (mean - n*stdv)) / (2 n stdv), clipped        n = NumberOfStandardDeviations
  MinimumMaximum     (x - min) / (max - min), clipped
  PercentClip        (x - lo) / (hi - lo), clipped; lo, hi: the MinPercent / (100 - MaxPercent)
                     percentiles (the smallest value with that share of pixels at or below it)
  HistogramEqualization  the share of pixels at or below x (the empirical distribution function)
  Sigmoid            1 / (1 + exp(-s (x - mean) / stdv))             s = SigmoidStrengthLevel
Statistics come from `Statistics` if given; with DRA from the request's own pixels; otherwise from
the input's distribution (the service's statistics and histograms for "$$", a processed input's
from a low-resolution render), so adjacent tiles stretch alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..requests import Raster as RasterValue
from ..requests import RenderingRule
from .distribution import BandDistribution
from .registry import Function, FunctionContext, Signature, fail, finish, register
from .schema import Arg, ArgError, Boolean, Choice, Kind, Number, Numbers, Raster, short

NONE, STDDEV, HISTEQ, MINMAX, PERCENT, SIGMOID = 0, 3, 4, 5, 6, 9
TYPES = {NONE: "None", STDDEV: "StandardDeviation", HISTEQ: "HistogramEqualization",
         MINMAX: "MinimumMaximum", PERCENT: "PercentClip", SIGMOID: "Sigmoid"}


class StatisticsKind(Kind):
    """Per band [min, max, mean, stddev] (or {"min", "max", "mean", "standardDeviation"})."""

    what = "a list of [min, max, mean, stddev] per band"

    def parse(self, value: Any) -> Any:
        if not isinstance(value, list) or not 1 <= len(value) <= 1024:
            raise ArgError(f"must be {self.what}, not {short(value)}")
        rows = []
        for k, row in enumerate(value):
            if isinstance(row, dict):
                row = [row.get("min"), row.get("max"), row.get("mean", 0),
                       row.get("standardDeviation", row.get("stddev", 0))]
            try:
                nums = Numbers(min_length=2).parse(row)
            except ArgError as exc:
                raise ArgError(f"band {k}: must be [min, max, mean, stddev] ({exc})")
            lo, hi = nums[0], nums[1]
            mean = nums[2] if len(nums) > 2 else (lo + hi) / 2
            std = nums[3] if len(nums) > 3 else 0.0
            if lo > hi or std < 0:
                raise ArgError(f"band {k}: min must not exceed max, and stddev must not be negative")
            rows.append((lo, hi, mean, std))
        return tuple(rows)


class Stretch(Function):
    name = "Stretch"
    args = (Arg("Raster", Raster()),
            Arg("StretchType", Choice(TYPES, {"PercentMinimumMaximum": PERCENT, "MinMax": MINMAX,
                                              "StdDev": STDDEV, "HistogramEqualize": HISTEQ}), NONE),
            Arg("Min", Number(), 0.0, doc="output minimum"),
            Arg("Max", Number(), 255.0, doc="output maximum"),
            Arg("NumberOfStandardDeviations", Number(above=0), 2.0),
            Arg("Statistics", StatisticsKind()),
            Arg("DRA", Boolean(), False, doc="statistics from the request's own pixels"),
            Arg("MinPercent", Number(0, 100), 0.25),
            Arg("MaxPercent", Number(0, 100), 0.25),
            Arg("UseGamma", Boolean(), False),
            Arg("Gamma", Numbers(Number(above=0), min_length=1, max_length=1024)),
            Arg("ComputeGamma", Boolean(), False, doc="gamma that maps each band's mean to mid-range"),
            Arg("SigmoidStrengthLevel", Number(1, 6, integer=True), 2))
    summary = "Stretches values onto Min..Max (StandardDeviation, MinimumMaximum, PercentClip, ...)."

    def check(self, args: dict[str, Any]) -> None:
        if args["Min"] == args["Max"]:
            raise ArgError("Min and Max must differ")
        if args["MinPercent"] + args["MaxPercent"] >= 100:
            raise ArgError("MinPercent + MaxPercent must be less than 100")

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> RasterValue:
        args = rule.arguments
        source = args["Raster"]
        raster = ctx.raster(source)
        kind = args["StretchType"]
        if kind == NONE:
            return raster
        data = raster.data.data.astype(np.float64)
        mask = np.ma.getmaskarray(raster.data)
        dists = self._distributions(rule, ctx, raster, source, data, mask)
        gammas = self._gammas(rule, data.shape[0])
        bands = []
        for b, dist in enumerate(dists):
            unit = self._unit(kind, args, dist)
            u = unit(data[b])
            gamma = gammas[b] if gammas else None
            if args["UseGamma"] and args["ComputeGamma"] and gamma is None:
                middle = float(unit(np.array(dist.mean)))
                gamma = np.log(middle) / np.log(0.5) if 0 < middle < 1 else 1.0
            if gamma is not None:
                u = u ** (1.0 / gamma)
            bands.append(args["Min"] + u * (args["Max"] - args["Min"]))
        return finish(raster.grid, np.stack(bands), mask, self._pixel_type(args), raster.band_names)

    @staticmethod
    def _distributions(rule: RenderingRule, ctx: FunctionContext, raster: RasterValue, source: Any, data: np.ndarray,
                       mask: np.ndarray) -> list[BandDistribution]:
        args = rule.arguments
        n = data.shape[0]
        shape = args["StretchType"] in (HISTEQ, PERCENT)
        if args["DRA"]:
            return [BandDistribution.of(ctx.core(data[b])[~ctx.core(mask[b])]) for b in range(n)]
        given = args.get("Statistics")
        if given and not shape:
            if len(given) < n:
                raise fail(rule, "Statistics", f"gives {len(given)} bands; the input has {n}")
            return [BandDistribution(*row) for row in given[:n]]
        found = ctx.distribution(source, shape)
        if len(found) != n:
            raise fail(rule, "Raster", "has no statistics to stretch from (give Statistics or DRA: true)")
        return list(found)

    @staticmethod
    def _unit(kind: int, args: dict[str, Any], dist: BandDistribution) -> Callable[[np.ndarray], np.ndarray]:
        """The band's map onto 0..1."""
        if kind == HISTEQ:
            return dist.cdf
        if kind == SIGMOID:
            s, mean, std = args["SigmoidStrengthLevel"], dist.mean, dist.stdv or 1.0
            return lambda x: 1.0 / (1.0 + np.exp(-s * (x - mean) / std))
        if kind == STDDEV:
            k = args["NumberOfStandardDeviations"]
            lo, hi = dist.mean - k * dist.stdv, dist.mean + k * dist.stdv
        elif kind == PERCENT:
            lo, hi = dist.quantile(args["MinPercent"] / 100), dist.quantile(1 - args["MaxPercent"] / 100)
        else:
            lo, hi = dist.min, dist.max
        span = (hi - lo) or 1.0
        return lambda x: np.clip((x - lo) / span, 0.0, 1.0)

    @staticmethod
    def _gammas(rule: RenderingRule, bands: int) -> list[float] | None:
        gamma = rule.arguments.get("Gamma")
        if not rule.arguments["UseGamma"] or not gamma:
            return None
        return [gamma[min(b, len(gamma) - 1)] for b in range(bands)]

    @staticmethod
    def _pixel_type(args: dict[str, Any]) -> str:
        lo, hi = sorted((args["Min"], args["Max"]))
        return "U8" if 0 <= lo and hi <= 255 else "F32"

    def describe(self, rule: RenderingRule, source: Callable[[Any], Signature]) -> Signature:
        inner = source(rule.arguments["Raster"])
        if rule.arguments["StretchType"] == NONE:
            return inner
        return type(inner)(inner.bands, self._pixel_type(rule.arguments), inner.names)


register(Stretch())
