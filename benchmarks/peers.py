"""ogc-gateway side by side with the servers it replaces (issue 13): MapServer 8, MapProxy and TiTiler
on the same data, the same worker count, the same client and the same seeded request lists.

    python benchmarks/peers.py [--workers 2] [--concurrency 4] [--duration 15] [--dir DIR]
                               [--workloads wms,wcs,wms-tiles,tiles,seed] [--memory-minutes M]

What runs (everything on 127.0.0.1, free ports, each server in its own process group, all stopped at
the end, on Ctrl-C and on failure):

- ogc-gateway: `ogc-gateway serve` of this checkout (PYTHONPATH), on the demo data set
  (`ogc_gateway/demo.py`, generated into DIR or reused from there);
- MapServer 8: Debian's python3-mapscript in a small WSGI app (`OWSDispatch` on a clone of the map
  per request) under gunicorn sync workers, with a mapfile written here: the elevation DEM's four
  tiles as one GDAL VRT (gdalbuildvrt), bilinear resampling, the same linear stretch to 8 bits as
  ogc-gateway's default rendering (its service statistics, read from its root JSON), nodata
  transparent. mapscript is built for Debian's Python 3.11; this script runs it with its own Python
  (the venv's 3.11) and a folder on PYTHONPATH holding only a link to Debian's `mapscript` package, so
  gunicorn and nothing else of the venv changes (see `mapscript_path`);
- MapProxy (PyPI) under gunicorn sync workers: a file cache (4x4 metatiles, no buffer, PNG) in front
  of ogc-gateway's WMS, served as WMTS; `mapproxy-seed` for the cold workload;
- TiTiler (PyPI) under gunicorn with uvicorn workers, on the same VRT, for dynamic Web Mercator tiles.

Workloads (elevation, the 4-tile float32 UTM 33N DEM mosaic; request lists from fixed seeds, the same
for every side):

- `wms`: WMS 1.3.0 GetMap 256x256 PNG, EPSG:3857, TRANSPARENT, squares of random size and place;
- `wcs`: WCS 1.0.0 GetCoverage 512x512 float32 GeoTIFF in EPSG:32633, bilinear;
- `wms-tiles`: WMS GetMap at Web Mercator tile boxes z9-14; TiTiler gets the same tiles as z/x/y;
- `tiles`: warm cached 256x256 PNG tiles (z10-15): ogc-gateway's WMTS vs MapProxy's WMTS, both caches
  filled by the warm-up first;
- `seed`: cold metatiles (4x4) per second: `ogc-gateway seed` vs `mapproxy-seed`, both with the
  worker count as concurrency, from an empty cache, over the same levels and box.

Every answer is checked (status, content type, the format's magic bytes) on every side; failures are
counted and printed, never hidden, and a peer that does not start is reported as such. Prints one
Markdown table (req/s, p50/p95 and the ratio ogc-gateway / peer per workload, peak RSS per worker) and
writes everything as JSON to benchmarks/results/peers-<timestamp>.json.

`--memory-minutes M` adds a memory check: the mixed list (wms, wcs, wms-tiles, tiles interleaved)
against ogc-gateway for M minutes, under gunicorn without worker recycling (so growth is not hidden by
restarts), sampling each worker's RSS; it reports RSS after the first minute and at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import requests
from pyproj import Transformer

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))
import run as common  # noqa: E402  (benchmarks/run.py: client threads, checks, RSS sampling)

SEED = 20261206
WORLD = math.pi * 6378137.0
DEM_CRS = "EPSG:32633"
SERVICE = "elevation"
WORKLOADS = ("wms", "wcs", "wms-tiles", "tiles", "seed")
TITLES = {
    "wms": "WMS 1.3.0 GetMap 256² PNG, EPSG:3857, random places and zooms",
    "wcs": "WCS 1.0.0 GetCoverage 512² float32 GeoTIFF, native CRS",
    "wms-tiles": "WMS GetMap at Web Mercator tile boxes z9–14",
    "tiles": "warm cached 256² PNG tiles",
    "seed": "cold 4×4 metatiles (seeding)",
}
CONTENT_TYPES = {"wms": "image/png", "wcs": "image/tiff", "wms-tiles": "image/png", "tiles": "image/png"}
COUNTS = {"wms": 200, "wcs": 100, "wms-tiles": 200, "tiles": 300}
TILE_LEVELS = {"wms-tiles": range(9, 15), "tiles": range(10, 16)}
METATILE = 4


# ---- the data ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Dem:
    files: list[Path]
    vrt: Path
    extent: tuple[float, float, float, float]      # EPSG:32633
    resolution: float
    stats: tuple[float, float]                     # ogc-gateway's min and max (its default stretch)
    nodata: float


def prepare_data(folder: Path, work: Path) -> tuple[Path, list[Path], Path]:
    """The demo data (generated, or reused from `folder`) and a VRT mosaic of its DEM tiles."""
    from ogc_gateway import demo
    config = demo.generate(folder)
    files = sorted((folder / "elevation").glob("*.tif"))
    vrt = work / "elevation.vrt"
    if shutil.which("gdalbuildvrt") is None:
        raise SystemExit("gdalbuildvrt (Debian: gdal-bin) is needed to build the MapServer/TiTiler mosaic")
    subprocess.run(["gdalbuildvrt", "-q", str(vrt), *map(str, files)], check=True)
    return config, files, vrt


def dem_facts(files: list[Path], vrt: Path, base: str) -> Dem:
    import rasterio
    with rasterio.open(vrt) as ds:
        extent, resolution, nodata = tuple(ds.bounds), ds.res[0], ds.nodata
    info = requests.get(f"{base}/arcgis/rest/services/{SERVICE}/ImageServer", params={"f": "json"},
                        timeout=30).json()
    return Dem(files, vrt, extent, resolution, (info["minValues"][0], info["maxValues"][0]), nodata)


# ---- the request lists ----------------------------------------------------------------------------

def to_merc():
    return Transformer.from_crs(DEM_CRS, "EPSG:3857", always_xy=True)


def merc_extent(dem: Dem) -> tuple[float, float, float, float]:
    xs, ys = to_merc().transform([dem.extent[0], dem.extent[2], dem.extent[0], dem.extent[2]],
                                 [dem.extent[1], dem.extent[1], dem.extent[3], dem.extent[3]])
    return min(xs), min(ys), max(xs), max(ys)


def squares(rng: random.Random, extent, finest: float, count: int) -> list[tuple[float, float, float, float]]:
    """Squares inside `extent`, side log-uniform from `finest` to the extent's smaller side."""
    x0, y0, x1, y1 = extent
    span = min(x1 - x0, y1 - y0)
    out = []
    for _ in range(count):
        side = math.exp(rng.uniform(math.log(min(finest, span / 4)), math.log(span)))
        left, bottom = rng.uniform(x0, x1 - side), rng.uniform(y0, y1 - side)
        out.append((round(left, 2), round(bottom, 2), round(left + side, 2), round(bottom + side, 2)))
    return out


