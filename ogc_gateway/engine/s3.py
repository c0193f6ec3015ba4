"""S3-compatible object storage settings, read once from the `AWS_*` environment that GDAL and
boto3 both understand, so a local server (MinIO, moto) and AWS need nothing in gateway.yaml.

boto3 takes `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`); GDAL's /vsis3/ takes `AWS_S3_ENDPOINT`
(host:port), `AWS_HTTPS` and `AWS_VIRTUAL_HOSTING`. `configure_gdal()` derives GDAL's from the
boto3 one when only that is set (path-style addressing, as local servers need); `client()`
derives boto3's endpoint from GDAL's when only those are set. Credentials come from the usual
variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION ...).
boto3 is imported only when an s3:// location is used.
"""

from __future__ import annotations

import os
import threading
from typing import Any
from urllib.parse import urlsplit

# boto3 ships no types (and the engine does not depend on a stubs package for it): its S3 client is Any
S3Client = Any

_lock = threading.Lock()
_clients: dict[tuple[int, str | None, str | None], S3Client] = {}


def split(url: str) -> tuple[str, str]:
    """(bucket, key) of an s3://bucket/key URL; the key is taken as written (a glob's `?` is not
    a query string, so no URL parser here)."""
    bucket, _, key = url[len("s3://"):].partition("/") if url.startswith("s3://") else ("", "", "")
    if not bucket:
        raise ValueError(f"not an s3://bucket/key URL: {url!r}")
    return bucket, key.lstrip("/")


def endpoint_url() -> str | None:
    """The S3 endpoint for boto3, from AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, else GDAL's variables."""
    url = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if url:
        return url
    host = os.environ.get("AWS_S3_ENDPOINT")
    if host:
        if "://" in host:
            return host
        scheme = "http" if os.environ.get("AWS_HTTPS", "YES").upper() in ("NO", "FALSE", "OFF", "0") else "https"
        return f"{scheme}://{host}"
    return None


def configure_gdal() -> None:
    """Give GDAL the endpoint boto3 uses, when only AWS_ENDPOINT_URL(_S3) is set."""
    url = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if not url or os.environ.get("AWS_S3_ENDPOINT"):
        return
    parts = urlsplit(url)
    os.environ["AWS_S3_ENDPOINT"] = parts.netloc + parts.path.rstrip("/")
    os.environ.setdefault("AWS_HTTPS", "NO" if parts.scheme == "http" else "YES")
    os.environ.setdefault("AWS_VIRTUAL_HOSTING", "FALSE")


def client() -> S3Client:
    """A boto3 S3 client for the current environment (one per process and endpoint; boto3 clients
    are thread-safe). Short timeouts: a readiness probe must not hang on a dead endpoint."""
    configure_gdal()
    key = (os.getpid(), endpoint_url(), os.environ.get("AWS_ACCESS_KEY_ID"))
    with _lock:
        found = _clients.get(key)
        if found is None:
            import boto3
            from botocore.config import Config as BotoConfig

            addressing = "path" if os.environ.get("AWS_VIRTUAL_HOSTING", "").upper() in ("FALSE", "NO") \
                or endpoint_url() else "auto"
            found = boto3.session.Session().client(
                "s3", endpoint_url=endpoint_url(),
                config=BotoConfig(connect_timeout=3, read_timeout=30, retries={"max_attempts": 2},
                                  s3={"addressing_style": addressing}))
            _clients[key] = found
        return found
