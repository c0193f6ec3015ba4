"""Uploaded files, as ArcGIS Server's `uploads` resource keeps them: one folder per item.

`ROOT/{itemID}/item.json` describes the item and is written last (atomically), so a worker killed
mid-upload leaves a folder without a committed record, which `expire` removes once it is older than
the time-to-live. A committed item's file is `ROOT/{itemID}/file/{itemName}`; parts of a multi-part
upload wait in `ROOT/{itemID}/parts/{partId}` until `commit` joins them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import rasterio
from rasterio.errors import RasterioError

from ..engine import InvalidParameter, NotFound, TooLarge, data_band_indexes

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_ITEM_ID = re.compile(r"^i[0-9a-f]{32}$")
_PART_ID = re.compile(r"^[0-9]{1,6}$")
_CHUNK = 1 << 20
# A file whose pixels take this many times the upload bound, uncompressed, is refused before any
# pixel is read: a small compressed file of a huge grid of zeros would otherwise fill memory/disk.
_EXPANSION = 16


@dataclass(frozen=True)
class UploadItem:
    itemID: str
    itemName: str
    description: str
    date: int                 # epoch ms of the last change
    committed: bool
    service: str | None = None     # the service an upload on a service is checked against
    size: int = 0

    def public(self) -> dict:
        body = asdict(self)
        body.pop("service")
        return body


@dataclass(frozen=True)
class Expect:
    """What a raster must be to join an existing service."""

    band_count: int
    dtype: str


class Uploads:
    def __init__(self, root: Path, max_bytes: int, ttl_seconds: int):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.ttl_seconds = ttl_seconds

    # ---- the ArcGIS operations -------------------------------------------------------------------

    def upload(self, stream: BinaryIO, filename: str, description: str = "", service: str | None = None,
               expect: Expect | None = None) -> UploadItem:
        """One whole file: stored, checked with GDAL, committed; refused (and removed) when bad."""
        self.expire()
        name = item_name(filename)
        item_id, folder = self._new_folder()
        try:
            target = folder / "file" / name
            target.parent.mkdir()
            size = self._copy(stream, target, 0)
            check_raster(target, expect, self.max_bytes)
            return self._save(folder, UploadItem(item_id, name, description, _now(), True, service, size))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def register(self, filename: str, description: str = "", service: str | None = None) -> UploadItem:
        """An item whose file will come in parts."""
        self.expire()
        name = item_name(filename)
        item_id, folder = self._new_folder()
        (folder / "parts").mkdir()
        return self._save(folder, UploadItem(item_id, name, description, _now(), False, service))

    def upload_part(self, item_id: str, part_id: str, stream: BinaryIO) -> None:
        item = self.get(item_id)
        if item.committed:
            raise InvalidParameter("itemID", f"{item_id} is committed; it takes no more parts")
        if not _PART_ID.match(part_id or ""):
            raise InvalidParameter("partId", "must be a whole number (0 to 999999)")
        folder = self._folder(item_id)
        parts = folder / "parts"
        used = sum(p.stat().st_size for p in parts.iterdir() if p.name != part_id and p.suffix != ".tmp")
        tmp = parts / f"{part_id}.{uuid.uuid4().hex}.tmp"
        try:
            self._copy(stream, tmp, used)
            os.replace(tmp, parts / part_id)
        finally:
            tmp.unlink(missing_ok=True)
        self._save(folder, item)          # a fresh date: the parts keep arriving

    def commit(self, item_id: str, parts: list[str] | None = None, expect: Expect | None = None) -> UploadItem:
        """Join the parts (in the order given; default: by number) into the file and check it."""
        item = self.get(item_id)
        if item.committed:
            return item
        folder = self._folder(item_id)
        present = {p.name for p in (folder / "parts").iterdir() if _PART_ID.match(p.name)}
        order = parts if parts else sorted(present, key=int)
        missing = [p for p in order if p not in present]
        if not order or missing:
            raise InvalidParameter("parts", f"part {missing[0]} was not uploaded" if missing
                                   else "no part was uploaded")
        target = folder / "file" / item.itemName
        target.parent.mkdir(exist_ok=True)
        size = 0
        try:
            with open(target, "wb") as out:
                for part in order:
                    with open(folder / "parts" / part, "rb") as src:
                        shutil.copyfileobj(src, out, _CHUNK)
                    size = out.tell()
            check_raster(target, expect, self.max_bytes)
        except BaseException:
            shutil.rmtree(target.parent, ignore_errors=True)
            raise
        shutil.rmtree(folder / "parts", ignore_errors=True)
        return self._save(folder, UploadItem(item.itemID, item.itemName, item.description, _now(), True,
                                             item.service, size))

    def get(self, item_id: str) -> UploadItem:
        folder = self._folder(item_id)
        try:
            return UploadItem(**json.loads((folder / "item.json").read_text()))
        except (OSError, ValueError, TypeError):
            raise NotFound("Upload not found.", details=[f"There is no upload {item_id!r}."]) from None

    def delete(self, item_id: str) -> None:
        self.get(item_id)
        shutil.rmtree(self._folder(item_id), ignore_errors=True)

    def file(self, item_id: str, service: str | None = None) -> tuple[UploadItem, Path]:
        """A committed upload's item and file, for `add` (on `service`) or `createService` (no
        service): a server-wide upload goes anywhere, one made on a service only to that service."""
        item = self.get(item_id)
        if not item.committed:
            raise InvalidParameter("itemIds", f"{item_id} is not committed")
        if item.service is not None and item.service != service:
            raise InvalidParameter("itemIds", f"{item_id} was uploaded to service {item.service!r}")
        return item, self._folder(item_id) / "file" / item.itemName

    def expire(self, now: float | None = None) -> int:
        """Remove uploads (committed or not, and half-written folders) unused for the time-to-live."""
        if not self.root.is_dir():
            return 0
        cutoff = (now or time.time()) - self.ttl_seconds
        removed = 0
        for folder in self.root.iterdir():
            try:
                newest = max([folder.stat().st_mtime] + [p.stat().st_mtime for p in folder.rglob("*")])
            except OSError:
                continue
            if newest < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed

    # ---- storage ---------------------------------------------------------------------------------

    def _folder(self, item_id: str) -> Path:
        if not _ITEM_ID.match(item_id or ""):
            raise NotFound("Upload not found.", details=[f"There is no upload {item_id!r}."])
        return self.root / item_id

    def _new_folder(self) -> tuple[str, Path]:
        item_id = "i" + uuid.uuid4().hex
        folder = self.root / item_id
        folder.mkdir(parents=True)
        return item_id, folder

    def _save(self, folder: Path, item: UploadItem) -> UploadItem:
        item = UploadItem(**{**asdict(item), "date": _now()})
        tmp = folder / f"item.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(asdict(item)))
        os.replace(tmp, folder / "item.json")
        return item

    def _copy(self, stream: BinaryIO, target: Path, already: int) -> int:
        """Stream to a file, refusing as soon as the upload bound is passed."""
        size = already
        with open(target, "wb") as out:
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
                if size > self.max_bytes:
                    raise TooLarge("file", f"the upload is larger than max_upload_bytes ({self.max_bytes} bytes)")
                out.write(chunk)
        return size


def item_name(filename: str | None) -> str:
    """The file's own name, refused (not rewritten) when it holds a path or an odd character."""
    name = (filename or "").strip()
    if not name:
        raise InvalidParameter("file", "no file was sent (a multipart field named 'file')")
    if "/" in name or "\\" in name or ".." in name or not _NAME.match(name):
        raise InvalidParameter("file", f"{name!r} is not a plain file name (letters, digits, '.', '_', '-'; "
                                       "no path separators or '..')")
    return name