def tile_range(extent_merc, z: int) -> tuple[int, int, int, int]:
    span = 2 * WORLD / 2 ** z
    x0, y0, x1, y1 = extent_merc
    return (math.floor((WORLD - y1) / span), math.floor((WORLD - y0) / span),
            math.floor((x0 + WORLD) / span), math.floor((x1 + WORLD) / span))


def tile_box(z: int, row: int, col: int) -> tuple[float, float, float, float]:
    span = 2 * WORLD / 2 ** z
    x0, y1 = -WORLD + col * span, WORLD - row * span
    return x0, y1 - span, x0 + span, y1


def tiles(rng: random.Random, dem: Dem, levels, count: int) -> list[tuple[int, int, int]]:
    """`count` tiles whose centre lies on the DEM (so every side has data there), the same number per
    level, at random within each level."""
    back = Transformer.from_crs("EPSG:3857", DEM_CRS, always_xy=True)
    x0, y0, x1, y1 = dem.extent
    out = []
    while len(out) < count:
        z = levels[len(out) % len(levels)]
        r0, r1, c0, c1 = tile_range(merc_extent(dem), z)
        row, col = rng.randint(r0, r1), rng.randint(c0, c1)
        left, bottom, right, top = tile_box(z, row, col)
        x, y = back.transform((left + right) / 2, (bottom + top) / 2)
        if x0 < x < x1 and y0 < y < y1:
            out.append((z, row, col))
    rng.shuffle(out)
    return out


def metatiles(extent_merc, levels) -> int:
    """Aligned 4x4 blocks meeting the extent on these levels (what both seeders render)."""
    total = 0
    for z in levels:
        r0, r1, c0, c1 = tile_range(extent_merc, z)
        total += (r1 // METATILE - r0 // METATILE + 1) * (c1 // METATILE - c0 // METATILE + 1)
    return total


def getmap_query(box) -> str:
    return urlencode({"SERVICE": "WMS", "VERSION": "1.3.0", "REQUEST": "GetMap", "LAYERS": SERVICE,
                      "STYLES": "", "CRS": "EPSG:3857", "BBOX": ",".join(f"{v:.2f}" for v in box),
                      "WIDTH": 256, "HEIGHT": 256, "FORMAT": "image/png", "TRANSPARENT": "TRUE"}, safe=",:/")


def getcoverage_query(box) -> str:
    return urlencode({"SERVICE": "WCS", "VERSION": "1.0.0", "REQUEST": "GetCoverage", "COVERAGE": SERVICE,
                      "CRS": DEM_CRS, "BBOX": ",".join(f"{v:.2f}" for v in box), "WIDTH": 512, "HEIGHT": 512,
                      "FORMAT": "GeoTIFF", "INTERPOLATION": "bilinear"}, safe=",:/")


def request_lists(dem: Dem) -> dict[str, list]:
    """Per workload, the abstract requests (boxes or tiles), from fixed seeds: every side gets these."""
    merc = merc_extent(dem)
    scale = (merc[2] - merc[0]) / (dem.extent[2] - dem.extent[0])       # Mercator metres per UTM metre
    return {
        "wms": squares(random.Random(SEED), merc, 256 * dem.resolution * scale, COUNTS["wms"]),
        "wcs": squares(random.Random(SEED + 1), dem.extent, 512 * dem.resolution / 2, COUNTS["wcs"]),
        "wms-tiles": tiles(random.Random(SEED + 2), dem, list(TILE_LEVELS["wms-tiles"]), COUNTS["wms-tiles"]),
        "tiles": tiles(random.Random(SEED + 3), dem, list(TILE_LEVELS["tiles"]), COUNTS["tiles"]),
    }


# ---- the servers ----------------------------------------------------------------------------------

@dataclass
class Server:
    name: str
    cmd: list[str]
    ready_path: str
    env: dict = field(default_factory=dict)
    cwd: Path | None = None
    port: int = 0
    proc: subprocess.Popen | None = None
    log: Path | None = None
    sampler: common.RssSampler | None = None
    problem: str | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, logs: Path) -> None:
        self.log = logs / f"{self.name}.log"
        env = {**os.environ, **self.env}
        with open(self.log, "wb") as log:
            # Its own session: the whole tree (master, workers) is stopped through the group of this pid.
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.cwd,
                                         start_new_session=True)
        RUNNING.append(self)

    def wait(self, timeout: float = 300) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                self.problem = f"exited with status {self.proc.returncode}: {common.tail(self.log, 8)}"
                return
            try:
                if requests.get(self.base + self.ready_path, timeout=5).status_code == 200:
                    self.sampler = common.RssSampler(self.proc.pid)
                    self.sampler.start()
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.problem = f"did not answer within {timeout:.0f} s: {common.tail(self.log, 8)}"

    def stop(self) -> None:
        if self.sampler is not None:
            self.sampler.stop_event.set()
        if self.proc is None or self.proc.poll() is not None:
            return
        stop_group(self.proc)


