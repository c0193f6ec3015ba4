"""The time budget `max_request_seconds` (issue 15, item 3): cost estimated before any work and refused
when it cannot fit; work that overruns is stopped between steps with an error in the face's format,
and the server's own timeout stays above every budget (no worker kill)."""

from __future__ import annotations

import itertools
import json

import pytest

from ogc_gateway import cli
from ogc_gateway.config import load_config
from ogc_gateway.engine import deadline

DEM_EXPORT = "/arcgis/rest/services/dem/ImageServer/exportImage"
DEM_BOX = "500000,5000100,501900,5002000"


def median(size: int) -> str:
    return json.dumps({"rasterFunction": "Statistics",
                       "rasterFunctionArguments": {"Type": 5, "KernelColumns": size, "KernelRows": size}})


def test_a_4000_square_focal_median_is_refused_before_any_read(client, monkeypatch):
    from ogc_gateway.engine import read
    reads = []
    monkeypatch.setattr(read, "read", lambda *a, **k: reads.append(a) or pytest.fail("read"))
    resp = client.get(DEM_EXPORT, query_string={"bbox": DEM_BOX, "size": "4000,4000", "format": "tiff",
                                                "renderingRule": median(25), "f": "image"})
    assert resp.status_code == 200
    error = resp.get_json()["error"]
    assert error["code"] == 400 and "max_request_seconds" in error["message"], error
    assert reads == []


def test_a_small_focal_median_fits(client):
    resp = client.get(DEM_EXPORT, query_string={"bbox": DEM_BOX, "size": "64,64", "format": "tiff",
                                                "renderingRule": median(5), "f": "image"})
    assert resp.status_code == 200 and resp.content_type == "image/tiff", resp.data[:300]


@pytest.fixture
def fast_clock(monkeypatch):
    """A clock that moves 11 days at every look: any budget runs out at the first check."""
    ticks = itertools.count(0, 1e6)
    monkeypatch.setattr(deadline.time, "monotonic", lambda: float(next(ticks)))


def test_an_overrun_is_stopped_with_the_faces_error(client, fast_clock):
    resp = client.get(DEM_EXPORT, query_string={"bbox": DEM_BOX, "size": "64,64", "format": "tiff",
                                                "renderingRule": median(3), "f": "image"})
    assert resp.status_code == 200
    error = resp.get_json()["error"]
    assert error["code"] == 400 and "time budget" in error["message"], error
    resp = client.get("/ogc/wms", query_string={
        "SERVICE": "WMS", "VERSION": "1.3.0", "REQUEST": "GetMap", "LAYERS": "dem", "STYLES": "",
        "CRS": "EPSG:32633", "BBOX": DEM_BOX, "WIDTH": "64", "HEIGHT": "64", "FORMAT": "image/png"})
    assert resp.status_code < 500 and b"ServiceException" in resp.data and b"time budget" in resp.data


def test_the_server_answers_after_an_overrun(client, monkeypatch):
    ticks = itertools.count(0, 1e6)
    monkeypatch.setattr(deadline.time, "monotonic", lambda: float(next(ticks)))
    client.get(DEM_EXPORT, query_string={"bbox": DEM_BOX, "size": "64,64", "renderingRule": median(3),
                                         "format": "tiff", "f": "image"})
    monkeypatch.undo()
    resp = client.get(DEM_EXPORT, query_string={"bbox": DEM_BOX, "size": "64,64", "format": "tiff",
                                                "renderingRule": median(3), "f": "image"})
    assert resp.status_code == 200 and resp.content_type == "image/tiff"


def test_serve_keeps_gunicorns_timeout_above_every_budget(tmp_path, monkeypatch):
    from test_cli import write_tif
    write_tif(tmp_path / "terrain" / "a.tif")
    (tmp_path / "gateway.yaml").write_text("server:\n  max_request_seconds: 300\nservices:\n  terrain:\n"
                                           "    sources: terrain/*.tif\n    max_request_seconds: 500\n")
    seen = {}
    monkeypatch.setattr(cli._GatewayApplication, "run", lambda self: seen.update(self.options))
    monkeypatch.setattr(cli, "_print_urls", lambda *a: None)
    cli._serve(load_config(tmp_path / "gateway.yaml"), "127.0.0.1", 8080, 1)
    assert seen["timeout"] > 500 and seen["worker_class"] == "asgi"
