"""Operations: /healthz, /readyz, Prometheus /metrics, the access log and X-Request-Id, in process
and under `ogc-gateway serve` with several gunicorn workers."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

import synth
from conftest import make_config, serving
from ogc_gateway.access import classify, redact
from ogc_gateway.app import create_app
from test_wmts import COL0, ROW0, Z

DEM_TILE = f"/arcgis/rest/services/dem/ImageServer/tile/{Z}/{ROW0}/{COL0}"


def samples(text: str) -> dict[tuple, float]:
    """Every sample of a Prometheus text exposition by (name, sorted labels); parsing it is the check
    that the text is valid exposition format."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, tuple(sorted((k, str(v)) for k, v in labels.items()))), 0.0)


@pytest.fixture()
def own_app(data_dir, tmp_path):
    """An app with its own cache folder (catalogs), which a test may break."""
    return create_app(make_config(data_dir, tmp_path / "cache"))


def test_healthz_and_readyz(own_app):
    with serving(own_app) as url:
        health = requests.get(f"{url}/healthz")
        assert health.status_code == 200 and health.text == "ok\n"
        ready = requests.get(f"{url}/readyz")
        assert ready.status_code == 200
        body = ready.json()
        assert body["status"] == "ready"
        assert {"catalog:dem", "catalog:mosaic", "catalog:ts"} <= set(body["checks"])
        assert set(body["checks"].values()) == {"ok"}


def test_readyz_fails_while_a_catalog_database_is_unreachable(own_app, tmp_path):
    db = tmp_path / "cache" / "catalogs" / "dem.sqlite"
    with serving(own_app) as url:
        assert requests.get(f"{url}/readyz").status_code == 200
        aside = tmp_path / "aside.sqlite"
        db.rename(aside)                       # the database is gone (a lost volume, a dead server)
        try:
            ready = requests.get(f"{url}/readyz")
            assert ready.status_code == 503
            checks = ready.json()["checks"]
            assert checks["catalog:dem"] != "ok" and "dem.sqlite" in checks["catalog:dem"]
            assert checks["catalog:mosaic"] == "ok"
            assert requests.get(f"{url}/healthz").status_code == 200     # alive: no restart wanted
        finally:
            aside.rename(db)
        assert requests.get(f"{url}/readyz").status_code == 200


def test_readyz_fails_while_source_storage_is_unreachable(tmp_path):
    synth.make_dem(tmp_path / "data" / "dem")
    synth.make_mosaic(tmp_path / "data" / "mosaic")
    synth.make_timeseries(tmp_path / "data" / "ts")
    app = create_app(make_config(tmp_path / "data", tmp_path / "cache"))
    with serving(app) as url:
        (tmp_path / "data" / "dem").rename(tmp_path / "unmounted")
        ready = requests.get(f"{url}/readyz")
        assert ready.status_code == 503
        bad = {k: v for k, v in ready.json()["checks"].items() if v != "ok"}
        assert list(bad) == [f"sources:dem:{tmp_path / 'data' / 'dem' / '*.tif'}"]
        assert requests.get(f"{url}/healthz").status_code == 200
        (tmp_path / "unmounted").rename(tmp_path / "data" / "dem")
        assert requests.get(f"{url}/readyz").status_code == 200


