"""The tile cache: rendered tiles kept in storage and served from there afterwards.

`TileStore` is the interface (get, put, a lock per metatile, clean-up); `DiskTileStore` keeps tiles
under `cache_dir/tiles` in a layout that survives restarts and that every gunicorn worker and the
seeding program share:

    {service}/{generation}/{tile matrix set}/{style}/{time}/{format}/{level}/{row}/{col}.{ext}

Writes are atomic (a temporary file renamed into place), so a reader never sees a torn tile; a
zero-length file records a tile without data, so it is not rendered again. The generation changes
when the service's catalog or its rendering configuration does: older generations are unreachable
at once and removed in the background.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

log = logging.getLogger("ogc_gateway.tiles")

EXTENSIONS = {"png": "png", "jpg": "jpg", "webp": "webp", "mixed": "img"}
_LOCK_BUCKETS = 4096          # lock files are shared by hash bucket: a bounded number of files


@dataclass(frozen=True, slots=True)
class TileKey:
    service: str
    generation: str
    tile_set: str
    style: str
    time: str
    format: str
    level: str
    row: int
    col: int

    @property
    def metatile_prefix(self) -> tuple[str, str, str, str, str, str, str]:
        return (self.service, self.generation, self.tile_set, self.style, self.time, self.format, self.level)


@dataclass(frozen=True, slots=True)
class StoredTile:
    data: bytes                  # b"": a tile without data
    mtime: float                 # seconds since the epoch, when it was written
    etag: str                    # strong validator, quoted
    path: Path | None = None     # the file it was read from (the lean path serves it again from there)

    @property
    def empty(self) -> bool:
        return not self.data


class TileStore(Protocol):
    """What the tile path needs of a store; a shared store (S3, Redis ...) implements the same."""

    def get(self, key: TileKey) -> StoredTile | None: ...

    def exists(self, key: TileKey) -> bool: ...

    def put(self, tiles: list[tuple[TileKey, bytes]]) -> None: ...

    def lock(self, key: TileKey, metatile: tuple[int, int, int, int]) -> AbstractContextManager[bool]: ...

    def clean(self, service: str, generation: str, tile_set: str | None = None, style: str | None = None,
              time: str | None = None, format: str | None = None, levels: set[str] | None = None) -> int: ...

    def forget_generations(self, service: str, keep: str) -> None: ...


def etag(st: os.stat_result) -> str:
    """A stored tile's strong validator, from its file's size and modification time."""
    return f'"{st.st_size:x}-{st.st_mtime_ns:x}"'


def _segment(text: str) -> str:
    """A key part as one safe path segment (no separators, no dot-names)."""
    return quote(text, safe="-_").replace(".", "%2E") or "%00"


class DiskTileStore:
    def __init__(self, root: Path, lock_timeout: float = 60.0):
        self.root = Path(root)
        self.lock_timeout = lock_timeout
        self._forgotten: set[tuple[str, str]] = set()
        self._guard = threading.Lock()

    @staticmethod
    def segment(text: str) -> str:
        """A key part as it is written in a path (a service's name as its folder's name)."""
        return _segment(text)

    def path(self, key: TileKey) -> Path:
        return (self.root / _segment(key.service) / _segment(key.generation) / _segment(key.tile_set)
                / _segment(key.style) / _segment(key.time) / _segment(key.format) / _segment(key.level)
                / str(key.row) / f"{key.col}.{EXTENSIONS[key.format]}")

    def get(self, key: TileKey) -> StoredTile | None:
        path = self.path(key)
        try:
            with open(path, "rb") as f:
                data = f.read()
                st = os.fstat(f.fileno())
        except FileNotFoundError:
            return None
        return StoredTile(data, st.st_mtime, etag(st), path)

    def exists(self, key: TileKey) -> bool:
        return self.path(key).is_file()

    def put(self, tiles: list[tuple[TileKey, bytes]]) -> None:
        tag = f"{os.getpid()}.{threading.get_ident()}"
        for key, data in tiles:
            path = self.path(key)
            tmp = path.with_name(f".{path.name}.{tag}.tmp")
            for attempt in (1, 2):           # a clean-up elsewhere may remove the folder meanwhile
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with open(tmp, "wb") as f:
                        f.write(data)
                    os.replace(tmp, path)    # atomic: readers see the old file or the whole new one
                    break
                except FileNotFoundError:
                    if attempt == 2:
                        raise

    @contextmanager
    def lock(self, key: TileKey, metatile: tuple[int, int, int, int]) -> Iterator[bool]:
        """Hold the metatile's lock across processes and threads (each call opens its own file, so
        flock excludes threads of one worker too). Yields False if the lock could not be had within
        the timeout: the caller then renders anyway rather than failing the request."""
        digest = hashlib.blake2b(repr((key.metatile_prefix, metatile)).encode(), digest_size=8).digest()
        bucket = int.from_bytes(digest, "big") % _LOCK_BUCKETS
        folder = self.root / ".locks"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{bucket:04d}.lock", "a+b") as handle:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    held = True
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        held = False
                        break
                    time.sleep(0.01)
            try:
                yield held
            finally:
                if held:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def clean(self, service: str, generation: str, tile_set: str | None = None, style: str | None = None,
              time: str | None = None, format: str | None = None, levels: set[str] | None = None) -> int:
        """Remove cached tiles of a service's generation; None for a part means every value of it.
        Returns the number of level folders removed."""
        base = self.root / _segment(service) / _segment(generation)
        parts = [tile_set, style, time, format]
        folders = [base]
        for part in parts:
            folders = [f / _segment(part) for f in folders] if part is not None else \
                [child for f in folders if f.is_dir() for child in f.iterdir() if child.is_dir()]
        removed = 0
        for folder in folders:
            if not folder.is_dir():
                continue
            for level in list(folder.iterdir()):
                if levels is None or level.name in {_segment(lv) for lv in levels}:
                    shutil.rmtree(level, ignore_errors=True)
                    removed += 1
        return removed

    def forget_generations(self, service: str, keep: str) -> None:
        """Remove every generation of a service but `keep`, once per process, in the background."""
        with self._guard:
            if (service, keep) in self._forgotten:
                return
            self._forgotten.add((service, keep))
        folder = self.root / _segment(service)
        if not folder.is_dir():
            return
        stale = [p for p in folder.iterdir() if p.is_dir() and p.name != _segment(keep)]
        if stale:
            log.info("%s: removing %d outdated tile cache generation(s)", service, len(stale))

            def remove() -> None:
                for p in stale:
                    shutil.rmtree(p, ignore_errors=True)
            threading.Thread(target=remove, daemon=True).start()
