"""Catalog selection at scale: how long choosing a request's items takes in a catalog of 100,000.

    python benchmarks/selection.py [--items 100000] [--repeat 200] [--dir DIR] [--seed 7]
                                   [--catalog-url postgresql://user:pw@host/db [--compare]]

(with --dir, a catalog built by an earlier run with the same --items and --seed is reused; with
--catalog-url, the catalog lives in that PostGIS database, as `server.catalog_url` keeps it, in the
schema of a service named bench_<items>_<seed>, rebuilt by every run; with --compare as well, both
stores are measured alternately, request by request, so a shared machine's load weighs on both alike)

Builds a synthetic catalog (footprints and attributes only: no raster file exists; selection does
not need them) through `Catalog.add_records`, the catalog's API for records whose file facts are
already known, then times the selection step of typical requests, each with its own random boxes
and times:

- `tile`: the mosaic items of a 256x256 view at native resolution (the export path's selection:
  `engine.query.mosaic_items`, the first max_mosaic_image_count items in mosaic order), with the
  service's default rule (by acquisition time, newest first), Northwest, Center, Seamline and
  an Attribute rule with a sortValue;
- `tile where` / `tile time`: the same with a mosaic-rule where clause / a 30-day time window;
- `wide` and `extent`: a view over a quarter of the catalog and over all of it (the first items of
  25,000 and 100,000 candidates);
- `query`: the catalog query (`engine.query.query`) with a where clause and a box (first page),
  and `returnCountOnly`-style counting of a where clause over the whole catalog.

Prints the build time and p50/p95/max per request kind (milliseconds) as a Markdown table (and, for a
PostgreSQL on this host, the CPU its backend spent per request, from /proc: counted in clock ticks of 10 ms,
so a mean over a few hundred requests). The
scenes are 5 km squares on a 4.5 km grid (10 % overlap) in EPSG:3857, 500 x 500 cells of 10 m;
`acquired` spans 2015-2025, `cloud_cover` 0..1, `sensor` S2A/S2B/L8, `priority` 1..5.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from rasterio.crs import CRS
from shapely.geometry import box

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ogc_gateway.config import Limits, ServiceConfig  # noqa: E402
from ogc_gateway.engine.catalog import Catalog, drop_store  # noqa: E402
from ogc_gateway.engine.query import mosaic_items, query  # noqa: E402
from ogc_gateway.engine.requests import CatalogQuery, MosaicRule, TimeWindow  # noqa: E402
from ogc_gateway.engine.service import ImageService  # noqa: E402

CELL, SIZE, STEP = 10.0, 500, 4500.0            # metres per cell, cells per side, grid spacing
WEST, NORTH = 1_000_000.0, 7_000_000.0
START = datetime(2015, 1, 1, tzinfo=timezone.utc)
DAYS = 3650
WKT = CRS.from_epsg(3857).to_wkt()


def records(n: int, rnd: random.Random):
    """(path, record) pairs as rasterinfo.read_raster would return them for n scenes."""
    side = math.ceil(math.sqrt(n))
    stats = json.dumps([[250000.0, 2.5e7, 2.6e9, 1.0, 200.0]])
    for k in range(n):
        row, col = divmod(k, side)
        west, north = WEST + col * STEP, NORTH - row * STEP
        acquired = START + timedelta(days=rnd.uniform(0, DAYS))
        tags = {"acquired": acquired.strftime("%Y-%m-%dT%H:%M:%S"), "cloud_cover": f"{rnd.random():.3f}",
                "sensor": rnd.choice(["S2A", "S2B", "L8"]), "priority": str(rnd.randint(1, 5))}
        yield f"/synthetic/scene_{k:06d}.tif", {
            "mtime_ns": 0, "size": 0, "crs_wkt": WKT, "transform": json.dumps([CELL, 0, west, 0, -CELL, north]),
            "width": SIZE, "height": SIZE, "band_count": 1, "dtype": "uint8", "nodata": "0",
            "band_names": json.dumps([None]), "overviews": "[2, 4]", "tags": json.dumps(tags),
            "stats": stats, "outline": "null"}


def ms_of(epoch: datetime) -> int:
    return int(epoch.timestamp() * 1000)


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def backend_cpu(service: ImageService):
    """A function giving the CPU seconds so far of the PostgreSQL backend serving this process's
    catalog connection (from /proc: a database on this host, readable by this user), else None."""
    if getattr(service.catalog.store, "url", None) is None:          # SQLite
        return None
    pid = service.catalog.store.con().execute("SELECT pg_backend_pid()").fetchone()[0]
    stat, tick = Path(f"/proc/{pid}/stat"), os.sysconf("SC_CLK_TCK")

    def seconds() -> float:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick     # utime + stime
    try:
        seconds()
    except OSError:
        return None
    return seconds


def open_service(args, url: str | None, folder: Path):
    """The benchmark's service on SQLite (url None) or PostGIS, built (or reused) from the seed's
    records; (service, build seconds or None if reused, open seconds)."""
    db = folder / f"bench-{args.items}-{args.seed}.sqlite"
    name = f"bench_{args.items}_{args.seed}" if url else "bench"
    config = ServiceConfig(name=name, sources=("/synthetic/*.tif",), time_field="acquired",
                           limits=Limits())
    if url:
        drop_store(url, name)
    t0 = time.perf_counter()
    reused = db.exists() and not url   # a --dir of an earlier run: its catalog is reused
    catalog = Catalog(db, config, url=url)
    if not reused:
        catalog.add_records(records(args.items, random.Random(args.seed)))
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    service = ImageService(config, catalog)
    return service, None if reused else build, time.perf_counter() - t0


def cases_of(service: ImageService, seed: int) -> dict:
    """The request kinds, each drawing its own random boxes and times (the same ones for the
    same seed, whatever the store)."""
    rnd = random.Random(seed + 1)
    x0, y0, x1, y1 = service.info.extent
    tile = 256 * CELL

    def view(size):
        x, y = rnd.uniform(x0, x1 - size), rnd.uniform(y0, y1 - size)
        return box(x, y, x + size, y + size)

    def first(rule, size=tile, time_=None, area=None):
        area = area or view(size)
        c = area.centroid
        n = service.info.limits.max_mosaic_image_count
        found = mosaic_items(service, rule, area=area, view_center=(c.x, c.y), time=time_)
        return [item for _, item in zip(range(n), found)]

    def month():
        start = START + timedelta(days=rnd.uniform(0, DAYS - 30))
        return TimeWindow(ms_of(start), ms_of(start + timedelta(days=30)))

    default = service.info.default_rule
    return {
        "tile, default rule (newest first)": lambda: first(default),
        "tile, Northwest": lambda: first(MosaicRule(method="esriMosaicNorthwest")),
        "tile, Center": lambda: first(MosaicRule(method="esriMosaicCenter")),
        "tile, Seamline": lambda: first(MosaicRule(method="esriMosaicSeamline")),
        "tile, Attribute acquired ~ 2020/06/01": lambda: first(MosaicRule(
            method="esriMosaicAttribute", sort_field="acquired", sort_value="2020/06/01")),
        "tile, where cloud_cover < 0.3 AND sensor = 'S2A'": lambda: first(MosaicRule(
            method="esriMosaicNorthwest", where="cloud_cover < 0.3 AND sensor = 'S2A'")),
        "tile, 30-day time window": lambda: first(default, time_=month()),
        "wide view (1/4 of the extent), default rule": lambda: first(default, size=(x1 - x0) / 2),
        "whole extent, default rule": lambda: first(default, area=box(x0, y0, x1, y1)),
        "whole extent, Northwest": lambda: first(MosaicRule(method="esriMosaicNorthwest"),
                                                 area=box(x0, y0, x1, y1)),
        "whole extent, 30-day time window": lambda: first(default, area=box(x0, y0, x1, y1), time_=month()),
        "query: where + box (1/16 of the extent), first page": lambda: query(service, CatalogQuery(
            where="cloud_cover < 0.5 AND priority >= 3", geometry=view((x1 - x0) / 4), count=100)),
        "query: where over the whole catalog (count)": lambda: len(query(service, CatalogQuery(
            where="sensor = 'L8' AND acquired > DATE '2024-01-01'", count=1)).matched),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--dir", type=Path, help="where the catalog database goes and is kept (default: a "
                                             "temporary folder, removed afterwards)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--catalog-url", help="a postgresql:// URL: measure the shared PostGIS store instead of SQLite")
    ap.add_argument("--compare", action="store_true",
                    help="with --catalog-url: measure SQLite and PostGIS alternately, request by request, so "
                         "both see the same load on a shared machine")
    args = ap.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="selection-"))
    urls = [None, args.catalog_url] if args.compare and args.catalog_url else [args.catalog_url]
    opened = [open_service(args, url, folder) for url in urls]
    for url, (_, build, open_s) in zip(urls, opened, strict=True):
        built = ("reused" if build is None
                 else f"built in {build:.1f} s (add_records: footprints, items, indexes, seamlines)")
        store = "PostGIS" if url else "SQLite"
        print(f"{args.items} items, {store}: catalog {built}; service opened in {open_s * 1000:.0f} ms")
    print(f"{args.repeat} requests each\n")
    cases = [cases_of(service, args.seed) for service, _, _ in opened]
    server_cpu = backend_cpu(opened[-1][0])     # PostgreSQL's own CPU per request, when it is on this host
    rows = []
    for name in cases[0]:
        fns = [c[name] for c in cases]
        for fn in fns:
            fn()                                           # warm the page cache and statement cache
        times: list[list[float]] = [[] for _ in fns]
        server = 0.0
        for _ in range(args.repeat):
            for fn, out in zip(fns, times, strict=True):
                c0 = server_cpu() if server_cpu else 0.0
                out.extend(timed(fn, 1))
                server += (server_cpu() - c0) if server_cpu and fn is fns[-1] else 0.0
        rows.append((name, [(statistics.median(t), statistics.quantiles(t, n=20)[18], max(t)) for t in times],
                     server / args.repeat * 1000))
    cpu_head = " | PostgreSQL CPU ms" if server_cpu else ""
    cpu_rule = "|---:" if server_cpu else ""
    if len(urls) == 1:
        print(f"| request | p50 ms | p95 ms | max ms{cpu_head} |\n|---|---:|---:|---:{cpu_rule}|")
        for name, [(p50, p95, top)], cpu in rows:
            extra = f" | {cpu:.2f}" if server_cpu else ""
            print(f"| {name} | {p50:.2f} | {p95:.2f} | {top:.2f}{extra} |")
    else:
        print(f"| request | SQLite p50 ms | PostGIS p50 ms | ratio | SQLite p95 ms | PostGIS p95 ms{cpu_head} |\n"
              f"|---|---:|---:|---:|---:|---:{cpu_rule}|")
        for name, [(l50, l95, _), (p50, p95, _)], cpu in rows:
            extra = f" | {cpu:.2f}" if server_cpu else ""
            print(f"| {name} | {l50:.2f} | {p50:.2f} | {p50 / l50:.1f} | {l95:.2f} | {p95:.2f}{extra} |")
    if args.dir is None:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
