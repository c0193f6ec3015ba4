"""Bad source files are left out, not fatal (issue 15, item 8).

Why: one corrupt, empty or unrecognised file among thousands stopped every service from starting, and a
file that went bad while serving turned every request that touched it into a 500. The catalog sync skips
such a file with one warning naming it; a read that fails leaves the item out of that mosaic and logs
it (at most once a minute per file, so a busy server's log is not flooded).
"""

from __future__ import annotations

import logging
import threading
import time

from rasterio._err import CPLE_BaseError
from rasterio.errors import RasterioError

log = logging.getLogger("ogc_gateway.sources")

#: What GDAL/rasterio raise for a file that cannot be opened, read or reprojected.
BAD_FILE_ERRORS = (RasterioError, CPLE_BaseError, OSError, ValueError)

_QUIET_SECONDS = 60.0
_last: dict[str, float] = {}
_lock = threading.Lock()


def left_out(path: str, exc: BaseException) -> None:
    """Log that `path` was left out of a request because it could not be read."""
    now = time.monotonic()
    with _lock:
        if now - _last.get(path, -_QUIET_SECONDS) < _QUIET_SECONDS:
            return
        _last[path] = now
    log.warning("%s: could not be read (%s); left out of the mosaic", path, exc)
