"""NDVI and BandArithmetic: per-pixel formulas over bands.

NDVI = (IR - Red) / (IR + Red), from 0-based VisibleBandID / InfraredBandID (or band names or
wavelengths); ScientificOutput gives -1..1 as F32, otherwise NDVI * 100 + 100 as U8 (0..200).

BandArithmetic takes a user expression over B1..Bn (Method 0) or one of ArcGIS's indexes, whose
`BandIndexes` lists 1-based band numbers in the order below, then optional constants. Every
formula is written in the expression grammar (expression.py) and compiled the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..requests import Raster as RasterValue
from ..requests import RenderingRule
from .bands import MISSING, TOLERANCE, band_by_name, band_by_wavelength
from .expression import Expression, compile_expression
from .registry import Function, FunctionContext, Signature, fail, finish, register
from .schema import Arg, ArgError, Boolean, Choice, Number, Raster, Text

# code: (name, band names in BandIndexes order, constants with defaults, formula or formulas)
METHODS: dict[int, tuple[str, str, dict[str, float], tuple[str, ...]]] = {
    1: ("NDVI", "NIR Red", {}, ("(NIR - Red) / (NIR + Red)",)),
    2: ("SAVI", "NIR Red", {"L": 0.5}, ("(NIR - Red) / (NIR + Red + L) * (1 + L)",)),
    3: ("TSAVI", "NIR Red", {"s": 0.33, "a": 0.5, "X": 1.5},
        ("s * (NIR - s * Red - a) / (a * NIR + Red - a * s + X * (1 + s ^ 2))",)),
    4: ("MSAVI", "NIR Red", {}, ("(2 * NIR + 1 - sqrt((2 * NIR + 1) ^ 2 - 8 * (NIR - Red))) / 2",)),
    5: ("GEMI", "NIR Red", {},
        ("((2 * (NIR ^ 2 - Red ^ 2) + 1.5 * NIR + 0.5 * Red) / (NIR + Red + 0.5))"
         " * (1 - 0.25 * ((2 * (NIR ^ 2 - Red ^ 2) + 1.5 * NIR + 0.5 * Red) / (NIR + Red + 0.5)))"
         " - (Red - 0.125) / (1 - Red)",)),
    6: ("PVI", "NIR Red", {"a": 0.3, "b": 0.5}, ("(NIR - a * Red - b) / sqrt(1 + a ^ 2)",)),
    7: ("GVITM", "Band1 Band2 Band3 Band4 Band5 Band7", {},
        ("-0.2848 * Band1 - 0.2435 * Band2 - 0.5436 * Band3 + 0.7243 * Band4 + 0.0840 * Band5"
         " - 1.1800 * Band7",)),
    8: ("Sultan", "Band1 Band3 Band4 Band5 Band6", {},
        ("Band5 / Band6 * 100", "Band5 / Band1 * 100", "Band3 / Band4 * (Band5 / Band4) * 100")),
    9: ("VARI", "Red Green Blue", {}, ("(Green - Red) / (Green + Red - Blue)",)),
    10: ("GNDVI", "NIR Green", {}, ("(NIR - Green) / (NIR + Green)",)),
    11: ("SR", "NIR Red", {}, ("NIR / Red",)),
    12: ("NDVIre", "NIR RedEdge", {}, ("(NIR - RedEdge) / (NIR + RedEdge)",)),
    13: ("SRre", "NIR RedEdge", {}, ("NIR / RedEdge",)),
    14: ("MTVI2", "NIR Red Green", {},
         ("1.5 * (1.2 * (NIR - Green) - 2.5 * (Red - Green))"
          " / sqrt((2 * NIR + 1) ^ 2 - (6 * NIR - 5 * sqrt(Red)) - 0.5)",)),
    15: ("RTVICore", "NIR RedEdge Green", {}, ("100 * (NIR - RedEdge) - 10 * (NIR - Green)",)),
    16: ("CIre", "NIR RedEdge", {}, ("NIR / RedEdge - 1",)),
    17: ("CIg", "NIR Green", {}, ("NIR / Green - 1",)),
    18: ("NDWI", "Green NIR", {}, ("(Green - NIR) / (Green + NIR)",)),
    19: ("EVI", "NIR Red Blue", {}, ("2.5 * (NIR - Red) / (NIR + 6 * Red - 7.5 * Blue + 1)",)),
    20: ("IronOxide", "Red Blue", {}, ("Red / Blue",)),
    21: ("FerrousMinerals", "SWIR NIR", {}, ("SWIR / NIR",)),
    22: ("ClayMinerals", "SWIR1 SWIR2", {}, ("SWIR1 / SWIR2",)),
    23: ("WNDWI", "Green NIR SWIR1", {"alpha": 0.5},
         ("(Green - alpha * NIR - (1 - alpha) * SWIR1) / (Green + alpha * NIR + (1 - alpha) * SWIR1)",)),
    24: ("BAI", "Red NIR", {}, ("1 / ((0.1 - Red) ^ 2 + (0.06 - NIR) ^ 2)",)),
    25: ("NBR", "NIR SWIR2", {}, ("(NIR - SWIR2) / (NIR + SWIR2)",)),
    26: ("NDBI", "SWIR NIR", {}, ("(SWIR - NIR) / (SWIR + NIR)",)),
    27: ("NDMI", "NIR SWIR1", {}, ("(NIR - SWIR1) / (NIR + SWIR1)",)),
    28: ("NDSI", "Green SWIR", {}, ("(Green - SWIR) / (Green + SWIR)",)),
    29: ("MNDWI", "Green SWIR", {}, ("(Green - SWIR) / (Green + SWIR)",)),
}


@dataclass(frozen=True)
class Formula:
    """A BandArithmetic rule compiled: its formulas and the bands (0-based) its names stand for."""

    formulas: tuple[Expression, ...]
    bindings: tuple[tuple[str, int], ...]       # name -> 0-based band (user expressions: "b<n>")
    constants: tuple[tuple[str, float], ...]
    names: tuple[str, ...]                      # output band names

    @property
    def key(self) -> str:
        return repr(([f.source for f in self.formulas], self.bindings, self.constants))

    def bands(self) -> tuple[int, ...]:
        return tuple(sorted({b for _, b in self.bindings}))

    def evaluate(self, data: np.ndarray) -> np.ndarray:
        env = {name: data[b] for name, b in self.bindings} | dict(self.constants)
        return np.stack([f.evaluate(env) * np.ones(data.shape[1:]) for f in self.formulas])


def formula(method: int, text: str) -> Formula:
    if method == 0:
        expr = compile_expression(text)
        if not expr.bands:
            raise ArgError("the expression reads no band (name them B1, B2, ...)")
        return Formula((expr,), tuple((f"b{b + 1}", b) for b in expr.bands), (), ("BandArithmetic",))
    name, band_names, defaults, sources = METHODS[method]
    names = band_names.split()
    tokens = text.split()
    if len(tokens) < len(names):
        raise ArgError(f"{name} needs the band numbers of {band_names} (1-based, "
                       f"space-separated{', then ' + ' '.join(defaults) if defaults else ''}), not {text!r}")
    if len(tokens) > len(names) + len(defaults):
        raise ArgError(f"{name} takes {len(names)} band numbers"
                       + (f" and at most {len(defaults)} constants ({' '.join(defaults)})" if defaults else "")
                       + f", not {text!r}")
    bindings = []
    for n, token in zip(names, tokens):
        if not token.isdigit() or int(token) < 1:
            raise ArgError(f"the {n} band must be a band number from 1, not {token!r}")
        bindings.append((n.lower(), int(token) - 1))
    constants = dict((k.lower(), v) for k, v in defaults.items())
    for (k, _), token in zip(defaults.items(), tokens[len(names):]):
        try:
            constants[k.lower()] = float(token)
        except ValueError:
            raise ArgError(f"the constant {k} must be a number, not {token!r}")
    allowed = frozenset(n.lower() for n in names) | frozenset(constants)
    compiled = tuple(compile_expression(s, allowed, bands=False) for s in sources)
    out_names = (name,) if len(compiled) == 1 else tuple(f"{name}_{k + 1}" for k in range(len(compiled)))
    return Formula(compiled, tuple(bindings), tuple(sorted(constants.items())), out_names)


def _check_bands(rule: RenderingRule, arg: str, bands: tuple[int, ...], count: int) -> None:
    bad = [b for b in bands if b >= count]
    if bad:
        raise fail(rule, arg, f"refers to band {bad[0] + 1} (1-based), but the input has {count} bands")


class BandArithmetic(Function):
    name = "BandArithmetic"
    args = (Arg("Raster", Raster()),
            Arg("Method", Choice({0: "UserDefined", **{c: m[0] for c, m in METHODS.items()}}), 0),
            Arg("BandIndexes", Text(), aliases=("Expression",),
                doc="the expression (Method 0) or the 1-based band numbers of the index"))
    summary = "A user expression over B1..Bn, or an index (NDVI, SAVI, EVI, NDWI ...), as F32."

    def check(self, args: dict[str, Any]) -> None:
        if "BandIndexes" not in args:
            raise ArgError("BandIndexes is required (an expression such as \"(B4 - B3) / (B4 + B3)\", "
                           "or the band numbers of the index)")
        try:
            args["BandIndexes"] = formula(args["Method"], args["BandIndexes"])
        except ArgError as exc:
            raise ArgError(f"BandIndexes: {exc}")

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> RasterValue:
        raster = ctx.raster(rule.arguments["Raster"])
        f: Formula = rule.arguments["BandIndexes"]
        _check_bands(rule, "BandIndexes", f.bands(), raster.data.shape[0])
        data = raster.data.data.astype(np.float64)
        mask = np.ma.getmaskarray(raster.data)[list(f.bands())].any(axis=0)
        return finish(raster.grid, f.evaluate(data), mask, "F32", f.names)

    def describe(self, rule: RenderingRule, source: Callable[[Any], Signature]) -> Signature:
        inner = source(rule.arguments["Raster"])
        f: Formula = rule.arguments["BandIndexes"]
        _check_bands(rule, "BandIndexes", f.bands(), inner.bands)
        return Signature(len(f.formulas), "F32", f.names)


class NDVI(Function):
    name = "NDVI"
    args = (Arg("Raster", Raster()),
            Arg("VisibleBandID", Number(lo=0, integer=True), 2, doc="0-based index of the red band"),
            Arg("InfraredBandID", Number(lo=0, integer=True), 3, doc="0-based index of the near-infrared band"),
            Arg("VisibleBandName", Text()), Arg("InfraredBandName", Text()),
            Arg("VisibleBandWavelength", Number(above=0)), Arg("InfraredBandWavelength", Number(above=0)),
            Arg("ScientificOutput", Boolean(), False, aliases=("Scientific",)),
            MISSING, TOLERANCE)
    summary = "(IR - Red) / (IR + Red): -1..1 as F32 (ScientificOutput), else NDVI * 100 + 100 as U8."

    def _bands(self, rule: RenderingRule, names: tuple[str, ...]) -> tuple[int, int]:
        args = rule.arguments
        out = []
        for which in ("Visible", "Infrared"):
            name, wavelength = args.get(f"{which}BandName"), args.get(f"{which}BandWavelength")
            if name is not None:
                i, arg, what = band_by_name(names, name), f"{which}BandName", repr(name)
            elif wavelength is not None:
                i = band_by_wavelength(names, wavelength, args["WavelengthMatchTolerance"],
                                       args["MissingBandAction"] == 0)
                arg, what = f"{which}BandWavelength", f"{wavelength:g}"
            else:
                i, arg = args[f"{which}BandID"], f"{which}BandID"
                what = f"band {i}"
                i = i if i < len(names) else None
            if i is None:
                raise fail(rule, arg, f"{what} matches no band of the input (bands 0..{len(names) - 1}: "
                                      f"{', '.join(names)})")
            out.append(i)
        return out[0], out[1]

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> RasterValue:
        raster = ctx.raster(rule.arguments["Raster"])
        red_b, ir_b = self._bands(rule, raster.band_names)
        red, ir = (raster.data.data[b].astype(np.float64) for b in (red_b, ir_b))
        mask = np.ma.getmaskarray(raster.data)[[red_b, ir_b]].any(axis=0)
        with np.errstate(all="ignore"):
            ndvi = (ir - red) / (ir + red)
        if rule.arguments["ScientificOutput"]:
            return finish(raster.grid, ndvi, mask, "F32", ("NDVI",))
        return finish(raster.grid, ndvi * 100 + 100, mask, "U8", ("NDVI",), nodata=None)

    def describe(self, rule: RenderingRule, source: Callable[[Any], Signature]) -> Signature:
        inner = source(rule.arguments["Raster"])
        self._bands(rule, inner.band_names())
        return Signature(1, "F32" if rule.arguments["ScientificOutput"] else "U8", ("NDVI",))


register(BandArithmetic())
register(NDVI())
