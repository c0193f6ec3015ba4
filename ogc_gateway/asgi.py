"""The Flask (WSGI) app behind gunicorn's asyncio worker, so slow clients cost a coroutine, not a worker.

Why: with sync workers a client that sends half a request line and waits holds a whole worker until
gunicorn's timeout; two such clients stopped a 2-worker server for 120 s. Here the asyncio loop reads each
request in full (headers and body, the body capped at `max_request_bytes`) and only then hands it to a
small thread pool that runs the WSGI app. Idle and slow connections wait in the loop; the threads only
ever see complete requests. Responses stream back chunk by chunk with back-pressure (the thread waits
until the loop has written each chunk), so a large download is never held in memory whole.

`ogc-gateway serve` runs this with `worker_class="asgi"`; so does `deploy/gunicorn.conf.py`
(`gunicorn -c deploy/gunicorn.conf.py ogc_gateway.asgi:app`).
"""

from __future__ import annotations

import asyncio
import io
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

from .publish import UPLOAD_PATHS

#: Threads per worker that run the WSGI app: one more than the heavy requests a worker may run at once
#: (max_heavy_per_worker, default 1), so a cheap request always finds a thread while a heavy one runs.
#: More threads only contend for the GIL: on the peers benchmark (2 workers, 4 clients) 2 threads served
#: cached tiles at 1.24x MapProxy's rate, 3 threads 1.06x, 4 threads 1.06x, with more memory each.
DEFAULT_THREADS = 2

SPOOL = 1 << 20

_TOO_LARGE = b'{"error": {"code": 413, "message": "Request body too large.", "details": []}}'


