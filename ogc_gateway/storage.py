"""Where an instance keeps what it shares with the others: the tile cache and the output files of
`f=json` exports. In `cache_dir` (the default: one host, every worker) or, with
`server.cache_url: s3://bucket/prefix`, in S3-compatible storage so that every instance behind a
load balancer serves a tile or an output file another one wrote.

Catalogs are not here: each is a SQLite file in `cache_dir`, or, with `server.catalog_url`, a schema of
a shared PostGIS database (engine/catalog/).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import BinaryIO

from .config import Config
from .engine import NotFound, TileStore, bounded_tile_store


def tile_store(config: Config) -> TileStore:
    """The tile cache every face and the seeding program share."""
    local = config.server.cache_dir / "tiles"
    if config.server.cache_url:
        from .engine import S3TileStore

        return S3TileStore(config.server.cache_url, local)
    return bounded_tile_store(local, config.server.tile_cache_max_bytes)


def output_store(config: Config):
    if config.server.cache_url:
        return S3Outputs(config.server.cache_url)
    return LocalOutputs(config.server.cache_dir / "output", config.server.output_max_bytes)


class LocalOutputs:
    """Output files in `cache_dir/output/{service}/` (rest/export.py writes, sweeps and opens them),
    the whole folder kept within `output_max_bytes` (the oldest go first)."""

    def __init__(self, root: Path, max_bytes: int):
        from .engine import FolderBound

        self.root = root
        self.bound = FolderBound(root, max_bytes)

    def write(self, service: str, data: bytes, extension: str, ttl: int) -> str:
        from .rest.export import write_output

        name = write_output(self.root / service, _Bytes(data, extension), ttl)
        self.bound.wrote([len(data)])
        return name

    def open(self, service: str, name: str, ttl: int) -> tuple[BinaryIO, int]:
        """The file opened for streaming, and its size."""
        from .rest.export import open_output

        return open_output(self.root / service, name, ttl)


class _Bytes:
    def __init__(self, data: bytes, extension: str):
        self.data, self.extension = data, extension


class S3Outputs:
    """Output files as objects `{prefix}/output/{service}/{name}`. Expired ones answer 404 (and are
    deleted when asked for); set a lifecycle rule on the prefix to remove the ones never asked for."""

    def __init__(self, url: str):
        from .engine import split_s3_url

        self.url = url.rstrip("/")
        self.bucket, prefix = split_s3_url(self.url)
        self.prefix = "/".join(p for p in (prefix.strip("/"), "output") if p)

    def write(self, service: str, data: bytes, extension: str, ttl: int) -> str:
        from .engine import s3_client

        name = f"_ags_{uuid.uuid4().hex}.{extension}"
        s3_client().put_object(Bucket=self.bucket, Key=f"{self.prefix}/{service}/{name}", Body=data)
        return name

    def open(self, service: str, name: str, ttl: int) -> tuple[BinaryIO, int]:
        """The object's body as a stream, and its size."""
        from botocore.exceptions import ClientError

        from .engine import s3_client
        from .rest.export import OUTPUT_NAME

        if not OUTPUT_NAME.match(name):
            raise NotFound("File not found.", details=[name])
        key = f"{self.prefix}/{service}/{name}"
        try:
            answer = s3_client().get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise NotFound("File not found.", details=[name]) from None
            raise
        if time.time() - answer["LastModified"].timestamp() > ttl:
            s3_client().delete_object(Bucket=self.bucket, Key=key)
            raise NotFound("File not found.", details=["The output file has expired."])
        return answer["Body"], int(answer["ContentLength"])
