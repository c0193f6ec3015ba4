"""Gunicorn server hooks for Prometheus multiprocess metrics, used by `ogc-gateway serve` and
importable from a gunicorn config file:

    from ogc_gateway.gunicorn_hooks import on_starting, child_exit, on_exit

`on_starting` (in the master, before any worker exists) gives this run its own empty
PROMETHEUS_MULTIPROC_DIR unless one is set already (then that folder is used as it is; the
operator owns it); `child_exit` marks a dead worker's live gauges gone; `on_exit` removes the
folder it made. A folder from an earlier run is never reused: stale samples would be counted.

`QuietAccessLogger` is gunicorn's logger without its access log unless `accesslog` names one.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from gunicorn.glogging import Logger

from .metrics import MULTIPROC_ENV

_made: list[str] = []


def on_starting(server=None) -> None:
    if os.environ.get(MULTIPROC_ENV):
        os.makedirs(os.environ[MULTIPROC_ENV], exist_ok=True)
        return
    folder = tempfile.mkdtemp(prefix="ogc-gateway-metrics-")
    os.environ[MULTIPROC_ENV] = folder
    _made.append(folder)


def child_exit(server, worker) -> None:
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server=None) -> None:
    while _made:
        folder = _made.pop()
        shutil.rmtree(folder, ignore_errors=True)
        if os.environ.get(MULTIPROC_ENV) == folder:
            del os.environ[MULTIPROC_ENV]


class QuietAccessLogger(Logger):
    """gunicorn's logger, whose access log is on only when `accesslog` is set.

    Why: gunicorn counts its access log as on whenever a `logconfig_dict` is given (`serve` gives one
    for its error log), and then builds a WSGI environ, the atoms and a log record for every request,
    which nothing writes (the `gunicorn.access` logger has no handler; the app writes the access
    line itself, ogc_gateway/access.py): ~5 % of a worker's CPU on cached tiles (py-spy)."""

    @property
    def access_log_enabled(self) -> bool:
        return self.cfg.accesslog is not None

    def access(self, resp, req, environ, request_time) -> None:
        if self.cfg.accesslog is not None:
            super().access(resp, req, environ, request_time)
