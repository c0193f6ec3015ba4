"""Where source rasters live: local files, S3 objects (`s3://bucket/prefix/**/*.tif`) or HTTP(S)
URLs (`https://host/cog.tif`). The catalog asks this module, and nothing else, to expand a
`sources` pattern, to stat a source (its change stamp) and whether storage answers; reading the
pixels is GDAL's (rasterio turns s3:// into /vsis3/ and https:// into /vsicurl/).

Local paths are normalised to absolute paths, as before; remote locations are kept as written.
S3 prefixes are listed with boto3 (`ListObjectsV2`, paginated) and matched with the glob rules of
local files (`*` and `?` stay within one path segment, `**/` spans any number of them).
"""

from __future__ import annotations

import glob
import os
import re
import urllib.error
import urllib.request
from datetime import datetime
from email.utils import parsedate_to_datetime

from . import s3

REMOTE_SCHEMES = ("s3://", "http://", "https://")
_GLOB_CHARS = re.compile(r"[*?\[]")


def is_remote(path: str) -> bool:
    return path.startswith(REMOTE_SCHEMES)


def is_s3(path: str) -> bool:
    return path.startswith("s3://")


def normalize(path: str) -> str:
    """The catalog's spelling of a source: absolute for a local file, as written for a URL."""
    return path if is_remote(path) else os.path.normpath(os.path.abspath(path))


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A compiled regex matching what the glob matches, `**/` spanning segments."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2:]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1:end]
            out.append("[^" + re.escape(body[1:]) + "]" if body.startswith("!") else "[" + re.escape(body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def expand(pattern: str) -> list[str]:
    """The files (objects, URLs) a sources pattern names, sorted."""
    return sorted(listing(pattern))


def listing(pattern: str) -> dict[str, tuple[int, int] | None]:
    """The files a pattern names, each with its (change stamp, size) when listing them told it
    (S3: LastModified and Size, so a sync of a million objects makes no HEAD requests), else None."""
    if is_s3(pattern):
        return _s3_listing(pattern)
    if is_remote(pattern):
        return {pattern: None}            # an HTTP(S) URL names one file; there is no listing
    found = {normalize(p) for p in glob.glob(pattern, recursive=True)}
    return {p: None for p in found if os.path.isfile(p)}


def _s3_listing(pattern: str) -> dict[str, tuple[int, int] | None]:
    bucket, key = s3.split(pattern)
    first = _GLOB_CHARS.search(key)
    if first is None:
        st = stat(pattern)
        return {pattern: st} if st is not None else {}
    prefix = key[:first.start()]
    prefix = prefix[:prefix.rfind("/") + 1]
    wanted = glob_regex(key)
    paginator = s3.client().get_paginator("list_objects_v2")
    found: dict[str, tuple[int, int] | None] = {}
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", ()):
            if wanted.match(obj["Key"]) and not obj["Key"].endswith("/"):
                found[f"s3://{bucket}/{obj['Key']}"] = (_stamp(obj["LastModified"]), int(obj["Size"]))
    return found


def _stamp(modified: datetime) -> int:
    """LastModified in whole seconds as ns: a listing may carry milliseconds where HEAD (an HTTP
    date) has seconds, and both must give the same stamp for an unchanged object."""
    return int(modified.timestamp()) * 1_000_000_000


def stat(path: str) -> tuple[int, int] | None:
    """(change stamp in ns, size) of a source, None when it does not exist. A changed stamp or
    size makes the catalog read the file again."""
    if is_s3(path):
        from botocore.exceptions import ClientError

        bucket, key = s3.split(path)
        try:
            head = s3.client().head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise OSError(str(exc)) from exc
        return _stamp(head["LastModified"]), int(head["ContentLength"])
    if is_remote(path):
        request = urllib.request.Request(path, method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                modified = answer.headers.get("Last-Modified")
                size = int(answer.headers.get("Content-Length") or 0)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise OSError(f"HTTP {exc.code} {exc.reason}") from exc
        stamp = int(parsedate_to_datetime(modified).timestamp() * 1e9) if modified else 0
        return stamp, size
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


def exists(path: str) -> bool:
    try:
        return stat(path) is not None
    except OSError:
        return False


def check_reachable(pattern: str) -> None:
    """Raise OSError unless the storage a pattern lives in answers now (readiness): the bucket
    of an S3 pattern, the host of a URL, the folder of a local glob."""
    if is_s3(pattern):
        bucket, _ = s3.split(pattern)
        try:
            s3.client().head_bucket(Bucket=bucket)
        except Exception as exc:  # noqa: BLE001 - botocore raises many kinds; all mean "not reachable"
            raise OSError(f"s3://{bucket}: {exc}") from exc
        return
    if is_remote(pattern):
        if stat(pattern) is None:
            raise OSError(f"{pattern}: not found")
        return
    first = _GLOB_CHARS.search(pattern)
    folder = os.path.dirname(pattern[:first.start()] if first else pattern)
    if not os.path.isdir(folder):
        raise OSError(f"{folder}: no such folder")
