"""Real clients against a secured server on a real socket: OWSLib with username=/password= (and an API
key as the password), GDAL through rasterio with GDAL_HTTP_AUTH=BASIC and GDAL_HTTP_USERPWD, and both
following capabilities fetched with `token=`. Values against the analytic truth of tests/synth.py."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import rasterio
import requests
from owslib.util import ServiceException
from PIL import Image
from rasterio.errors import RasterioIOError
from rasterio.io import MemoryFile

from secure import PASSWORDS
from synth import mosaic_value, ts_value
from test_security_access import api_keys, generate, issued, no_proxy_session, secure_app, secure_setup, secure_url  # noqa: F401

pytestmark = pytest.mark.slow                    # OWSLib and GDAL against a server on a real socket

TS_LATS = 90 - (np.arange(180) + 0.5)
WMS_PATH = "/arcgis/services/{}/ImageServer/WMSServer"
WCS_PATH = "/arcgis/services/{}/ImageServer/WCSServer"
WMTS_PATH = "/arcgis/rest/services/{}/ImageServer/WMTS"


def in_thread(fn):
    """GDAL keeps some failure state per thread: run a read that may fail in a fresh one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


# --- OWSLib ------------------------------------------------------------------------------------------

def test_owslib_wms_signs_in_with_basic_and_sees_only_its_layers(secure_url, local_clients):
    from owslib.wms import WebMapService

    with pytest.raises(ServiceException):
        WebMapService(secure_url + WMS_PATH.format("mosaic"), version="1.3.0")
    with pytest.raises(ServiceException):
        WebMapService(secure_url + WMS_PATH.format("mosaic"), version="1.3.0", username="alice", password="wrong pw")
    with pytest.raises(ServiceException):              # bob is signed in but lacks the role: 403
        WebMapService(secure_url + WMS_PATH.format("mosaic"), version="1.3.0", username="bob",
                      password=PASSWORDS["bob"])
    wms = WebMapService(secure_url + WMS_PATH.format("mosaic"), version="1.3.0", username="alice",
                        password=PASSWORDS["alice"])
    assert list(wms.contents) == ["mosaic"]
    png = wms.getmap(layers=["mosaic"], styles=[""], srs="EPSG:32633", bbox=(500000, 5001800, 500400, 5002000),
                     size=(20, 10), format="image/png", time="2024-01-15T10:30:00Z").read()
    assert Image.open(io.BytesIO(png)).size == (20, 10)
    combined = WebMapService(secure_url + "/ogc/wms", version="1.3.0", username="bob", password=PASSWORDS["bob"])
    assert set(combined.contents) == {"dem", "ts"}
    anonymous = WebMapService(secure_url + "/ogc/wms", version="1.1.1")
    assert set(anonymous.contents) == {"dem"}


def test_owslib_wcs_reads_restricted_values_with_an_api_key_as_password(secure_url, api_keys, local_clients):
    from owslib.util import Authentication
    from owslib.wcs import WebCoverageService

    # OWSLib's WCS takes its user name and password as an Authentication
    wcs = WebCoverageService(secure_url + WCS_PATH.format("mosaic") + "?", version="2.0.1",
                             auth=Authentication(username="script", password=api_keys["k-analyst"]))
    assert list(wcs.contents) == ["mosaic"]
    resp = wcs.getCoverage(identifier="mosaic", format="image/tiff",
                           subsets=[("E", 500000, 500400), ("N", 5001800, 5002000),
                                    ("time", "2024-01-15T10:30:00Z")])
    with MemoryFile(resp.read()) as mem, mem.open() as ds:
        values = ds.read()
    assert [set(np.unique(values[b])) for b in range(4)] == [{mosaic_value(1, b)} for b in range(4)]
    with pytest.raises(ServiceException):
        WebCoverageService(secure_url + WCS_PATH.format("mosaic") + "?", version="2.0.1",
                           auth=Authentication(username="script", password=api_keys["k-viewer"]))


def test_owslib_wmts_gets_tiles_with_basic(secure_url, local_clients):
    from owslib.wmts import WebMapTileService

    wmts = WebMapTileService(secure_url + WMTS_PATH.format("ts") + "/1.0.0/WMTSCapabilities.xml",
                             username="bob", password=PASSWORDS["bob"])
    assert list(wmts.contents) == ["ts"]
    tile = wmts.gettile(layer="ts", tilematrixset="WorldCRS84Quad", tilematrix="0", row=0, column=0,
                        format="image/png", style="default").read()
    assert Image.open(io.BytesIO(tile)).size == (256, 256)
    with pytest.raises(ServiceException):
        WebMapTileService(secure_url + WMTS_PATH.format("ts") + "/1.0.0/WMTSCapabilities.xml")


def test_owslib_follows_capabilities_fetched_with_a_token(secure_url, issued, local_clients):
    """No username, no header: only the token in the capabilities URL, which the document's own
    GetMap URL carries on."""
    from owslib.wms import WebMapService

    wms = WebMapService(f"{secure_url}{WMS_PATH.format('mosaic')}?token={issued['alice']}", version="1.1.1")
    png = wms.getmap(layers=["mosaic"], styles=[""], srs="EPSG:32633", bbox=(500000, 5001800, 500400, 5002000),
                     size=(20, 10), format="image/png").read()
    assert Image.open(io.BytesIO(png)).size == (20, 10)


