"""The one raster engine: catalog, mosaic, read, raster functions, encoders. Never imports Flask.

This package is the engine's public API: the faces (REST, OGC, publishing, security), the CLI and
the tools import from `ogc_gateway.engine` only, never from its modules (tests/test_architecture.py).
The engine's own modules import their siblings directly and never this package, so the package
makes no cycle. A name is imported from its module when first used (PEP 562): importing the API
costs nothing (the CLI starts as fast as before) and a process loads only the engine it uses.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> "module" (the same name there) or "module:name"
_API: dict[str, str] = {
    # errors: engine field names (engine/errors.py FIELDS) and OWS codes; each face renames and renders them
    "ArgError": ".functions.schema", "ConfigError": ".errors", "GatewayError": ".errors",
    "InvalidParameter": ".errors", "NotFound": ".errors", "TooLarge": ".errors",
    # vocabulary: enumerations and the spellings each maps
    "Compression": ".names", "MosaicMethod": ".names", "OutputFormat": ".names", "Resampling": ".names",
    "MOSAIC_SHORT": ".names", "RESAMPLING_ARCGIS": ".names",
    "canonical_mosaic_method": ".names", "canonical_mosaic_operation": ".names", "canonical_resampling": ".names",
    # request types and the values that flow through the engine
    "CatalogQuery": ".requests", "DimensionSelection": ".requests", "ExportRequest": ".requests",
    "MosaicRule": ".requests", "RenderingRule": ".requests", "SampleRequest": ".requests",
    "TileRequest": ".requests", "TimeWindow": ".requests", "Grid": ".requests", "Raster": ".requests",
    "PIXEL_TYPES": ".requests",
    # services: settings (config.py loads YAML into these), opening, what a service describes
    "Attribution": ".settings", "DEFAULT_OGC_CRS": ".settings", "DimensionConfig": ".settings",
    "FunctionTemplate": ".settings", "Limits": ".settings", "MetadataUrl": ".settings", "ServiceConfig": ".settings",
    "VariableConfig": ".settings", "ImageService": ".service", "ServiceInfo": ".service", "catalog_path": ".service",
    "open_catalog": ".service", "drop_store": ".catalog",
    "open_services": ".service", "Dimension": ".multidim", "Multidimensional": ".multidim",
    "Slice": ".multidim",
    # the verbs: export, sample, query, tile, statistics (zonal: region), encode, describe. A public name
    # never repeats a module's name (`from ogc_gateway.engine import export` would name the module)
    "export_raster": ".export:export", "identify": ".sample", "get_samples": ".sample", "query_catalog": ".query:query",
    "QueryResult": ".query", "get_tile": ".tiles", "tile_sets": ".tiles", "region": ".statistics",
    "raster_statistics": ".statistics", "raster_histograms": ".statistics", "service_histograms": ".statistics",
    "encode_raster": ".encode:encode", "Encoded": ".encode", "EncodeOptions": ".maps", "render_image": ".maps",
    "MapRequest": ".maps", "render_map": ".maps", "encode_map": ".maps", "describe_item": ".iteminfo",
    "item_values_at": ".pointvalues",
    "build_legend": ".legend:legend", "draw_legend": ".legend:draw", "Legend": ".legend",
    "service_signature": ".export", "rule_distribution": ".export",
    "BandDistribution": ".functions", "signature": ".functions", "is_raw": ".functions",
    # raster functions: rendering rules and templates
    "parse_rendering_rule": ".functions", "check_template": ".functions", "is_known": ".functions",
    "read_template": ".functions.rft",
    # request values: spatial references, grids, geometry, bounded JSON
    "axis_inverted": ".grid", "crs_from_ogc": ".grid", "crs_from_wkid": ".grid",
    "epsg_of": ".crsid", "extent_in": ".grid", "parse_sr": ".grid",
    "default_grid": ".regrid", "default_resolution": ".regrid", "reproject_point": ".regrid",
    "reproject_bounds": ".grid", "sr_json": ".grid", "target_grid": ".grid", "unnamed_warning": ".crsid",
    "SPATIAL_RELATIONS": ".geometry", "clockwise_rings": ".geometry",
    "geometry_from_json": ".esrijson:from_json", "ordered_corners": ".esrijson", "points_to_crs": ".geometry",
    "sample_points": ".geometry", "to_crs": ".geometry", "MAX_COORDINATE": ".bounded",
    "bounded_json": ".bounded:loads", "check_coordinates": ".bounded", "check_epoch_ms": ".bounded",
    "json_number": ".esrijson:number",
    # the catalog: items, fields, where clauses, file facts
    "BUILTIN_FIELDS": ".catalog", "GEOMETRY": ".catalog", "Catalog": ".catalog", "Item": ".catalog",
    "check_attributes": ".catalog", "compile_where": ".where", "where_of": ".query", "iso_to_epoch_ms": ".catalog",
    "data_band_indexes": ".rasterinfo", "read_files": ".rasterinfo",
    # tiles: caches, stores and seeding
    "TILE_FORMATS": ".tiles:FORMATS", "TILE_MIME": ".tiles:MIME", "TileSetLimits": ".tms", "blank_tile": ".tiles:blank",
    "fill_block": ".tiles", "known_identifiers": ".tms", "standard_tile_set": ".tms:standard",
    "tile_block_size": ".tiles:block_size", "tile_generation": ".tiles:generation", "time_key": ".timesnap",
    "StoredTile": ".tilecache", "TileStore": ".tilecache", "S3TileStore": ".tilecache_s3",
    "tile_etag": ".tilecache:etag",
    "FolderBound": ".sizebound", "bounded_tile_store": ".sizebound",
    # operations: sources, S3, overviews, admission of heavy requests, observers
    "check_sources_reachable": ".sources:check_reachable", "expand_sources": ".sources:expand", "is_remote": ".sources",
    "source_exists": ".sources:exists", "configure_s3_gdal": ".s3:configure_gdal", "s3_client": ".s3:client",
    "split_s3_url": ".s3:split", "build_overviews": ".overviews:build", "needs_overviews": ".overviews",
    "configure_admission": ".admission:configure", "install_observer": ".observe:install",
    "report_observation": ".observe:report",
}

__all__ = list(_API)


def __getattr__(name: str) -> Any:
    where = _API.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, _, attr = where.partition(":")
    value = getattr(importlib.import_module(module, __name__), attr or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
