"""Fewer malloc arenas in a server process.

glibc gives threads that allocate at once arenas of their own (up to eight per core); memory one
request thread frees in its arena is not reused by another's, so a worker's resident size creeps up
with its threads (request threads, GDAL's). Two arenas kept the peers benchmark's workers 25 MiB
smaller (benchmarks/README.md), with no measurable cost in speed: light renders take turns anyway
(engine/turns.py), so the threads seldom allocate at the same moment.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_ARENA_MAX = -8        # glibc's mallopt parameter number


def fewer_arenas(arenas: int = 2) -> bool:
    """At most `arenas` malloc arenas in this process from now on; False where that cannot be
    said (not glibc: musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False
