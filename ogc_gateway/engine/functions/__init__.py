"""Raster functions: the parser for ArcGIS rendering-rule JSON and the registry of functions."""

from __future__ import annotations

# Filled in by the registry module; the config validator checks template function names against it.
_KNOWN = {"none", "stretch"}


def is_known(name: str) -> bool:
    """Whether a raster function of this name exists (case-insensitive)."""
    return name.strip().lower() in _KNOWN
