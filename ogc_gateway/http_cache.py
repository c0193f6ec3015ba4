"""HTTP caching of tiles, shared by the WMTS face and the ImageServer tile resource: validators from
the stored file, a configurable freshness, and 304 answers to conditional requests."""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime

from flask import Response, request

from .engine.tilecache import StoredTile


def cacheable(resp: Response, stored: StoredTile, max_age: int) -> Response:
    """ETag and Last-Modified of the stored tile and Cache-Control for browsers and proxies; a
    matching If-None-Match / If-Modified-Since gets a 304 without a body."""
    resp.headers["ETag"] = stored.etag
    if stored.mtime:
        resp.headers["Last-Modified"] = format_datetime(datetime.fromtimestamp(stored.mtime, timezone.utc),
                                                        usegmt=True)
    resp.headers["Cache-Control"] = f"public, max-age={max_age}"
    return resp.make_conditional(request)
