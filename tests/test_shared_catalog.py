"""Issue 18's acceptance: two gateway instances (`ogc-gateway serve`, each with its own local folder)
on one PostGIS catalog (`server.catalog_url`) and one S3 bucket (moto's server) for the sources and
the tile cache (`server.cache_url`) serve the same services; a raster added through one (`catalog add`
with its configuration) is served by the other at its next request; a tile rendered by one is a cache
hit for the other; each instance's /metrics parses as Prometheus text and counts those requests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
import rasterio
import requests
import yaml
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

import synth
from conftest import stop_processes
from ogc_gateway.cli import cli
from pgserver import pg_url  # noqa: F401 (fixture)
from test_s3 import _free_port, endpoint  # noqa: F401 (fixture)
from test_wmts import COL0, ROW0, Z

TILE = f"/ogc/wmts/tile/1.0.0/dem/default/WebMercatorQuad/{Z}/{ROW0}/{COL0}.png"
COUNT = "/arcgis/rest/services/dem/ImageServer/query"


def metrics(base: str) -> dict[tuple, float]:
    text = requests.get(f"{base}/metrics", timeout=30).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(scrape: dict, name: str, **labels) -> float:
    return sum(v for (n, ls), v in scrape.items() if n == name and labels.items() <= dict(ls).items())


def start(config: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    return subprocess.Popen([sys.executable, "-m", "ogc_gateway.cli", "serve", "--config", str(config),
                             "--port", str(port), "--workers", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_ready(process: subprocess.Popen, base: str) -> None:
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            pytest.fail(process.stdout.read())
        try:
            if requests.get(f"{base}/readyz", timeout=10).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        assert time.monotonic() < deadline, f"{base} did not become ready"
        time.sleep(0.3)


def count(base: str) -> int:
    return requests.get(f"{base}{COUNT}", params={"where": "1=1", "returnCountOnly": "true", "f": "json"},
                        timeout=60).json()["count"]


def test_two_instances_share_one_postgis_catalog_and_one_bucket(endpoint, pg_url, tmp_path):
    from ogc_gateway.engine.catalog import drop_store

    drop_store(pg_url, "dem")                      # an empty shared catalog, as on a first deployment
    files = synth.make_dem(tmp_path / "dem")
    s3 = boto3.client("s3", endpoint_url=endpoint)
    s3.create_bucket(Bucket="scaleout")
    for path in files[:3]:
        s3.upload_file(str(path), "scaleout", f"dem/{path.name}")
    configs, bases, processes = [], [], []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        config = folder / "gateway.yaml"
        config.write_text(yaml.safe_dump({
            "server": {"cache_dir": str(folder / "cache"), "catalog_url": pg_url,
                       "cache_url": "s3://scaleout/cache"},
            "services": {"dem": {"sources": ["s3://scaleout/dem/*.tif"], "default_resampling": "nearest"}}}))
        configs.append(config)
    try:
        for config in configs:                     # both at once on the empty catalog
            port = _free_port()
            processes.append(start(config, port))
            bases.append(f"http://127.0.0.1:{port}")
        for process, base in zip(processes, bases, strict=True):
            wait_ready(process, base)
        a, b = bases
        assert count(a) == count(b) == 3
        assert not (tmp_path / "a" / "cache" / "catalogs").exists()        # the catalog is in PostGIS

        # a raster added through instance a is served by b at its next request
        s3.upload_file(str(files[3]), "scaleout", f"dem/{files[3].name}")
        added = CliRunner().invoke(cli, ["catalog", "add", "dem", f"s3://scaleout/dem/{files[3].name}",
                                         "--config", str(configs[0])])
        assert added.exit_code == 0, added.output
        assert count(b) == 4 and count(a) == 4
        listed = requests.get(f"{b}{COUNT}", params={"where": f"Name = '{files[3].stem}'", "outFields": "Name",
                                                     "returnGeometry": "false", "f": "json"}, timeout=60).json()
        assert [f["attributes"]["Name"] for f in listed["features"]] == [files[3].stem]
        with rasterio.open(files[3]) as src:       # b's extent now reaches the new file's edges
            extent = requests.get(f"{b}/arcgis/rest/services/dem/ImageServer", params={"f": "json"},
                                  timeout=60).json()["extent"]
            assert extent["xmin"] <= src.bounds.left and extent["xmax"] >= src.bounds.right
            assert extent["ymin"] <= src.bounds.bottom and extent["ymax"] >= src.bounds.top

        # a tile rendered by a is a cache hit for b
        before_a, before_b = metrics(a), metrics(b)
        first = requests.get(a + TILE, timeout=60)
        second = requests.get(b + TILE, timeout=60)
        assert first.status_code == second.status_code == 200 and first.headers["Content-Type"] == "image/png"
        assert second.content == first.content
        after_a, after_b = metrics(a), metrics(b)
        misses, hits = "ogc_gateway_tile_cache_misses_total", "ogc_gateway_tile_cache_hits_total"
        assert total(after_a, misses) - total(before_a, misses) == 1
        assert total(after_b, hits) - total(before_b, hits) == 1
        assert total(after_b, misses) - total(before_b, misses) == 0
        requests_total = "ogc_gateway_requests_total"
        for before, after in ((before_a, after_a), (before_b, after_b)):
            assert total(after, requests_total, status="200") - total(before, requests_total, status="200") >= 1
            assert total(after, requests_total) > total(before, requests_total)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="scaleout", Prefix="cache/tiles/dem/")["Contents"]]
        assert any(k.endswith(f"/{Z}/{ROW0}/{COL0}.png") for k in keys)
    finally:
        stop_processes(processes)
        drop_store(pg_url, "dem")
