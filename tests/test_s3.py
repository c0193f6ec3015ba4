"""Object storage: sources in an S3 bucket (and plain HTTP URLs) read through GDAL, the catalog
commands on s3:// paths, and a tile cache and output files in S3 shared by two instances. Against
moto's S3 server on 127.0.0.1 (a real HTTP endpoint for boto3 and GDAL's /vsis3/ alike)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import numpy as np
import pytest
import rasterio
import requests
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from rasterio.io import MemoryFile
from rasterio.windows import Window

import synth
from conftest import stop_processes
from ogc_gateway.app import create_app
from ogc_gateway.cli import cli
from ogc_gateway.config import load_config
from ogc_gateway.engine import s3 as s3_settings
from ogc_gateway.engine import sources
from test_wmts import COL0, ROW0, Z

GDAL_VARS = ("AWS_S3_ENDPOINT", "AWS_HTTPS", "AWS_VIRTUAL_HOSTING")


class MotoServer:
    """moto's S3 server in its own process on a free 127.0.0.1 port. Not a thread of the test
    process: GDAL reads some data holding the GIL, which would deadlock against a server thread."""

    def __init__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(self.url, timeout=2)
                return
            except (requests.ConnectionError, requests.Timeout):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_moto() -> tuple[MotoServer, str]:
    server = MotoServer()
    return server, server.url


def use_endpoint(mp: pytest.MonkeyPatch, url: str) -> None:
    """The AWS_* environment of a local S3 server, as an operator sets it; GDAL's own variables are
    derived by the gateway (and put back afterwards)."""
    for name in GDAL_VARS + ("AWS_ENDPOINT_URL_S3",):
        mp.setenv(name, "x")
        mp.delenv(name)
    mp.setenv("AWS_ENDPOINT_URL", url)
    mp.setenv("AWS_ACCESS_KEY_ID", "testing")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    mp.setenv("AWS_REGION", "us-east-1")


@pytest.fixture(scope="module")
def endpoint():
    server, url = start_moto()
    with pytest.MonkeyPatch.context() as mp:
        use_endpoint(mp, url)
        yield url
    server.stop()


@pytest.fixture(scope="module")
def dem_files(tmp_path_factory) -> list[Path]:
    return synth.make_dem(tmp_path_factory.mktemp("dem"))


@pytest.fixture(scope="module")
def bucket(endpoint, dem_files) -> str:
    """s3://imagery with the four DEM tiles under dem/r{row}/ (a prefix two levels deep)."""
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket="imagery")
    client.create_bucket(Bucket="shared-cache")
    for path in dem_files:
        row = path.stem.split("_")[1]
        client.upload_file(str(path), "imagery", f"dem/{row}/{path.name}")
    client.put_object(Bucket="imagery", Key="dem/readme.txt", Body=b"not a raster")
    return "imagery"


def write_config(folder: Path, sources_line: str, cache_url: str | None = "s3://shared-cache/gw") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    server = f"server:\n  cache_url: {cache_url}\n" if cache_url else ""
    path = folder / "gateway.yaml"
    path.write_text(f"{server}services:\n  dem:\n    sources: {sources_line}\n    default_resampling: nearest\n")
    return path


def scrape(client) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True)):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_gdal_settings_are_derived_from_the_boto3_endpoint(monkeypatch):
    use_endpoint(monkeypatch, "http://127.0.0.1:9000")
    s3_settings.configure_gdal()
    assert (os.environ["AWS_S3_ENDPOINT"], os.environ["AWS_HTTPS"], os.environ["AWS_VIRTUAL_HOSTING"]) == \
        ("127.0.0.1:9000", "NO", "FALSE")
    assert s3_settings.endpoint_url() == "http://127.0.0.1:9000"
    # and the other way round: only GDAL's variables set
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("AWS_S3_ENDPOINT", "minio:9000")
    assert s3_settings.endpoint_url() == "http://minio:9000"
    monkeypatch.setenv("AWS_HTTPS", "YES")
    assert s3_settings.endpoint_url() == "https://minio:9000"


def test_glob_patterns_over_a_bucket(bucket, dem_files):
    keys = sorted(f"s3://imagery/dem/{p.stem.split('_')[1]}/{p.name}" for p in dem_files)
    assert sources.expand("s3://imagery/dem/**/*.tif") == keys
    assert sources.expand("s3://imagery/**/*.tif") == keys
    assert sources.expand("s3://imagery/dem/*.tif") == []                   # * stays within one level
    assert sources.expand("s3://imagery/dem/r0/dem_r0_c?.tif") == keys[:2]
    assert sources.expand("s3://imagery/dem/r1/dem_r1_c1.tif") == keys[3:]
    assert sources.expand("s3://imagery/dem/r1/nothing.tif") == []
    size = sources.stat(keys[0])[1]
    assert size == dem_files[0].stat().st_size
    assert sources.stat("s3://imagery/dem/nope.tif") is None
    sources.check_reachable("s3://imagery/dem/**/*.tif")
    with pytest.raises(OSError):
        sources.check_reachable("s3://no-such-bucket/x/*.tif")


