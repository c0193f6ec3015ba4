"""The request limits an OGC face applies: those of the services asked for, as configured.

A service's limits are resolved once, by the config (`server:` values overridden by the service's
own keys), and carried by the engine's ImageService (`info.limits`), which REST and the engine's own
checks read. The OGC faces read them here, never `config.server.limits`, so every face refuses the
same request of the same service; a request (or a document) naming several services gets the
strictest of their limits, which each of them accepts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields, replace

from ..engine import ImageService, Limits


def strictest(services: Iterable[ImageService]) -> Limits:
    """Each limit's smallest value over `services` (one service: its own limits)."""
    every = [service.info.limits for service in services]
    if not every:
        raise ValueError("no service to take limits from")
    return replace(every[0], **{f.name: min(getattr(limits, f.name) for limits in every) for f in fields(Limits)})