RUNNING: list[Server] = []


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group this script started (by its leader's id), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def stop_all() -> None:
    while RUNNING:
        RUNNING.pop().stop()


GUNICORN_ARGS: list[str] = []         # --gunicorn-args: appended to every gunicorn command line (last wins)
# `ogc-gateway serve`'s own settings (cli.py), for serving it through gunicorn's command line instead.
SERVE_SETTINGS = ["--worker-class", "sync", "--max-requests", "2000", "--max-requests-jitter", "200"]


def gunicorn(app: str, port: int, workers: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--no-control-socket", "--timeout", "120", *extra, *GUNICORN_ARGS, app]


def gateway_server(args, config: Path) -> Server:
    """`ogc-gateway serve` as shipped; with --gunicorn-args, the same app and settings through
    gunicorn's command line, followed by those arguments."""
    port = common.free_port()
    env = {"PYTHONPATH": pythonpath(str(args.gateway_src)), "OGC_GATEWAY_CONFIG": str(config)}
    if GUNICORN_ARGS:
        cmd = gunicorn("ogc_gateway.wsgi:app", port, args.workers, *SERVE_SETTINGS)
    else:
        cmd = [sys.executable, "-m", "ogc_gateway.cli", "serve", "--config", str(config), "--port", str(port),
               "--workers", str(args.workers)]
    return Server("ogc-gateway", cmd, "/arcgis/rest/services?f=json", env=env, port=port)


def mapscript_path(work: Path) -> str | None:
    """A folder to put on PYTHONPATH so this Python imports Debian's mapscript: None if it already can,
    else a folder holding a link to the package alone (its extension is built for CPython 3.11)."""
    try:
        import mapscript  # noqa: F401
        return None
    except ImportError:
        pass
    for site in ("/usr/lib/python3/dist-packages",):
        package = Path(site) / "mapscript"
        if package.is_dir():
            shim = work / "mapscript-path"
            shim.mkdir(exist_ok=True)
            link = shim / "mapscript"
            if not link.exists():
                link.symlink_to(package)
            return str(shim)
    raise FileNotFoundError("python3-mapscript is not installed (Debian: apt-get install python3-mapscript)")


MAPSERVER_APP = '''\
"""MapServer's OWS dispatch as a WSGI app (written by benchmarks/peers.py)."""
import os
import mapscript

MAP = mapscript.mapObj(os.environ["PEERS_MAPFILE"])          # parsed once per worker


def app(environ, start_response):
    request = mapscript.OWSRequest()
    request.loadParamsFromURL(environ.get("QUERY_STRING", ""))
    mapscript.msIO_installStdoutToBuffer()
    try:
        MAP.clone().OWSDispatch(request)                     # a fresh map: no state between requests
        content_type = mapscript.msIO_stripStdoutBufferContentType()
        mapscript.msIO_stripStdoutBufferContentHeaders()
        body = mapscript.msIO_getStdoutBufferBytes()
    finally:
        mapscript.msIO_resetHandlers()
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]
'''


def mapfile(dem: Dem) -> str:
    x0, y0, x1, y1 = dem.extent
    lo, hi = dem.stats
    return textwrap.dedent(f"""\
        MAP
          NAME "peers"
          EXTENT {x0} {y0} {x1} {y1}
          SIZE 256 256
          MAXSIZE 4096
          UNITS METERS
          PROJECTION "init=epsg:32633" END
          IMAGETYPE "png"
          OUTPUTFORMAT
            NAME "png"
            DRIVER "AGG/PNG"
            MIMETYPE "image/png"
            IMAGEMODE RGBA
            EXTENSION "png"
            TRANSPARENT ON
          END
          OUTPUTFORMAT
            NAME "GeoTIFF"
            DRIVER "GDAL/GTiff"
            MIMETYPE "image/tiff"
            IMAGEMODE FLOAT32
            EXTENSION "tif"
          END
          WEB
            METADATA
              "ows_enable_request" "*"
              "ows_onlineresource" "http://127.0.0.1/"
              "ows_title" "peers"
              "wms_srs" "EPSG:32633 EPSG:3857 EPSG:4326"
              "wcs_srs" "EPSG:32633"
            END
          END
          LAYER
            NAME "{SERVICE}"
            TYPE RASTER
            STATUS ON
            DATA "{dem.vrt}"
            PROJECTION "init=epsg:32633" END
            PROCESSING "RESAMPLE=BILINEAR"
            PROCESSING "SCALE={lo!r},{hi!r}"
            PROCESSING "NODATA={dem.nodata!r}"
            METADATA
              "ows_title" "{SERVICE}"
              "wcs_label" "{SERVICE}"
              "wcs_rangeset_name" "elevation"
              "wcs_rangeset_label" "elevation"
              "wcs_formats" "GeoTIFF"
              "wcs_bandcount" "1"
              "wcs_imagemode" "FLOAT32"
              "wcs_extent" "{x0} {y0} {x1} {y1}"
              "wcs_resolution" "{dem.resolution} {dem.resolution}"
              "wcs_size" "{round((x1 - x0) / dem.resolution)} {round((y1 - y0) / dem.resolution)}"
            END
          END
        END
        """)


def mapproxy_yaml(gateway_base: str, cache: Path) -> str:
    return textwrap.dedent(f"""\
        # written by benchmarks/peers.py: a file cache in front of ogc-gateway's WMS
        services:
          wmts:
            restful: true
            kvp: false
        layers:
          - name: {SERVICE}
            title: {SERVICE}
            sources: [{SERVICE}_cache]
        caches:
          {SERVICE}_cache:
            grids: [GLOBAL_WEBMERCATOR]
            sources: [{SERVICE}_wms]
            format: image/png
            meta_size: [{METATILE}, {METATILE}]
            meta_buffer: 0
            cache:
              type: file
              directory: {cache}
        sources:
          {SERVICE}_wms:
            type: wms
            supported_srs: ['EPSG:3857']
            http:
              client_timeout: 120
            req:
              url: {gateway_base}/ogc/wms
              layers: {SERVICE}
              transparent: true
        globals:
          image:
            paletted: false            # keep the source's RGBA pictures (no quantisation to 256 colours)
          cache:
            base_dir: {cache}
            lock_dir: {cache}/locks
        """)


def seed_yaml(dem: Dem, levels: range) -> str:
    x0, y0, x1, y1 = dem.extent
    return textwrap.dedent(f"""\
        seeds:
          {SERVICE}:
            caches: [{SERVICE}_cache]
            grids: [GLOBAL_WEBMERCATOR]
            coverages: [dem]
            levels:
              from: {levels.start}
              to: {levels.stop - 1}
        coverages:
          dem:
            bbox: [{x0}, {y0}, {x1}, {y1}]
            srs: '{DEM_CRS}'
        """)


MAPPROXY_APP = '''\
"""MapProxy's WSGI app for gunicorn (written by benchmarks/peers.py)."""
import os
from mapproxy.wsgiapp import make_wsgi_app

app = make_wsgi_app(os.environ["PEERS_MAPPROXY_YAML"])
'''


def peer_server(name: str, work: Path, workers: int) -> Server:
    """The command of a peer (not started yet); a Server with `problem` set if it cannot run here."""
    port = common.free_port()
    if name == "MapServer":
        try:
            shim = mapscript_path(work)
        except FileNotFoundError as exc:
            return Server(name, [], "", problem=str(exc))
        return Server(name, gunicorn("mapserver_app:app", port, workers),
                      "/ows?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0", cwd=work, port=port,
                      env={"PYTHONPATH": pythonpath(*filter(None, [shim, str(work)])),
                           "PEERS_MAPFILE": str(work / "mapserver.map")})
    if name == "MapProxy":
        return Server(name, gunicorn("mapproxy_app:app", port, workers), "/wmts/1.0.0/WMTSCapabilities.xml",
                      cwd=work, port=port, env={"PYTHONPATH": pythonpath(str(work)),
                                                "PEERS_MAPPROXY_YAML": str(work / "mapproxy.yaml")})
    return Server(name, gunicorn("titiler.application.main:app", port, workers,
                                 "--worker-class", "uvicorn.workers.UvicornWorker"), "/healthz", cwd=work, port=port)


# ---- per side: how a request of a workload is written ---------------------------------------------

def urls_for(side: str, workload: str, items: list, dem: Dem) -> list[str] | None:
    """The relative URLs of a workload's requests for one side; None if the side has no such service."""
    lo, hi = dem.stats
    if workload == "wms":
        prefix = {"ogc-gateway": "/ogc/wms?", "MapServer": "/ows?"}.get(side)
        return None if prefix is None else [prefix + getmap_query(b) for b in items]
    if workload == "wcs":
        prefix = {"ogc-gateway": "/ogc/wcs?", "MapServer": "/ows?"}.get(side)
        return None if prefix is None else [prefix + getcoverage_query(b) for b in items]
    if workload == "wms-tiles":
        if side == "TiTiler":
            query = urlencode({"url": str(dem.vrt), "bidx": 1, "rescale": f"{lo!r},{hi!r}",
                               "resampling": "bilinear", "reproject": "bilinear"})
            return [f"/cog/tiles/WebMercatorQuad/{z}/{c}/{r}.png?{query}" for z, r, c in items]
        prefix = {"ogc-gateway": "/ogc/wms?", "MapServer": "/ows?"}.get(side)
        return None if prefix is None else [prefix + getmap_query(tile_box(*t)) for t in items]
    if workload == "tiles":
        if side == "ogc-gateway":
            return [f"/arcgis/rest/services/{SERVICE}/ImageServer/WMTS/tile/1.0.0/{SERVICE}/default/"
                    f"WebMercatorQuad/{z}/{r}/{c}.png" for z, r, c in items]
        if side == "MapProxy":
            return [f"/wmts/{SERVICE}/GLOBAL_WEBMERCATOR/{z:02d}/{c}/{r}.png" for z, r, c in items]
    return None


PEERS = {"wms": ["MapServer"], "wcs": ["MapServer"], "wms-tiles": ["MapServer", "TiTiler"],
         "tiles": ["MapProxy"], "seed": ["MapProxy"]}


# ---- measuring ------------------------------------------------------------------------------------

def warm_up(server: Server, urls: list[str], ctype: str, concurrency: int, library: str = "requests") -> dict:
    """Every URL once (the clients share one pass): fills caches, and a first check of every answer."""
    records, elapsed = common.drive(server.base, urls, ctype, concurrency, 3600, once=True, library=library)
    bad = [(urls[i], r["error"]) for i, r in records if r["error"]]
    return {"seconds": round(elapsed, 1), "errors": len(bad), "failing": dict(bad[:5])}


def tree_cpu(master: int) -> float:
    """CPU seconds used so far by a server: its master (with the workers it has reaped) and its live
    workers. A machine shared with other work slows a server down but barely changes this."""
    def times(pid: int) -> list[int]:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            return [0, 0, 0, 0]
        return [int(v) for v in stat[stat.rindex(b")") + 2:].split()[11:15]]
    utime, stime, cutime, cstime = times(master)
    total = utime + stime + cutime + cstime
    kids = common._children_map()
    stack = list(kids.get(master, []))
    while stack:
        pid = stack.pop()
        total += sum(times(pid)[:2])
        stack.extend(kids.get(pid, []))
    return total / os.sysconf("SC_CLK_TCK")


def measure(sides: dict[str, Server], url_lists: dict[str, list[str]], workload: str, args) -> dict[str, dict]:
    """Each side warmed up, then driven for `duration` seconds in `rounds` slices taken in turn (the
    order reversed every round), so a machine whose load drifts weighs on every side alike."""
    ctype = CONTENT_TYPES[workload]
    warm = {name: warm_up(server, url_lists[name], ctype, args.concurrency, args.client)
            for name, server in sides.items()}
    records = {name: [] for name in sides}
    elapsed = dict.fromkeys(sides, 0.0)
    peaks = {name: [] for name in sides}
    per_round = {name: [] for name in sides}
    cpu = dict.fromkeys(sides, 0.0)
    client_cpu = dict.fromkeys(sides, 0.0)      # this process: the client threads (and the RSS sampler)
    order = list(sides)
    for _ in range(args.rounds):
        for name in order:
            server = sides[name]
            server.sampler.reset()
            cpu0, own0 = tree_cpu(server.proc.pid), time.process_time()
            got, seconds = common.drive(server.base, url_lists[name], ctype, args.concurrency,
                                        args.duration / args.rounds, library=args.client)
            cpu[name] += tree_cpu(server.proc.pid) - cpu0
            client_cpu[name] += time.process_time() - own0
            time.sleep(common.SAMPLE_EVERY * 2)
            peaks[name].append(server.sampler.reset())
            records[name] += got
            elapsed[name] += seconds
            per_round[name].append(round(len(got) / seconds, 1) if seconds else 0.0)
        order.reverse()
    rows = {}
    for name in sides:
        row = common.summarise(workload, url_lists[name], records[name], elapsed[name])
        for key in ("by_service", "slowest_urls_by_median_ms"):
            row.pop(key, None)
        row["memory"] = {key: max(common.peaks_json(p)[key] for p in peaks[name])
                         for key in ("peak_tree_rss_mib", "peak_worker_rss_mib", "peak_master_rss_mib")}
        row["req_per_s_by_round"] = per_round[name]
        row["server_cpu_ms_per_request"] = round(1000 * cpu[name] / len(records[name]), 3) if records[name] else None
        row["client_cpu_ms_per_request"] = (round(1000 * client_cpu[name] / len(records[name]), 3)
                                            if records[name] else None)
        row["warmup"] = warm[name]
        rows[name] = row
    return rows


def agreement(ours: Server, theirs: Server, our_urls: list[str], their_urls: list[str], n: int = 10) -> dict:
    """How close a peer's pictures or values are to ogc-gateway's on the first n requests (so the
    ratios compare the same work): the mean absolute difference where both have data (8-bit grey, or
    metres for the float coverage) and the share of pixels where only one side has data."""
    import io

    import numpy as np
    from PIL import Image
    from rasterio.io import MemoryFile

    def decode(body: bytes):
        if body[:4] in (b"II*\x00", b"MM\x00*"):
            with MemoryFile(body) as mem, mem.open() as ds:
                band = ds.read(1, masked=True)
                return band.data.astype("float64"), ~np.ma.getmaskarray(band)
        rgba = np.asarray(Image.open(io.BytesIO(body)).convert("RGBA"))
        return rgba[..., 0].astype("float64"), rgba[..., 3] > 0

    diffs, disagree, pixels = [], 0, 0
    for a, b in list(zip(our_urls, their_urls, strict=False))[:n]:
        try:
            (va, ma), (vb, mb) = (decode(requests.get(s.base + u, timeout=120).content)
                                  for s, u in ((ours, a), (theirs, b)))
        except Exception as exc:                   # an undecodable answer is reported, not fatal
            return {"problem": f"{type(exc).__name__}: {exc}"}
        if va.shape != vb.shape:
            return {"problem": f"sizes differ: {va.shape} and {vb.shape}"}
        both = ma & mb
        if both.any():
            diffs.append(float(np.abs(va[both] - vb[both]).mean()))
        disagree += int((ma != mb).sum())
        pixels += ma.size
    return {"requests": min(n, len(our_urls)), "mean_abs_diff": round(sum(diffs) / len(diffs), 3) if diffs else None,
            "data_mask_disagreement": round(disagree / pixels, 4) if pixels else None}


def seed_gateway(source: Path, config: Path, levels: range, workers: int, cache_root: Path) -> dict:
    shutil.rmtree(cache_root / "tiles" / SERVICE, ignore_errors=True)
    cmd = [sys.executable, "-m", "ogc_gateway.cli", "seed", SERVICE, "--config", str(config),
           "--levels", f"{levels.start}-{levels.stop - 1}", "--workers", str(workers)]
    return timed(cmd, {"PYTHONPATH": pythonpath(str(source))}, cache_root / "tiles" / SERVICE)


def seed_mapproxy(work: Path, levels: range, workers: int, cache: Path) -> dict:
    shutil.rmtree(cache, ignore_errors=True)
    exe = Path(sys.executable).with_name("mapproxy-seed")
    cmd = [str(exe) if exe.exists() else "mapproxy-seed", "-f", str(work / "mapproxy.yaml"), "-s",
           str(work / "seed.yaml"), "-c", str(workers), "--seed", SERVICE]
    return timed(cmd, {}, cache)


def timed(cmd: list[str], env: dict, folder: Path) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, **env},
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=3600)
    except BaseException:
        stop_group(proc)
        raise
    seconds = time.perf_counter() - t0
    files = [p for p in folder.rglob("*") if p.is_file() and p.suffix in (".png", ".jpeg", ".jpg")] \
        if folder.exists() else []
    return {"seconds": round(seconds, 2), "status": proc.returncode, "tile_files": len(files),
            "tile_bytes": sum(p.stat().st_size for p in files),
            "output_tail": out.decode("utf-8", "replace").strip().splitlines()[-3:]}


