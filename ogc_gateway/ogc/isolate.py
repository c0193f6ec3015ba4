"""Combined OGC endpoints (/ogc/wms, /ogc/wcs, /ogc/wmts) describe every service at once: one
service that cannot be described (a CRS no document can name, a file PROJ cannot place) is left
out with a log line, so it never takes the others down with it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TypeVar

S = TypeVar("S")
T = TypeVar("T")
log = logging.getLogger(__name__)


def each_service(services: Mapping[str, S], build: Callable[[S], T]) -> dict[str, T]:
    """`build(service)` for every service, by name; a service whose build fails is left out."""
    out: dict[str, T] = {}
    for name, service in services.items():
        try:
            out[name] = build(service)
        except Exception:
            log.exception("service %s is left out of the combined OGC endpoints", name)
    return out
