"""YAML configuration -> typed, validated config objects.

Validation is strict and complete: every problem is reported (file, key path, what is wrong, the
nearest valid key), and nothing is built from a config that has one. The settings the engine works
from are its own dataclasses (engine/settings.py); this package only reads YAML and builds them.

Modules: `model` (server-level dataclasses), `loading` (YAML, the whole document), `values` (the
shared checks), one module per section family (`server`, `services`, `ogc_metadata`,
`raster_functions`, `multidim`) and `folder` (`serve DIR`, services of the publishing API).
Every name callers import from `ogc_gateway.config` is exported here.
"""

from ..engine import (
    DEFAULT_OGC_CRS,
    Attribution,
    ConfigError,
    DimensionConfig,
    FunctionTemplate,
    Limits,
    MetadataUrl,
    ServiceConfig,
    VariableConfig,
)
from ..security.settings import SecurityConfig
from .folder import RASTER_SUFFIXES, SERVER_PATH_KEYS, config_for_folder, ncname, published_service
from .loading import config_from_dict, config_problems, load_config
from .model import Config, Contact, ServerConfig
from .multidim import DIMENSION_KEYS, RESERVED_DIMENSIONS, STANDARD_DIMENSIONS, VARIABLE_KEYS
from .ogc_metadata import ATTRIBUTION_KEYS, CONTACT_KEYS, METADATA_URL_KEYS
from .raster_functions import RFT_FILE_KEYS, TEMPLATE_FILE_KEYS, TEMPLATE_KEYS
from .server import CACHE_DIR_NAME, SERVER_KEYS
from .services import REMOTE_SOURCES, SERVICE_KEYS, TILE_SCHEMES
from .values import LIMIT_KEYS

__all__ = [
    "ATTRIBUTION_KEYS", "CACHE_DIR_NAME", "CONTACT_KEYS", "DEFAULT_OGC_CRS", "DIMENSION_KEYS", "LIMIT_KEYS",
    "METADATA_URL_KEYS", "RASTER_SUFFIXES", "REMOTE_SOURCES", "RESERVED_DIMENSIONS", "RFT_FILE_KEYS",
    "SERVER_KEYS", "SERVER_PATH_KEYS", "SERVICE_KEYS", "STANDARD_DIMENSIONS", "TEMPLATE_FILE_KEYS",
    "TEMPLATE_KEYS", "TILE_SCHEMES", "VARIABLE_KEYS",
    "Attribution", "Config", "ConfigError", "Contact", "DimensionConfig", "FunctionTemplate", "Limits",
    "MetadataUrl", "SecurityConfig", "ServerConfig", "ServiceConfig", "VariableConfig",
    "config_for_folder", "config_from_dict", "config_problems", "load_config", "ncname", "published_service",
]