def pythonpath(*first: str) -> str:
    return os.pathsep.join([*first, *filter(None, [os.environ.get("PYTHONPATH")])])


# ---- the memory check -----------------------------------------------------------------------------

def memory_check(config: Path, lists: dict, dem: Dem, args, logs: Path) -> dict:
    """The mixed list for M minutes against ogc-gateway under gunicorn without worker recycling."""
    port = common.free_port()
    server = Server("ogc-gateway-memory", gunicorn("ogc_gateway.wsgi:app", port, args.workers,
                                                   "--max-requests", "0"),
                    "/arcgis/rest/services?f=json", env={"PYTHONPATH": pythonpath(str(args.gateway_src)),
                                                          "OGC_GATEWAY_CONFIG": str(config)}, port=port)
    server.start(logs)
    server.wait()
    if server.problem:
        return {"problem": server.problem}
    mixed = []
    for workload in ("wms", "wcs", "wms-tiles", "tiles"):
        mixed += [(u, CONTENT_TYPES[workload]) for u in urls_for("ogc-gateway", workload, lists[workload], dem)]
    random.Random(SEED + 9).shuffle(mixed)
    samples: list[tuple[float, dict[int, int]]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(5):
            workers = common._children_map().get(server.proc.pid, [])
            samples.append((time.monotonic(), {pid: common._rss_kib(pid) for pid in workers}))
    threading.Thread(target=sample, daemon=True).start()
    t0 = time.monotonic()
    errors = requests_done = 0
    try:
        # One client thread per requested concurrency, each cycling through the mixed list.
        deadline = t0 + args.memory_minutes * 60
        counts = [0] * args.concurrency
        failed = [0] * args.concurrency

        def client(k: int) -> None:
            with requests.Session() as session:
                i = k * len(mixed) // args.concurrency
                while time.monotonic() < deadline:
                    url, ctype = mixed[i % len(mixed)]
                    r = common.one(session, server.base, url, ctype)
                    counts[k] += 1
                    failed[k] += r["error"] is not None
                    i += 1
        threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(args.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        requests_done, errors = sum(counts), sum(failed)
    finally:
        stop.set()
        server.stop()
        RUNNING.remove(server)
    after_minute = [s for t, s in samples if t - t0 >= 60] or [s for _, s in samples]
    first, last = (after_minute[0], samples[-1][1]) if samples else ({}, {})
    pids = sorted(set(first) & set(last))
    return {"minutes": args.memory_minutes, "requests": requests_done, "errors": errors,
            "workers": [{"pid": pid, "rss_after_1_min_mib": common.mib(first[pid]),
                         "rss_end_mib": common.mib(last[pid]),
                         "peak_mib": common.mib(max(s.get(pid, 0) for _, s in samples))} for pid in pids],
            "workers_restarted": sorted(set(first) ^ set(last)),
            "series": [(round(t - t0), {str(p): common.mib(v) for p, v in s.items()}) for t, s in samples]}


# ---- main -----------------------------------------------------------------------------------------

def ratio(ours: dict | None, theirs: dict | None, key: str = "req_per_s") -> str:
    if not ours or not theirs or not theirs.get(key):
        return "–"
    return f"{ours[key] / theirs[key]:.2f}"


def table(results: dict, workloads: list[str]) -> str:
    lines = [("| workload | ogc-gateway req/s | p50 / p95 ms | peer | peer req/s | p50 / p95 ms | ratio "
              "| errors (ours / peer) | peak worker RSS MiB (ours / peer) | server CPU ms/request (ours / peer) |"),
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for w in workloads:
        if w == "seed":
            continue
        ours = results.get(w, {}).get("ogc-gateway")
        for peer in PEERS[w]:
            theirs = results.get(w, {}).get(peer)

            def cell(r):
                return ("–", "–", "–", "–", "–") if not r or "req_per_s" not in r else (
                    r["req_per_s"], f"{r['p50_ms']} / {r['p95_ms']}", r["errors"], r["memory"]["peak_worker_rss_mib"],
                    r["server_cpu_ms_per_request"])
            a, b = cell(ours), cell(theirs)
            name = peer if not theirs or "problem" not in theirs else f"{peer} ({theirs['problem'][:60]})"
            lines.append(f"| {TITLES[w]} | {a[0]} | {a[1]} | {name} | {b[0]} | {b[1]} | {ratio(ours, theirs)} "
                         f"| {a[2]} / {b[2]} | {a[3]} / {b[3]} | {a[4]} / {b[4]} |")
    seed = results.get("seed")
    if seed:
        ours, theirs = seed.get("ogc-gateway"), seed.get("MapProxy")

        def rate(r: dict | None) -> str:
            return f"{r['metatiles_per_s']} metatiles/s ({r['seconds']} s)" if r and "metatiles_per_s" in r else "–"
        lines.append(f"| {TITLES['seed']} | {rate(ours)} | | MapProxy seed | {rate(theirs)} | "
                     f"| {ratio(ours, theirs, 'metatiles_per_s')} | | | |")
    return "\n".join(lines)


def _exit_on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers of every server (default: 2)")
    ap.add_argument("--concurrency", type=int, default=4, help="client threads (default: 4)")
    ap.add_argument("--client", choices=sorted(common.CLIENTS), default="http",
                    help="the client threads' HTTP library: http (default: http.client over kept-alive "
                         "connections, a fraction of requests' CPU per request, so that cheap requests measure "
                         "the servers rather than the client on a small machine) or requests (the figures "
                         "before 2026-12-06's last round)")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per workload and side (default: 15)")
    ap.add_argument("--rounds", type=int, default=3, help="slices the duration is taken in, the sides in turn "
                    "(default: 3)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated (default: %(default)s)")
    ap.add_argument("--seed-levels", default="10-15", help="levels of the seed workload (default: %(default)s)")
    ap.add_argument("--memory-minutes", type=float, default=0.0,
                    help="also run the memory check for this many minutes (10 for the issue's check)")
    ap.add_argument("--gateway-src", type=Path, default=REPO,
                    help="the ogc-gateway source tree to serve (default: this checkout), e.g. an export of "
                         "an older commit for a before/after comparison")
    ap.add_argument("--gunicorn-args", default="",
                    help="extra arguments for every gunicorn started (e.g. \"--worker-class gthread --threads 4\"); "
                         "ogc-gateway is then served through gunicorn's command line with serve's settings first")
    ap.add_argument("--dir", type=Path, help="demo data folder (default: a temporary one; reused if given)")
    ap.add_argument("--results", type=Path, default=HERE / "results", help="where the JSON goes")
    args = ap.parse_args()
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        ap.error(f"unknown workload(s) {unknown}; choose from {', '.join(WORKLOADS)}")
    GUNICORN_ARGS[:] = args.gunicorn_args.split()
    first, _, last = args.seed_levels.partition("-")
    seed_levels = range(int(first), int(last or first) + 1)

    # Stopped on SIGTERM and SIGHUP too, not only on Ctrl-C: the finally below runs in every case.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    tmp = tempfile.TemporaryDirectory(prefix="ogc-gateway-peers-")
    work = Path(tmp.name)
    folder = (args.dir.expanduser().resolve() if args.dir else work / "demo")
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    logs = args.results / f"peers-{stamp}-logs"
    logs.mkdir()
    results: dict = {}
    memory = None
    started = {}
    try:
        print(f"demo data in {folder}", flush=True)
        config, files, vrt = prepare_data(folder, work)
        gw = gateway_server(args, config)
        gw.start(logs)
        gw.wait()
        if gw.problem:
            raise SystemExit(f"ogc-gateway: {gw.problem}")
        dem = dem_facts(files, vrt, gw.base)
        print(f"ogc-gateway ready; DEM stretch {dem.stats[0]:.2f}..{dem.stats[1]:.2f}", flush=True)
        lists = request_lists(dem)
        (work / "mapserver.map").write_text(mapfile(dem))
        (work / "mapserver_app.py").write_text(MAPSERVER_APP)
        proxy_cache = work / "mapproxy-cache"
        (work / "mapproxy.yaml").write_text(mapproxy_yaml(gw.base, proxy_cache))
        (work / "seed.yaml").write_text(seed_yaml(dem, seed_levels))
        (work / "mapproxy_app.py").write_text(MAPPROXY_APP)
        wanted = {p for w in workloads for p in PEERS[w]}
        peers: dict[str, Server] = {"ogc-gateway": gw}
        for name in ("MapServer", "MapProxy", "TiTiler"):
            if name not in wanted:
                continue
            peers[name] = server = peer_server(name, work, args.workers)
            if not server.problem:
                server.start(logs)
        for name, server in peers.items():
            if name != "ogc-gateway" and server.proc is not None:
                server.wait()
            started[name] = server.problem or "ok"
            print(f"{name}: {server.problem or 'ready on ' + server.base}", flush=True)

        for w in (w for w in workloads if w != "seed"):
            results[w] = {}
            sides = {}
            for side in ["ogc-gateway", *PEERS[w]]:
                if peers[side].problem:
                    results[w][side] = {"problem": peers[side].problem}
                else:
                    sides[side] = peers[side]
            url_lists = {side: urls_for(side, w, lists[w], dem) for side in sides}
            results[w].update(measure(sides, url_lists, w, args))
            for side in sides:
                row = results[w][side]
                if side != "ogc-gateway":
                    row["agreement"] = agreement(gw, peers[side], url_lists["ogc-gateway"], url_lists[side])
                print(f"{w} / {side}: {row['req_per_s']} req/s (rounds {row['req_per_s_by_round']}), "
                      f"server CPU {row['server_cpu_ms_per_request']} ms/request, "
                      f"client CPU {row['client_cpu_ms_per_request']} ms/request, "
                      f"p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms, {row['errors']} errors "
                      f"(warm-up: {row['warmup']['errors']} failed)"
                      + (f"; vs ogc-gateway: {row['agreement']}" if "agreement" in row else ""), flush=True)
                for reason, n in list(row["failure_reasons"].items())[:3]:
                    print(f"  {n} x {reason[:300]}", flush=True)
                for url, reason in list(row["warmup"]["failing"].items())[:2]:
                    print(f"  warm-up FAIL {url}\n    {reason[:300]}", flush=True)
        if "seed" in workloads:
            blocks = metatiles(merc_extent(dem), seed_levels)
            results["seed"] = {"levels": f"{seed_levels.start}-{seed_levels.stop - 1}", "metatiles": blocks}
            ours = seed_gateway(args.gateway_src, config, seed_levels, args.workers, folder / ".ogc-gateway-cache")
            ours["metatiles_per_s"] = round(blocks / ours["seconds"], 1)
            results["seed"]["ogc-gateway"] = ours
            print(f"seed / ogc-gateway: {blocks} metatiles in {ours['seconds']} s, status {ours['status']}, "
                  f"{ours['tile_files']} tile files", flush=True)
            if peers.get("MapProxy") and not peers["MapProxy"].problem:
                theirs = seed_mapproxy(work, seed_levels, args.workers, proxy_cache)
                theirs["metatiles_per_s"] = round(blocks / theirs["seconds"], 1)
                results["seed"]["MapProxy"] = theirs
                print(f"seed / MapProxy: {blocks} metatiles in {theirs['seconds']} s, status {theirs['status']}, "
                      f"{theirs['tile_files']} tile files", flush=True)
        if args.memory_minutes > 0:
            for server in list(peers.values()):
                if server is not gw:
                    server.stop()                 # the memory check runs alone beside ogc-gateway's own
            print(f"memory check: {args.memory_minutes:g} min of the mixed list", flush=True)
            memory = memory_check(config, lists, dem, args, logs)
    finally:
        stop_all()

    meta = {"timestamp": stamp, "commit": common.git_commit(), "gateway_src": str(args.gateway_src),
            "nproc": os.cpu_count(),
            "python": platform.python_version(), "platform": platform.platform(), "workers": args.workers,
            "concurrency": args.concurrency, "duration_s": args.duration,
            "rounds": args.rounds, "gunicorn_args": args.gunicorn_args, "workloads": workloads,
            "servers": started, "load_average_at_end": os.getloadavg(),
            "client": f"python threads + {'requests.Session' if args.client == 'requests' else 'http.client'} "
                      "(same machine as the servers)"}
    md = table(results, workloads)
    print()
    print(f"{args.workers} workers each, {args.concurrency} clients ({args.client}), {args.duration:g} s per workload "
          "and side; "
          f"nproc {meta['nproc']}, commit {meta['commit']}, load average at the end {meta['load_average_at_end']}")
    print()
    print(md)
    if memory:
        print(f"\nmemory check ({memory.get('minutes')} min, {memory.get('requests')} requests, "
              f"{memory.get('errors')} errors): " + ", ".join(
                  f"worker {w['pid']}: {w['rss_after_1_min_mib']} -> {w['rss_end_mib']} MiB (peak {w['peak_mib']})"
                  for w in memory.get("workers", [])) + (f"; {memory['problem']}" if "problem" in memory else ""))
    out = args.results / f"peers-{stamp}.json"
    out.write_text(json.dumps({"meta": meta, "results": results, "memory": memory, "markdown": md}, indent=2),
                   encoding="utf-8")
    print(f"\nwrote {out} (server logs in {logs})")
    tmp.cleanup()
    failed = sum(r.get("errors", 0) + r.get("warmup", {}).get("errors", 0)
                 for w in results.values() for r in w.values() if isinstance(r, dict))
    problems = [n for n, s in started.items() if s != "ok"]
    return 1 if failed or problems else 0


if __name__ == "__main__":
    sys.exit(main())
