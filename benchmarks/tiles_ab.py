"""Server CPU per warm cached tile of two ogc-gateway source trees, A/B in one process (issue 13).

The cached-tile path is cheap enough (well under a millisecond) that the asyncio front — the event loop,
the hand-over to a pool thread and back — is a large share of it, so timing the WSGI app alone (as
inprocess_ab.py does) would miss it. This script loads both trees' apps, each behind its own tree's
`asgi.WsgiOnAsgi`, and drives them in one asyncio loop like the ASGI server does (scope in, messages
out), `--concurrency` requests at a time, over peers.py's seeded `tiles` list: batches of
`--batch` requests alternate between the sides, and each side's process CPU time (every thread: loop
and pool) is summed. Every answer is checked (200, a PNG), and the two sides' bodies compared.

    python benchmarks/tiles_ab.py --base /tmp/old --dir /tmp/peers-demo
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import inprocess_ab  # noqa: E402  (this folder's script, beside this one)


def load(src: Path, config: Path):
    """The tree's Flask app behind the tree's own ASGI front, and its peers module."""
    app, peers = inprocess_ab.load(src, config)
    sys.path[:0] = [str(src)]
    try:
        asgi = importlib.import_module("ogc_gateway.asgi")
    finally:
        del sys.path[:1]
    server = app.extensions["ogc_gateway"].config.server
    front = asgi.WsgiOnAsgi(app, max_body=server.max_request_bytes, threads=server.max_heavy_per_worker + 1)
    return front, peers


async def request(front, url: str) -> bytes:
    """One GET through the ASGI app, as the server would make it; the body, checked."""
    path, _, query = url.partition("?")
    scope = {"type": "http", "method": "GET", "path": path, "query_string": query.encode(), "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), (b"user-agent", b"tiles_ab")], "http_version": "1.1",
             "scheme": "http", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 40000)}
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await front(scope, receive, send)
    if not sent or sent[0].get("status") != 200:
        raise SystemExit(f"{url}: {sent[:1]}")
    body = b"".join(m.get("body", b"") for m in sent[1:])
    if not body.startswith(b"\x89PNG"):
        raise SystemExit(f"{url}: not a PNG: {body[:60]!r}")
    return body


async def batch(front, urls: list[str], concurrency: int) -> None:
    queue = iter(urls)

    async def client():
        for url in queue:
            await request(front, url)
    await asyncio.gather(*(client() for _ in range(concurrency)))


async def run(fronts: dict, urls: list[str], args) -> dict:
    same = 0
    for url in urls:                                   # warm-up: renders and learns every tile
        same += await request(fronts["base"], url) == await request(fronts["new"], url)
    cpu = {"base": 0.0, "new": 0.0}
    batches = [urls[i:i + args.batch] for i in range(0, len(urls), args.batch)]
    for r in range(args.rounds):
        for i, part in enumerate(batches):
            for side in (("base", "new") if (i + r) % 2 == 0 else ("new", "base")):
                start = time.process_time()
                await batch(fronts[side], part, args.concurrency)
                cpu[side] += time.process_time() - start
    return {"cpu": cpu, "same": same, "n": args.rounds * len(urls)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the other source tree (A)")
    parser.add_argument("--new", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the tree measured against it (B; default: this checkout)")
    parser.add_argument("--dir", type=Path, default=Path("peers-demo"), help="demo data folder")
    parser.add_argument("--rounds", type=int, default=10, help="passes over the list")
    parser.add_argument("--batch", type=int, default=50, help="requests per side before switching")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    args = parser.parse_args()

    import prometheus_client.registry

    prometheus_client.registry.CollectorRegistry.register = lambda self, collector: None
    sys.path.insert(0, str(args.new))
    config = importlib.import_module("ogc_gateway.demo").generate(args.dir)
    fronts = {}
    fronts["base"], _ = load(args.base, config)
    fronts["new"], peers = load(args.new, config)
    dem = inprocess_ab.dem_of(peers, args.dir)
    urls = peers.urls_for("ogc-gateway", "tiles", peers.request_lists(dem)["tiles"], dem)
    result = asyncio.run(run(fronts, urls, args))
    base, new = (result["cpu"][s] / result["n"] * 1e6 for s in ("base", "new"))
    print(f"tiles: process CPU µs/tile {base:.0f} -> {new:.0f} ({(new / base - 1) * 100:+.1f} %), "
          f"byte-identical answers {result['same']}/{len(urls)}", flush=True)
    for front in fronts.values():
        front.executor.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