class WsgiOnAsgi:
    """An ASGI app that buffers each whole request, then runs a WSGI app on it in a thread."""

    def __init__(self, wsgi_app: Callable, *, max_body: int, threads: int = DEFAULT_THREADS,
                 max_upload: int | None = None, inline: Callable[[dict], bool] | None = None) -> None:
        self.wsgi_app = wsgi_app
        # `inline(environ)` True: the app answers this request without I/O or waiting (tilefast.py
        # read the cached tile into the environ), so it runs here in the loop: the hand-over to a
        # pool thread and back cost a cached tile more CPU than the app's own work (py-spy, ~30 %).
        self.inline = inline
        self.max_body = max_body
        # The publishing API's uploads may be larger: spooled to disk past SPOOL bytes, never held whole.
        self.max_upload = max(max_upload or max_body, max_body)
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ogc-gateway")
        # Requests handed to the pool that no thread has taken up yet. While some wait, an answer
        # asks its client to reconnect ("Connection: close"): kept-alive connections stay with the
        # worker that accepted them, and a few clients could otherwise queue on one worker while
        # another idles; a new connection goes to whichever worker accepts first (the peers
        # benchmark's WCS rounds ran at 126 or 239 req/s, by how its four connections fell).
        self.waiting = 0
        self._count = threading.Lock()

    def limit(self, path: str) -> int:
        return self.max_upload if path.endswith(UPLOAD_PATHS) else self.max_body

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":         # websockets: not offered
            return
        body = await self._read_body(scope, receive, self.limit(scope["path"]))
        if body is None:
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": _TOO_LARGE})
            return
        environ = _environ(scope, body)
        try:
            if self.inline is not None and self.inline(environ):
                await self._run_inline(environ, send)
                return
            loop = asyncio.get_running_loop()
            self._add_waiting(1)
            await loop.run_in_executor(self.executor, self._run, environ, send, loop)
        finally:
            body.close()

    def _add_waiting(self, n: int) -> None:
        with self._count:
            self.waiting += n

    async def _run_inline(self, environ: dict, send: Callable) -> None:
        """Call the WSGI app in the loop (see `inline`) and send its whole answer."""
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list, exc_info=None):
            started["status"] = int(status.split(" ", 1)[0])
            started["headers"] = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
            return lambda data: None

        result = self.wsgi_app(environ, start_response)
        try:
            body = b"".join(result)
            await send({"type": "http.response.start", "status": started["status"], "headers": started["headers"]})
            await send({"type": "http.response.body", "body": body, "more_body": False})
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    async def _lifespan(self, receive: Callable, send: Callable) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.executor.shutdown(wait=False, cancel_futures=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _read_body(self, scope: dict, receive: Callable, limit: int) -> IO[bytes] | None:
        """The whole body (in memory, on disk past SPOOL bytes), rewound; None when it is (or
        announces itself) larger than `limit`."""
        for name, value in scope.get("headers", ()):
            if name.lower() == b"content-length":
                try:
                    if int(value) > limit:
                        return None
                except ValueError:
                    pass
        body, size = tempfile.SpooledTemporaryFile(max_size=SPOOL), 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                body.close()
                return None
            body.write(chunk)
            if not message.get("more_body", False):
                break
        body.seek(0)
        return body

    def _run(self, environ: dict, send: Callable, loop: asyncio.AbstractEventLoop) -> None:
        """In a pool thread: call the WSGI app and hand each chunk to the loop, waiting for it to be sent.

        Each hand-over is a round trip between this thread and the loop (a wake-up of each), which
        cost a cached tile more than serving it: so the head goes with the first chunk, and each
        chunk is held until the next one shows whether it is the last — a one-chunk answer (a tile,
        any Flask response of bytes) is one hand-over, not three."""
        async def deliver(messages: list[dict]) -> None:
            for message in messages:
                await send(message)

        started: dict[str, Any] = {}

        def call(body: bytes, more: bool) -> None:
            if loop.is_closed():            # the worker is shutting down: nobody to send to
                raise ConnectionError("the worker's event loop has stopped")
            messages = [{"type": "http.response.body", "body": body, "more_body": more}]
            if not started.get("sent"):
                headers = started["headers"]
                if self.waiting > 0 and not any(k == b"connection" for k, _ in headers):
                    headers = [*headers, (b"connection", b"close")]     # others wait: reconnect
                messages.insert(0, {"type": "http.response.start", "status": started["status"],
                                    "headers": headers})
                started["sent"] = True
            asyncio.run_coroutine_threadsafe(deliver(messages), loop).result()

        def start_response(status: str, headers: list, exc_info=None):
            if exc_info and started.get("sent"):
                raise exc_info[1].with_traceback(exc_info[2])
            started["status"] = int(status.split(" ", 1)[0])
            started["headers"] = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
            return lambda data: None        # the legacy write() callable; Flask never uses it

        self._add_waiting(-1)               # taken up
        result = self.wsgi_app(environ, start_response)
        try:
            held = None
            for chunk in result:
                if chunk:
                    if held is not None:
                        call(held, True)
                    held = bytes(chunk)
            call(held or b"", False)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


def _environ(scope: dict, body: IO[bytes]) -> dict:
    """PEP 3333 environ of one ASGI http scope."""
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    root = scope.get("root_path", "")
    path = scope["path"]
    if root and path.startswith(root):
        path = path[len(root):]
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": root.encode("utf-8").decode("latin-1"),
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1] if server[1] is not None else 80),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": str(client[0]),
        "REMOTE_PORT": str(client[1]),
        "CONTENT_LENGTH": str(body.seek(0, io.SEEK_END) - body.seek(0)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if name == "CONTENT_LENGTH":
            continue                        # the body is already whole: its real length is above
        key = "CONTENT_TYPE" if name == "CONTENT_TYPE" else f"HTTP_{name}"
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def _build():
    """`gunicorn -k asgi ogc_gateway.asgi:app`: the same app as ogc_gateway.wsgi, buffered."""
    from . import wsgi
    from .tilefast import inline_answers

    server = wsgi.app.extensions["ogc_gateway"].config.server
    return WsgiOnAsgi(wsgi.app, max_body=server.max_request_bytes, max_upload=server.max_upload_bytes,
                      threads=server.max_heavy_per_worker + 1, inline=inline_answers(wsgi.app))


def __getattr__(name: str):
    # Built lazily: importing this module (e.g. from `ogc-gateway serve`) must not load a config.
    if name == "app":
        globals()["app"] = value = _build()
        return value
    raise AttributeError(name)
