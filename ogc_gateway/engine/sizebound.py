"""A size bound for a folder of files that many workers write: the tile cache and the f=json outputs
(issue 15, items 5 and 6).

Why: tiles of arbitrary times and large f=json exports filled the disk with nothing to stop them. Each
process counts what it writes; once it has written a sixteenth of the bound since its last look, it
walks the folder under a non-blocking file lock (one process trims at a time, the others carry on) and
removes the oldest files until the folder is back under 90 % of the bound. Files are counted by the
disk space they take (whole 4 KiB blocks, at least one: an empty tile still costs an inode and a block).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .tilecache import DiskTileStore, TileKey

log = logging.getLogger("ogc_gateway.cache")

_BLOCK = 4096


def disk_bytes(size: int) -> int:
    """Disk space a file of `size` bytes takes (whole blocks, at least one)."""
    return max(1, -(-size // _BLOCK)) * _BLOCK


class FolderBound:
    """Keeps the files under `root` (names starting with '.' excepted) within `max_bytes`."""

    def __init__(self, root: Path, max_bytes: int):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._step = max(_BLOCK, max_bytes // 16)
        self._since = self._step            # the first write looks at once (a cache left from before)
        self._guard = threading.Lock()

    def wrote(self, sizes: Iterable[int]) -> None:
        """Count files just written (their byte sizes); trim when enough has been written."""
        with self._guard:
            self._since += sum(disk_bytes(n) for n in sizes)
            if self._since < self._step:
                return
            self._since = 0
        self.trim()

    def trim(self) -> int:
        """Remove the oldest files until the folder is under 90 % of the bound; bytes removed (0 when
        another process is trimming)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".trim.lock", "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0
            try:
                return self._trim()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _trim(self) -> int:
        files, total = [], 0
        for path, st in _walk(self.root):
            cost = disk_bytes(st.st_size)
            files.append((st.st_mtime_ns, cost, path))
            total += cost
        if total <= self.max_bytes:
            return 0
        goal, removed = self.max_bytes * 9 // 10, 0
        files.sort()
        for _, cost, path in files:
            if total - removed <= goal:
                break
            try:
                os.unlink(path)
                removed += cost
            except FileNotFoundError:
                pass
        log.info("%s: %d bytes over its bound of %d; removed the oldest %d bytes", self.root,
                 total - self.max_bytes, self.max_bytes, removed)
        return removed


def _walk(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """(path, stat) of every regular file under root, skipping names that start with '.'."""
    stack = [str(root)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    yield entry.path, entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue


def bounded_tile_store(root: Path, max_bytes: int) -> DiskTileStore:
    """The disk tile store, kept within `max_bytes` (oldest tiles go first)."""
    from .tilecache import DiskTileStore

    class BoundedTileStore(DiskTileStore):
        def __init__(self) -> None:
            super().__init__(root)
            self.bound = FolderBound(root, max_bytes)

        def put(self, tiles: list[tuple[TileKey, bytes]]) -> None:
            super().put(tiles)
            self.bound.wrote([len(data) for _, data in tiles])

    return BoundedTileStore()
