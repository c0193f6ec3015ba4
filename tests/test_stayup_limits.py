"""Budgets every face enforces before any pixel is read (issue 15, items 2, 7 and 9): output size and
band count, geometry vertices counted while parsing, and parsers that bound depth and magnitude."""

from __future__ import annotations

import json
import math

import pytest
from lxml import etree

from conftest import make_config
from ogc_gateway.app import create_app
from ogc_gateway.config import Limits

DEM_BOX = "500000,5000100,501900,5002000"
EXPORT = "/arcgis/rest/services/mosaic/ImageServer/exportImage"
DEM_EXPORT = "/arcgis/rest/services/dem/ImageServer/exportImage"
OWS = "{http://www.opengis.net/ows/2.0}"
OWS11 = "{http://www.opengis.net/ows/1.1}"


def rest_error(resp) -> dict:
    """The ArcGIS JSON error of a REST answer (HTTP 200 + error body, the ArcGIS habit)."""
    assert resp.status_code == 200, resp.data[:300]
    body = resp.get_json()
    assert "error" in body, body
    assert body["error"]["code"] == 400, body
    return body["error"]


def ogc_error_text(resp) -> str:
    """The text of any OGC exception document (WMS, WCS 1.0, OWS 1.1 or 2.0); never a 5xx."""
    assert resp.status_code < 500, resp.data[:300]
    root = etree.fromstring(resp.data)
    assert "Exception" in root.tag, resp.data[:300]
    return " ".join(t.strip() for t in root.itertext() if t.strip())


@pytest.fixture(scope="module")
def small_client(data_dir, tmp_path_factory):
    """The test services with a 200 kB output budget and at most 8 bands per request."""
    config = make_config(data_dir, tmp_path_factory.mktemp("cache"))
    limits = Limits(max_image_width=4100, max_image_height=4100, max_output_bytes=200_000,
                    max_output_bands=8)
    from dataclasses import replace
    config = replace(config, server=replace(config.server, limits=limits),
                     services={k: replace(v, limits=limits) for k, v in config.services.items()})
    return create_app(config).test_client()


# ---- item 2: output size and band count -----------------------------------------------------------

def test_ten_thousand_band_ids_are_refused_before_any_read(client):
    resp = client.get(EXPORT, query_string={"bbox": DEM_BOX, "bboxSR": 32633, "size": "128,128",
                                            "bandIds": ",".join(["0"] * 10_000), "format": "tiff",
                                            "f": "image"})
    error = rest_error(resp)
    assert "max_output_bands" in error["message"] + " ".join(error["details"])


def test_sixty_four_band_ids_still_work(client):
    resp = client.get(EXPORT, query_string={"bbox": DEM_BOX, "bboxSR": 32633, "size": "16,16",
                                            "bandIds": ",".join(["0"] * 64), "format": "tiff",
                                            "f": "image"})
    assert resp.status_code == 200 and resp.content_type == "image/tiff", resp.data[:300]


def test_output_bytes_budget_on_rest(small_client):
    # 300 x 300 x 1 band x 4 bytes (F32) = 360,000 bytes > 200,000
    resp = small_client.get(DEM_EXPORT, query_string={"bbox": DEM_BOX, "bboxSR": 32633, "size": "300,300",
                                                      "pixelType": "F32", "format": "tiff", "f": "image"})
    error = rest_error(resp)
    assert "max_output_bytes" in error["message"]
    # 200 x 200 x 4 bytes = 160,000 fits
    ok = small_client.get(DEM_EXPORT, query_string={"bbox": DEM_BOX, "bboxSR": 32633, "size": "200,200",
                                                    "pixelType": "F32", "format": "tiff", "f": "image"})
    assert ok.status_code == 200 and ok.content_type == "image/tiff"


def test_wcs10_band_repeats_are_bounded(client):
    resp = client.get("/ogc/wcs", query_string={
        "SERVICE": "WCS", "VERSION": "1.0.0", "REQUEST": "GetCoverage", "COVERAGE": "mosaic",
        "CRS": "EPSG:32633", "FORMAT": "GeoTIFF", "BBOX": DEM_BOX, "WIDTH": "128", "HEIGHT": "128",
        "BAND": ",".join(["1"] * 1000)})
    assert "max_output_bands" in ogc_error_text(resp)


def test_wcs20_rangesubset_repeats_are_bounded(client):
    resp = client.get("/ogc/wcs", query_string={
        "SERVICE": "WCS", "VERSION": "2.0.1", "REQUEST": "GetCoverage", "COVERAGEID": "mosaic",
        "RANGESUBSET": ",".join(["Red"] * 1000)})
    assert "max_output_bands" in ogc_error_text(resp)


