"""The WSGI app for people who run gunicorn (or another WSGI server) themselves:

    OGC_GATEWAY_CONFIG=/srv/gis/gateway.yaml gunicorn -c deploy/gunicorn.conf.py ogc_gateway.wsgi:app

Each worker imports this module after the fork, so each builds its own app (GDAL handles must not be
shared across a fork). Catalog synchronisation runs under a file lock in `cache_dir`: the first
worker syncs, the others wait and find nothing left to do.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from .config import load_config
from .engine import ConfigError

# Gunicorn's "worker failed to boot" status: the master stops instead of respawning workers that
# would fail the same way forever.
_BOOT_ERROR = 3


def _build():
    from . import logs
    from .app import create_app

    logs.configure_from_env()        # OGC_GATEWAY_LOG_LEVEL / OGC_GATEWAY_LOG_FORMAT (ogc_gateway/logs.py)
    config = load_config(os.environ.get("OGC_GATEWAY_CONFIG") or "gateway.yaml")
    if config.server.access_log:
        from .access import configure_logging

        configure_logging(config.server.access_log_format == "json")
    cache_dir = Path(config.server.cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / "sync.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return create_app(config, sync=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


try:
    app = _build()
except ConfigError as exc:
    print("\n".join(exc.problems), file=sys.stderr)
    sys.exit(_BOOT_ERROR)
except OSError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(_BOOT_ERROR)
