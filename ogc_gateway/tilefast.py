"""The lean path for cached tiles: a WSGI layer in front of Flask that answers a request for a tile
already in the tile cache with one file read, about ten times cheaper than the normal path (routing,
request context, parameter checks, the service refresh and the response object are skipped).

It never interprets a parameter itself; it repeats what the normal path did:

- *Learning.* A tile URL is split into its last two path segments (row and column, the last with an
  extension) or its TILEROW/TILECOL parameters, and the rest — the "address": path, extension and the
  other parameters, as sent. When the normal path answers a cached tile, `http_cache.cacheable` leaves
  the tile's file in the WSGI environ; this layer then remembers, for that address, the level folder the
  file lies in (its rows and columns lie beside it, named by number) and the response headers that do
  not depend on the tile (Cache-Control, CORS ...). A URL whose address the normal path has not answered
  in this worker goes the normal way, and so does anything unusual: another method, a conditional or
  range request, a row or column not written in plain digits.
- *Staleness.* The folder's path names the catalog generation its tiles were rendered from
  (tilecache.py). A tile is served only while the service's catalog is still at that generation — the
  same indexed read the normal path makes, so a catalog change made by any process is seen at the next
  request, exactly as before. A changed catalog or a file that is not there (not rendered yet,
  cleaned, an old generation removed) falls through to the normal path; so does a zero-length file (a
  tile without data) unless the normal path said which picture answers one (WMTS: a blank tile; the
  ImageServer resource answers 404, or a blank tile on request, and decides that itself).
- *Answer.* ETag and Last-Modified come from the file as `DiskTileStore.get` makes them, the content
  type from the image's signature, as the ImageServer resource does, and Date from the clock; so the
  answer is the normal path's, header for header (tests/test_tilefast.py checks this).

- *Who may have it.* Without a `security` section every tile is public. With one, this layer answers
  only what every caller gets alike: a public service's tile to a request that carries no credentials
  (anything else — a token, a restricted service — goes the normal way, which checks access). It stays
  out of the way where an answer depends on the request in ways it does not learn: `cors_origins`
  (the CORS header echoes the caller's Origin) and a Host that `allowed_hosts` refuses.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from .engine import report_observation
from .engine import tile_etag as etag
from .engine import tile_generation as cache_generation
from .gateway import Gateway
from .http_cache import LEARNED, http_date
from .security.access import credentials
from .security.web import host_allowed

PER_TILE = {"content-type", "content-length", "etag", "last-modified", "date"}
INLINE = "ogc_gateway.tilefast"              # app.extensions key of the layer (create_app sets it)
PREPARED = "ogc_gateway.tilefast.answer"    # environ key of an answer `prepare` read
MAX_ADDRESSES = 4096                   # addresses remembered per worker (then forgotten and learnt again)
_NOT_PLAIN = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_MATCH", "HTTP_IF_UNMODIFIED_SINCE",
              "HTTP_IF_RANGE", "HTTP_RANGE")


@dataclass(frozen=True, slots=True)
class Folder:
    """Where the tiles of one address lie, and what a served tile's answer shares with the others."""

    path: str                  # the level folder: {path}/{row}/{col}{suffix}
    suffix: str
    service: str               # the service's name, whose catalog generation is checked
    generation: int            # the catalog generation the folder's tiles were rendered from
    blank: bytes | None        # the answer to a tile without data (None: the normal path's to give)
    headers: tuple[tuple[str, str], ...]


