"""The asyncio front (ogc_gateway/asgi.py) hands a WSGI answer to the loop whole and in order: the
head with the first chunk, each chunk once, the last one marked as the end (issue 13: one hand-over for
a one-chunk answer such as a cached tile)."""

from __future__ import annotations

import asyncio

from ogc_gateway.asgi import WsgiOnAsgi


def exchange(front: WsgiOnAsgi, url: str, headers: tuple = ()) -> list[dict]:
    """The ASGI messages `front` sends for one GET of `url` (as the asyncio worker would drive it)."""
    path, _, query = url.partition("?")
    scope = {"type": "http", "method": "GET", "path": path, "query_string": query.encode(), "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), *headers], "http_version": "1.1", "scheme": "http",
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5)}
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(front(scope, receive, send))
    return sent


def messages_of(wsgi_app) -> list[dict]:
    front = WsgiOnAsgi(wsgi_app, max_body=1000)
    try:
        return exchange(front, "/x?a=1")
    finally:
        front.executor.shutdown()


def check(sent: list[dict], status: int, body: bytes) -> list[dict]:
    """The start message first, then body messages whose last (only it) ends the answer."""
    assert sent[0] == {"type": "http.response.start", "status": status,
                       "headers": [(b"content-type", b"text/plain")]}
    bodies = sent[1:]
    assert all(m["type"] == "http.response.body" for m in bodies)
    assert [m["more_body"] for m in bodies] == [True] * (len(bodies) - 1) + [False]
    assert b"".join(m["body"] for m in bodies) == body
    return bodies


def test_a_one_chunk_answer_is_one_body_message():
    def app(environ, start_response):
        assert environ["QUERY_STRING"] == "a=1"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"tile"]
    assert len(check(messages_of(app), 200, b"tile")) == 1


def test_a_streamed_answer_arrives_whole_in_order():
    closed = []

    class Stream:
        def __init__(self, start_response):
            self.start_response = start_response

        def __iter__(self):
            self.start_response("206 Partial Content", [("Content-Type", "text/plain")])   # lazily
            yield b""
            yield b"one "
            yield b""
            yield b"two "
            yield bytearray(b"three")

        def close(self):
            closed.append(True)
    bodies = check(messages_of(lambda environ, start_response: Stream(start_response)), 206, b"one two three")
    assert [m["body"] for m in bodies] == [b"one ", b"two ", b"three"] and closed == [True]


def test_an_empty_answer_still_ends():
    def app(environ, start_response):
        start_response("204 No Content", [("Content-Type", "text/plain")])
        return []
    assert check(messages_of(app), 204, b"")[0]["body"] == b""


def test_an_answer_sent_while_others_wait_asks_its_client_to_reconnect():
    """A kept-alive connection stays with its worker; while requests wait there for a thread, an
    answer carries "Connection: close" so its client reconnects (to whichever worker accepts first)."""
    import threading
    import time

    second_waiting = threading.Event()
    front = WsgiOnAsgi(None, max_body=1000, threads=1)

    def app(environ, start_response):
        if environ["QUERY_STRING"] == "first":
            deadline = time.monotonic() + 5
            while front.waiting < 1 and time.monotonic() < deadline:      # the second one queued
                time.sleep(0.005)
            second_waiting.set()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    front.wsgi_app = app
    sent: dict[str, list[dict]] = {"first": [], "second": []}

    def scope(query: str) -> dict:
        return {"type": "http", "method": "GET", "path": "/x", "query_string": query.encode(), "root_path": "",
                "headers": [(b"host", b"127.0.0.1")], "http_version": "1.1", "scheme": "http",
                "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5)}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    def sender(name: str):
        async def send(message):
            sent[name].append(message)
        return send

    async def both():
        await asyncio.gather(front(scope("first"), receive, sender("first")),
                             front(scope("second"), receive, sender("second")))

    try:
        asyncio.run(both())
    finally:
        front.executor.shutdown()
    assert second_waiting.is_set()
    assert (b"connection", b"close") in sent["first"][0]["headers"]
    assert (b"connection", b"close") not in sent["second"][0]["headers"]      # nobody waits behind it
    assert front.waiting == 0