def test_metrics_count_requests_tiles_renders_and_items(own_app):
    with serving(own_app) as url:
        before = samples(requests.get(f"{url}/metrics").text)
        assert requests.get(url + DEM_TILE).status_code == 200          # rendered: a miss
        assert requests.get(url + DEM_TILE).status_code == 200          # then a hit
        export = requests.get(f"{url}/arcgis/rest/services/dem/ImageServer/exportImage",
                              params={"bbox": "500000,5000000,501000,5001000", "size": "100,100",
                                      "f": "image", "format": "tiff"})
        assert export.status_code == 200 and export.content[:2] in (b"II", b"MM")
        wms = requests.get(f"{url}/ogc/wms", params={"SERVICE": "WMS", "REQUEST": "GetCapabilities"})
        assert wms.status_code == 200

        def delta(name, **labels):
            return value(after, name, **labels) - value(before, name, **labels)

        # a request is counted when the server closes its response, maybe just after the client read it
        deadline = time.monotonic() + 10
        while True:
            scrape = requests.get(f"{url}/metrics")
            after = samples(scrape.text)
            if delta("ogc_gateway_requests_total", face="wms", operation="GetCapabilities", status=200) \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert scrape.headers["Content-Type"].startswith("text/plain; version=")

    assert delta("ogc_gateway_requests_total", face="rest", operation="tile", status=200) == 2
    assert delta("ogc_gateway_requests_total", face="rest", operation="exportImage", status=200) == 1
    assert delta("ogc_gateway_requests_total", face="wms", operation="GetCapabilities", status=200) == 1
    assert delta("ogc_gateway_request_duration_seconds_count", face="rest", operation="tile") == 2
    assert delta("ogc_gateway_request_duration_seconds_bucket", face="rest", operation="tile", le="+Inf") == 2
    assert delta("ogc_gateway_tile_cache_misses_total") == 1
    assert delta("ogc_gateway_tile_cache_hits_total") == 1
    assert delta("ogc_gateway_render_seconds_count") == 2                # the metatile and the export
    # the export's box holds parts of all four DEM tiles (they start at x 500000 and 500900)
    assert delta("ogc_gateway_items_read_sum") >= 4
    generation = value(after, "ogc_gateway_catalog_generation", service="dem")
    assert generation == own_app.extensions["ogc_gateway"].registry["dem"].catalog.last_change() > 0


def test_request_id_is_taken_when_valid_and_made_otherwise(client):
    given = client.get("/healthz", headers={"X-Request-Id": "lb-7f3a.42"})
    assert given.headers["X-Request-Id"] == "lb-7f3a.42"
    for bad in ("has spaces in it", "x" * 200, "<script>"):
        made = client.get("/healthz", headers={"X-Request-Id": bad})
        assert made.headers["X-Request-Id"] != bad and len(made.headers["X-Request-Id"]) == 32
    first, second = client.get("/healthz"), client.get("/healthz")
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]
    # errors carry it too
    assert "X-Request-Id" in client.get("/arcgis/rest/services/nothing/ImageServer").headers


def access_line(caplog, rid: str) -> str:
    """The access line of a request: written when the server closes the response, which may be a
    moment after the client has read it."""
    deadline = time.monotonic() + 10
    while True:
        lines = [r.getMessage() for r in caplog.records if r.name == "ogc_gateway.access" and rid in r.getMessage()]
        if lines:
            assert len(lines) == 1, lines
            return lines[0]
        assert time.monotonic() < deadline, f"no access line for {rid}"
        time.sleep(0.01)


def test_access_log_line_redacts_secrets(own_app, caplog):
    caplog.set_level(logging.INFO, logger="ogc_gateway.access")
    with serving(own_app) as url:
        answer = requests.get(f"{url}/arcgis/rest/services?f=json&token=s3cr3t&Password=hunter2&api_key=k",
                              headers={"X-Request-Id": "req-1"})
        line = access_line(caplog, "req-1")
    assert "s3cr3t" not in line and "hunter2" not in line and "=k" not in line
    assert '"GET /arcgis/rest/services?f=json&token=***&Password=***&api_key=***"' in line
    assert f" 200 {len(answer.content)} " in line and line.endswith("ms req-1")


def test_access_log_json_format(data_dir, tmp_path, caplog):
    config = make_config(data_dir, tmp_path / "cache")
    config = replace(config, server=replace(config.server, access_log_format="json"))
    caplog.set_level(logging.INFO, logger="ogc_gateway.access")
    with serving(create_app(config)) as url:
        answer = requests.get(f"{url}/arcgis/rest/services/dem/ImageServer?f=json&token=abc")
        rid = answer.headers["X-Request-Id"]
        entry = json.loads(access_line(caplog, rid))
    assert entry["method"] == "GET" and entry["path"] == "/arcgis/rest/services/dem/ImageServer"
    assert entry["query"] == "f=json&token=***" and entry["status"] == 200
    assert entry["bytes"] == len(answer.content) and entry["duration_ms"] > 0
    assert (entry["face"], entry["operation"], entry["request_id"]) == ("rest", "root", rid)


