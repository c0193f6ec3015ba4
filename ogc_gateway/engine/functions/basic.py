"""Functions that pass their input through: `None` (raw values, bypassing any default template) and
`Identity` (the same, under the name raster-function templates use for "no processing")."""

from __future__ import annotations

from ..requests import Raster as RasterValue
from ..requests import RenderingRule
from .registry import Function, FunctionContext, register
from .schema import Arg, Raster


class NoneFunction(Function):
    name = "None"
    args = (Arg("Raster", Raster(), doc="the input"),)
    summary = "The service's values as they are."

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> RasterValue:
        return ctx.raster(rule.arguments["Raster"])


class Identity(NoneFunction):
    name = "Identity"
    summary = "The input unchanged."


register(NoneFunction())
register(Identity())