# --- GDAL -------------------------------------------------------------------------------------------

def test_gdal_wcs_reads_a_restricted_coverage_with_basic_auth(secure_url, local_clients):
    url = f"WCS:{secure_url}{WCS_PATH.format('ts')}?version=1.0.0&coverage=ts"
    with rasterio.Env(GDAL_HTTP_AUTH="BASIC", GDAL_HTTP_USERPWD=f"bob:{PASSWORDS['bob']}"):
        with rasterio.open(url, CACHE=str(local_clients / "basic")) as ds:
            assert (ds.width, ds.height, ds.count) == (360, 180, 1)
            data = ds.read(1)
    # the latest month (December) at every pixel-centre latitude, whatever the longitude
    assert np.array_equal(data, np.repeat(ts_value(12, TS_LATS)[:, None], 360, axis=1))


@pytest.mark.parametrize("userpwd", [None, "bob:wrong password", "alice:"])
def test_gdal_wcs_without_good_credentials_gets_no_pixels(secure_url, local_clients, userpwd):
    def read():
        options = {"GDAL_HTTP_AUTH": "BASIC", "GDAL_HTTP_USERPWD": userpwd} if userpwd else {}
        with rasterio.Env(**options), rasterio.open(f"WCS:{secure_url}{WCS_PATH.format('ts')}?version=1.0.0"
                                                    "&coverage=ts", CACHE=str(local_clients / "none")) as ds:
            ds.read(1)
    with pytest.raises(RasterioIOError):
        in_thread(read)


def test_gdal_wms_reads_the_combined_wms_with_basic_auth(secure_url, local_clients):
    with rasterio.Env(GDAL_HTTP_AUTH="BASIC", GDAL_HTTP_USERPWD=f"alice:{PASSWORDS['alice']}"):
        with rasterio.open(f"WMS:{secure_url}/ogc/wms?SERVICE=WMS&REQUEST=GetCapabilities") as ds:
            names = {s.split("LAYERS=")[1].split("&")[0] for s in ds.subdatasets}
    assert names == {"dem", "mosaic", "ts"}
    with rasterio.open(f"WMS:{secure_url}/ogc/wms?SERVICE=WMS&REQUEST=GetCapabilities") as ds:
        names = {s.split("LAYERS=")[1].split("&")[0] for s in ds.subdatasets}
    assert names == {"dem"}


def test_gdal_wmts_follows_tile_templates_that_carry_the_token(secure_url, issued, local_clients,
                                                              no_proxy_session):
    caps = f"{secure_url}{WMTS_PATH.format('ts')}/1.0.0/WMTSCapabilities.xml?token={issued['bob']}"
    with rasterio.open(f"WMTS:{caps},layer=ts,tilematrixset=WorldCRS84Quad", TILEMATRIX="0") as ds:
        assert (ds.width, ds.height) == (512, 256)
        data = ds.read(window=rasterio.windows.Window(0, 0, 256, 256))
    tile = no_proxy_session.get(f"{secure_url}{WMTS_PATH.format('ts')}", params=dict(
        SERVICE="WMTS", REQUEST="GetTile", VERSION="1.0.0", LAYER="ts", STYLE="default", FORMAT="image/png",
        TILEMATRIXSET="WorldCRS84Quad", TILEMATRIX="0", TILEROW="0", TILECOL="0"),
        auth=("bob", PASSWORDS["bob"]))
    assert tile.status_code == 200
    expected = np.moveaxis(np.asarray(Image.open(io.BytesIO(tile.content)).convert("RGBA")), -1, 0)
    assert np.array_equal(data[:expected.shape[0]], expected[:data.shape[0]])


# --- the REST token flow with requests ----------------------------------------------------------------

def test_rest_token_flow_then_an_export_of_restricted_values(secure_url, no_proxy_session):
    http = no_proxy_session
    token = generate(http, secure_url, "alice", expiration="5")
    resp = http.post(f"{secure_url}/arcgis/rest/services/mosaic/ImageServer/exportImage",
                     data=dict(bbox="500000,5001800,500400,5002000", bboxSR="32633", size="20,10", format="tiff",
                               f="image", token=token, time="1705314600000"))
    assert resp.headers["Content-Type"] == "image/tiff", resp.text[:300]
    with MemoryFile(resp.content) as mem, mem.open() as ds:
        values = ds.read()
    assert [set(np.unique(values[b])) for b in range(4)] == [{mosaic_value(1, b)} for b in range(4)]
    refused = requests.Session()
    refused.trust_env = False
    assert refused.get(f"{secure_url}/arcgis/rest/services/mosaic/ImageServer/exportImage",
                       params=dict(bbox="500000,5001800,500400,5002000", f="image")).json()["error"]["code"] == 499
