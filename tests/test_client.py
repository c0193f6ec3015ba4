"""ogc_gateway.client against a served fixture with known values: reads larger than one exportImage
block equal the truth computed by rasterio from the source files."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest
from rasterio.enums import Resampling
from rasterio.merge import merge

from client_fixtures import client_config, warped_truth
from conftest import serving
from ogc_gateway.app import create_app
from ogc_gateway.client import ImageServiceClient, ImageServiceError
from synth import DEM_NODATA, dem_value

logging.getLogger("werkzeug").setLevel(logging.ERROR)


@pytest.fixture(scope="module")
def small_url(config, tmp_path_factory):
    cfg = client_config(config)
    cfg = replace(cfg, server=replace(cfg.server, cache_dir=tmp_path_factory.mktemp("client-cache")))
    with serving(create_app(cfg)) as url:
        yield url


def service(url, name, **kw):
    return ImageServiceClient(f"{url}/arcgis/rest/services/{name}/ImageServer", **kw)


def dem_truth(data_dir, bounds, res=10.0):
    """The DEM tiles merged by rasterio (first valid tile wins; overlaps hold the same plane)."""
    paths = sorted((data_dir / "dem").glob("*.tif"))
    truth, transform = merge(paths, bounds=bounds, res=res, nodata=DEM_NODATA, resampling=Resampling.nearest)
    return truth, transform


def test_the_url_may_name_an_operation_and_info_is_the_root_json(small_url):
    client = ImageServiceClient(f"{small_url}/arcgis/rest/services/dem/ImageServer/exportImage?f=json")
    assert client.url.endswith("/arcgis/rest/services/dem/ImageServer")
    assert client.info["name"] == "dem" and client.info["pixelType"] == "F32"
    assert client.max_image_size == (64, 48)
    assert client.crs.to_epsg() == 32633
    with pytest.raises(ValueError, match="ImageServer"):
        ImageServiceClient(f"{small_url}/arcgis/rest/services")


def test_export_of_an_area_larger_than_one_block_equals_the_truth(small_url, data_dir):
    bounds = (500030.0, 5000170.0, 501870.0, 5001980.0)          # 184 x 181 cells: 3 x 4 blocks of 64 x 48
    data, profile = service(small_url, "dem", workers=3).export(extent=bounds)
    truth, transform = dem_truth(data_dir, bounds)
    assert data.shape == truth.shape == (1, 181, 184)
    assert profile["transform"] == transform and profile["crs"].to_epsg() == 32633
    assert profile["nodata"] == DEM_NODATA and profile["dtype"] == "float32"
    assert np.array_equal(data, truth)
    # and the truth is the analytic plane with its hole
    rows, cols = np.mgrid[0:181, 0:184]
    xs, ys = transform * (cols + 0.5, rows + 0.5)
    valid = data[0] != DEM_NODATA
    assert (~valid).sum() == 100
    assert np.array_equal(data[0][valid], dem_value(xs, ys)[valid])


def test_lerc_reads_equal_tiff_reads(small_url):
    client = service(small_url, "dem")
    tiff, p1 = client.export(extent=(500000, 5000100, 501900, 5002000))
    lerc, p2 = client.export(extent=(500000, 5000100, 501900, 5002000), format="lerc")
    assert np.array_equal(tiff, lerc) and p1["nodata"] == p2["nodata"] == DEM_NODATA


def test_cell_size_and_size_set_the_grid(small_url, data_dir):
    client = service(small_url, "dem")
    data, profile = client.export(extent=(500000, 5000100, 501900, 5002000), cell_size=20)
    assert data.shape == (1, 95, 95) and profile["transform"].a == 20
    truth, _ = dem_truth(data_dir, (500000, 5000100, 501900, 5002000), res=20.0)
    ok = (data != DEM_NODATA) & (truth != DEM_NODATA)
    assert ok.sum() > 8900
    # cell centres at 20 m fall on source pixel edges: nearest may pick either neighbour
    assert np.all(np.abs(data[ok] - truth[ok]) <= 0.5 * 10 + 0.25 * 10 + 1e-3)
    data, profile = client.export(extent=(500000, 5000100, 501900, 5002000), size=(190, 190))
    assert data.shape == (1, 190, 190) and profile["transform"].a == 10


def test_mosaic_bands_and_a_lock_raster(small_url, data_dir):
    client = service(small_url, "mosaic", workers=2)
    box = (500000.0, 5000400.0, 502000.0, 5002000.0)
    data, profile = client.export(extent=box, cell_size=20, band_ids=[3, 0],
                                  mosaic_rule={"mosaicMethod": "esriMosaicLockRaster", "lockRasterIds": [2]})
    truth, filled = warped_truth([data_dir / "mosaic" / "scene_2.tif"], profile["crs"], profile["transform"],
                                 profile["width"], profile["height"], band_indexes=[4, 1])
    assert data.shape == (2, 80, 100) and profile["dtype"] == "uint16"
    assert np.array_equal(data, truth)
    assert set(np.unique(data[0][filled])) == {2040} and set(np.unique(data[1][filled])) == {2010}


def test_identify_samples_and_query(small_url):
    client = service(small_url, "dem")
    x, y = 500555.0, 5001555.0
    assert float(client.identify((x, y))["value"]) == float(dem_value(x, y))
    samples = client.samples([(x, y), (x + 100, y)])
    assert [float(s["value"]) for s in samples] == [float(dem_value(x, y)), float(dem_value(x + 100, y))]
    mosaic = service(small_url, "mosaic")
    found = mosaic.query(where="sensor = 'S2A'", return_geometry=False)
    assert sorted(f["attributes"]["Name"] for f in found["features"]) == ["scene_1", "scene_3"]
    inside = mosaic.query(geometry=(500100, 5001700, 500200, 5001800), sr=32633, return_geometry=False)
    assert [f["attributes"]["Name"] for f in inside["features"]] == ["scene_1"]


def test_a_server_error_is_an_exception_with_the_servers_message(small_url):
    with pytest.raises(ImageServiceError) as err:
        _ = service(small_url, "nope").info
    assert err.value.code in (400, 404)
    client = service(small_url, "dem")
    with pytest.raises(ImageServiceError, match="mosaicRule"):
        client.export(extent=(500000, 5000100, 500100, 5000200), mosaic_rule={"mosaicMethod": "esriMosaicBogus"})


def test_transient_errors_are_retried(small_url):
    """A server that fails twice with 503 and then answers: the client's read succeeds."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import requests

    calls = []

    class Flaky(BaseHTTPRequestHandler):
        def do_GET(self):
            calls.append(self.path)
            if len(calls) <= 2:
                self.send_response(503)
                self.end_headers()
                return
            body = requests.get(small_url + self.path, timeout=30)
            self.send_response(200)
            self.send_header("Content-Type", body.headers["Content-Type"])
            self.send_header("Content-Length", str(len(body.content)))
            self.end_headers()
            self.wfile.write(body.content)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/arcgis/rest/services/dem/ImageServer"
        assert ImageServiceClient(url).info["name"] == "dem"
        assert len(calls) == 3
    finally:
        server.shutdown()
