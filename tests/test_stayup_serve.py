"""`ogc-gateway serve` keeps answering while slow and idle clients hold connections (issue 15, item 1),
and refuses oversized request bodies before reading them (item 7)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
import requests

from test_cli import free_port, good_config  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow                    # `ogc-gateway serve` (gunicorn) in a subprocess

SLOW_CLIENTS = 100


@pytest.fixture
def server(good_config):  # noqa: F811
    """The server exactly as `ogc-gateway serve` starts it, with 2 workers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ogc_gateway.cli", "serve", "--config", str(good_config),
         "--port", str(port), "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                requests.get(f"{base}/arcgis/rest/services", params={"f": "json"}, timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the server did not answer within 60 s"
                time.sleep(0.2)
        yield base, port
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _slow_clients(port: int, count: int) -> list[socket.socket]:
    """Connections that send part of a request and then wait: half a request line, a request line
    without its headers, a header cut in the middle, or nothing at all."""
    pieces = [b"GET /arcgis/re", b"GET /arcgis/rest/services?f=json HTTP/1.1\r\n",
              b"GET /arcgis/rest/services?f=json HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a", b"",
              b"POST /arcgis/rest/services HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc"]
    opened = []
    for i in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        opened.append(s)
        if pieces[i % len(pieces)]:
            s.sendall(pieces[i % len(pieces)])
    return opened


def test_normal_requests_answer_while_100_slow_clients_wait(server):
    base, port = server
    opened = _slow_clients(port, SLOW_CLIENTS)
    try:
        time.sleep(0.5)                 # let the workers pick the slow connections up
        for _ in range(5):
            started = time.monotonic()
            # A generous bound: before the fix this request waited for gunicorn's 120 s timeout.
            answer = requests.get(f"{base}/arcgis/rest/services", params={"f": "json"}, timeout=5)
            elapsed = time.monotonic() - started
            assert answer.status_code == 200
            assert "terrain" in [s["name"] for s in answer.json()["services"]]
            assert elapsed < 2.0, f"a normal request took {elapsed:.2f} s with {SLOW_CLIENTS} slow clients"
        # The slow clients are still connected (nothing was answered or dropped for them yet).
        answer = requests.get(f"{base}/arcgis/rest/services/terrain/ImageServer/exportImage",
                              params={"bbox": "500000,4999840,500160,5000000", "size": "16,16",
                                      "format": "tiff", "f": "image"}, timeout=5)
        assert answer.status_code == 200 and answer.content[:2] in (b"II", b"MM")
    finally:
        for s in opened:
            s.close()


def test_a_body_over_max_request_bytes_is_refused_without_being_read(server):
    base, port = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        # Announces 100 MB and sends none of it: the answer must come at once, not after 100 MB.
        s.sendall(b"POST /arcgis/rest/services/terrain/ImageServer/exportImage HTTP/1.1\r\n"
                  b"Host: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: 104857600\r\n\r\nf=json&")
        head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 413"), head[:200]
    # A chunked body with no length is counted as it arrives.
    chunk = b"x" * 65536
    with requests.Session() as session:
        answer = session.post(f"{base}/arcgis/rest/services/terrain/ImageServer/exportImage",
                              data=(chunk for _ in range(200)),
                              headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
    assert answer.status_code == 413
