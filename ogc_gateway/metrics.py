"""Prometheus metrics of the gateway (prometheus_client), in multiprocess mode under gunicorn.

`ogc-gateway serve` points PROMETHEUS_MULTIPROC_DIR at a fresh folder before any worker starts
(`ogc_gateway.gunicorn_hooks`), so every worker writes its samples there and `/metrics`, whichever
worker answers it, reports the sum over all of them. Without that variable (tests, a single
process) the default registry is reported.

prometheus_client is imported lazily, on first use in a worker: it chooses between in-memory and
multiprocess values when it is imported, which must happen after the variable is set.
"""

from __future__ import annotations

import os
import threading
from types import SimpleNamespace

# seconds: from a cached tile (milliseconds) to a large export (the worker timeout is 120 s)
DURATION_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
ITEM_BUCKETS = (0, 1, 2, 3, 5, 10, 20, 50, 100)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


_made: list[SimpleNamespace] = []
_lock = threading.Lock()


def metrics() -> SimpleNamespace:
    """The metric objects of this process, created once — under a lock: a worker's first requests
    arrive on several threads at once, and a second registration of a name is an error."""
    if not _made:
        with _lock:
            if not _made:
                _made.append(_create())
    return _made[0]


def _create() -> SimpleNamespace:
    from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

    disable_created_metrics()                  # no *_created series: they double what a scrape carries
    return SimpleNamespace(
        requests=Counter("ogc_gateway_requests", "HTTP requests answered, by face, operation and status.",
                         ["face", "operation", "status"]),
        duration=Histogram("ogc_gateway_request_duration_seconds",
                           "Time from receiving a request to sending the last byte of its answer.",
                           ["face", "operation"], buckets=DURATION_BUCKETS),
        tile_hits=Counter("ogc_gateway_tile_cache_hits", "Tiles answered from the tile cache."),
        tile_misses=Counter("ogc_gateway_tile_cache_misses", "Tiles not in the tile cache (rendered)."),
        render=Histogram("ogc_gateway_render_seconds", "Engine time of one export (an image or a metatile).",
                         buckets=DURATION_BUCKETS),
        items_read=Histogram("ogc_gateway_items_read", "Catalog items read by one mosaic.",
                             buckets=ITEM_BUCKETS),
        generation=Gauge("ogc_gateway_catalog_generation",
                         "Generation of each service's catalog (milliseconds since the epoch of its last change).",
                         ["service"], multiprocess_mode="max"),
    )


def observe_engine(name: str, value: float) -> None:
    """The observer the app installs into `engine.observe`."""
    m = metrics()
    if name == "tile_cache_hit":
        m.tile_hits.inc(value)
    elif name == "tile_cache_miss":
        m.tile_misses.inc(value)
    elif name == "render_seconds":
        m.render.observe(value)
    elif name == "items_read":
        m.items_read.observe(value)


def observe_request(face: str, operation: str, status: int, seconds: float) -> None:
    m = metrics()
    m.requests.labels(face, operation, str(status)).inc()
    m.duration.labels(face, operation).observe(seconds)


def set_generations(generations: dict[str, int]) -> None:
    gauge = metrics().generation
    for service, generation in generations.items():
        gauge.labels(service).set(generation)


def exposition() -> tuple[bytes, str]:
    """The text exposition (body, content type) over every worker of this server."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    metrics()                                  # every metric appears, at 0, from the first scrape
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
