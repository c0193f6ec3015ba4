"""Throughput of a large read through ogc_gateway.client and through the Spark data source.

    python benchmarks/client_read.py [--size 6000] [--workers 2] [--client-workers 4] [--repeat 3]
                                     [--tile 1024] [--no-spark]

Writes one float32 raster of SIZE x SIZE cells (a tilted plane, tiled 512 x 512, deflate) and a
gateway.yaml in a temporary folder, serves it with `ogc-gateway serve --workers N` (gunicorn, this
checkout, a free port on 127.0.0.1), then times:

- `client`: `ImageServiceClient.export()` of the whole extent at native resolution — exportImage
  blocks of maxImageWidth x maxImageHeight (4100 x 4100 here) fetched by `--client-workers`
  threads and stitched — and the same with its default 1024 x 1024 blocks;
- `spark`: `spark.read.format("image-service")` with tileColumns = tileRows = `--tile` in a
  local[2] session, forcing every tile (`sum(length(raster.data))`).

MB/s counts the decoded values (SIZE x SIZE x 4 bytes) per second of wall time, median of
`--repeat` runs after one warm-up (the first read also opens the server's datasets). Every read is
checked against the plane. Prints a Markdown table and writes benchmarks/results/client-<UTC>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import rasterio
import requests
from affine import Affine

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ogc_gateway.client import ImageServiceClient  # noqa: E402

RES, WEST, NORTH = 10.0, 500000.0, 5600000.0


def plane(xs, ys):
    return ((xs - WEST) * 0.01 + (NORTH - ys) * 0.001).astype("float32")


def write_raster(path: Path, size: int) -> None:
    profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="float32", crs="EPSG:32633",
                   transform=Affine(RES, 0, WEST, 0, -RES, NORTH), tiled=True, blockxsize=512, blockysize=512,
                   compress="deflate", nodata=-9999.0)
    with rasterio.open(path, "w", **profile) as ds:
        step = 1024
        for r in range(0, size, step):
            h = min(step, size - r)
            cols = np.arange(size)
            rows = np.arange(r, r + h)
            xs = WEST + (cols + 0.5) * RES
            ys = NORTH - (rows + 0.5) * RES
            ds.write(plane(xs[None, :], ys[:, None])[None], window=rasterio.windows.Window(0, r, size, h))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(config: Path, port: int, workers: int, log: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-m", "ogc_gateway.cli", "serve", "--config", str(config), "--port", str(port),
           "--workers", str(workers)]
    return subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True, env=env)


def wait_ready(proc, base: str, timeout: float = 300) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with status {proc.returncode}")
        try:
            if requests.get(f"{base}/arcgis/rest/services?f=json", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.25)
    raise SystemExit("the server did not start")


def stop(proc) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def timed(fn, repeat: int) -> tuple[list[float], object]:
    fn()                                   # warm-up
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def check(data: np.ndarray, size: int) -> None:
    cols = np.arange(size)
    xs = WEST + (cols + 0.5) * RES
    ys = NORTH - (cols + 0.5) * RES
    assert np.array_equal(data[0], plane(xs[None, :], ys[:, None])), "values differ from the plane"


def spark_read(url: str, tile: int, size: int, repeat: int) -> list[float]:
    from pyspark.sql import SparkSession

    from ogc_gateway.spark import register

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))
    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    register(spark)
    try:
        def run():
            df = spark.read.format("image-service").option("tileColumns", tile).option("tileRows", tile).load(url)
            return df.selectExpr("sum(length(raster.data)) AS n", "count(*) AS tiles").first()

        times, row = timed(run, repeat)
        assert row.n == size * size * 4, (row.n, size)
        return times
    finally:
        spark.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=6000)
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    ap.add_argument("--client-workers", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tile", type=int, default=1024)
    ap.add_argument("--no-spark", action="store_true")
    args = ap.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="ogc-gateway-client-bench-"))
    (folder / "big").mkdir()
    write_raster(folder / "big" / "plane.tif", args.size)
    (folder / "gateway.yaml").write_text(
        "server:\n  cache_dir: cache\n  max_image_width: 4100\n  max_image_height: 4100\n"
        "  max_source_pixels: 400000000\n"
        "services:\n  big:\n    sources: big/*.tif\n    default_resampling: nearest\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = serve(folder / "gateway.yaml", port, args.workers, folder / "server.log")
    mb = args.size * args.size * 4 / 1e6
    results = {"size": args.size, "mb": mb, "server_workers": args.workers, "client_workers": args.client_workers,
               "cpus": os.cpu_count(), "runs": {}}
    try:
        wait_ready(proc, base)
        url = f"{base}/arcgis/rest/services/big/ImageServer"
        client = ImageServiceClient(url, workers=args.client_workers)
        for label, block in (("client (4100 x 4100 blocks)", (4100, 4100)),
                             ("client (1024 x 1024 blocks, the default)", None)):
            times, (data, _) = timed(lambda b=block: client.export(block_size=b), args.repeat)
            check(data, args.size)
            results["runs"][label] = times
        if not args.no_spark:
            results["runs"][f"spark local[2] ({args.tile} x {args.tile} tiles)"] = \
                spark_read(url, args.tile, args.size, args.repeat)
    finally:
        stop(proc)

    print(f"\n{args.size} x {args.size} float32 ({mb:.0f} MB of values), gunicorn workers {args.workers}, "
          f"client threads {args.client_workers}, {os.cpu_count()} CPUs\n")
    print("| read | median s | MB/s | runs (s) |\n|---|---:|---:|---|")
    for label, times in results["runs"].items():
        med = statistics.median(times)
        print(f"| {label} | {med:.2f} | {mb / med:.1f} | {', '.join(f'{t:.2f}' for t in times)} |")
    out = HERE / "results" / f"client-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"\n{out}")


if __name__ == "__main__":
    main()