def test_a_catalog_from_a_bucket_renders_the_files_pixels(bucket, dem_files, tmp_path):
    config = load_config(write_config(tmp_path / "a", "s3://imagery/dem/**/*.tif", cache_url=None))
    client = create_app(config).test_client()
    query = client.get("/arcgis/rest/services/dem/ImageServer/query",
                       query_string={"where": "1=1", "outFields": "Name", "f": "json"}).get_json()
    assert sorted(f["attributes"]["Name"] for f in query["features"]) == sorted(p.stem for p in dem_files)
    # a box on dem_r0_c0's own grid that no other tile meets: its pixels, exactly
    answer = client.get("/arcgis/rest/services/dem/ImageServer/exportImage", query_string={
        "bbox": "500000,5001200,500800,5002000", "bboxSR": "32633", "size": "80,80", "format": "tiff",
        "pixelType": "F32", "f": "image"})
    assert answer.status_code == 200, answer.data[:300]
    with MemoryFile(answer.data) as mem, mem.open() as ds:
        got = ds.read(1, masked=True)
    with rasterio.open(next(p for p in dem_files if p.stem == "dem_r0_c0")) as src:
        truth = src.read(1, window=Window(0, 0, 80, 80), masked=True)
    assert np.array_equal(got.mask, truth.mask) and truth.mask.any()
    assert np.array_equal(got.compressed(), truth.compressed())


def test_catalog_commands_take_s3_paths(bucket, dem_files, endpoint, tmp_path):
    path = write_config(tmp_path / "c", "s3://imagery/dem/r0/*.tif", cache_url=None)
    runner = CliRunner()
    synced = runner.invoke(cli, ["catalog", "sync", "--config", str(path)])
    assert synced.exit_code == 0, synced.output
    assert "dem: 2 added or re-read, 0 removed, 0 unchanged" in synced.output
    extra = "s3://imagery/dem/r1/dem_r1_c0.tif"
    added = runner.invoke(cli, ["catalog", "add", "dem", extra, "--config", str(path)])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(cli, ["catalog", "list", "dem", "--config", str(path)])
    paths = [line.split("\t")[3] for line in listed.output.strip().splitlines()[1:]]
    assert paths == ["s3://imagery/dem/r0/dem_r0_c0.tif", "s3://imagery/dem/r0/dem_r0_c1.tif", extra]
    missing = runner.invoke(cli, ["catalog", "add", "dem", "s3://imagery/dem/r9/none.tif", "--config", str(path)])
    assert missing.exit_code != 0 and "does not exist" in missing.output
    checked = runner.invoke(cli, ["check-config", "--config", str(path)])
    assert checked.exit_code == 0 and "dem: 2 files" in checked.output


def test_a_sync_of_an_unchanged_bucket_only_lists_it(bucket, tmp_path):
    """The listing carries each object's LastModified and size: no HEAD (nor read) per object."""
    from ogc_gateway.engine.catalog import Catalog

    config = load_config(write_config(tmp_path / "l", "s3://imagery/dem/**/*.tif", cache_url=None))
    catalog = Catalog(tmp_path / "l.sqlite", config.services["dem"])
    assert catalog.sync().added == 4
    calls: list[str] = []

    def record(model, **kw):
        calls.append(model.name)
    client = s3_settings.client()
    client.meta.events.register("before-call.s3", record)
    try:
        report = catalog.sync()
    finally:
        client.meta.events.unregister("before-call.s3", record)
    assert (report.added, report.removed, report.unchanged) == (0, 0, 4)
    assert set(calls) == {"ListObjectsV2"}


def test_http_url_sources_are_read_through_vsicurl(bucket, dem_files, endpoint, tmp_path):
    """A COG at a plain URL (the moto server answers unsigned GETs with ranges, like a web server)."""
    boto3.client("s3", endpoint_url=endpoint).put_object_acl(Bucket="imagery", Key="dem/r0/dem_r0_c0.tif",
                                                             ACL="public-read")
    url = f"{endpoint}/imagery/dem/r0/dem_r0_c0.tif"
    assert requests.head(url).status_code == 200                 # a plain web server's answer now
    config = load_config(write_config(tmp_path / "h", url, cache_url=None))
    client = create_app(config).test_client()
    answer = client.get("/arcgis/rest/services/dem/ImageServer/exportImage", query_string={
        "bbox": "500000,5001200,500800,5002000", "bboxSR": "32633", "size": "80,80", "format": "tiff",
        "pixelType": "F32", "f": "image"})
    with MemoryFile(answer.data) as mem, mem.open() as ds:
        got = ds.read(1, masked=True)
    with rasterio.open(dem_files[0]) as src:
        truth = src.read(1, window=Window(0, 0, 80, 80), masked=True)
    assert np.array_equal(got.filled(0), truth.filled(0))


