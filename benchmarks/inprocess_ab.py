"""Server CPU per request of two ogc-gateway source trees, A/B in one process (issue 13).

On a machine shared with other work, req/s and even CPU time per request move by 20-30 % from run to
run, which hides a change worth 5 %. This script loads both trees' apps into one Python process
(each from its own `sys.path`, on the same demo data) and answers every request of peers.py's seeded
lists with both, in alternating order, summing each side's thread CPU time: whatever the machine is
doing hits both sides alike. It also reports how many answers are byte-identical, so a change that
claims "the same pixels" can be checked on the benchmark's own requests.

    python benchmarks/inprocess_ab.py --base /tmp/old --dir /tmp/peers-demo       # this tree vs /tmp/old
    python benchmarks/inprocess_ab.py --base /tmp/old --rounds 3 --workloads wms,wcs,wms-tiles

`--base` is another checkout (`git archive COMMIT | tar -x -C /tmp/old`); `--dir` the demo folder
(generated there if missing). The WSGI app is called directly (no HTTP server): the figures are the
app's own CPU, without gunicorn's share.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

_OWN = ("ogc_gateway", "peers", "run")


def load(src: Path, config: Path):
    """The app and the peers module of the tree at `src` (modules of a tree loaded before are dropped)."""
    for name in [m for m in sys.modules if m.split(".")[0] in _OWN]:
        del sys.modules[name]
    sys.path[:0] = [str(src), str(src / "benchmarks")]
    try:
        cfg = importlib.import_module("ogc_gateway.config")
        app = importlib.import_module("ogc_gateway.app").create_app(cfg.load_config(config))
        return app, importlib.import_module("peers")
    finally:
        del sys.path[:2]


def dem_of(peers, folder: Path):
    """peers.Dem from the demo's DEM files (the extent and resolution the request lists come from)."""
    import rasterio

    files = sorted((folder / "elevation").glob("*.tif"))
    boxes = []
    for path in files:
        with rasterio.open(path) as ds:
            boxes.append(tuple(ds.bounds))
            resolution, nodata = ds.res[0], ds.nodata
    extent = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
    return peers.Dem(files, folder / "elevation.vrt", extent, resolution, (0.0, 1.0), nodata)


def answer(app, environ: dict) -> bytes:
    status = []
    body = app.wsgi_app(dict(environ), lambda s, h, e=None: status.append(s))
    try:
        data = b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    if not status[0].startswith("200"):
        raise SystemExit(f"{status[0]}: {data[:300]!r}")
    return data


def decoded(body: bytes) -> bytes:
    """A PNG's decoded RGBA pixels (two encoders' files of the same picture differ in their bytes
    only), anything else as it is."""
    if not body.startswith(b"\x89PNG"):
        return body
    import io

    from PIL import Image
    with Image.open(io.BytesIO(body)) as image:
        return image.convert("RGBA").tobytes()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the other source tree (A)")
    parser.add_argument("--new", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the tree measured against it (B; default: this checkout)")
    parser.add_argument("--dir", type=Path, default=Path("peers-demo"), help="demo data folder")
    parser.add_argument("--rounds", type=int, default=2, help="passes over each list")
    parser.add_argument("--workloads", default="wms,wcs,wms-tiles")
    args = parser.parse_args()

    import prometheus_client.registry
    from werkzeug.test import EnvironBuilder

    # Two apps in one process would register the same metric names twice.
    prometheus_client.registry.CollectorRegistry.register = lambda self, collector: None
    sys.path.insert(0, str(args.new))
    demo = importlib.import_module("ogc_gateway.demo")
    config = demo.generate(args.dir)
    apps = {}
    apps["base"], _ = load(args.base, config)
    apps["new"], peers = load(args.new, config)
    dem = dem_of(peers, args.dir)
    lists = peers.request_lists(dem)
    for workload in args.workloads.split(","):
        urls = peers.urls_for("ogc-gateway", workload, lists[workload], dem)
        environs = [EnvironBuilder(path=u.split("?")[0], query_string=u.partition("?")[2]).get_environ()
                    for u in urls]
        pairs = [(answer(apps["base"], e), answer(apps["new"], e)) for e in environs]   # also the warm-up
        same = sum(a == b for a, b in pairs)
        same_pixels = sum(decoded(a) == decoded(b) for a, b in pairs)
        cpu = {"base": 0.0, "new": 0.0}
        for r in range(args.rounds):
            for i, environ in enumerate(environs):
                for side in (("base", "new") if (i + r) % 2 == 0 else ("new", "base")):
                    start = time.thread_time()
                    answer(apps[side], environ)
                    cpu[side] += time.thread_time() - start
        n = args.rounds * len(environs)
        base, new = cpu["base"] / n * 1e3, cpu["new"] / n * 1e3
        print(f"{workload}: CPU ms/request {base:.2f} -> {new:.2f} ({(new / base - 1) * 100:+.1f} %), "
              f"byte-identical answers {same}/{len(environs)}, identical pixels {same_pixels}/{len(environs)}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
