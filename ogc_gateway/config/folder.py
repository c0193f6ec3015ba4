"""Configurations not read from a YAML file: `serve DIR` (each raster sub-folder a service) and
the services of the publishing API, built by the same validators as `services:` entries."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..engine import ConfigError, ServiceConfig
from .loading import build
from .model import Config, ServerConfig
from .services import SERVICE_KEYS, check_service_name, service_section
from .values import Checker

RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".jp2")

# Keys that name files on the server: a service published over HTTP gets its sources from its
# uploads, and may not point at other files of the server.
SERVER_PATH_KEYS = ("sources", "catalog", "seamlines")


def published_service(name: str, raw: Any, server: ServerConfig, sources: tuple[str, ...],
                      label: str = "service") -> ServiceConfig:
    """A service of the publishing API (`createService`, `edit`, a stored definition) built by the
    validator of `services:` entries, so its errors read the same (`service: services.NAME.key:
    ...`); `sources` are its rasters' files. Raises ConfigError listing every problem."""
    check = Checker(label, server.cache_dir)
    where = f"services.{name}"
    check_service_name(check, name, where)
    if not isinstance(raw, dict):
        check.problem(where, "must be a JSON object of service keys")
        raise ConfigError(check.problems)
    for key in SERVER_PATH_KEYS:
        if key in raw:
            check.problem(f"{where}.{key}", "not available to a published service (its rasters are "
                                            "its uploads)")
    templates = raw.get("raster_functions")
    for i, entry in enumerate(templates if isinstance(templates, list) else []):
        if isinstance(entry, str) and entry.lower().endswith(".json"):
            check.problem(f"{where}.raster_functions[{i}]", "template files are not available to a "
                                                          "published service; give the template inline")
    body = {k: v for k, v in raw.items() if k not in SERVER_PATH_KEYS}
    service = service_section(check, name, check.mapping({**body, "sources": list(sources)}, where, SERVICE_KEYS),
                              where, server)
    if check.problems:
        raise ConfigError(check.problems)
    return service


def config_for_folder(folder: Path, cache_dir: Path) -> tuple[Config, dict[str, str]]:
    """A configuration serving each raster-holding sub-folder of `folder` as a service.

    Returns the config and the mapping sub-folder -> service name, which `serve DIR` prints because
    the names may differ from the folders (NCName rules)."""
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise ConfigError([f"{folder}: not a folder"])
    services: dict[str, Any] = {}
    mapping: dict[str, str] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        suffixes = sorted({f.suffix for f in sub.rglob("*")
                           if f.is_file() and f.suffix.lower() in RASTER_SUFFIXES})
        if not suffixes:
            continue
        name = _unique(ncname(sub.name), services)
        service: dict[str, Any] = {"title": sub.name,
                                   "sources": [str(sub / "**" / f"*{s}") for s in suffixes]}
        if (sub / "catalog.csv").is_file():
            service["catalog"] = str(sub / "catalog.csv")
        services[name] = service
        mapping[sub.name] = name
    if not services:
        raise ConfigError([f"{folder}: no sub-folder holds rasters "
                           f"({', '.join('*' + s for s in RASTER_SUFFIXES)})"])
    raw = {"server": {"title": folder.name, "cache_dir": str(Path(cache_dir).resolve())},
           "services": services}
    config, problems = build(Checker(str(folder), folder), raw)
    if problems or config is None:          # no config comes without a problem
        raise ConfigError(problems)
    return config, mapping


def ncname(text: str) -> str:
    """`text` made a valid service name: invalid characters -> '_', '_' before a leading non-letter."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", text) or "_"
    return name if re.match(r"[A-Za-z_]", name) else "_" + name


def _unique(name: str, taken: dict[str, Any]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    return candidate
