"""Raster functions: the parser for ArcGIS rendering-rule JSON and the registry of functions.

Importing this package registers every function family.
"""

from __future__ import annotations

from . import basic, stretch  # noqa: F401  (each module registers its functions)
from .registry import FUNCTIONS, FunctionContext, apply, cast, describe
from .rules import parse_rendering_rule

__all__ = ["FUNCTIONS", "FunctionContext", "apply", "cast", "describe", "parse_rendering_rule", "is_known"]


def is_known(name: str) -> bool:
    """Whether a raster function of this name exists (case-insensitive)."""
    return name.strip().lower() in FUNCTIONS