def test_wcs_and_wms_output_bytes_budget(small_client):
    resp = small_client.get("/ogc/wcs", query_string={
        "SERVICE": "WCS", "VERSION": "1.0.0", "REQUEST": "GetCoverage", "COVERAGE": "mosaic",
        "CRS": "EPSG:32633", "FORMAT": "GeoTIFF", "BBOX": DEM_BOX, "WIDTH": "400", "HEIGHT": "400"})
    assert "max_output_bytes" in ogc_error_text(resp)
    resp = small_client.get("/ogc/wcs", query_string={
        "SERVICE": "WCS", "VERSION": "2.0.1", "REQUEST": "GetCoverage", "COVERAGEID": "mosaic",
        "SCALESIZE": "E(400),N(400)"})
    assert "max_output_bytes" in ogc_error_text(resp)
    resp = small_client.get("/ogc/wms", query_string={
        "SERVICE": "WMS", "VERSION": "1.3.0", "REQUEST": "GetMap", "LAYERS": "dem", "STYLES": "",
        "CRS": "EPSG:32633", "BBOX": DEM_BOX, "WIDTH": "400", "HEIGHT": "400", "FORMAT": "image/png"})
    assert "max_output_bytes" in ogc_error_text(resp)


# ---- item 7: request bodies and geometry vertices ------------------------------------------------

IDENTIFY = "/arcgis/rest/services/dem/ImageServer/identify"
SAMPLES = "/arcgis/rest/services/dem/ImageServer/getSamples"


