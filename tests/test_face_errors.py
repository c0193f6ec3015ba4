"""Engine errors in each face's own words (issue 20): the engine names its field ("size", "bands",
"mosaic" ...) and carries an OWS code; REST, WMS, WMTS and each WCS version report the parameter of
their own protocol, with that code.

The refusal used throughout is the service's max_output_bytes: the face's own checks let the request
through (it is small in pixels) and the engine refuses it, so every face reports the same engine error.
The byte count in each message is checked against the source files' data type, read with rasterio.
"""

from __future__ import annotations

import glob
from dataclasses import replace

import numpy as np
import pytest
import rasterio
import requests
from lxml import etree
from owslib.util import ServiceException
from owslib.wcs import WebCoverageService
from owslib.wms import WebMapService

from conftest import make_config, serving
from ogc_gateway.app import create_app
from ogc_gateway.engine.errors import FIELDS, InvalidParameter, NotFound, TooLarge

LIMIT = 20_000                       # bytes: far below any of the answers asked for below
BOX = (500000, 5000100, 501900, 5002000)       # inside the DEM (EPSG:32633)
PARSER = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
slow = pytest.mark.slow              # clients on a real socket


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """The clients talk to the local socket directly, whatever proxy the environment names."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def tight(data_dir, tmp_path_factory):
    """The analytic services with max_output_bytes = LIMIT, on a real socket."""
    config = make_config(data_dir, tmp_path_factory.mktemp("cache"))
    limits = replace(config.server.limits, max_output_bytes=LIMIT)
    config = replace(config, services={k: replace(v, limits=limits) for k, v in config.services.items()})
    with serving(create_app(config)) as url:
        yield url


@pytest.fixture(scope="module")
def dem_bytes(data_dir) -> int:
    """Bytes per value of the DEM, from its files."""
    dtypes = set()
    for path in glob.glob(str(data_dir / "dem" / "*.tif")):
        with rasterio.open(path) as ds:
            dtypes.add(ds.dtypes[0])
    (dtype,) = dtypes
    return np.dtype(dtype).itemsize


def exception(response: requests.Response, ns: str) -> tuple[str, str | None, str]:
    """(code, locator, text) of the one exception of an OGC exception report."""
    root = etree.fromstring(response.content, PARSER)
    if ns == "ogc":
        (exc,) = root.iter("{http://www.opengis.net/ogc}ServiceException", "ServiceException")
        return exc.get("code"), exc.get("locator"), exc.text.strip()
    (exc,) = root.iter(f"{{http://www.opengis.net/ows/{ns}}}Exception")
    text = exc.find(f"{{http://www.opengis.net/ows/{ns}}}ExceptionText").text.strip()
    return exc.get("exceptionCode"), exc.get("locator"), text


def answer_bytes(width: int, height: int, per_value: int) -> str:
    return f"{width * height * per_value:,} bytes"


@slow
def test_rest_names_size(tight, dem_bytes):
    r = requests.get(f"{tight}/arcgis/rest/services/dem/ImageServer/exportImage", timeout=60, params={
        "bbox": ",".join(map(str, BOX)), "size": "300,300", "format": "tiff", "f": "json"})
    error = r.json()["error"]
    assert error["code"] == 400
    assert error["message"].startswith("Invalid or missing input parameters: size: ")
    assert answer_bytes(300, 300, dem_bytes) in error["message"] and "max_output_bytes" in error["message"]


@slow
@pytest.mark.parametrize("version, crs_key, locator", [("1.3.0", "CRS", "WIDTH/HEIGHT"), ("1.1.1", "SRS", None)])
def test_wms_names_width_height(tight, dem_bytes, version, crs_key, locator):
    r = requests.get(f"{tight}/ogc/wms", timeout=60, params={
        "SERVICE": "WMS", "VERSION": version, "REQUEST": "GetMap", "LAYERS": "dem", "STYLES": "",
        crs_key: "EPSG:32633", "BBOX": ",".join(map(str, BOX)), "WIDTH": "300", "HEIGHT": "300",
        "FORMAT": "image/png"})
    code, where, text = exception(r, "ogc")
    assert code == "InvalidParameterValue" and where == locator
    assert text.startswith("WIDTH/HEIGHT: ") and answer_bytes(300, 300, dem_bytes) in text
    assert "size:" not in text


@slow
def test_owslib_wms_client_sees_the_wms_parameter(tight):
    wms = WebMapService(f"{tight}/ogc/wms", version="1.3.0", timeout=60)
    with pytest.raises(ServiceException, match="WIDTH/HEIGHT: the answer would hold"):
        wms.getmap(layers=["dem"], styles=[""], srs="EPSG:32633", bbox=BOX, size=(300, 300), format="image/png")


@slow
def test_wmts_names_the_tile_matrix(tight):
    r = requests.get(f"{tight}/ogc/wmts", timeout=60, params={
        "SERVICE": "WMTS", "VERSION": "1.0.0", "REQUEST": "GetTile", "LAYER": "dem", "STYLE": "default",
        "TILEMATRIXSET": "WebMercatorQuad", "TILEMATRIX": "0", "TILEROW": "0", "TILECOL": "0",
        "FORMAT": "image/png"})
    assert r.status_code == 400
    code, where, text = exception(r, "1.1")
    assert (code, where) == ("InvalidParameterValue", "tilematrix") and text.startswith("tilematrix: ")


@slow
def test_wcs10_names_width_height(tight, dem_bytes):
    r = requests.get(f"{tight}/ogc/wcs", timeout=60, params={
        "SERVICE": "WCS", "VERSION": "1.0.0", "REQUEST": "GetCoverage", "COVERAGE": "dem", "CRS": "EPSG:32633",
        "BBOX": ",".join(map(str, BOX)), "WIDTH": "300", "HEIGHT": "300", "FORMAT": "GeoTIFF"})
    code, where, text = exception(r, "ogc")
    assert (code, where) == ("InvalidParameterValue", "WIDTH/HEIGHT")
    assert text.startswith("WIDTH/HEIGHT: ") and answer_bytes(300, 300, dem_bytes) in text


@slow
def test_wcs11_names_the_bounding_box(tight):
    r = requests.get(f"{tight}/ogc/wcs", timeout=60, params={
        "SERVICE": "WCS", "VERSION": "1.1.1", "REQUEST": "GetCoverage", "IDENTIFIER": "dem", "FORMAT": "image/tiff",
        "BOUNDINGBOX": ",".join(map(str, BOX)) + ",urn:ogc:def:crs:EPSG::32633"})
    assert r.status_code == 400
    code, where, text = exception(r, "1.1")
    assert (code, where) == ("InvalidParameterValue", "boundingbox") and text.startswith("boundingbox: ")


@slow
def test_wcs20_names_the_subset(tight, dem_bytes):
    r = requests.get(f"{tight}/ogc/wcs", timeout=60, params={
        "SERVICE": "WCS", "VERSION": "2.0.1", "REQUEST": "GetCoverage", "COVERAGEID": "dem",
        "SCALESIZE": "i(300),j(300)"})
    assert r.status_code == 400
    code, where, text = exception(r, "2.0")
    assert (code, where) == ("InvalidParameterValue", "subset")
    assert text.startswith("subset: ") and answer_bytes(300, 300, dem_bytes) in text


@slow
def test_owslib_wcs_client_sees_the_wcs_parameter(tight):
    wcs = WebCoverageService(f"{tight}/ogc/wcs", version="1.0.0", timeout=60)
    with pytest.raises(ServiceException, match="WIDTH/HEIGHT: the answer would hold"):
        wcs.getCoverage(identifier="dem", bbox=BOX, crs="EPSG:32633", width=300, height=300, format="GeoTIFF")


# --- the error values themselves ------------------------------------------------------------------

def test_renamed_keeps_the_class_the_code_and_the_reason():
    err = TooLarge("size", "too many pixels")
    face = err.renamed({"size": "WIDTH/HEIGHT"})
    assert type(face) is TooLarge and face.ows_code == "InvalidParameterValue" and face.http_status == 400
    assert (face.name, face.why, face.locator) == ("WIDTH/HEIGHT", "too many pixels", "WIDTH/HEIGHT")
    assert face.message == "Invalid or missing input parameters: WIDTH/HEIGHT: too many pixels"
    assert (err.name, err.locator) == ("size", "size")             # the engine's error is unchanged
    assert err.renamed({"bands": "BAND"}) is err                   # a field the face does not rename


def test_an_ows_code_given_is_kept_through_renaming():
    err = InvalidParameter("time", "no such date", ows_code="InvalidDimensionValue")
    assert err.renamed({"time": "TIME"}).ows_code == "InvalidDimensionValue"
    assert NotFound("Tile out of range.", ows_code="TileOutOfRange").ows_code == "TileOutOfRange"


def test_every_face_table_maps_engine_fields_only():
    from ogc_gateway.ogc import errors as ogc_errors
    from ogc_gateway.rest.responses import PARAMETERS

    for table in (PARAMETERS, ogc_errors.WMS, ogc_errors.WMS_111, ogc_errors.WMTS, *ogc_errors.WCS.values()):
        assert set(table) <= FIELDS, set(table) - FIELDS
