"""Services created over HTTP: definitions under `cache_dir/published`, rasters in `data_dir/NAME`.

A definition file `NAME.json` holds the service object as the client sent it (the keys of a
`services:` entry); it is written last when a service is created and removed first when it is
deleted, so a service is either whole or absent. `.generation` changes with every create, edit and
delete: each worker compares its stamp once per request (one `stat`) and reloads the set.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Config, ServiceConfig, published_service
from ..engine import (
    Catalog,
    ConfigError,
    ImageService,
    InvalidParameter,
    NotFound,
    build_overviews,
    catalog_path,
    drop_store,
    open_catalog,
)

log = logging.getLogger("ogc_gateway.publish")


class PublishedServices:
    def __init__(self, config: Config):
        self.config = config
        self.root = config.server.cache_dir / "published"
        self.data_dir = config.server.published_data_dir

    # ---- what every worker reads -------------------------------------------------------------------

    def stamp(self) -> int:
        """Changes whenever the set of published services or a definition changes."""
        try:
            return (self.root / ".generation").stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.json"))

    def definition(self, name: str) -> dict:
        try:
            return json.loads((self.root / f"{name}.json").read_text())
        except (OSError, ValueError):
            raise NotFound("Service not found.", details=[f"There is no published service {name!r}."]) from None

    def service_config(self, name: str, raw: dict | None = None) -> ServiceConfig:
        raw = self.definition(name)["service"] if raw is None else raw
        return published_service(name, raw, self.config.server, (str(self.data_dir / name / "*"),))

    def configs(self) -> dict[str, ServiceConfig]:
        """Every published service's configuration. A definition that no longer validates (say, a
        key the server dropped) is logged and left out; a name the configuration file took since
        is the file's."""
        built = {}
        for name in self.names():
            if name in self.config.services:
                continue
            try:
                built[name] = self.service_config(name)
            except (ConfigError, NotFound) as exc:
                log.error("published service %s cannot be served: %s", name,
                          "; ".join(getattr(exc, "problems", None) or [str(exc)]))
        return built

    def open(self, svc: ServiceConfig) -> ImageService:
        """The service on the catalog its job built (no sync: the files are ours)."""
        return ImageService(svc, open_catalog(self.config, svc))

    # ---- changes (run as jobs) ---------------------------------------------------------------------

    def check_new(self, name: Any, raw: Any, files: list[Path]) -> ServiceConfig:
        """Refuse at once what a job would fail on: a bad or taken name, a bad service object."""
        if not isinstance(name, str) or not name:
            raise InvalidParameter("service", "the service object needs a 'name'")
        if name in self.config.services or (self.root / f"{name}.json").exists():
            raise InvalidParameter("service", f"a service named {name!r} exists already")
        return _validated(lambda: published_service(name, raw, self.config.server, tuple(map(str, files))))

    def create(self, name: str, raw: dict, files: list[Path], build_pyramids: bool,
               message: Callable[[str], None]) -> dict:
        """Copy (hard-link where possible) the files in, build the catalog, then write the definition.
        On any failure everything made so far is removed again."""
        folder = self.data_dir / name
        if folder.exists():              # left by a job whose worker was killed: no definition exists
            shutil.rmtree(folder)
        _remove_catalog(self.config, name)
        try:
            folder.mkdir(parents=True)
            placed = [place(f, folder) for f in files]
            if build_pyramids:
                for path in placed:
                    build_overviews(str(path))
            svc = self.service_config(name, raw)
            catalog = open_catalog(self.config, svc)
            catalog.sync()
            info = ImageService(svc, catalog).info
            message(f"{name}: {info.item_count} rasters, {info.band_count} band(s) of {info.dtype}")
            self._write(name, raw)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            _remove_catalog(self.config, name)
            raise
        return {"serviceName": name, "type": "ImageServer", "itemCount": info.item_count}

    def edit(self, name: str, raw: dict, message: Callable[[str], None]) -> dict:
        self.definition(name)
        svc = _validated(lambda: self.service_config(name, raw))
        open_catalog(self.config, svc).sync()      # a new time field re-derives the items
        self._write(name, raw)
        message(f"{name}: definition replaced")
        return {"serviceName": name, "type": "ImageServer"}

    def delete(self, name: str) -> None:
        """Definition first (the service is gone for every worker), then its catalog, rasters, tiles."""
        (self.root / f"{name}.json").unlink()
        self._bump()
        _remove_catalog(self.config, name)
        shutil.rmtree(self.data_dir / name, ignore_errors=True)
        shutil.rmtree(self.config.server.cache_dir / "tiles" / name, ignore_errors=True)

    def _write(self, name: str, raw: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{name}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps({"service": raw, "updated": time.time_ns() // 1_000_000}))
        os.replace(tmp, self.root / f"{name}.json")
        self._bump()

    def _bump(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        marker = self.root / ".generation"
        marker.touch()
        # Two changes within the file system's timestamp resolution must still differ.
        now = time.time_ns()
        stamp = max(now, marker.stat().st_mtime_ns + 1_000)
        os.utime(marker, ns=(stamp, stamp))


def place(source: Path, folder: Path) -> Path:
    """`source` in `folder` under its own name: a hard link when both are on one file system."""
    target = folder / source.name
    if target.exists():
        target = folder / f"{source.stem}_{uuid.uuid4().hex[:8]}{source.suffix}"
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
    return target


def sweep(folder: Path, catalog: Catalog, ttl_seconds: int) -> int:
    """Remove files of a data folder that no item names, once older than the uploads' time-to-live:
    what an `add` whose worker was killed between placing a file and cataloguing it left behind."""
    known = {path for _, _, _, path in catalog.entries()}
    cutoff = time.time() - ttl_seconds
    removed = 0
    for path in folder.iterdir():
        if path.is_file() and str(path) not in known and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _validated(build: Callable[[], ServiceConfig]) -> ServiceConfig:
    try:
        return build()
    except ConfigError as exc:
        raise InvalidParameter("service", "; ".join(exc.problems)) from None


def _remove_catalog(config: Config, name: str) -> None:
    if config.server.catalog_url:
        drop_store(config.server.catalog_url, name)
    db = catalog_path(config, name)
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        path.unlink(missing_ok=True)
