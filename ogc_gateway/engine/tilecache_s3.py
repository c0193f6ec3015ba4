"""The tile cache in S3-compatible storage (`server.cache_url: s3://bucket/prefix`), so every
instance of a deployment shares the tiles any of them rendered. It implements `TileStore`
(engine/tilecache.py) with the disk store's key layout under `{prefix}/tiles/`:

    {prefix}/tiles/{service}/{generation}/{tile matrix set}/{style}/{time}/{format}/{level}/{row}/{col}.{ext}

An object is written whole or not at all (S3 PUT), so readers never see a torn tile; an empty
object records a tile without data. The metatile lock is this host's (a `DiskTileStore` lock under
the local cache folder): instances on other hosts may render the same block at the same moment,
which costs time but no harm, since they write the same bytes. Outdated generations are not
removed here (another instance may still serve one): expire them with a lifecycle rule on the
bucket.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path

from . import s3
from .tilecache import EXTENSIONS, DiskTileStore, StoredTile, TileKey, _segment


def _missing(exc: Exception) -> bool:
    """A botocore ClientError saying the object is not there (botocore ships no types: its response is read
    through getattr)."""
    response: dict[str, dict[str, str]] = getattr(exc, "response", {})
    return response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


class S3TileStore:
    def __init__(self, url: str, lock_root: Path, lock_timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.bucket, prefix = s3.split(self.url)
        self.prefix = "/".join(p for p in (prefix.strip("/"), "tiles") if p)
        self._local = DiskTileStore(lock_root, lock_timeout)

    def object_key(self, key: TileKey) -> str:
        parts = (key.service, key.generation, key.tile_set, key.style, key.time, key.format, key.level)
        return "/".join([self.prefix, *map(_segment, parts), str(key.row), f"{key.col}.{EXTENSIONS[key.format]}"])

    def get(self, key: TileKey) -> StoredTile | None:
        from botocore.exceptions import ClientError

        try:
            answer = s3.client().get_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        data = answer["Body"].read()
        return StoredTile(data, answer["LastModified"].timestamp(), answer["ETag"])

    def exists(self, key: TileKey) -> bool:
        from botocore.exceptions import ClientError

        try:
            s3.client().head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        return True

    def put(self, tiles: list[tuple[TileKey, bytes]]) -> None:
        client = s3.client()

        def one(item: tuple[TileKey, bytes]) -> None:
            client.put_object(Bucket=self.bucket, Key=self.object_key(item[0]), Body=item[1])
        with ThreadPoolExecutor(max_workers=min(8, max(1, len(tiles)))) as pool:
            list(pool.map(one, tiles))               # a metatile's PUTs overlap; errors propagate

    def lock(self, key: TileKey, metatile: tuple[int, int, int, int]) -> AbstractContextManager[bool]:
        return self._local.lock(key, metatile)

    def clean(self, service: str, generation: str, tile_set: str | None = None, style: str | None = None,
              time: str | None = None, format: str | None = None, levels: set[str] | None = None) -> int:
        """Remove cached tiles of a generation (None for a part: every value). Returns the number of
        level folders (prefixes) removed."""
        base = f"{self.prefix}/{_segment(service)}/{_segment(generation)}/"
        wanted = [None if v is None else _segment(v) for v in (tile_set, style, time, format)]
        level_names = None if levels is None else {_segment(lv) for lv in levels}
        client = s3.client()
        doomed, folders = [], set()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
            for obj in page.get("Contents", ()):
                parts = obj["Key"][len(base):].split("/")
                if len(parts) != 7:
                    continue
                if any(w is not None and w != p for w, p in zip(wanted, parts[:4], strict=False)):
                    continue
                if level_names is not None and parts[4] not in level_names:
                    continue
                doomed.append({"Key": obj["Key"]})
                folders.add(tuple(parts[:5]))
        for start in range(0, len(doomed), 1000):
            client.delete_objects(Bucket=self.bucket, Delete={"Objects": doomed[start:start + 1000], "Quiet": True})
        return len(folders)

    def forget_generations(self, service: str, keep: str) -> None:
        """Nothing: in a shared bucket another instance may still serve another generation."""

    def check_reachable(self) -> None:
        """Raise OSError unless the bucket answers (readiness)."""
        try:
            s3.client().head_bucket(Bucket=self.bucket)
        except Exception as exc:  # noqa: BLE001 - any botocore failure means not reachable
            raise OSError(f"tile cache {self.url}: {exc}") from exc
