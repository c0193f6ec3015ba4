"""Per-request observation as WSGI middleware: a request id, the access log and the request metrics.

`RequestObserver` wraps the whole WSGI app (outermost, so a tile answered by a WSGI-level fast
path before Flask's routing is logged and counted like any other request). For each request it

- takes a valid incoming `X-Request-Id` or makes one, puts it in the environ
  (`ogc_gateway.request_id`) and echoes it in the `X-Request-Id` response header;
- when the last byte has been sent (the response iterable is closed), logs one line on the
  `ogc_gateway.access` logger (method, path and query with secrets redacted, status, bytes,
  duration, request id) and counts the request in `ogc_gateway_requests_total` and
  `ogc_gateway_request_duration_seconds`.

The face and operation labels come from the path (and the REQUEST parameter of the OGC faces),
bounded to known names so a client cannot create label values at will.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from urllib.parse import parse_qsl, unquote_plus

log = logging.getLogger("ogc_gateway.access")

REQUEST_ID_HEADER = "X-Request-Id"
ENVIRON_KEY = "ogc_gateway.request_id"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
_SECRET = re.compile(r"token|passw|pwd|secret|key|signature|credential|auth", re.IGNORECASE)

REST_OPERATIONS = frozenset({
    "exportImage", "query", "identify", "getSamples", "computeHistograms", "computeStatisticsHistograms",
    "histograms", "statistics", "keyProperties", "legend", "rasterFunctionInfos", "multidimensionalInfo",
    "slices", "tile", "tilemap", "info"})
OGC_OPERATIONS = {
    "wms": frozenset({"GetCapabilities", "GetMap", "GetFeatureInfo", "GetLegendGraphic", "DescribeLayer"}),
    "wcs": frozenset({"GetCapabilities", "DescribeCoverage", "GetCoverage"}),
    "wmts": frozenset({"GetCapabilities", "GetTile", "GetFeatureInfo"}),
}
OPS_PATHS = {"/healthz": "healthz", "/readyz": "readyz", "/metrics": "metrics"}


def redact(query: str) -> str:
    """The query string as sent, with the value of every secret-looking parameter (token,
    password, key ...) replaced by ***."""
    if not query:
        return ""
    parts = []
    for part in query.split("&"):
        name, eq, _ = part.partition("=")
        if eq and _SECRET.search(unquote_plus(name)):
            part = f"{name}=***"
        parts.append(part)
    return "&".join(parts)


def classify(path: str, query: str) -> tuple[str, str]:
    """(face, operation) of a request, from a bounded set of names."""
    if path in OPS_PATHS:
        return "ops", OPS_PATHS[path]
    segments = [s for s in path.split("/") if s]
    lowered = [s.lower() for s in segments]
    face = None
    if lowered[:1] == ["ogc"] and len(lowered) >= 2 and lowered[1] in OGC_OPERATIONS:
        face = lowered[1]
    elif lowered[:2] == ["arcgis", "services"] and len(lowered) >= 5:
        face = {"wmsserver": "wms", "wcsserver": "wcs"}.get(lowered[4])
    elif lowered[:3] == ["arcgis", "rest", "services"]:
        if len(segments) <= 3:
            return "rest", "services"
        if len(segments) >= 6 and lowered[5] == "wmts":
            face = "wmts"
        elif len(segments) == 5:
            return "rest", "root"
        elif len(segments) >= 6:
            op = segments[5]
            if op in REST_OPERATIONS:
                return "rest", op
            return "rest", "raster" if op.isdigit() else "other"
        else:
            return "rest", "other"
    elif lowered[:3] == ["arcgis", "rest", "directories"]:
        return "rest", "output"
    elif lowered[:3] == ["arcgis", "rest", "info"]:
        return "rest", "info"
    if face is None:
        return "other", "other"
    if face == "wmts":
        if lowered[-1] == "wmtscapabilities.xml":
            return face, "GetCapabilities"
        if "tile" in lowered[5:] or (lowered[:2] == ["ogc", "wmts"] and len(lowered) > 3):
            return face, "GetTile"
    wanted = next((v for k, v in parse_qsl(query, keep_blank_values=True) if k.lower() == "request"), "")
    known = {op.lower(): op for op in OGC_OPERATIONS[face]}
    return face, known.get(wanted.lower(), "other" if wanted else "none")


def request_id(environ: dict) -> str:
    incoming = environ.get("HTTP_X_REQUEST_ID", "")
    return incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex


Recorder = Callable[[str, str, int, float], None]


class RequestObserver:
    """WSGI middleware; `record(face, operation, status, seconds)` receives every finished request
    (the app passes the Prometheus counter); the access log line goes to `ogc_gateway.access`."""

    def __init__(self, app, record: Recorder | None = None, json_lines: bool = False):
        self.app, self.record, self.json_lines = app, record, json_lines

    def __call__(self, environ: dict, start_response):
        start = time.perf_counter()
        rid = environ[ENVIRON_KEY] = request_id(environ)
        state = {"status": 500}

        def observed_start(status: str, headers: list, exc_info=None):
            state["status"] = int(status.split(" ", 1)[0])
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append((REQUEST_ID_HEADER, rid))
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        try:
            body = self.app(environ, observed_start)
        except BaseException:
            self._finish(environ, state["status"], 0, start, rid)
            raise
        return _Body(body, lambda sent: self._finish(environ, state["status"], sent, start, rid))

    def _finish(self, environ: dict, status: int, sent: int, start: float, rid: str) -> None:
        seconds = time.perf_counter() - start
        path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
        face, operation = classify(path, query)
        if self.record is not None:
            try:
                self.record(face, operation, status, seconds)
            except Exception:  # noqa: BLE001 - metrics must not break a request
                logging.getLogger("ogc_gateway").exception("request metrics failed")
        if not log.isEnabledFor(logging.INFO):
            return
        full_path = environ.get("SCRIPT_NAME", "") + path
        safe_query = redact(query)
        remote = environ.get("REMOTE_ADDR", "-")
        if self.json_lines:
            line = json.dumps({
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "remote": remote, "method": environ.get("REQUEST_METHOD", ""), "path": full_path,
                "query": safe_query, "status": status, "bytes": sent,
                "duration_ms": round(seconds * 1000, 2), "request_id": rid, "face": face,
                "operation": operation, "user_agent": environ.get("HTTP_USER_AGENT", "")})
        else:
            target = f"{full_path}?{safe_query}" if safe_query else full_path
            line = (f'{remote} "{environ.get("REQUEST_METHOD", "")} {target}" {status} {sent} '
                    f'{seconds * 1000:.1f}ms {rid}')
        log.info(line)


class _Body:
    """The response iterable, passed through; counts the bytes and reports once when closed."""

    def __init__(self, body: Iterable[bytes], done: Callable[[int], None]):
        self.body, self.done, self.sent, self.closed = body, done, 0, False

    def __iter__(self):
        for chunk in self.body:
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.done(self.sent)


def configure_logging(json_lines: bool) -> None:
    """Send access lines to stdout, one per line, unformatted (the line is already formatted)."""
    if any(getattr(h, "_ogc_gateway_access", False) for h in log.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._ogc_gateway_access = True
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