def test_a_form_over_max_request_bytes_is_refused(client):
    body = "f=json&geometry=" + "1" * (11 * 2**20)
    resp = client.post(IDENTIFY, data=body, content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 413
    assert "max_request_bytes" in resp.get_json()["error"]["message"]


def test_a_million_point_multipoint_is_refused_before_it_is_parsed(client, monkeypatch):
    import json as _json

    import ogc_gateway.engine.bounded as bounded
    calls = []
    real = _json.loads
    monkeypatch.setattr(bounded.json, "loads", lambda *a, **k: calls.append(1) or real(*a, **k))
    points = ",".join("[5,5]" for _ in range(1_000_000))   # 6 MB: under the body cap
    resp = client.post(SAMPLES, data={"geometry": '{"points":[' + points + "]}",
                                      "geometryType": "esriGeometryMultipoint", "f": "json"},
                       content_type="multipart/form-data")
    assert calls == []                   # refused from the text, before json.loads built anything
    error = rest_error(resp)
    assert "100000 vertices" in error["message"]


def test_a_polygon_just_over_the_vertex_limit_is_refused_while_read(client):
    n = 100_001
    ring = [[500000 + 1000 * math.cos(6.283 * i / n), 5001000 + 1000 * math.sin(6.283 * i / n)] for i in range(n)]
    ring.append(ring[0])
    resp = client.post(IDENTIFY, data={"geometry": json.dumps({"rings": [ring]}),
                                       "geometryType": "esriGeometryPolygon", "f": "json"})
    error = rest_error(resp)
    assert "100000 vertices" in error["message"]


def test_a_polygon_under_the_limit_still_works(client):
    resp = client.post(IDENTIFY, data={
        "geometry": json.dumps({"rings": [[[500100, 5000200], [500100, 5000900], [500900, 5000900],
                                           [500900, 5000200], [500100, 5000200]]]}),
        "geometryType": "esriGeometryPolygon", "f": "json"})
    assert resp.status_code == 200 and "error" not in resp.get_json(), resp.data[:300]


# ---- item 9: parsers bound depth and magnitude ----------------------------------------------------

DEEP_RULE = ('{"rasterFunction":"Hillshade","rasterFunctionArguments":{"Raster":' * 5000 + '"$$"'
             + "}}" * 5000)


@pytest.mark.parametrize("path, params", [
    (DEM_EXPORT, {"bbox": "-1e308,-1e308,1e308,1e308"}),
    (DEM_EXPORT, {"bbox": '{"xmin":-1e308,"ymin":-1e308,"xmax":1e308,"ymax":1e308}'}),
    (DEM_EXPORT, {"renderingRule": DEEP_RULE}),
    (DEM_EXPORT, {"renderingRule": "[" * 100_000}),
    (DEM_EXPORT, {"mosaicRule": "[" * 100_000}),
    (DEM_EXPORT, {"renderingRule": '{"rasterFunction":"Clip","rasterFunctionArguments":{"ClippingGeometry":"'
                                   + "[" * 100_000 + '"}}'}),
    ("/arcgis/rest/services/ts/ImageServer/exportImage", {"time": "1e308,1e308"}),
    ("/arcgis/rest/services/ts/ImageServer/exportImage", {"time": "99999999999999999999999"}),
    (IDENTIFY, {"geometry": "[" * 100_000}),
    (IDENTIFY, {"geometry": '{"a":' * 100_000}),
    (IDENTIFY, {"geometry": '{"x":1e308,"y":1e308}', "geometryType": "esriGeometryPoint"}),
    ("/arcgis/rest/services/dem/ImageServer/computeHistograms",
     {"geometry": '{"xmin":-1e308,"ymin":-1e308,"xmax":1e308,"ymax":1e308}',
      "geometryType": "esriGeometryEnvelope"}),
    ("/arcgis/rest/services/dem/ImageServer/query",
     {"geometry": '{"xmin":-1e308,"ymin":-1e308,"xmax":1e308,"ymax":1e308}',
      "geometryType": "esriGeometryEnvelope"}),
])
def test_rest_parsers_bound_depth_and_magnitude(client, path, params):
    error = rest_error(client.get(path, query_string={**params, "f": "json"}))
    assert error["message"].startswith("Invalid or missing input parameters")


HUGE = "-1e308,-1e308,1e308,1e308"


@pytest.mark.parametrize("params", [
    {"SERVICE": "WMS", "VERSION": "1.3.0", "REQUEST": "GetMap", "LAYERS": "dem", "STYLES": "",
     "CRS": "EPSG:32633", "BBOX": HUGE, "WIDTH": "64", "HEIGHT": "64", "FORMAT": "image/png"},
    {"SERVICE": "WMS", "VERSION": "1.1.1", "REQUEST": "GetFeatureInfo", "LAYERS": "dem", "QUERY_LAYERS": "dem",
     "STYLES": "", "SRS": "EPSG:32633", "BBOX": HUGE, "WIDTH": "64", "HEIGHT": "64", "X": "1", "Y": "1"},
    {"SERVICE": "WCS", "VERSION": "1.0.0", "REQUEST": "GetCoverage", "COVERAGE": "dem", "CRS": "EPSG:32633",
     "BBOX": HUGE, "WIDTH": "64", "HEIGHT": "64", "FORMAT": "GeoTIFF"},
    {"SERVICE": "WCS", "VERSION": "1.0.0", "REQUEST": "GetCoverage", "COVERAGE": "dem", "CRS": "EPSG:32633",
     "BBOX": DEM_BOX, "RESX": "1e-308", "RESY": "1e-308", "FORMAT": "GeoTIFF"},
    {"SERVICE": "WCS", "VERSION": "1.1.1", "REQUEST": "GetCoverage", "IDENTIFIER": "dem",
     "BOUNDINGBOX": HUGE + ",urn:ogc:def:crs:EPSG::32633", "FORMAT": "image/tiff"},
    {"SERVICE": "WCS", "VERSION": "2.0.1", "REQUEST": "GetCoverage", "COVERAGEID": "dem",
     "SUBSET": "E(-1e308,1e308)"},
])
def test_ogc_parsers_bound_magnitude(client, params):
    path = "/ogc/wms" if params["SERVICE"] == "WMS" else "/ogc/wcs"
    text = ogc_error_text(client.get(path, query_string=params))
    assert "1e+15" in text or "coarser resolution" in text, text


# ---- the new keys are in the strict validator -----------------------------------------------------

def test_the_staying_up_keys_are_validated(tmp_path):
    import yaml

    from ogc_gateway.config import config_problems, load_config
    (tmp_path / "d").mkdir()
    import numpy as np
    import rasterio
    from affine import Affine
    with rasterio.open(tmp_path / "d" / "a.tif", "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8",
                       crs="EPSG:32633", transform=Affine(10, 0, 500000, 0, -10, 5000000)) as dst:
        dst.write(np.ones((1, 4, 4), dtype="uint8"))
    good = {"server": {"max_request_bytes": 2048, "tile_cache_max_bytes": 2**21, "output_max_bytes": 2**22,
                       "heavy_request_pixels": 1000, "max_heavy_per_worker": 2, "max_heavy_per_host": 3,
                       "max_output_bytes": 10**6, "max_output_bands": 8, "max_request_seconds": 5},
            "services": {"s": {"sources": "d/*.tif", "max_output_bands": 4, "max_request_seconds": 9}}}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(good))
    config = load_config(path)
    assert config.server.max_request_bytes == 2048 and config.server.max_heavy_per_host == 3
    assert config.server.limits.max_output_bytes == 10**6
    assert config.services["s"].limits.max_output_bands == 4 and config.services["s"].limits.max_request_seconds == 9
    bad = {"server": {"max_request_bytes": 10, "max_output_bands": 0, "tile_cache_max_bytes": "big",
                      "max_heavy_per_wroker": 1},
           "services": {"s": {"sources": "d/*.tif", "max_request_bytes": 5000}}}
    problems = config_problems(bad, path)
    text = "\n".join(problems)
    for key in ("server.max_request_bytes", "server.max_output_bands", "server.tile_cache_max_bytes",
                "max_heavy_per_wroker", "services.s.max_request_bytes"):
        assert key in text, text
