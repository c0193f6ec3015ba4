"""Throughput of the publishing API: upload and add (MB/s, rasters/s), and createService.

Generates the demo data set (no download) in a temporary folder, adds a `security` section with a
publisher, serves the app on 127.0.0.1 (werkzeug's threaded server in this process: the figures are
the API's own cost — GDAL's check of every pixel, hard links into the data folder, the catalog
change — not gunicorn's) and, with a token from the token service:

1. uploads N float32 rasters of S×S pixels (deflate GeoTIFF) one by one and adds each to the
   elevation service (`add`, waited for), timing upload and add separately;
2. uploads N more and creates a service from them in one createService job (async=false).

    python benchmarks/publish.py [--count 20] [--size 1024]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import requests
from affine import Affine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ogc_gateway.app import create_app  # noqa: E402
from ogc_gateway.config import load_config  # noqa: E402
from ogc_gateway.demo import generate  # noqa: E402
from ogc_gateway.security import store  # noqa: E402
from ogc_gateway.security.passwords import hash_password  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import logging  # noqa: E402

from conftest import serving  # noqa: E402

logging.getLogger("werkzeug").setLevel(logging.ERROR)

PASSWORD = "benchmark-password"


def rasters(folder: Path, count: int, size: int, crs: str, origin: tuple[float, float], res: float) -> list[Path]:
    rng = np.random.default_rng(1)
    paths = []
    for i in range(count):
        path = folder / f"r{i:04d}.tif"
        x0 = origin[0] + i * size * res
        with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=1, dtype="float32",
                           crs=crs, transform=Affine(res, 0, x0, 0, -res, origin[1]), compress="deflate",
                           tiled=True, nodata=-9999.0) as ds:
            ds.write(rng.normal(500, 50, (1, size, size)).astype("float32"))
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config_path = generate(tmp / "demo")
        text = config_path.read_text()
        (tmp / "demo" / "secret.key").write_text("b" * 48)
        with store.editing(tmp / "demo" / "users.yaml") as ids:
            ids.users["pub"] = store.User("pub", hash_password(PASSWORD), ("publisher",))
        config_path.write_text(text + "\nsecurity: {secret_file: secret.key, users_file: users.yaml}\n")
        config = load_config(config_path)
        elevation = config.services["elevation"]
        with rasterio.open(sorted(Path(p).parent for p in elevation.sources)[0].glob("*.tif").__next__()) as ds:
            crs, res, top = ds.crs.to_string(), ds.res[0], ds.bounds.top
            east = ds.bounds.right
        files = rasters(tmp, 2 * args.count, args.size, crs, (east + 10_000, top), res)
        megabytes = sum(p.stat().st_size for p in files[:args.count]) / 1e6
        http = requests.Session()
        http.trust_env = False
        with serving(create_app(config)) as url:
            token = http.post(f"{url}/arcgis/tokens/generateToken",
                              data={"username": "pub", "password": PASSWORD, "f": "json"}).json()["token"]
            up_s = add_s = 0.0
            for path in files[:args.count]:
                t0 = time.perf_counter()
                with open(path, "rb") as f:
                    item = http.post(f"{url}/arcgis/rest/services/elevation/ImageServer/uploads/upload",
                                     data={"token": token, "f": "json"}, files={"file": (path.name, f)}).json()
                t1 = time.perf_counter()
                added = http.post(f"{url}/arcgis/rest/services/elevation/ImageServer/add",
                                  data={"token": token, "f": "json", "itemIds": item["item"]["itemID"]}).json()
                t2 = time.perf_counter()
                assert added["addResults"][0]["success"], added
                up_s, add_s = up_s + t1 - t0, add_s + t2 - t1
            items = []
            t0 = time.perf_counter()
            for path in files[args.count:]:
                with open(path, "rb") as f:
                    items.append(http.post(f"{url}/arcgis/admin/uploads/upload", data={"token": token, "f": "json"},
                                           files={"file": (path.name, f)}).json()["item"]["itemID"])
            t1 = time.perf_counter()
            job = http.post(f"{url}/arcgis/admin/services/createService",
                            data={"token": token, "f": "json", "async": "false", "itemIds": ",".join(items),
                                  "service": json.dumps({"name": "bench"})}).json()
            t2 = time.perf_counter()
            assert job["jobStatus"] == "esriJobSucceeded", job
    n = args.count
    print(f"{n} rasters of {args.size}x{args.size} float32 (deflate), {megabytes:.1f} MB in all")
    print("| step | seconds | MB/s | rasters/s |\n|---|---:|---:|---:|")
    print(f"| upload (one by one, checked) | {up_s:.2f} | {megabytes / up_s:.1f} | {n / up_s:.1f} |")
    print(f"| add (one by one, catalog change each) | {add_s:.2f} | {megabytes / add_s:.1f} | {n / add_s:.1f} |")
    print(f"| upload of {n} for a new service | {t1 - t0:.2f} | {megabytes / (t1 - t0):.1f} | {n / (t1 - t0):.1f} |")
    print(f"| createService of {n} (one job) | {t2 - t1:.2f} | {megabytes / (t2 - t1):.1f} | {n / (t2 - t1):.1f} |")


if __name__ == "__main__":
    main()
