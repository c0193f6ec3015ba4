"""Admission control for heavy requests (issue 15, item 4): bounded per worker and per host.

Why: twenty parallel 4000 x 4000 hillshades made tiles and capabilities wait 34-60 s. A request is
heavy when its grid holds at least `heavy_request_pixels` cells or its rendering rule is estimated to
take a second or more. Each worker runs at most `per_worker` heavy requests at once and lets at most
`waiting` more wait for a turn (the rest are refused at once with "busy, retry", so waiting requests
never take every thread from the cheap ones); across processes on the host at most `per_host` run at
once, counted with one lock file per slot in the cache folder (fcntl locks vanish with their process,
so a killed worker never leaks a slot).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import IO

from .errors import GatewayError

_inside: ContextVar[bool] = ContextVar("ogc_gateway_admitted", default=False)


class Busy(GatewayError):
    """Too many heavy requests run already; the client should retry later."""

    http_status = 503


class Admission:
    def __init__(self, slots_dir: Path | None = None, per_worker: int = 1, per_host: int | None = None,
                 heavy_pixels: int = 2048 * 2048, waiting: int = 1):
        self.slots_dir = Path(slots_dir) if slots_dir else None
        self.per_host = per_host or os.cpu_count() or 1
        self.heavy_pixels = heavy_pixels
        self.waiting = waiting
        self._worker = threading.BoundedSemaphore(per_worker)
        self._guard = threading.Lock()
        self._queued = 0

    def heavy(self, pixels: int, seconds: float) -> bool:
        return pixels >= self.heavy_pixels or seconds >= 1.0

    @contextmanager
    def admit(self, pixels: int, seconds: float, patience: float) -> Iterator[None]:
        """Run the block as one admitted request (nested calls of an admitted request pass)."""
        if _inside.get() or not self.heavy(pixels, seconds):
            yield
            return
        until = time.monotonic() + patience
        self._enter_worker(patience)
        try:
            slot = self._host_slot(until)
            token = _inside.set(True)
            try:
                yield
            finally:
                _inside.reset(token)
                if slot is not None:
                    fcntl.flock(slot, fcntl.LOCK_UN)
                    slot.close()
        finally:
            self._worker.release()

    def _enter_worker(self, patience: float) -> None:
        if self._worker.acquire(blocking=False):
            return
        with self._guard:
            if self._queued >= self.waiting:
                raise _busy()
            self._queued += 1
        try:
            if not self._worker.acquire(timeout=patience):
                raise _busy()
        finally:
            with self._guard:
                self._queued -= 1

    def _host_slot(self, until: float) -> IO[bytes] | None:
        if self.slots_dir is None:
            return None
        self.slots_dir.mkdir(parents=True, exist_ok=True)
        while True:
            for n in range(self.per_host):
                handle = open(self.slots_dir / f"slot-{n}.lock", "a+b")
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return handle
                except BlockingIOError:
                    handle.close()
            if time.monotonic() > until:
                raise _busy()
            time.sleep(0.05)


def _busy() -> Busy:
    return Busy("The server is busy with other large requests; retry in a little while.",
                details=["the server is busy: too many heavy requests run at once (max_heavy_per_worker, "
                         "max_heavy_per_host); retry in a little while"])


#: The process's admission; create_app configures it from the server settings.
ADMISSION = Admission()


def configure(slots_dir: Path | None, per_worker: int, per_host: int | None, heavy_pixels: int) -> None:
    """The server's admission: a worker runs `per_worker + 1` request threads (asgi.py), so a heavy
    request beyond those running is refused at once (waiting=0) rather than holding the thread the
    cheap requests need."""
    global ADMISSION
    ADMISSION = Admission(slots_dir, per_worker, per_host, heavy_pixels, waiting=0)


def admit(pixels: int, seconds: float, patience: float) -> AbstractContextManager[None]:
    return ADMISSION.admit(pixels, seconds, patience)


def heavy(pixels: int, seconds: float) -> bool:
    return ADMISSION.heavy(pixels, seconds)
