"""The per-app state every face reaches: config, services, output files, the advertised base URL."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from flask import current_app, g, has_request_context, request

from .config import Config
from .engine.errors import ConfigError, NotFound
from .engine.service import ImageService
from .engine.tilecache import TileStore
from .storage import output_store, tile_store

log = logging.getLogger("ogc_gateway")


@dataclass
class Gateway:
    config: Config
    registry: dict[str, ImageService]

    @property
    def services(self) -> dict[str, ImageService]:
        """The services by name, each current with its catalog: once per request, a service whose
        catalog another process changed (`ogc-gateway catalog ...`) is rebuilt, so a running
        server sees new and removed items without a restart."""
        if has_request_context() and not g.get("_ogc_gateway_checked"):
            g._ogc_gateway_checked = True
            self.refresh()
        return self.registry

    def refresh(self) -> None:
        """Rebuild the services whose catalog generation moved on (one indexed read each)."""
        for name, svc in list(self.registry.items()):
            if svc.catalog.last_change() != svc.generation:
                try:
                    self.registry[name] = svc.reopened()
                except ConfigError as exc:         # keep serving what was there
                    log.error("%s: the changed catalog cannot be served: %s", name, "; ".join(exc.problems))

    @property
    def output_dir(self) -> Path:
        return self.config.server.cache_dir / "output"

    @cached_property
    def outputs(self):
        """Where f=json output files are written and served from (cache_dir, or cache_url's S3)."""
        return output_store(self.config)

    @cached_property
    def tile_store(self) -> TileStore:
        """The tile cache every face and the seeding program share (cache_dir, or cache_url's S3)."""
        return tile_store(self.config)

    def service(self, name: str) -> ImageService:
        svc = self.services.get(name)
        if svc is None:
            raise NotFound("Service not found.", details=[f"There is no image service named {name!r}."])
        return svc

    def base_url(self) -> str:
        """Scheme, host and path prefix for hrefs: public_url when set, else the request's own."""
        if self.config.server.public_url:
            return self.config.server.public_url.rstrip("/")
        return request.host_url.rstrip("/") + request.script_root


def gateway() -> Gateway:
    return current_app.extensions["ogc_gateway"]
