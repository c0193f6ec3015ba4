"""Raster functions: the parser for ArcGIS rendering-rule JSON and the registry of functions."""
