"""The one raster engine: catalog, mosaic, read, raster functions, encoders. Never imports Flask.

This package is the engine's public API: the faces (REST, OGC, publishing, security), the CLI and
the tools import from `ogc_gateway.engine` only, never from its modules (tests/test_architecture.py).
The engine's own modules import their siblings directly and never this package, so the package
makes no cycle. A name is imported from its module when first used (PEP 562): importing the API
costs nothing (the CLI starts as fast as before) and a process loads only the engine it uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # The same names for the type checker only (at run time they load lazily, below), so that mypy
    # checks the faces against the engine's real types, not __getattr__'s Any; kept in step with _API
    # by tests/test_architecture.py. `from m import a as a` exports a name; a renamed one (`from m import
    # a as b`) is exported by naming it in __all__ (at run time __all__ is list(_API), which has it).
    from .admission import configure as configure_admission
    from .bounded import MAX_COORDINATE as MAX_COORDINATE
    from .bounded import check_coordinates as check_coordinates
    from .bounded import check_epoch_ms as check_epoch_ms
    from .bounded import loads as bounded_json
    from .catalog import BUILTIN_FIELDS as BUILTIN_FIELDS
    from .catalog import GEOMETRY as GEOMETRY
    from .catalog import Catalog as Catalog
    from .catalog import Item as Item
    from .catalog import check_attributes as check_attributes
    from .catalog import drop_store as drop_store
    from .catalog import iso_to_epoch_ms as iso_to_epoch_ms
    from .crsid import epsg_of as epsg_of
    from .crsid import unnamed_warning as unnamed_warning
    from .encode import Encoded as Encoded
    from .encode import encode as encode_raster
    from .errors import ConfigError as ConfigError
    from .errors import GatewayError as GatewayError
    from .errors import InvalidParameter as InvalidParameter
    from .errors import NotFound as NotFound
    from .errors import TooLarge as TooLarge
    from .esrijson import from_json as geometry_from_json
    from .esrijson import number as json_number
    from .esrijson import ordered_corners as ordered_corners
    from .export import export as export_raster
    from .export import rule_distribution as rule_distribution
    from .export import service_signature as service_signature
    from .functions import BandDistribution as BandDistribution
    from .functions import check_template as check_template
    from .functions import is_known as is_known
    from .functions import is_raw as is_raw
    from .functions import parse_rendering_rule as parse_rendering_rule
    from .functions import signature as signature
    from .functions.rft import read_template as read_template
    from .functions.schema import ArgError as ArgError
    from .geometry import SPATIAL_RELATIONS as SPATIAL_RELATIONS
    from .geometry import clockwise_rings as clockwise_rings
    from .geometry import points_to_crs as points_to_crs
    from .geometry import sample_points as sample_points
    from .geometry import to_crs as to_crs
    from .grid import axis_inverted as axis_inverted
    from .grid import crs_from_ogc as crs_from_ogc
    from .grid import crs_from_wkid as crs_from_wkid
    from .grid import extent_in as extent_in
    from .grid import parse_sr as parse_sr
    from .grid import reproject_bounds as reproject_bounds
    from .grid import sr_json as sr_json
    from .grid import target_grid as target_grid
    from .iteminfo import describe_item as describe_item
    from .kernels import prepare as prepare_kernels
    from .legend import Legend as Legend
    from .legend import draw as draw_legend
    from .legend import legend as build_legend
    from .maps import EncodeOptions as EncodeOptions
    from .maps import MapRequest as MapRequest
    from .maps import encode_map as encode_map
    from .maps import render_image as render_image
    from .maps import render_map as render_map
    from .multidim import Dimension as Dimension
    from .multidim import Multidimensional as Multidimensional
    from .multidim import Slice as Slice
    from .names import MOSAIC_SHORT as MOSAIC_SHORT
    from .names import RESAMPLING_ARCGIS as RESAMPLING_ARCGIS
    from .names import Compression as Compression
    from .names import MosaicMethod as MosaicMethod
    from .names import OutputFormat as OutputFormat
    from .names import Resampling as Resampling
    from .names import canonical_mosaic_method as canonical_mosaic_method
    from .names import canonical_mosaic_operation as canonical_mosaic_operation
    from .names import canonical_resampling as canonical_resampling
    from .observe import install as install_observer
    from .observe import report as report_observation
    from .overviews import build as build_overviews
    from .overviews import needs_overviews as needs_overviews
    from .pointvalues import item_values_at as item_values_at
    from .query import QueryResult as QueryResult
    from .query import query as query_catalog
    from .query import where_of as where_of
    from .rasterinfo import BandStats as BandStats
    from .rasterinfo import read_files as read_files
    from .read import data_band_indexes as data_band_indexes
    from .regrid import default_grid as default_grid
    from .regrid import default_resolution as default_resolution
    from .regrid import reproject_point as reproject_point
    from .requests import PIXEL_TYPES as PIXEL_TYPES
    from .requests import CatalogQuery as CatalogQuery
    from .requests import DimensionSelection as DimensionSelection
    from .requests import ExportRequest as ExportRequest
    from .requests import Grid as Grid
    from .requests import MosaicRule as MosaicRule
    from .requests import Raster as Raster
    from .requests import RenderingRule as RenderingRule
    from .requests import SampleRequest as SampleRequest
    from .requests import TileRequest as TileRequest
    from .requests import TimeWindow as TimeWindow
    from .s3 import client as s3_client
    from .s3 import configure_gdal as configure_s3_gdal
    from .s3 import split as split_s3_url
    from .sample import get_samples as get_samples
    from .sample import identify as identify
    from .service import ImageService as ImageService
    from .service import ServiceInfo as ServiceInfo
    from .service import catalog_path as catalog_path
    from .service import open_catalog as open_catalog
    from .service import open_services as open_services
    from .settings import DEFAULT_OGC_CRS as DEFAULT_OGC_CRS
    from .settings import Attribution as Attribution
    from .settings import DimensionConfig as DimensionConfig
    from .settings import FunctionTemplate as FunctionTemplate
    from .settings import Limits as Limits
    from .settings import MetadataUrl as MetadataUrl
    from .settings import ServiceConfig as ServiceConfig
    from .settings import VariableConfig as VariableConfig
    from .sizebound import FolderBound as FolderBound
    from .sizebound import bounded_tile_store as bounded_tile_store
    from .sources import check_reachable as check_sources_reachable
    from .sources import exists as source_exists
    from .sources import expand as expand_sources
    from .sources import is_remote as is_remote
    from .statistics import raster_histograms as raster_histograms
    from .statistics import raster_statistics as raster_statistics
    from .statistics import region as region
    from .statistics import service_histograms as service_histograms
    from .tilecache import StoredTile as StoredTile
    from .tilecache import TileStore as TileStore
    from .tilecache import etag as tile_etag
    from .tilecache_s3 import S3TileStore as S3TileStore
    from .tiles import FORMATS as TILE_FORMATS
    from .tiles import MIME as TILE_MIME
    from .tiles import blank as blank_tile
    from .tiles import block_size as tile_block_size
    from .tiles import fill_block as fill_block
    from .tiles import generation as tile_generation
    from .tiles import get_tile as get_tile
    from .tiles import tile_sets as tile_sets
    from .timesnap import time_key as time_key
    from .tms import TileSetLimits as TileSetLimits
    from .tms import known_identifiers as known_identifiers
    from .tms import standard as standard_tile_set
    from .where import compile_where as compile_where

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
    "BandStats": ".rasterinfo", "data_band_indexes": ".read", "read_files": ".rasterinfo",
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
    "report_observation": ".observe:report", "prepare_kernels": ".kernels:prepare",
}

__all__ = list(_API)
if TYPE_CHECKING:   # the renamed names of the block above, which only __all__ exports
    __all__ += ["export_raster", "query_catalog", "encode_raster", "build_legend", "draw_legend", "geometry_from_json",
                "bounded_json", "json_number", "TILE_FORMATS", "TILE_MIME", "blank_tile", "standard_tile_set",
                "tile_block_size", "tile_generation", "tile_etag", "check_sources_reachable", "expand_sources",
                "source_exists", "configure_s3_gdal", "s3_client", "split_s3_url", "build_overviews",
                "configure_admission", "install_observer", "report_observation", "prepare_kernels"]


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
