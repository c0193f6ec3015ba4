"""Raster functions: the parser for ArcGIS rendering-rule JSON and the registry of functions.

Importing this package registers every function family.
"""

from __future__ import annotations

from . import (  # noqa: F401
    bandmath,
    bands,
    basic,
    colormap,
    focal,
    geometric,
    local,
    masks,
    stretch,  # (each registers its functions)
    terrain,
)
from .distribution import BandDistribution
from .registry import FUNCTIONS, FunctionContext, Signature, apply, cast, describe, is_raw, rule_key, signature
from .rules import check_template, parse_rendering_rule

__all__ = ["FUNCTIONS", "BandDistribution", "FunctionContext", "Signature", "apply", "cast", "check_template",
           "describe", "is_known", "is_raw", "parse_rendering_rule", "rule_key", "signature"]


def is_known(name: str) -> bool:
    """Whether a raster function of this name exists (case-insensitive)."""
    return name.strip().lower() in FUNCTIONS
