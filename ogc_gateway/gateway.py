"""The per-app state every face reaches: config, services, output files, the advertised base URL."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from flask import current_app, request

from .config import Config
from .engine.errors import NotFound
from .engine.service import ImageService
from .engine.tilecache import DiskTileStore


@dataclass
class Gateway:
    config: Config
    services: dict[str, ImageService]

    @property
    def output_dir(self) -> Path:
        return self.config.server.cache_dir / "output"

    @cached_property
    def tile_store(self) -> DiskTileStore:
        """The tile cache every face and the seeding program share."""
        return DiskTileStore(self.config.server.cache_dir / "tiles")

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
