"""In-process timing (and profiling) of the engine's dynamic path: the three workloads of issue 13
through the Flask test client, one thread, on the demo data — no server, no client threads, so the
figure is the time of one request's own work and changes of a few percent show.

    python benchmarks/inprocess.py [--dir DIR] [--workloads wms-png,wms-tiles,wcs10] [--rounds 5]
                                   [--profile wms-png --sort cumulative --limit 40]

Workloads (seeded request lists, built from the demo DEM's extent, never from the server):

- `wms-png`: WMS 1.3.0 GetMap, 256 x 256 PNG in EPSG:3857 over the elevation mosaic (four float32
  UTM 33N tiles), boxes of log-uniform size between about one source cell per pixel and the whole
  extent, placed at random over it;
- `wms-tiles`: the same GetMap at Web Mercator tile boxes (WebMercatorQuad) of zooms 9 to 14 that
  meet the mosaic;
- `wcs10`: WCS 1.0.0 GetCoverage, 512 x 512 float32 GeoTIFF in EPSG:32633 (the native CRS),
  INTERPOLATION=bilinear, boxes of log-uniform size between half and twice the native resolution;
- `run-<group>`: the URL lists of run.py's groups png, jpg, tiff, wms, wcs, hillshade and ndvi.

Each round requests every URL of a workload once (every answer is checked: HTTP 200 and the
format's magic bytes); each request is timed by this thread's CPU time (`--clock cpu`, the
default: other processes sharing the machine disturb it least) or wall time; the figures are the
fastest of each request's times over the rounds (the least disturbed by other processes on a shared
machine), summarised as median and p95 over the list, and the mean. `--profile` runs cProfile over two rounds of one
workload and prints the top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import math
import pstats
import random
import statistics
import sys
import time
from pathlib import Path

from pyproj import Transformer

SEED = 13
DEM = (400_000.0, 5_169_760.0, 430_240.0, 5_200_000.0)    # demo.py: 1008 x 1008 cells of 30 m
DEM_RES = 30.0
COUNT = 60
MAGIC = {"png": b"\x89PNG", "tiff": b"II*\x00", "jpg": b"\xff\xd8\xff"}
WEB_MERCATOR_HALF = 20037508.342789244


def _dem_3857() -> tuple[float, float, float, float]:
    t = Transformer.from_crs("EPSG:32633", "EPSG:3857", always_xy=True)
    xs, ys = t.transform([DEM[0], DEM[2], DEM[0], DEM[2]], [DEM[1], DEM[1], DEM[3], DEM[3]])
    return min(xs), min(ys), max(xs), max(ys)


def _boxes(rng: random.Random, extent, smallest: float, largest: float, count: int):
    x0, y0, x1, y1 = extent
    for _ in range(count):
        side = math.exp(rng.uniform(math.log(smallest), math.log(largest)))
        cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
        yield cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2


def _getmap(box) -> str:
    bbox = ",".join(f"{v:.3f}" for v in box)
    return ("/ogc/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=elevation&STYLES=&CRS=EPSG:3857"
            f"&BBOX={bbox}&WIDTH=256&HEIGHT=256&FORMAT=image/png&TRANSPARENT=TRUE")


def workloads() -> dict[str, tuple[str, list[str]]]:
    rng = random.Random(SEED)
    merc = _dem_3857()
    scale = (merc[2] - merc[0]) / (DEM[2] - DEM[0])          # Mercator metres per UTM metre here
    wms = [_getmap(b) for b in _boxes(rng, merc, 256 * DEM_RES * scale, merc[2] - merc[0], COUNT)]
    tiles = []
    for z in range(9, 15):
        size = 2 * WEB_MERCATOR_HALF / 2 ** z
        c0, c1 = int((merc[0] + WEB_MERCATOR_HALF) // size), int((merc[2] + WEB_MERCATOR_HALF) // size)
        r0, r1 = int((WEB_MERCATOR_HALF - merc[3]) // size), int((WEB_MERCATOR_HALF - merc[1]) // size)
        cells = [(c, r) for c in range(c0, c1 + 1) for r in range(r0, r1 + 1)]
        for c, r in rng.sample(cells, min(len(cells), COUNT // 6)):
            x = -WEB_MERCATOR_HALF + c * size
            y = WEB_MERCATOR_HALF - (r + 1) * size
            tiles.append(_getmap((x, y, x + size, y + size)))
    wcs = []
    for b in _boxes(rng, DEM, 512 * DEM_RES / 2, 512 * DEM_RES * 2, COUNT):
        bbox = ",".join(f"{v:.3f}" for v in b)
        wcs.append("/ogc/wcs?SERVICE=WCS&VERSION=1.0.0&REQUEST=GetCoverage&COVERAGE=elevation"
                   f"&CRS=EPSG:32633&BBOX={bbox}&WIDTH=512&HEIGHT=512&FORMAT=GeoTIFF"
                   "&INTERPOLATION=bilinear")
    lists = {"wms-png": ("png", wms), "wms-tiles": ("png", tiles), "wcs10": ("tiff", wcs)}
    # run.py's groups too (benchmarks/urls.py), for a figure beside its load test
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import urls as url_list

    kinds = {"png": "png", "jpg": "jpg", "tiff": "tiff", "wms": "png", "wcs": "tiff", "hillshade": "png",
             "ndvi": "png"}
    for group, found in url_list.build().items():
        if group in kinds:
            lists[f"run-{group}"] = (kinds[group], found)
    return lists


def make_client(folder: Path):
    from ogc_gateway import demo
    from ogc_gateway.app import create_app
    from ogc_gateway.config import load_config

    app = create_app(load_config(demo.generate(folder)))
    return app.test_client()


def run_once(client, kind: str, urls: list[str], clock=time.perf_counter) -> list[float]:
    times = []
    for url in urls:
        t0 = clock()
        r = client.get(url)
        times.append(clock() - t0)
        if r.status_code != 200 or not r.data.startswith(MAGIC[kind]):
            raise SystemExit(f"bad answer ({r.status_code}, {r.content_type}) to {url}:\n{r.data[:300]!r}")
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/tmp/ogc-gateway-inprocess-demo", help="demo data folder (reused)")
    ap.add_argument("--workloads", default="wms-png,wms-tiles,wcs10")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="cpu: this thread's CPU time (what other processes on the machine disturb least)")
    ap.add_argument("--profile", help="a workload to profile with cProfile instead of timing")
    ap.add_argument("--sort", default="tottime")
    ap.add_argument("--limit", type=int, default=40)
    args = ap.parse_args()
    client = make_client(Path(args.dir))
    lists = workloads()
    if args.profile:
        kind, urls = lists[args.profile]
        run_once(client, kind, urls)                       # warm: datasets open, caches filled
        prof = cProfile.Profile(time.thread_time) if args.clock == "cpu" else cProfile.Profile()
        prof.enable()
        for _ in range(2):
            run_once(client, kind, urls)
        prof.disable()
        print(f"{args.profile}: {2 * len(urls)} requests")
        pstats.Stats(prof, stream=sys.stdout).sort_stats(args.sort).print_stats(args.limit)
        return
    print("| workload | requests | median ms | p95 ms | mean ms |")
    print("|---|---:|---:|---:|---:|")
    for name in args.workloads.split(","):
        kind, urls = lists[name]
        run_once(client, kind, urls)                       # warm-up
        clock = time.thread_time if args.clock == "cpu" else time.perf_counter
        rounds = [run_once(client, kind, urls, clock) for _ in range(args.rounds)]
        per_url = [min(r[i] for r in rounds) * 1000 for i in range(len(urls))]   # least disturbed
        per_url.sort()
        p95 = per_url[min(len(per_url) - 1, math.ceil(0.95 * len(per_url)) - 1)]
        print(f"| {name} | {len(urls)} | {statistics.median(per_url):.2f} | {p95:.2f} | "
              f"{statistics.fmean(per_url):.2f} |")


if __name__ == "__main__":
    main()
