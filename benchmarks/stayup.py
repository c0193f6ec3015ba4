"""Cheap-request latency while heavy requests and slow clients run (issue 15, "Staying up").

    python benchmarks/stayup.py [--front serve|sync] [--workers 2] [--heavy 20] [--slow 100] [--duration 30]

Generates a 2000 x 2000 DEM (no download) in a temporary folder and starts the server on a free port:
`--front serve` as `ogc-gateway serve` starts it (gunicorn's asyncio worker, ogc_gateway/asgi.py);
`--front sync` as the old settings did (gunicorn sync workers, `ogc_gateway.wsgi:app`), for comparison.
Then, for `--duration` seconds each:

1. quiet: three cheap clients, one each for a cached REST tile, WMS GetCapabilities and a 256 x 256 PNG
   exportImage, each request after the other;
2. loaded: the same cheap clients while `--heavy` clients loop on 4000 x 4000 hillshade exports (a
   "busy" answer makes a heavy client wait 1 s, as a polite client would) and `--slow` connections
   hold half a request each.

Prints p50/p95/max of each cheap kind in both phases, how many heavy exports finished and how many were
told "busy", and writes the figures to benchmarks/results/stayup-<timestamp>.json. Timings live here, not
in the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import rasterio
import requests
from affine import Affine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
X0, Y1, CELL, SIZE = 500000.0, 5000000.0, 10.0, 2000
BBOX = f"{X0},{Y1 - SIZE * CELL},{X0 + SIZE * CELL},{Y1}"
HILLSHADE = json.dumps({"rasterFunction": "Hillshade",
                        "rasterFunctionArguments": {"Azimuth": 315, "Altitude": 45, "ZFactor": 1}})


def make_data(folder: Path) -> Path:
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    dem = (800 * np.sin(6 * x) * np.cos(5 * y) + 300 * x + 1000).astype("float32")
    (folder / "dem").mkdir(parents=True)
    with rasterio.open(folder / "dem" / "dem.tif", "w", driver="GTiff", width=SIZE, height=SIZE, count=1,
                       dtype="float32", crs="EPSG:32633", transform=Affine(CELL, 0, X0, 0, -CELL, Y1),
                       tiled=True, compress="deflate") as dst:
        dst.write(dem, 1)
    config = folder / "gateway.yaml"
    config.write_text("server:\n  title: stayup\nservices:\n  dem:\n    sources: dem/*.tif\n")
    return config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(front: str, config: Path, port: int, workers: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OGC_GATEWAY_CONFIG": str(config)}
    if front == "serve":
        cmd = [sys.executable, "-m", "ogc_gateway.cli", "serve", "--config", str(config), "--port", str(port),
               "--workers", str(workers)]
    else:   # the settings serve used before: sync workers, 120 s timeout
        subprocess.run([sys.executable, "-m", "ogc_gateway.cli", "check-config", "--config", str(config)],
                       env=env, check=True, capture_output=True)
        cmd = [sys.executable, "-m", "gunicorn", "-k", "sync", "-w", str(workers), "--timeout", "120",
               "-b", f"127.0.0.1:{port}", "ogc_gateway.wsgi:app"]
    return subprocess.Popen(cmd, env=env, cwd=config.parent, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_up(base: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the server stopped; see its log")
        try:
            requests.get(f"{base}/arcgis/rest/services?f=json", timeout=5)
            return
        except requests.RequestException:
            time.sleep(0.3)
    raise SystemExit("the server did not answer within 120 s")


def cheap_urls(base: str) -> dict[str, str]:
    root = f"{base}/arcgis/rest/services/dem/ImageServer"
    small = f"{X0 + 5000},{Y1 - 7560},{X0 + 7560},{Y1 - 5000}"
    return {"tile": f"{root}/tile/12/1472/2220",         # WebMercatorQuad z12 over the DEM
            "capabilities": f"{base}/ogc/wms?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0",
            "small export": f"{root}/exportImage?bbox={small}&size=256,256&format=png&f=image"}


def cheap_client(name: str, url: str, stop: threading.Event, out: dict) -> None:
    times, errors, t0 = [], 0, time.monotonic()
    slowest = []
    with requests.Session() as session:
        while not stop.is_set():
            started = time.monotonic()
            try:
                resp = session.get(url, timeout=120)
                ok = resp.status_code == 200 and not resp.content.startswith(b'{"error"')
            except requests.RequestException:
                ok = False
            times.append(time.monotonic() - started)
            slowest = sorted(slowest + [(round(times[-1], 2), round(started - t0, 1))])[-3:]
            errors += not ok
    out[name] = {"count": len(times), "errors": errors, **summary(times),
                 "slowest_s_at_s": slowest[::-1]}


def heavy_client(base: str, stop: threading.Event, counts: dict, lock: threading.Lock) -> None:
    url = (f"{base}/arcgis/rest/services/dem/ImageServer/exportImage?bbox={BBOX}&size=4000,4000"
           f"&format=tiff&f=image&renderingRule={requests.utils.quote(HILLSHADE)}")
    with requests.Session() as session:
        while not stop.is_set():
            try:
                resp = session.get(url, timeout=300)
                kind = "busy" if b"busy" in resp.content[:300] else (
                    "done" if resp.status_code == 200 and resp.content[:2] in (b"II", b"MM") else "failed")
            except requests.RequestException:
                kind = "failed"
            with lock:
                counts[kind] = counts.get(kind, 0) + 1
            if kind != "done":
                stop.wait(1.0)


def slow_clients(port: int, count: int) -> list[socket.socket]:
    opened = []
    for n in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /arcgis/rest/serv" if n % 2 else b"GET /arcgis/rest/services?f=json HTTP/1.1\r\nHost: x")
        opened.append(s)
    return opened


def summary(times: list[float]) -> dict:
    if not times:
        return {"p50_ms": None, "p95_ms": None, "max_ms": None}
    ms = np.array(times) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "max_ms": round(float(ms.max()), 1)}


def phase(base: str, port: int, duration: float, heavy: int, slow: int) -> dict:
    stop, out, counts, lock = threading.Event(), {}, {}, threading.Lock()
    opened = slow_clients(port, slow) if slow else []
    threads = [threading.Thread(target=heavy_client, args=(base, stop, counts, lock)) for _ in range(heavy)]
    for t in threads:
        t.start()
    if heavy:
        time.sleep(2)                   # the heavy requests are running before the cheap ones start
    cheap = [threading.Thread(target=cheap_client, args=(name, url, stop, out))
             for name, url in cheap_urls(base).items()]
    for t in cheap:
        t.start()
    time.sleep(duration)
    stop.set()
    for t in cheap + threads:
        t.join(330)
    for s in opened:
        s.close()
    return {"cheap": out, "heavy": counts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--front", choices=("serve", "sync"), default="serve")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--heavy", type=int, default=20)
    ap.add_argument("--slow", type=int, default=100)
    ap.add_argument("--duration", type=float, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = make_data(folder)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        process = start(args.front, config, port, args.workers, folder / "server.log")
        try:
            wait_up(base, process)
            for url in cheap_urls(base).values():           # warm-up: the tile is cached from here on
                requests.get(url, timeout=60)
            quiet = phase(base, port, args.duration, 0, 0)
            loaded = phase(base, port, args.duration, args.heavy, args.slow)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
            (HERE / "results").mkdir(exist_ok=True)
            (HERE / "results" / "stayup-server.log").write_bytes((folder / "server.log").read_bytes())
    result = {"front": args.front, "workers": args.workers, "heavy": args.heavy, "slow": args.slow,
              "duration_s": args.duration, "cpus": os.cpu_count(), "quiet": quiet, "loaded": loaded,
              "when": datetime.now(UTC).isoformat(timespec="seconds")}
    print(f"front={args.front} workers={args.workers} heavy={args.heavy} slow={args.slow} "
          f"duration={args.duration:g}s cpus={os.cpu_count()}")
    print("| request | phase | count | errors | p50 ms | p95 ms | max ms |")
    print("|---|---|---|---|---|---|---|")
    for name in cheap_urls("").keys():
        for label, run in (("quiet", quiet), ("loaded", loaded)):
            r = run["cheap"].get(name, {})
            print(f"| {name} | {label} | {r.get('count')} | {r.get('errors')} | {r.get('p50_ms')} | "
                  f"{r.get('p95_ms')} | {r.get('max_ms')} |")
    print(f"heavy 4000x4000 hillshades while loaded: {loaded['heavy']}")
    for name, r in loaded["cheap"].items():
        print(f"slowest {name} while loaded (seconds, started at second): {r.get('slowest_s_at_s')}")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    path = results / f"stayup-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"written: {path}")


if __name__ == "__main__":
    main()