def test_instances_share_tiles_and_output_files_through_the_bucket(bucket, endpoint, tmp_path):
    """Two instances, each with its own local folder (its own catalog), one cache_url."""
    a = create_app(load_config(write_config(tmp_path / "a", "s3://imagery/dem/**/*.tif"))).test_client()
    b = create_app(load_config(write_config(tmp_path / "b", "s3://imagery/dem/**/*.tif"))).test_client()
    tile = f"/ogc/wmts/tile/1.0.0/dem/default/WebMercatorQuad/{Z}/{ROW0}/{COL0}.png"
    before = scrape(a)
    first = a.get(tile)
    assert first.status_code == 200 and first.content_type == "image/png"
    middle = scrape(a)
    second = b.get(tile)
    after = scrape(b)

    def delta(x, y, name):
        return y.get((name, ()), 0) - x.get((name, ()), 0)

    assert delta(before, middle, "ogc_gateway_tile_cache_misses_total") == 1
    assert delta(middle, after, "ogc_gateway_tile_cache_misses_total") == 0
    assert delta(middle, after, "ogc_gateway_tile_cache_hits_total") == 1
    assert delta(middle, after, "ogc_gateway_render_seconds_count") == 0      # b rendered nothing
    assert second.data == first.data and second.headers["ETag"] == first.headers["ETag"]
    keys = [o["Key"] for o in boto3.client("s3", endpoint_url=endpoint).list_objects_v2(
        Bucket="shared-cache", Prefix="gw/tiles/dem/")["Contents"]]
    assert any(k.endswith(f"/{Z}/{ROW0}/{COL0}.png") for k in keys)
    assert not (tmp_path / "a" / ".ogc-gateway-cache" / "tiles" / "dem").exists()
    # an f=json export written by a is served by b
    described = a.get("/arcgis/rest/services/dem/ImageServer/exportImage", query_string={
        "bbox": "500000,5001200,500800,5002000", "bboxSR": "32633", "size": "80,80", "format": "png",
        "f": "json"}).get_json()
    path = described["href"].split("://", 1)[1].split("/", 1)[1]
    served = b.get("/" + path)
    assert served.status_code == 200 and served.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert b.get("/" + path.replace("_ags_", "_ags_0")).status_code == 404


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_instances_starting_at_once_on_an_empty_shared_catalog_both_come_up(bucket, endpoint, tmp_path):
    config = write_config(tmp_path / "shared", "s3://imagery/dem/**/*.tif")
    assert not (tmp_path / "shared" / ".ogc-gateway-cache").exists()          # nothing synced yet
    ports = [_free_port(), _free_port()]
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    processes = [subprocess.Popen([sys.executable, "-m", "ogc_gateway.cli", "serve", "--config", str(config),
                                   "--port", str(port), "--workers", "1"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for port in ports]
    try:
        for process, port in zip(processes, ports, strict=True):
            deadline = time.monotonic() + 90
            while True:
                if process.poll() is not None:
                    pytest.fail(process.stdout.read())
                try:
                    ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
                    if ready.status_code == 200:
                        break
                except (requests.ConnectionError, requests.Timeout):
                    pass
                assert time.monotonic() < deadline, f"instance on {port} did not become ready"
                time.sleep(0.3)
            listing = requests.get(f"http://127.0.0.1:{port}/arcgis/rest/services/dem/ImageServer/query",
                                   params={"where": "1=1", "returnCountOnly": "true", "f": "json"}).json()
            assert listing["count"] == 4
    finally:
        stop_processes(processes)


def test_readyz_turns_503_while_the_object_store_is_down(dem_files, tmp_path):
    """Its own S3 server, stopped under a running app: /readyz 503 naming the bucket, /healthz 200."""
    server, url = start_moto()
    with pytest.MonkeyPatch.context() as mp:
        use_endpoint(mp, url)
        client = boto3.client("s3", endpoint_url=url)
        client.create_bucket(Bucket="down")
        for path in dem_files:
            client.upload_file(str(path), "down", f"dem/{path.name}")
        app = create_app(load_config(write_config(tmp_path / "d", "s3://down/dem/*.tif", cache_url="s3://down/c")))
        web = app.test_client()
        assert web.get("/readyz").status_code == 200
        server.stop()
        ready = web.get("/readyz")
        assert ready.status_code == 503
        bad = {k for k, v in ready.get_json()["checks"].items() if v != "ok"}
        assert bad == {"sources:dem:s3://down/dem/*.tif", "tile_cache"}
        assert web.get("/healthz").status_code == 200
