"""Counts and timings the engine reports to whoever listens, without importing any of it.

The engine calls `report(name, value)` at a few points (a tile cache hit or miss, the seconds an
export took, the items a mosaic read); the app installs an observer (`ogc_gateway.metrics` turns
them into Prometheus metrics). With no observer installed a report costs one empty loop, so the
seeder and the CLI pay nothing.

Names reported:
    tile_cache_hit, tile_cache_miss   value 1 per tile asked for
    render_seconds                    wall time of one `export` (an image or a metatile)
    items_read                        catalog items read (warped) by one mosaic
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Observer = Callable[[str, float], None]

log = logging.getLogger("ogc_gateway.observe")
_observers: list[Observer] = []


def install(observer: Observer) -> None:
    """Add an observer (once; installing the same one again does nothing)."""
    if observer not in _observers:
        _observers.append(observer)


def uninstall(observer: Observer) -> None:
    if observer in _observers:
        _observers.remove(observer)


def report(name: str, value: float = 1.0) -> None:
    """Tell every observer; an observer's failure is logged, never the request's."""
    for observer in _observers:
        try:
            observer(name, value)
        except Exception:  # noqa: BLE001 - metrics must not break a request
            log.exception("observer failed on %s", name)


@contextmanager
def timed(name: str) -> Iterator[None]:
    """Report the seconds the block took (also when it raised)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        report(name, time.perf_counter() - start)