class TileShortcut:
    """WSGI middleware: the cached-tile lean path in front of `app` (the Flask WSGI callable)."""

    def __init__(self, app, gateway: Gateway, security=None):
        self.app = app
        self.gateway = gateway
        self.security = security           # security.runtime.Security, or None: every service is public
        server = gateway.config.server
        self.hosts = server.allowed_hosts
        self.enabled = server.cors_origins is None
        self.proxied = server.proxy_headers
        self.folders: dict[tuple, Folder] = {}
        self.served = 0                # answers given here (for the tests; no timing is kept)
        self._names: dict[str, str] | None = None
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        prepared = environ.pop(PREPARED, None)
        if prepared is not None:
            return self._send(prepared[0], prepared[1], start_response)
        if not self.enabled or environ.get("REQUEST_METHOD") != "GET" or any(h in environ for h in _NOT_PLAIN):
            return self.app(environ, start_response)
        found = tile_address(environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""))
        if found is None:
            return self.app(environ, start_response)
        address, row, col = found
        folder = self.folders.get(address)
        if folder is not None and self._alike(folder.service, environ):
            answer = self._answer(folder, row, col)
            if answer is not None:
                return self._send(*answer, start_response)
        return self._learn(address, environ, start_response)

    def prepare(self, environ) -> bool:
        """Read the answer of a cached tile this layer can give into `environ` (then the app answers
        it without doing any I/O: asgi.py calls the app in its event loop, with no hand-over to a
        thread); False, leaving `environ` alone, for anything else. Not offered behind `proxy_headers`
        (ProxyFix, between the front and this layer, changes the Host that `_alike` checks)."""
        if (not self.enabled or self.proxied or environ.get("REQUEST_METHOD") != "GET"
                or any(h in environ for h in _NOT_PLAIN)):
            return False
        found = tile_address(environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""))
        if found is None:
            return False
        address, row, col = found
        folder = self.folders.get(address)
        if folder is None or not self._alike(folder.service, environ):
            return False
        answer = self._answer(folder, row, col)
        if answer is None:
            return False
        environ[PREPARED] = answer
        return True

    def _alike(self, service: str, environ) -> bool:
        """Whether this caller gets what any caller gets (see the module's docstring)."""
        if self.hosts and not host_allowed(environ.get("HTTP_HOST", ""), self.hosts):
            return False
        return self.security is None or (self.security.is_public(service) and credentials(environ) is None)

    def _answer(self, folder: Folder, row: int, col: int) -> tuple[list, bytes] | None:
        """The tile's headers and body, or None when the normal path must answer."""
        service = self.gateway.registry.get(folder.service)
        if service is None or service.catalog.last_change() != folder.generation:
            return None
        try:
            with open(f"{folder.path}/{row}/{col}{folder.suffix}", "rb") as f:
                data = f.read()
                st = os.fstat(f.fileno())
        except OSError:
            return None
        if not data and folder.blank is None:
            return None
        body = data or folder.blank or b""     # blank is not None when data is empty (just above)
        content_type = image_type(body)
        if content_type is None:
            return None
        return [("Content-Type", content_type), ("Content-Length", str(len(body))), ("ETag", etag(st)),
                ("Last-Modified", http_date(st.st_mtime)), ("Date", _now()), *folder.headers], body

    def _send(self, headers: list, body: bytes, start_response):
        start_response("200 OK", headers)
        self.served += 1
        report_observation("tile_cache_hit")
        return [body]

    def _learn(self, address: tuple, environ, start_response):
        """The normal path's answer; if it served a cached tile, remember where its address's tiles lie."""
        sent = []

        def capture(status, headers, exc_info=None):
            sent[:] = [status, headers]
            return start_response(status, headers, exc_info)
        body = self.app(environ, capture)
        learned = environ.get(LEARNED)
        if learned is not None and sent and sent[0].startswith("200 "):
            folder = self._folder(Path(learned[0]), learned[1], sent[1])
            if folder is not None:
                with self._lock:
                    if len(self.folders) >= MAX_ADDRESSES:
                        self.folders.clear()
                    self.folders[address] = folder
        return body

    def _folder(self, path: Path, blank: bytes | None, headers) -> Folder | None:
        """{root}/{service}/{generation}/{tile set}/{style}/{time}/{format}/{level}/{row}/{col}.{ext}"""
        store = self.gateway.tile_store
        try:
            service_segment, generation = path.relative_to(store.root).parts[:2]
        except (ValueError, IndexError):
            return None
        if self._names is None:
            self._names = {store.segment(name): name for name in self.gateway.registry}
        name = self._names.get(service_segment)
        service = self.gateway.registry.get(name) if name else None
        # The folder is the one this service object renders into (its cache generation), and the
        # catalog generation that object was built at is what each answer is checked against.
        if service is None or cache_generation(service) != generation:
            return None
        shared = tuple((k, v) for k, v in headers if k.lower() not in PER_TILE)
        return Folder(str(path.parent.parent), path.suffix, name, service.generation, blank, shared)


def inline_answers(app):
    """`prepare` of the layer in a Flask app made by create_app (None without one): what asgi.WsgiOnAsgi
    may answer in its event loop."""
    shortcut = app.extensions.get(INLINE)
    return shortcut.prepare if shortcut is not None else None


def tile_address(path: str, query: str) -> tuple[tuple, int, int] | None:
    """(address, row, col) of what may be a tile URL: RESTful (…/{row}/{col}[.ext]) or KVP (TILEROW and
    TILECOL among the parameters); None for anything else."""
    rest, _, last = path.rpartition("/")
    rest, _, row = rest.rpartition("/")
    col, dot, ext = last.partition(".")
    if _plain(row) and _plain(col) and (not dot or ext.isalpha()):
        return ("rest", rest, ext, query), int(row), int(col)
    if "TILEROW" not in query.upper():
        return None
    rows, cols, others = [], [], []
    for name, value in parse_qsl(query, keep_blank_values=True):
        upper = name.upper()
        if upper == "TILEROW":
            rows.append(value)
        elif upper == "TILECOL":
            cols.append(value)
        else:
            others.append((name, value))
    if len(rows) != 1 or len(cols) != 1 or not (_plain(rows[0]) and _plain(cols[0])):
        return None
    row, col = rows[0], cols[0]
    return ("kvp", path, tuple(others)), int(row), int(col)


def image_type(data: bytes) -> str | None:
    """The media type of a tile by its signature (tiles are PNG, JPEG or WebP)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


_clock: list = [0, ""]


def _now() -> str:
    """Date: the current second as an HTTP date, formatted once a second."""
    second = int(time.time())
    if _clock[0] != second:
        _clock[:] = [second, http_date(second)]
    return _clock[1]


def _plain(text: str | None) -> bool:
    """Digits only (ASCII), as the tile files are named; anything else is left to the normal path."""
    return bool(text) and text.isascii() and text.isdigit() and len(text) < 10
