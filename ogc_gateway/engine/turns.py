"""Light renders take turns in a process, instead of fighting over the GIL.

Why: a worker runs two request threads (asgi.py), but Python runs one of them at a time. Two
renders at once do not go faster; they go slower: numpy lets go of the GIL around every large array
operation, the other thread takes it, and the pair hand it back and forth hundreds of times a
request. Two 256 x 256 GetMaps in one process cost 6.8 ms of CPU each that way, against 5.3 ms one
after the other (benchmarks/README.md). So a light render holds the process's turn while it computes
and gives it up while it waits on a read (`waiting`), when another thread may compute; a heavy
request (engine/admission.py: at most one per worker already) does not take turns, so it never
holds the light ones up for seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_turn = threading.Lock()
_mine = threading.local()        # .held: this thread holds the turn


@contextmanager
def light() -> Iterator[None]:
    """Compute the block in the process's turn (nested blocks of the same thread pass)."""
    if getattr(_mine, "held", False):
        yield
        return
    with _turn:
        _mine.held = True
        try:
            yield
        finally:
            _mine.held = False


@contextmanager
def waiting() -> Iterator[None]:
    """Give the turn up around a block that waits (a read from disk or the network)."""
    if not getattr(_mine, "held", False):
        yield
        return
    _turn.release()
    _mine.held = False
    try:
        yield
    finally:
        _turn.acquire()
        _mine.held = True