def test_redact():
    assert redact("") == ""
    assert redact("a=1&token=x&b=2") == "a=1&token=***&b=2"
    assert redact("TOKEN=x&access_key=y&client_secret=z&pwd=q") == "TOKEN=***&access_key=***&client_secret=***&pwd=***"
    assert redact("bbox=1,2,3,4&flag") == "bbox=1,2,3,4&flag"


@pytest.mark.parametrize("path, query, expected", [
    ("/healthz", "", ("ops", "healthz")),
    ("/metrics", "", ("ops", "metrics")),
    ("/arcgis/rest/services", "f=json", ("rest", "services")),
    ("/arcgis/rest/services/dem/ImageServer", "", ("rest", "root")),
    ("/arcgis/rest/services/dem/ImageServer/exportImage", "", ("rest", "exportImage")),
    ("/arcgis/rest/services/dem/ImageServer/tile/3/1/2", "", ("rest", "tile")),
    ("/arcgis/rest/services/dem/ImageServer/12/info", "", ("rest", "raster")),
    ("/arcgis/rest/services/dem/ImageServer/madeUpThing", "", ("rest", "other")),
    ("/arcgis/rest/directories/arcgisoutput/dem/_ags_x.png", "", ("rest", "output")),
    ("/arcgis/services/dem/ImageServer/WMSServer", "service=WMS&request=GetMap", ("wms", "GetMap")),
    ("/arcgis/services/dem/ImageServer/WCSServer", "REQUEST=describecoverage", ("wcs", "DescribeCoverage")),
    ("/ogc/wms", "REQUEST=Nonsense", ("wms", "other")),
    ("/ogc/wcs", "", ("wcs", "none")),
    ("/ogc/wmts", "request=GetTile", ("wmts", "GetTile")),
    ("/ogc/wmts/1.0.0/WMTSCapabilities.xml", "", ("wmts", "GetCapabilities")),
    ("/ogc/wmts/tile/1.0.0/dem/default/WebMercatorQuad/3/1/2.png", "", ("wmts", "GetTile")),
    ("/arcgis/rest/services/dem/ImageServer/WMTS/tile/1.0.0/dem/default/WebMercatorQuad/3/1/2.png", "",
     ("wmts", "GetTile")),
    ("/favicon.ico", "", ("other", "other")),
])
def test_classify(path, query, expected):
    assert classify(path, query) == expected


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_counts_every_worker_and_logs_each_request(tmp_path):
    """Under `ogc-gateway serve --workers 2` the metrics are summed over both workers (multiprocess
    mode in a per-run folder, removed at exit), and each request is one access log line."""
    synth.make_dem(tmp_path / "dem")
    config = tmp_path / "gateway.yaml"
    config.write_text("services:\n  dem:\n    sources: dem/*.tif\n")
    run_tmp = tmp_path / "tmp"
    run_tmp.mkdir()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["TMPDIR"] = str(run_tmp)
    log_file = open(tmp_path / "out.log", "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "ogc_gateway.cli", "serve", "--config", str(config), "--port", str(port),
         "--workers", "2"], stdout=log_file, stderr=subprocess.STDOUT, env=env, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "out.log").read_text()
            try:
                if requests.get(f"{url}/readyz", timeout=10).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            assert time.monotonic() < deadline, "the server did not become ready within 60 s"
            time.sleep(0.2)
        folders = [p for p in run_tmp.iterdir() if p.name.startswith("ogc-gateway-metrics-")]
        assert len(folders) == 1
        # Concurrent exports keep one worker busy while the other accepts: both must be counted.
        from concurrent.futures import ThreadPoolExecutor

        def get(i: int) -> str:
            answer = requests.get(f"{url}/arcgis/rest/services/dem/ImageServer/exportImage",
                                  params={"bbox": "500000,5000000,501000,5001000", "size": "1500,1500",
                                          "f": "image", "format": "tiff"},
                                  headers={"Connection": "close", "X-Request-Id": f"t-{i}"})
            assert answer.status_code == 200 and answer.headers["X-Request-Id"] == f"t-{i}"
            return f"t-{i}"

        rids: list[str] = []
        pids: set[str] = set()
        with ThreadPoolExecutor(4) as pool:
            while len(pids) < 2 and len(rids) < 200:
                rids += pool.map(get, range(len(rids), len(rids) + 8))
                pids = {p.name for p in folders[0].iterdir() if p.name.startswith("histogram_")}
        n = len(rids)
        deadline = time.monotonic() + 10
        while True:                      # the last requests are counted as their responses close
            found = samples(requests.get(f"{url}/metrics").text)
            counted = value(found, "ogc_gateway_requests_total", face="rest", operation="exportImage", status=200)
            if counted >= n or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert counted == n
        assert len(pids) == 2, pids                          # both workers wrote samples
        assert value(found, "ogc_gateway_render_seconds_count") == n
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log_file.seek(0)
    output = log_file.read()
    for rid in rids:
        assert sum(1 for line in output.splitlines() if line.endswith(f"ms {rid}")) == 1
    assert not [p for p in run_tmp.iterdir() if p.name.startswith("ogc-gateway-metrics-")], \
        "the metrics folder of the run is removed at exit"


