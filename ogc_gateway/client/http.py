"""HTTP for the client: one requests.Session with retries on transient failures, ArcGIS errors as
exceptions, and a bounded thread pool for block reads.

ArcGIS answers most errors with HTTP 200 and a JSON body `{"error": {...}}`, also when an image was
asked for, so every answer is checked for that shape before it is used.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

TRANSIENT = (429, 500, 502, 503, 504)
TOKEN_ERRORS = (498, 499)                 # invalid or expired token / token required
DEFAULT_WORKERS = 4
USER_AGENT = "ogc-gateway-client"


class ImageServiceError(RuntimeError):
    """An error the server answered (ArcGIS JSON error or an HTTP error status)."""

    def __init__(self, code: int, message: str, details=(), url: str = ""):
        self.code, self.message, self.details, self.url = code, message, list(details or ()), url
        text = f"{code}: {message}" + (f" ({'; '.join(map(str, self.details))})" if self.details else "")
        super().__init__(text + (f" [{url}]" if url else ""))


def make_session(workers: int = DEFAULT_WORKERS, retries: int = 4, backoff: float = 0.3) -> requests.Session:
    """A session whose connection pool holds `workers` connections per host; GET and POST are
    retried on connection errors and on 429/5xx (every call the client retries is idempotent:
    reads, and uploads whose duplicates the server sweeps)."""
    retry = Retry(total=retries, connect=retries, read=retries, status=retries, backoff_factor=backoff,
                  status_forcelist=TRANSIENT, allowed_methods=frozenset({"GET", "POST"}),
                  raise_on_status=False, respect_retry_after_header=True)
    adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=max(workers, 4))
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def raise_for_error(resp: requests.Response) -> None:
    """Raise ImageServiceError for an HTTP error status or an ArcGIS JSON error body."""
    ctype = resp.headers.get("Content-Type", "")
    if "json" in ctype or "text/plain" in ctype:
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            err = body["error"]
            raise ImageServiceError(int(err.get("code") or resp.status_code or 500), str(err.get("message", "")),
                                    err.get("details") or (), resp.url)
    if resp.status_code >= 400:
        raise ImageServiceError(resp.status_code, resp.reason or "HTTP error", [resp.text[:300]], resp.url)


def json_of(resp: requests.Response) -> dict:
    raise_for_error(resp)
    try:
        return resp.json()
    except ValueError:
        raise ImageServiceError(502, "the server did not answer JSON", [resp.text[:200]], resp.url) from None


def pool(workers: int) -> ThreadPoolExecutor:
    """The bounded pool block reads run in (never more threads than connections)."""
    return ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ogc-gateway-client")


def compact(value) -> str:
    """A JSON parameter as ArcGIS expects it (no spaces); strings are passed through."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


class ThreadSessions:
    """One requests.Session per thread (a Session is not documented as thread-safe), with the
    credentials' headers; picklable, as Spark ships clients to executors: sessions stay behind.
    A class using it sets `credentials` and `session_workers` and calls `_reset_sessions()`."""

    session_workers = DEFAULT_WORKERS

    def _reset_sessions(self) -> None:
        self._local = threading.local()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_local", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset_sessions()

    @property
    def session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = make_session(self.session_workers)
            s.headers.update(self.credentials.headers)
        return s
