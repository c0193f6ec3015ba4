"""The `None` function: raw values, bypassing any default template."""

from __future__ import annotations

from .registry import FunctionContext, register
from ..requests import Raster, RenderingRule


class NoneFunction:
    name = "None"

    def apply(self, rule: RenderingRule, ctx: FunctionContext) -> Raster:
        return ctx.raster(rule.arg(rule.variable_name))

    def describe(self, rule, bands, pixel_type):
        return bands, pixel_type


register(NoneFunction())
