"""HTTP caching of tiles, shared by the WMTS face and the ImageServer tile resource: validators from
the stored file, a configurable freshness, and 304 answers to conditional requests."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

from flask import Response, request

from .engine import StoredTile

LEARNED = "ogc_gateway.cached_tile"    # environ key: the file a tile was served from (tilefast.py)


def http_date(mtime: float) -> str:
    return format_datetime(datetime.fromtimestamp(mtime, UTC), usegmt=True)


def cacheable(resp: Response, stored: StoredTile, max_age: int, blank: bytes | None = None) -> Response:
    """ETag and Last-Modified of the stored tile and Cache-Control for browsers and proxies; a
    matching If-None-Match / If-Modified-Since gets a 304 without a body. A tile read from a file is
    also marked for the cached-tile lean path (tilefast.py), with `blank`, the picture a tile without
    data is answered with (None: such a tile is not answered there)."""
    resp.headers["ETag"] = stored.etag
    if stored.mtime:
        resp.headers["Last-Modified"] = http_date(stored.mtime)
    resp.headers["Cache-Control"] = f"public, max-age={max_age}"
    if stored.path is not None and (blank is not None or not stored.empty):
        request.environ[LEARNED] = (str(stored.path), blank)
    return resp.make_conditional(request)
