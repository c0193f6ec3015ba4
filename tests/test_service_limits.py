"""Request limits as every face reads them (issue 20, "the faces check different limits"): `server:`
sets them, a service's own keys override them, and REST, WMS, WCS 1.0, 1.1, 2.0 and WMTS all answer
or refuse by the service's resolved limits, never by the server's.

`wide` raises the image size limit above the server's (400 > 100), `narrow` lowers it (50 < 100): a
190 x 190 request of `wide` must come back with the DEM's true values, a 60 x 60 one of `narrow` must
be refused in the face's own exception format, on every face, through the clients people use.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import requests
from lxml import etree
from PIL import Image
from pyproj import Transformer
from rasterio.io import MemoryFile

from conftest import serving
from ogc_gateway.app import create_app
from ogc_gateway.config import load_config
from synth import DEM_NODATA, dem_value

DEM_BOX = (500000.0, 5000100.0, 501900.0, 5002000.0)
HOLE = (500100.0, 5001800.0, 500200.0, 5001900.0)
BIG, SMALL = 190, 60                 # above the server's 100 and within wide's 400; above narrow's 50
UTM = "EPSG:32633"

CONFIG = """
server:
  cache_dir: {cache}
  max_image_width: 100
  max_image_height: 100
services:
  wide:
    sources: {dem}/*.tif
    default_resampling: nearest
    max_image_width: 400
    max_image_height: 400
  narrow:
    sources: {dem}/*.tif
    default_resampling: nearest
    max_image_width: 50
    max_image_height: 50
"""


@pytest.fixture(scope="module")
def live(data_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("limits")
    path = folder / "gateway.yaml"
    path.write_text(CONFIG.format(cache=folder / "cache", dem=data_dir / "dem"))
    config = load_config(path)
    assert config.server.limits.max_image_width == 100
    with serving(create_app(config)) as url:
        yield url


@pytest.fixture()
def http(monkeypatch):
    """Clients on the local socket: no proxy."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with requests.Session() as session:
        session.trust_env = False
        yield session


def dem_truth(size: int = BIG) -> np.ndarray:
    """The DEM at the centres of a `size` x `size` grid over its extent (10 m cells for 190)."""
    x0, y0, x1, y1 = DEM_BOX
    xs = x0 + (np.arange(size) + 0.5) * (x1 - x0) / size
    ys = y1 - (np.arange(size) + 0.5) * (y1 - y0) / size
    xs, ys = np.meshgrid(xs, ys)
    hole = (xs > HOLE[0]) & (xs < HOLE[2]) & (ys > HOLE[1]) & (ys < HOLE[3])
    return np.where(hole, np.float32(DEM_NODATA), dem_value(xs, ys))


def tiff_values(body: bytes) -> np.ndarray:
    with MemoryFile(body) as mem, mem.open() as ds:
        return ds.read(1)


def exception_text(resp: requests.Response) -> str:
    """The text of an OGC exception document (WMS, WCS 1.0, OWS 1.1 or 2.0): never a 5xx, never an image."""
    assert resp.status_code < 500, resp.content[:300]
    assert "xml" in resp.headers["Content-Type"], resp.headers["Content-Type"]
    root = etree.fromstring(resp.content)
    assert "Exception" in root.tag, resp.content[:300]
    return " ".join(t.strip() for t in root.itertext() if t.strip())


# --- REST -------------------------------------------------------------------------------------------

def test_rest_export_image_reads_the_service_limits(live, http):
    def export(service, size):
        return http.get(f"{live}/arcgis/rest/services/{service}/ImageServer/exportImage",
                        params={"bbox": ",".join(map(str, DEM_BOX)), "bboxSR": 32633, "size": f"{size},{size}",
                                "format": "tiff", "f": "image"})

    wide = export("wide", BIG)
    assert wide.headers["Content-Type"] == "image/tiff", wide.content[:300]
    assert np.array_equal(tiff_values(wide.content), dem_truth())
    info = http.get(f"{live}/arcgis/rest/services/wide/ImageServer", params={"f": "json"}).json()
    assert (info["maxImageWidth"], info["maxImageHeight"]) == (400, 400)
    error = export("narrow", SMALL).json()["error"]
    assert error["code"] == 400 and "50x50" in error["message"] + " ".join(error["details"]), error


# --- WMS --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["1.1.1", "1.3.0"])
def test_wms_getmap_reads_the_service_limits(live, http, version):
    from owslib.util import ServiceException
    from owslib.wms import WebMapService

    wms = WebMapService(f"{live}/ogc/wms", version=version)
    answer = wms.getmap(layers=["wide"], styles=[""], srs=UTM, bbox=DEM_BOX, size=(BIG, BIG), format="image/tiff")
    assert np.array_equal(tiff_values(answer.read()), dem_truth())
    with pytest.raises(ServiceException, match="exceeds the maximum of 50x50"):
        wms.getmap(layers=["narrow"], styles=[""], srs=UTM, bbox=DEM_BOX, size=(SMALL, SMALL), format="image/png")
    # two layers: the stricter service's limits hold for the whole map
    with pytest.raises(ServiceException, match="exceeds the maximum of 50x50"):
        wms.getmap(layers=["wide", "narrow"], styles=["", ""], srs=UTM, bbox=DEM_BOX, size=(SMALL, SMALL),
                   format="image/png")


def test_wms_capabilities_announce_the_service_limits(live, http):
    def max_size(path):
        resp = http.get(f"{live}{path}", params={"SERVICE": "WMS", "REQUEST": "GetCapabilities",
                                                 "VERSION": "1.3.0"})
        service = etree.fromstring(resp.content).find("{http://www.opengis.net/wms}Service")
        return (int(service.findtext("{http://www.opengis.net/wms}MaxWidth")),
                int(service.findtext("{http://www.opengis.net/wms}MaxHeight")))

    assert max_size("/arcgis/services/wide/ImageServer/WMSServer") == (400, 400)
    assert max_size("/arcgis/services/narrow/ImageServer/WMSServer") == (50, 50)
    assert max_size("/ogc/wms") == (50, 50)          # what every layer of the combined WMS accepts


def test_wms_inimage_exception_is_drawn_within_the_layers_limits(live, http):
    """EXCEPTIONS=INIMAGE draws the message in an image of the asked size only when the layers asked
    for allow that size; otherwise the XML report says why."""
    query = {"SERVICE": "WMS", "VERSION": "1.3.0", "REQUEST": "GetMap", "STYLES": "", "CRS": UTM,
             "BBOX": ",".join(map(str, DEM_BOX)), "WIDTH": BIG, "HEIGHT": BIG, "FORMAT": "image/png",
             "EXCEPTIONS": "INIMAGE", "TIME": "not-a-time"}
    drawn = http.get(f"{live}/ogc/wms", params={**query, "LAYERS": "wide"})
    assert drawn.headers["Content-Type"] == "image/png", drawn.content[:300]
    assert Image.open(io.BytesIO(drawn.content)).size == (BIG, BIG)
    report = http.get(f"{live}/ogc/wms", params={**query, "LAYERS": "narrow"})
    assert "exceeds the maximum of 50x50" in exception_text(report)


# --- WCS 1.0, 1.1, 2.0 ------------------------------------------------------------------------------

def test_wcs10_getcoverage_reads_the_service_limits(live, http):
    from owslib.util import ServiceException
    from owslib.wcs import WebCoverageService

    wcs = WebCoverageService(f"{live}/ogc/wcs", version="1.0.0")
    answer = wcs.getCoverage(identifier="wide", bbox=DEM_BOX, crs=UTM, format="GeoTIFF", width=BIG, height=BIG)
    assert np.array_equal(tiff_values(answer.read()), dem_truth())
    with pytest.raises(ServiceException, match="the maximum is 50x50"):
        wcs.getCoverage(identifier="narrow", bbox=DEM_BOX, crs=UTM, format="GeoTIFF", width=SMALL, height=SMALL)


def test_wcs11_getcoverage_reads_the_service_limits(live, http):
    def coverage(identifier, offset):
        return http.get(f"{live}/ogc/wcs", params={
            "SERVICE": "WCS", "VERSION": "1.1.1", "REQUEST": "GetCoverage", "IDENTIFIER": identifier,
            "FORMAT": "image/tiff", "BOUNDINGBOX": "500005,5000105,501895,5001995,urn:ogc:def:crs:EPSG::32633",
            "GRIDBASECRS": "urn:ogc:def:crs:EPSG::32633", "GRIDORIGIN": "500005,5001995",
            "GRIDOFFSETS": f"{offset},-{offset}"})

    wide = coverage("wide", 10)                                # 190 x 190 native cells
    assert wide.status_code == 200 and wide.headers["Content-Type"].startswith("multipart/"), wide.content[:300]
    tiff = wide.content[wide.content.index(b"II*\x00"):]      # the GeoTIFF part (little-endian TIFF)
    assert np.array_equal(tiff_values(tiff), dem_truth())
    text = exception_text(coverage("narrow", 1900 / SMALL))
    assert "50x50" in text or "50 x 50" in text, text


def test_wcs20_getcoverage_reads_the_service_limits(live, http):
    def coverage(identifier, size):
        return http.get(f"{live}/ogc/wcs", params={
            "SERVICE": "WCS", "VERSION": "2.0.1", "REQUEST": "GetCoverage", "COVERAGEID": identifier,
            "SCALESIZE": f"i({size}),j({size})"})

    wide = coverage("wide", BIG)
    assert wide.headers["Content-Type"] == "image/tiff", wide.content[:300]
    assert np.array_equal(tiff_values(wide.content), dem_truth())
    assert "sends at most 50x50" in exception_text(coverage("narrow", SMALL))


# --- WMTS -------------------------------------------------------------------------------------------

def test_wmts_tiles_read_the_service_limits(live, http):
    """A 256 x 256 tile is above the server's 100 x 100 and within wide's 400 x 400, above narrow's 50."""
    lon, lat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(500950.0, 5001050.0)
    z = 14
    col = int((lon + 180) / 360 * 2 ** z)
    row = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2 ** z)

    def tile(layer):
        return http.get(f"{live}/ogc/wmts", params={
            "SERVICE": "WMTS", "REQUEST": "GetTile", "VERSION": "1.0.0", "LAYER": layer, "STYLE": "default",
            "FORMAT": "image/png", "TILEMATRIXSET": "WebMercatorQuad", "TILEMATRIX": z, "TILEROW": row,
            "TILECOL": col})

    wide = tile("wide")
    assert wide.headers["Content-Type"] == "image/png", wide.content[:300]
    picture = np.asarray(Image.open(io.BytesIO(wide.content)).convert("RGBA"))
    assert picture.shape == (256, 256, 4) and (picture[..., 3] == 255).sum() > 100 * 100   # the DEM is drawn
    assert "50x50" in exception_text(tile("narrow"))