def test_config_keys_of_operations(tmp_path):
    from ogc_gateway.config import load_config
    from ogc_gateway.engine.errors import ConfigError

    synth.make_dem(tmp_path / "dem")
    path = tmp_path / "gateway.yaml"
    path.write_text("server:\n  access_log: false\n  access_log_format: json\n  cache_url: s3://tiles-bucket/gw/\n"
                    "services:\n  dem:\n    sources: dem/*.tif\n")
    server = load_config(path).server
    assert (server.access_log, server.access_log_format, server.cache_url) == (False, "json", "s3://tiles-bucket/gw")
    path.write_text("services:\n  dem:\n    sources: dem/*.tif\n")
    server = load_config(path).server
    assert (server.access_log, server.access_log_format, server.cache_url) == (True, "text", None)
    path.write_text("server:\n  access_log: yes please\n  access_log_format: xml\n  cache_url: /srv/tiles\n"
                    "services:\n  dem:\n    sources: dem/*.tif\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        "gateway.yaml: server.access_log: must be true or false, not 'yes please'",
        "gateway.yaml: server.access_log_format: must be one of text, json, not 'xml'",
        "gateway.yaml: server.cache_url: must be an s3://bucket/prefix URL, not '/srv/tiles'"]


def test_gunicorn_hooks_give_a_run_its_own_metrics_folder_and_mark_dead_workers(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from ogc_gateway import gunicorn_hooks

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)           # TMPDIR is read afresh
    gunicorn_hooks.on_starting(None)
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert folder.parent == tmp_path and not any(folder.iterdir())
    # a "worker": another process writing a counter and a live gauge into the folder, then exiting
    worker = subprocess.run([sys.executable, "-c",
                             "import os\nfrom prometheus_client import Counter, Gauge\n"
                             "Counter('c', 'c').inc()\nGauge('g', 'g', multiprocess_mode='livesum').set(1)\n"
                             "print(os.getpid())"], capture_output=True, text=True, env=dict(os.environ), check=True)
    pid = int(worker.stdout)
    assert {p.name for p in folder.iterdir()} == {f"counter_{pid}.db", f"gauge_livesum_{pid}.db"}
    gunicorn_hooks.child_exit(None, SimpleNamespace(pid=pid))
    assert {p.name for p in folder.iterdir()} == {f"counter_{pid}.db"}     # counts stay; live values go
    gunicorn_hooks.on_exit(None)
    assert not folder.exists() and "PROMETHEUS_MULTIPROC_DIR" not in os.environ
