"""Cached tiles answered in the asyncio front's event loop (asgi.WsgiOnAsgi's `inline`, tilefast's
`prepare`): the answer is the threaded path's, header for header, the file's bytes; the access log
line, request id and metrics still come from the request observer; anything prepare cannot answer
(not learnt yet, a missing file, a conditional request, proxy_headers) goes to a pool thread."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from conftest import make_config
from ogc_gateway.app import create_app
from ogc_gateway.asgi import WsgiOnAsgi
from ogc_gateway.tilefast import inline_answers
from test_asgi_front import exchange
from test_tilefast import VARIABLE, WMTS_KVP, WMTS_REST

LOOP = "the loop"


def front_of(app) -> tuple[WsgiOnAsgi, list[str]]:
    """The app behind the front as `serve` builds it; `ran` says where each request's app call ran."""
    ran: list[str] = []
    front = WsgiOnAsgi(app, max_body=1000, inline=inline_answers(app))
    wsgi = front.wsgi_app

    def where(environ, start_response):
        ran.append(LOOP if threading.current_thread() is threading.main_thread() else "a thread")
        return wsgi(environ, start_response)
    front.wsgi_app = where
    return front, ran


def get(front: WsgiOnAsgi, url: str, headers: tuple = ()) -> tuple[int, dict[str, str], bytes]:
    sent = exchange(front, url, headers)
    head = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    return sent[0]["status"], head, b"".join(m.get("body", b"") for m in sent[1:])


def tile_file(app, body: bytes) -> Path:
    """The cached file holding `body` (the truth: what the normal path wrote to disk)."""
    root = Path(app.extensions["ogc_gateway"].tile_store.root)
    found = [p for p in root.rglob("*") if p.is_file() and p.read_bytes() == body]
    assert found, "the answer is no cached file"
    return found[0]


def test_a_learnt_cached_tile_is_answered_in_the_loop_as_the_thread_would(data_dir, tmp_path, caplog):
    app = create_app(make_config(data_dir, tmp_path / "cache"))
    front, ran = front_of(app)
    try:
        for url in (WMTS_REST, WMTS_KVP):
            ran.clear()
            normal = get(front, url)                    # rendered, then learnt
            with caplog.at_level(logging.INFO, logger="ogc_gateway.access"):
                caplog.clear()
                inline = get(front, url)
            assert ran == ["a thread", LOOP]
            assert normal[0] == inline[0] == 200 and normal[2] == inline[2]
            assert tile_file(app, inline[2]).stat().st_size == len(inline[2])
            fixed = {k: v for k, v in normal[1].items() if k not in VARIABLE}
            assert {k: v for k, v in inline[1].items() if k not in VARIABLE} == fixed
            assert inline[1]["x-request-id"] != normal[1]["x-request-id"]
            lines = [r.getMessage() for r in caplog.records if r.name == "ogc_gateway.access"]
            assert len(lines) == 1 and " 200 " in lines[0] and inline[1]["x-request-id"] in lines[0]
            assert f" 200 {len(inline[2])} " in lines[0]
    finally:
        front.executor.shutdown()


def test_what_prepare_cannot_answer_goes_to_a_thread(data_dir, tmp_path):
    app = create_app(make_config(data_dir, tmp_path / "cache"))
    front, ran = front_of(app)
    try:
        status, head, body = get(front, WMTS_REST)
        get(front, WMTS_REST)
        ran.clear()
        assert get(front, WMTS_REST, ((b"if-none-match", head["etag"].encode()),))[0] == 304
        tile_file(app, body).unlink()                  # cleaned: rendered again by the normal path
        again = get(front, WMTS_REST)
        assert again[0] == 200 and again[2] == body
        assert ran == ["a thread", "a thread"]
    finally:
        front.executor.shutdown()


def test_behind_proxy_headers_every_request_goes_to_a_thread(data_dir, tmp_path):
    app = create_app(make_config(data_dir, tmp_path / "cache", proxy_headers=True))
    front, ran = front_of(app)
    try:
        first, second = get(front, WMTS_REST), get(front, WMTS_REST)
        assert first[2] == second[2] and ran == ["a thread", "a thread"]
    finally:
        front.executor.shutdown()