def check_raster(path: Path, expect: Expect | None, max_bytes: int) -> None:
    """Open the file with GDAL and read every pixel once: refused when it is not a raster, has no
    georeferencing, is corrupt, would expand past the bound, or does not fit the service."""
    try:
        with rasterio.open(path) as ds:
            if ds.crs is None:
                raise InvalidParameter("file", f"{path.name}: the raster has no coordinate reference system")
            bands = data_band_indexes(ds)
            dtype = np.dtype(ds.dtypes[0]).name
            expanded = ds.width * ds.height * ds.count * np.dtype(dtype).itemsize
            if expanded > _EXPANSION * max_bytes:
                raise TooLarge("file", f"{path.name}: {ds.width}x{ds.height}x{ds.count} {dtype} pixels "
                                       f"({expanded} bytes) are more than {_EXPANSION} times max_upload_bytes; "
                                       "refused as a likely decompression bomb")
            if expect is not None and (len(bands), dtype) != (expect.band_count, expect.dtype):
                raise InvalidParameter("file", f"{path.name} has {len(bands)} band(s) of {dtype}; the service "
                                               f"has {expect.band_count} band(s) of {expect.dtype}")
            for b in range(1, ds.count + 1):
                ds.checksum(b)              # decodes every block: a corrupt file fails here
    except RasterioError as exc:
        raise InvalidParameter("file", f"{path.name} is not a raster GDAL can read, or it is corrupt "
                                       f"({_first_line(exc)})") from None


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]


def _now() -> int:
    return time.time_ns() // 1_000_000
