"""Per-worker caches of what the faces build from an ImageService (an OGC layer, a WCS coverage,
the latest time of REST tiles): the engine holds no face objects.

An entry lives as long as its service object and is keyed by the catalog generation that service
describes, so a service rebuilt on a changed catalog (gateway.py) builds its own.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_guard = threading.Lock()
_memos: weakref.WeakKeyDictionary[Any, tuple[threading.RLock, dict[tuple[str, int], Any]]] = \
    weakref.WeakKeyDictionary()


def face_cached(service: Any, key: str, compute: Callable[[], T]) -> T:
    """`compute()` once per (service, its catalog generation, key); a computation may ask for another."""
    with _guard:
        lock, memo = _memos.setdefault(service, (threading.RLock(), {}))
    with lock:
        entry = (key, service.generation)
        if entry not in memo:
            memo[entry] = compute()
        return memo[entry]
