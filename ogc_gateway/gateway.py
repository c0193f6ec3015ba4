"""The per-app state every face reaches: config, services, output files, the advertised base URL."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from flask import current_app, g, has_request_context, request

from .config import Config
from .engine import ConfigError, ImageService, NotFound, TileStore
from .publish.services import PublishedServices
from .storage import output_store, tile_store

log = logging.getLogger("ogc_gateway")


@dataclass
class Gateway:
    config: Config
    registry: dict[str, ImageService]
    _published_stamp: int = field(default=-1, repr=False)

    def __post_init__(self) -> None:
        self._refresh_published()

    @property
    def services(self) -> dict[str, ImageService]:
        """The services by name, each current with its catalog: once per request, a service whose
        catalog another process changed (`ogc-gateway catalog ...`) is rebuilt, so a running
        server sees new and removed items without a restart. With a `security` section, only those
        the caller may use (security/web.py): lists and combined endpoints never show the others.
        `registry` holds them all."""
        if has_request_context() and not g.get("_ogc_gateway_checked"):
            g._ogc_gateway_checked = True
            self.refresh()
        if has_request_context() and current_app.extensions.get("ogc_gateway.security") is not None:
            from .security.caller import visible_names  # only what this caller may see (identity and access)
            return {name: self.registry[name] for name in visible_names(self.registry)}
        return self.registry

    def refresh(self) -> None:
        """Rebuild the services whose catalog generation moved on (one indexed read each), and
        follow the services published over HTTP (one `stat`)."""
        self._refresh_published()
        for name, svc in list(self.registry.items()):
            if svc.catalog.last_change() != svc.generation:
                try:
                    self.registry[name] = svc.reopened()
                except ConfigError as exc:         # keep serving what was there
                    log.error("%s: the changed catalog cannot be served: %s", name, "; ".join(exc.problems))

    def access_of(self, name: str):
        """A service's `access` key (security/), for configured and published services alike."""
        svc = self.registry.get(name)
        if svc is not None:
            return svc.config.access
        configured = self.config.services.get(name)
        return configured.access if configured else None

    @cached_property
    def published(self) -> PublishedServices:
        return PublishedServices(self.config)

    def _refresh_published(self) -> None:
        """Services created, edited or deleted through the publishing API, by any worker."""
        stamp = self.published.stamp()
        if stamp == self._published_stamp:
            return
        self._published_stamp = stamp
        fresh = self.published.configs()
        for name in [n for n in self.registry if n not in self.config.services and n not in fresh]:
            del self.registry[name]
        for name, svc in fresh.items():
            old = self.registry.get(name)
            if old is None or old.config != svc:
                try:
                    self.registry[name] = self.published.open(svc)
                except ConfigError as exc:
                    log.error("published service %s cannot be served: %s", name, "; ".join(exc.problems))

    @property
    def output_dir(self) -> Path:
        return self.config.server.cache_dir / "output"

    @cached_property
    def tile_store(self) -> TileStore:
        """The tile cache every face and the seeding program share (cache_dir within
        tile_cache_max_bytes, or cache_url's S3)."""
        return tile_store(self.config)

    @cached_property
    def outputs(self):
        """Where f=json output files are written and served from (cache_dir within output_max_bytes,
        or cache_url's S3)."""
        return output_store(self.config)

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
