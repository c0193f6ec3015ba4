"""WMS 1.1.1 and 1.3.0 (/ogc/wms and /arcgis/services/{name}/ImageServer/WMSServer) against the analytic
truth of tests/synth.py: capabilities (schema-valid, negotiated, axis order computed with pyproj here),
GetMap pictures (grey levels computed here from the fixture functions and the services' statistics),
GetFeatureInfo values, exceptions (schema-valid, codes, Content-Types), legends and template styles,
and the clients that read them: OWSLib and GDAL (through rasterio), on a real socket."""

from __future__ import annotations

import io
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pytest
import rasterio
from lxml import etree
from PIL import Image
from pyproj import Transformer
from rasterio.io import MemoryFile

import synth
from conftest import make_config
from ogc_gateway.app import create_app
from ogc_gateway.config import FunctionTemplate
from ogc_schemas import validate
from synth import DEM_NODATA, dem_value, geographic_bounds, mosaic_value, top_scene, ts_value

WMS = "/ogc/wms"
DEM_WMS = "/arcgis/services/dem/ImageServer/WMSServer"
WMS_NS = "{http://www.opengis.net/wms}"
OGC_NS = "{http://www.opengis.net/ogc}"
XLINK = "{http://www.w3.org/1999/xlink}href"

# The DEM's extent, its default stretch (the service statistics) and its hole (synth.py).
DEM_BOX = (500000.0, 5000100.0, 501900.0, 5002000.0)
DEM_MIN, DEM_MAX = 28.75, 1446.25
HOLE = (500100.0, 5001800.0, 500200.0, 5001900.0)
# The mosaic's stretch: per band, scene 1's value to scene 4's (the scenes are flat).
MOSAIC_MIN = [mosaic_value(1, b) for b in range(4)]
MOSAIC_MAX = [mosaic_value(4, b) for b in range(4)]
# The time series' stretch: January at the southernmost centre to December at the northernmost.
TS_MIN, TS_MAX = float(ts_value(1, -89.5)), float(ts_value(12, 89.5))
TS_MONTHS = [f"2024-{m:02d}-01T00:00:00Z" for m in range(1, 13)]

DEM_GETMAP = dict(SERVICE="WMS", REQUEST="GetMap", LAYERS="dem", STYLES="", FORMAT="image/png",
                  BBOX=",".join(str(v) for v in DEM_BOX), WIDTH="190", HEIGHT="190")


# --- truth ------------------------------------------------------------------------------------------

def stretch(values, lo, hi):
    """The default rendering of a non-8-bit value (engine/render.py, DESIGN.md), computed here."""
    scaled = (np.asarray(values, "f8") - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def centres(box, width, height):
    """Pixel-centre coordinates (xs, ys) of a WIDTH x HEIGHT map of `box` (BBOX = outer pixel edges)."""
    x0, y0, x1, y1 = box
    xs = x0 + (np.arange(width) + 0.5) * (x1 - x0) / width
    ys = y1 - (np.arange(height) + 0.5) * (y1 - y0) / height
    return np.meshgrid(xs, ys)


def dem_source(xs, ys, res=10.0):
    """For points in EPSG:32633: the DEM value of the source pixel holding each point (nearest
    resampling), whether that pixel is in the hole or outside the DEM, and whether the point lies so
    close to a source pixel edge (within 0.2 px) that either neighbour is a fair answer.

    `res` 20 is the tiles' overview (factor 2, averaged): on the plane, an average of 2 x 2 pixels is
    the plane at the overview pixel's centre; the hole and the tile seams are on its grid too."""
    fx, fy = (np.asarray(xs) - 500000.0) / res, (5002000.0 - np.asarray(ys)) / res
    col, row = np.floor(fx), np.floor(fy)
    cx, cy = 500000.0 + res * (col + 0.5), 5002000.0 - res * (row + 0.5)
    hole = (cx > HOLE[0]) & (cx < HOLE[2]) & (cy > HOLE[1]) & (cy < HOLE[3])
    outside = (cx < DEM_BOX[0]) | (cx > DEM_BOX[2]) | (cy < DEM_BOX[1]) | (cy > DEM_BOX[3])
    edge = np.minimum(fx - col, col + 1 - fx) < 0.2
    edge |= np.minimum(fy - row, row + 1 - fy) < 0.2
    return dem_value(cx, cy), hole | outside, edge


def dem_grey_truth(box=DEM_BOX, width=190, height=190):
    """(grey levels, nodata mask, ambiguous mask) of a DEM map of an EPSG:32633 box. Maps whose pixels
    are at least 2 source pixels on both axes are read from the overview, as ArcGIS reads them."""
    xs, ys = centres(box, width, height)
    x0, y0, x1, y1 = box
    res = 20.0 if min((x1 - x0) / width, (y1 - y0) / height) >= 20.0 else 10.0
    values, nodata, edge = dem_source(xs, ys, res)
    return stretch(values, DEM_MIN, DEM_MAX), nodata, edge


# --- helpers ----------------------------------------------------------------------------------------

def wms(client, path=WMS, **params):
    return client.get(path, query_string={k: v for k, v in params.items() if v is not None})


def image(resp, size=None, mode=None):
    assert resp.status_code == 200, resp.data[:500]
    assert resp.content_type.startswith("image/"), (resp.content_type, resp.data[:500])
    picture = Image.open(io.BytesIO(resp.data))
    picture.load()
    if size is not None:
        assert picture.size == size
    return np.asarray(picture.convert(mode) if mode else picture)


def exception(resp, version, code):
    """The exception report of `version` with `code` (None: any code), valid against its schema/DTD."""
    mime = "text/xml" if version == "1.3.0" else "application/vnd.ogc.se_xml"
    assert resp.content_type.split(";")[0] == mime, (resp.content_type, resp.data[:300])
    validate(resp.data)
    root = etree.fromstring(resp.data)
    assert root.get("version") == version
    ns = OGC_NS if version == "1.3.0" else ""
    assert root.tag == f"{ns}ServiceExceptionReport"
    found = root.findall(f"{ns}ServiceException")
    assert len(found) == 1
    if code is not None:
        assert found[0].get("code") == code, etree.tostring(found[0])
    assert (found[0].text or "").strip()
    return found[0]


def capabilities(client, path=WMS, **params):
    resp = wms(client, path, SERVICE="WMS", REQUEST="GetCapabilities", **params)
    assert resp.status_code == 200
    return resp, etree.fromstring(resp.data)


def named_layers(root):
    ns = WMS_NS if root.tag.startswith(WMS_NS) else ""
    return {layer.findtext(f"{ns}Name"): layer for layer in root.iter(f"{ns}Layer")
            if layer.find(f"{ns}Name") is not None}


def numbers_in(text):
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", text)]


@pytest.fixture()
def no_proxy(monkeypatch, tmp_path):
    """Clients on the local socket: no proxy, failures fast, GDAL's WMS cache (if any) private."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with rasterio.Env(GDAL_DEFAULT_WMS_CACHE_PATH=str(tmp_path / "wmscache"), GDAL_HTTP_TIMEOUT="60",
                      GDAL_HTTP_MAX_RETRY="0"):
        yield tmp_path


# --- GetCapabilities --------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [WMS, DEM_WMS, "/arcgis/services/mosaic/ImageServer/WMSServer",
                                  "/arcgis/services/ts/ImageServer/WMSServer"])
@pytest.mark.parametrize("version,mime", [("1.3.0", "text/xml"), ("1.1.1", "application/vnd.ogc.wms_xml")])
def test_capabilities_are_schema_valid_with_their_content_type(client, path, version, mime):
    resp, root = capabilities(client, path, VERSION=version)
    assert resp.content_type.split(";")[0] == mime
    validate(resp.data)
    assert root.get("version") == version
    names = set(named_layers(root))
    assert names == ({"dem", "mosaic", "ts"} if path == WMS else {path.split("/")[3]})


@pytest.mark.parametrize("params,expected", [
    ({}, "1.3.0"), ({"VERSION": "1.3.0"}, "1.3.0"), ({"VERSION": "1.1.1"}, "1.1.1"),
    ({"VERSION": "1.1.0"}, "1.1.1"), ({"VERSION": "1.2.0"}, "1.1.1"), ({"VERSION": "2.0.0"}, "1.3.0"),
    ({"VERSION": "100.0.0"}, "1.3.0"), ({"VERSION": "0.9"}, "1.1.1"), ({"VERSION": "0.0.0"}, "1.1.1"),
    ({"WMTVER": "1.1.1"}, "1.1.1"), ({"WMTVER": "1.0.0"}, "1.1.1"),
])
def test_version_negotiation(client, params, expected):
    resp, root = capabilities(client, **params)
    assert root.get("version") == expected
    assert resp.content_type.split(";")[0] == ("text/xml" if expected == "1.3.0" else "application/vnd.ogc.wms_xml")


def test_capabilities_alias_mixed_case_names_and_bogus_parameters(client):
    plain = wms(client, SERVICE="WMS", REQUEST="GetCapabilities", VERSION="1.3.0").data
    mixed = client.get(WMS, query_string={"SeRvIcE": "wms", "ReQuEsT": "GetCapabilities", "VeRsIoN": "1.3.0",
                                          "BOGUS": "x", "dpi": "96", "_olSalt": "0.5"})
    assert mixed.status_code == 200 and mixed.data == plain
    old = wms(client, REQUEST="capabilities", WMTVER="1.0.0", SERVICE="WMS")
    assert etree.fromstring(old.data).tag == "WMT_MS_Capabilities"
    assert old.content_type.split(";")[0] == "application/vnd.ogc.wms_xml"
    validate(old.data)


@pytest.mark.parametrize("version", ["1.3.0", "1.1.1"])
def test_update_sequence(client, version):
    _, root = capabilities(client, VERSION=version)
    current = int(root.get("updateSequence"))
    exception(wms(client, SERVICE="WMS", REQUEST="GetCapabilities", VERSION=version,
                  UPDATESEQUENCE=str(current)), version, "CurrentUpdateSequence")
    exception(wms(client, SERVICE="WMS", REQUEST="GetCapabilities", VERSION=version,
                  UPDATESEQUENCE=str(current + 1)), version, "InvalidUpdateSequence")
    for lower in (str(current - 1), "0", "not-a-number"):
        resp, again = capabilities(client, VERSION=version, UPDATESEQUENCE=lower)
        validate(resp.data)
        assert set(named_layers(again)) == {"dem", "mosaic", "ts"}


def test_bounding_boxes_in_axis_order_computed_with_pyproj(client):
    west, south, east, north = geographic_bounds(DEM_BOX)
    _, root = capabilities(client, VERSION="1.3.0")
    dem = named_layers(root)["dem"]
    boxes = {b.get("CRS"): tuple(float(b.get(k)) for k in ("minx", "miny", "maxx", "maxy"))
             for b in dem.findall(f"{WMS_NS}BoundingBox")}
    assert set(boxes) == {"EPSG:32633", "EPSG:4326", "EPSG:3857", "CRS:84"}
    assert boxes["EPSG:32633"] == pytest.approx(DEM_BOX)
    assert boxes["EPSG:4326"] == pytest.approx((south, west, north, east), abs=1e-7)   # lat first
    assert boxes["CRS:84"] == pytest.approx((west, south, east, north), abs=1e-7)
    geo = dem.find(f"{WMS_NS}EX_GeographicBoundingBox")
    assert [float(geo.findtext(f"{WMS_NS}{k}")) for k in
            ("westBoundLongitude", "eastBoundLongitude", "southBoundLatitude", "northBoundLatitude")] \
        == pytest.approx([west, east, south, north], abs=1e-7)
    mx0, my0 = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(west, south)
    mx1, my1 = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(east, north)
    assert boxes["EPSG:3857"] == pytest.approx((mx0, my0, mx1, my1), abs=0.5)

    _, old = capabilities(client, VERSION="1.1.1")
    dem = named_layers(old)["dem"]
    boxes = {b.get("SRS"): tuple(float(b.get(k)) for k in ("minx", "miny", "maxx", "maxy"))
             for b in dem.findall("BoundingBox")}
    assert boxes["EPSG:4326"] == pytest.approx((west, south, east, north), abs=1e-7)   # always lon/lat
    latlon = dem.find("LatLonBoundingBox")
    assert [float(latlon.get(k)) for k in ("minx", "miny", "maxx", "maxy")] == \
        pytest.approx([west, south, east, north], abs=1e-7)


def test_crs_lists(client):
    _, root = capabilities(client, VERSION="1.3.0")
    layers = named_layers(root)
    crs = {name: [e.text for e in layer.findall(f"{WMS_NS}CRS")] for name, layer in layers.items()}
    assert set(crs["dem"]) == {"EPSG:32633", "EPSG:4326", "EPSG:3857", "CRS:84"}
    assert set(crs["mosaic"]) == {"EPSG:32633", "EPSG:4326", "EPSG:3857", "CRS:84"}
    assert set(crs["ts"]) == {"EPSG:4326", "EPSG:3857", "CRS:84"}
    _, old = capabilities(client, VERSION="1.1.1")
    srs = {name: [e.text for e in layer.findall("SRS")] for name, layer in named_layers(old).items()}
    assert set(srs["dem"]) == {"EPSG:32633", "EPSG:4326", "EPSG:3857"}
    assert set(srs["ts"]) == {"EPSG:4326", "EPSG:3857"}


def test_time_dimension(client):
    _, root = capabilities(client, VERSION="1.3.0")
    layers = named_layers(root)
    dim = layers["ts"].find(f"{WMS_NS}Dimension")
    assert (dim.get("name"), dim.get("units"), dim.get("default")) == ("time", "ISO8601", "2024-12-01T00:00:00Z")
    assert dim.text.split(",") == TS_MONTHS
    dim = layers["mosaic"].find(f"{WMS_NS}Dimension")
    assert dim.get("default") == "2024-07-15T10:30:00Z"
    assert dim.text.split(",") == [f"{d}T10:30:00Z" for d in synth.MOSAIC_DATES.values()]
    assert layers["dem"].find(f"{WMS_NS}Dimension") is None

    _, old = capabilities(client, VERSION="1.1.1")
    ts = named_layers(old)["ts"]
    assert ts.find("Dimension").get("name") == "time" and ts.find("Dimension").get("units") == "ISO8601"
    extent = ts.find("Extent")
    assert extent.get("default") == "2024-12-01T00:00:00Z" and extent.text.split(",") == TS_MONTHS


@pytest.mark.parametrize("version", ["1.3.0", "1.1.1"])
@pytest.mark.parametrize("path", [WMS, DEM_WMS])
def test_online_resources_are_url_prefixes(client, path, version):
    _, root = capabilities(client, path, VERSION=version)
    hrefs = [e.get(XLINK) for e in root.iter("{*}OnlineResource", "OnlineResource")]
    endpoint = "http://localhost" + path + "?"
    service_href = root.find("{*}Service/{*}OnlineResource" if version == "1.3.0" else "Service/OnlineResource")
    assert service_href.get(XLINK) == endpoint
    dcp = [h for h in hrefs if "REQUEST=" not in h]
    assert dcp and all(h == endpoint for h in dcp)
    legends = [h for h in hrefs if "REQUEST=GetLegendGraphic" in h]
    assert legends and all(h.startswith(endpoint) for h in legends)


# --- OWSLib -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["1.1.1", "1.3.0"])
def test_owslib_reads_the_capabilities(live_url, no_proxy, version):
    from owslib.wms import WebMapService
    service = WebMapService(live_url + WMS, version=version)
    assert {"dem", "mosaic", "ts"} <= set(service.contents)
    dem = service["dem"]
    west, south, east, north = geographic_bounds(DEM_BOX)
    assert dem.boundingBoxWGS84 == pytest.approx((west, south, east, north), abs=1e-7)
    assert {"EPSG:32633", "EPSG:4326", "EPSG:3857"} <= set(dem.crsOptions)
    assert dem.queryable
    legend = dem.styles["default"]["legend"]
    assert legend.startswith(live_url + WMS + "?") and "REQUEST=GetLegendGraphic" in legend
    assert service["ts"].timepositions == TS_MONTHS
    assert "image/png" in service.getOperationByName("GetMap").formatOptions
    assert "application/json" in service.getOperationByName("GetFeatureInfo").formatOptions


@pytest.mark.parametrize("version", ["1.1.1", "1.3.0"])
def test_owslib_getmap_is_the_dem_grey_truth(live_url, no_proxy, version):
    from owslib.wms import WebMapService
    service = WebMapService(live_url + WMS, version=version)
    resp = service.getmap(layers=["dem"], styles=[""], srs="EPSG:32633", bbox=DEM_BOX, size=(190, 190),
                          format="image/png")
    picture = np.asarray(Image.open(io.BytesIO(resp.read())).convert("RGB"))
    grey, nodata, _ = dem_grey_truth()
    assert nodata.sum() == 100
    assert np.array_equal(picture[..., 0][~nodata], grey[~nodata])
    assert np.array_equal(picture[..., 0], picture[..., 1]) and np.array_equal(picture[..., 1], picture[..., 2])
    assert np.all(picture[nodata] == 255)        # OWSLib's bgcolor: white


@pytest.mark.parametrize("version", ["1.1.1", "1.3.0"])
def test_owslib_getfeatureinfo_json(live_url, no_proxy, version):
    from owslib.wms import WebMapService
    service = WebMapService(live_url + WMS, version=version)
    i, j = 123, 45
    resp = service.getfeatureinfo(layers=["dem"], styles=[""], srs="EPSG:32633", bbox=DEM_BOX, size=(190, 190),
                                  format="image/png", query_layers=["dem"], info_format="application/json",
                                  xy=(i, j))
    answer = json.loads(resp.read())
    (feature,) = answer["features"]
    truth = float(dem_value(500005 + 10 * i, 5001995 - 10 * j))
    assert feature["properties"]["layer"] == "dem"
    assert truth in [v for v in feature["properties"].values() if isinstance(v, float)]


# --- GDAL -------------------------------------------------------------------------------------------

def gdal_wms_xml(live_url, layer, image_format, bands, data_type, transparent="FALSE"):
    x0, y0, x1, y1 = DEM_BOX
    return f"""<GDAL_WMS>
  <Service name="WMS">
    <Version>1.1.1</Version>
    <ServerUrl>{live_url}{WMS}?</ServerUrl>
    <SRS>EPSG:32633</SRS>
    <ImageFormat>{image_format}</ImageFormat>
    <Transparent>{transparent}</Transparent>
    <Layers>{layer}</Layers>
  </Service>
  <DataWindow>
    <UpperLeftX>{x0}</UpperLeftX><UpperLeftY>{y1}</UpperLeftY>
    <LowerRightX>{x1}</LowerRightX><LowerRightY>{y0}</LowerRightY>
    <SizeX>190</SizeX><SizeY>190</SizeY>
  </DataWindow>
  <BandsCount>{bands}</BandsCount>
  <DataType>{data_type}</DataType>
  <BlockSizeX>64</BlockSizeX>
  <BlockSizeY>64</BlockSizeY>
</GDAL_WMS>
"""


def test_gdal_lists_the_layers_as_subdatasets(live_url, no_proxy):
    with rasterio.open(f"WMS:{live_url}{WMS}?SERVICE=WMS&REQUEST=GetCapabilities") as ds:
        subdatasets = ds.subdatasets
    layers = {re.search(r"LAYERS=([^&]+)", s).group(1) for s in subdatasets}
    assert layers == {"dem", "mosaic", "ts"}


def test_gdal_opens_the_dem_subdataset_and_reads_pixels(live_url, no_proxy):
    with rasterio.open(f"WMS:{live_url}{WMS}?SERVICE=WMS&REQUEST=GetCapabilities") as ds:
        name = next(s for s in ds.subdatasets if "LAYERS=dem&" in s or s.endswith("LAYERS=dem"))
    with rasterio.open(name) as ds:
        assert ds.driver == "WMS"
        west, south, east, north = geographic_bounds(DEM_BOX)
        # GDAL offers the layer over its LatLonBoundingBox, in EPSG:4326 (or the CRS it chose)
        b = rasterio.warp.transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
        assert b == pytest.approx((west, south, east, north), abs=1e-6)
        data = ds.read(out_shape=(ds.count, 64, 64))
    grey = data[0].astype(int)
    # The plane rises east (0.5 per m) and north (0.25 per m): the grey levels rise likewise.
    assert grey[32, 60] > grey[32, 3] and grey[3, 32] > grey[60, 32]
    assert len(np.unique(grey)) > 20


def test_gdal_wms_description_reads_the_dem_grey_truth(live_url, no_proxy):
    xml = no_proxy / "dem.xml"
    xml.write_text(gdal_wms_xml(live_url, "dem", "image/png", 3, "Byte"))
    with rasterio.open(xml) as ds:
        assert (ds.width, ds.height, ds.count) == (190, 190, 3)
        assert ds.crs.to_epsg() == 32633
        data = ds.read()
    grey, nodata, _ = dem_grey_truth()
    for band in data:
        assert np.array_equal(band[~nodata], grey[~nodata])
        assert np.all(band[nodata] == 255)         # BGCOLOR white, TRANSPARENT=FALSE


def test_gdal_wms_description_reads_raw_float_values_from_image_tiff(live_url, no_proxy):
    xml = no_proxy / "dem.xml"
    xml.write_text(gdal_wms_xml(live_url, "dem", "image/tiff", 1, "Float32"))
    with rasterio.open(xml) as ds:
        assert ds.dtypes == ("float32",)
        data = ds.read(1)
    xs, ys = centres(DEM_BOX, 190, 190)
    truth = dem_value(xs, ys)
    _, nodata, _ = dem_grey_truth()
    assert np.array_equal(data[~nodata], truth[~nodata])
    assert np.all(data[nodata] == DEM_NODATA)


def test_gdal_reports_a_wms_exception_instead_of_pixels(live_url, no_proxy):
    xml = no_proxy / "nope.xml"
    xml.write_text(gdal_wms_xml(live_url, "nope", "image/png", 3, "Byte"))

    def read():
        with rasterio.open(xml) as ds:
            ds.read(1, window=rasterio.windows.Window(0, 0, 64, 64))

    with ThreadPoolExecutor(1) as pool, pytest.raises(rasterio.errors.RasterioIOError):
        pool.submit(read).result()


# --- GetMap -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [WMS, DEM_WMS])
@pytest.mark.parametrize("version", ["1.3.0", "1.1.1"])
def test_getmap_dem_is_the_grey_truth(client, path, version):
    crs = {"CRS" if version == "1.3.0" else "SRS": "EPSG:32633"}
    picture = image(wms(client, path, VERSION=version, **crs, **DEM_GETMAP), (190, 190), "RGBA")
    grey, nodata, edge = dem_grey_truth()
    assert not edge.any() and nodata.sum() == 100
    for band in range(3):
        assert np.array_equal(picture[..., band][~nodata], grey[~nodata])
    assert np.all(picture[..., 3] == 255)
    assert np.all(picture[nodata][:, :3] == 255)


GEO_BOX = (15.002, 45.157, 15.021, 45.169)      # lon/lat, inside the DEM


def test_getmap_epsg4326_axis_order_and_crs84(client):
    lon0, lat0, lon1, lat1 = GEO_BOX
    common = dict(DEM_GETMAP, WIDTH="120", HEIGHT="90")
    old = image(wms(client, VERSION="1.1.1", SRS="EPSG:4326", **dict(common, BBOX=f"{lon0},{lat0},{lon1},{lat1}")))
    new = image(wms(client, VERSION="1.3.0", CRS="EPSG:4326", **dict(common, BBOX=f"{lat0},{lon0},{lat1},{lon1}")))
    crs84 = image(wms(client, VERSION="1.3.0", CRS="CRS:84", **dict(common, BBOX=f"{lon0},{lat0},{lon1},{lat1}")))
    assert old.shape[:2] == (90, 120)
    assert np.array_equal(old, new) and np.array_equal(old, crs84)

    # and it is the DEM: each pixel centre, taken to UTM by pyproj, lands in a source pixel whose grey it has
    lons, lats = centres(GEO_BOX, 120, 90)
    xs, ys = Transformer.from_crs("EPSG:4326", "EPSG:32633", always_xy=True).transform(lons, lats)
    values, nodata, edge = dem_source(xs, ys)
    grey = stretch(values, DEM_MIN, DEM_MAX)
    rgb = np.asarray(Image.fromarray(old).convert("RGB")) if old.ndim == 3 else np.dstack([old] * 3)
    sure = ~edge & ~nodata
    assert sure.sum() > 0.3 * sure.size
    assert np.array_equal(rgb[..., 0][sure], grey[sure])


def test_getmap_web_mercator_is_the_dem(client):
    t = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    (mx0, mx1), (my0, my1) = t.transform([GEO_BOX[0], GEO_BOX[2]], [GEO_BOX[1], GEO_BOX[3]])
    box = (mx0, my0, mx1, my1)
    params = dict(DEM_GETMAP, BBOX=",".join(repr(v) for v in box), WIDTH="100", HEIGHT="140")
    picture = image(wms(client, VERSION="1.3.0", CRS="EPSG:3857", **params), (100, 140), "RGB")
    mxs, mys = centres(box, 100, 140)
    xs, ys = Transformer.from_crs("EPSG:3857", "EPSG:32633", always_xy=True).transform(mxs, mys)
    values, nodata, edge = dem_source(xs, ys)
    sure = ~edge & ~nodata
    assert sure.sum() > 0.3 * sure.size
    assert np.array_equal(picture[..., 0][sure], stretch(values, DEM_MIN, DEM_MAX)[sure])


def test_getmap_parameter_forms(client):
    """Exponents and a '+' in BBOX, a lower-case CRS code, STYLES= / STYLES=, / mixed named and
    default styles for two layers: the same pictures."""
    reference = getmap(client, "1.3.0").data
    assert getmap(client, "1.3.0", BBOX="5.0E5,5000100,+501900,5.002e6").data == reference
    assert getmap(client, "1.3.0", CRS="epsg:32633").data == reference
    two = [getmap(client, "1.3.0", LAYERS="dem,mosaic", STYLES=styles).data
           for styles in ("", ",", "default,", ",default", "default,default")]
    assert all(t == two[0] for t in two)
    exception(getmap(client, "1.3.0", LAYERS="dem,mosaic", STYLES="default,default,default"), "1.3.0", None)
    exception(getmap(client, "1.3.0", LAYERS=",".join(["dem"] * 17)), "1.3.0", None)    # LayerLimit 16
    _, root = capabilities(client, VERSION="1.3.0")
    assert root.findtext(f"{WMS_NS}Service/{WMS_NS}LayerLimit") == "16"


def test_getmap_transparent_true_marks_exactly_the_hole(client):
    # A one-band rendering with holes is a grey+alpha PNG; decoded as RGBA as a client would.
    picture = image(wms(client, VERSION="1.3.0", CRS="EPSG:32633", TRANSPARENT="TRUE", **DEM_GETMAP),
                    (190, 190), "RGBA")
    assert picture.shape == (190, 190, 4)
    assert (picture[..., 0] == picture[..., 1]).all() and (picture[..., 1] == picture[..., 2]).all()
    grey, nodata, _ = dem_grey_truth()
    assert np.array_equal(picture[..., 3] == 0, nodata)
    assert np.all(picture[..., 3][~nodata] == 255)
    assert np.array_equal(picture[..., 0][~nodata], grey[~nodata])


@pytest.mark.parametrize("transparent,bgcolor,fill", [
    (None, None, (255, 255, 255)), ("FALSE", None, (255, 255, 255)), ("fAlSe", None, (255, 255, 255)),
    (None, "0xFF0000", (255, 0, 0)), ("false", "0x0000ff", (0, 0, 255)),
])
def test_getmap_opaque_hole_takes_bgcolor(client, transparent, bgcolor, fill):
    picture = image(wms(client, VERSION="1.3.0", CRS="EPSG:32633", TRANSPARENT=transparent, BGCOLOR=bgcolor,
                        **DEM_GETMAP), (190, 190), "RGBA")
    grey, nodata, _ = dem_grey_truth()
    assert np.all(picture[..., 3] == 255)
    assert np.all(picture[nodata][:, :3] == fill)
    assert np.array_equal(picture[..., 1][~nodata], grey[~nodata])


def test_getmap_jpeg_ignores_transparent(client):
    resp = wms(client, VERSION="1.3.0", CRS="EPSG:32633", **dict(DEM_GETMAP, FORMAT="image/jpeg", TRANSPARENT="TRUE",
                                                                  BGCOLOR="0xFF0000"))
    assert resp.content_type == "image/jpeg"
    picture = Image.open(io.BytesIO(resp.data))
    assert picture.format == "JPEG" and picture.size == (190, 190) and picture.mode in ("RGB", "L")
    rgb = np.asarray(picture.convert("RGB")).astype(int)
    # the hole's inside (away from JPEG ringing at its edges) is the red background
    inner = rgb[12:18, 12:18]             # rows 10..19, cols 10..19 are the hole
    assert np.all(np.abs(inner - (255, 0, 0)) < 24)
    grey, nodata, _ = dem_grey_truth()
    assert np.abs(rgb[100:180, 100:180, 1] - grey[100:180, 100:180].astype(int)).max() < 12


@pytest.mark.parametrize("box,width,height", [
    ((500000, 5000150, 501900, 5002000), 8, 5),          # the ETS's tiny map
    (DEM_BOX, 380, 76),                                    # 5 m x 25 m pixels: stretched, not letterboxed
    ((500400, 5000500, 500600, 5001500), 40, 300),
    (DEM_BOX, 1, 1),
])
def test_getmap_exact_size_and_stretching(client, box, width, height):
    params = dict(DEM_GETMAP, BBOX=",".join(map(str, box)), WIDTH=str(width), HEIGHT=str(height))
    picture = image(wms(client, VERSION="1.3.0", CRS="EPSG:32633", **params), (width, height), "RGB")
    grey, nodata, edge = dem_grey_truth(box, width, height)
    sure = ~nodata & ~edge
    assert sure.any()
    assert np.array_equal(picture[..., 0][sure], grey[sure])


@pytest.mark.parametrize("version,crs,box", [
    ("1.3.0", {"CRS": "EPSG:32633"}, "600000,5100000,601000,5101000"),
    ("1.1.1", {"SRS": "EPSG:4326"}, "-10,-10,-9,-9"),
    ("1.1.1", {"SRS": "EPSG:4326"}, "170,40,190,50"),          # across the antimeridian
    ("1.3.0", {"CRS": "EPSG:4326"}, "-10,-10,-9,-9"),
])
def test_getmap_outside_the_data_is_background_not_an_exception(client, version, crs, box):
    params = dict(DEM_GETMAP, BBOX=box, WIDTH="64", HEIGHT="48")
    picture = image(wms(client, VERSION=version, BGCOLOR="0x00FF00", **crs, **params), (64, 48), "RGBA")
    assert np.all(picture == (0, 255, 0, 255))
    clear = image(wms(client, VERSION=version, TRANSPARENT="TRUE", **crs, **params), (64, 48), "RGBA")
    assert np.all(clear[..., 3] == 0)


@pytest.mark.parametrize("fmt,pil_format", [("image/png; mode=8bit", "PNG"), ("image/gif", "GIF"),
                                            ("image/webp", "WEBP"), ("image/png", "PNG")])
def test_getmap_formats_decode(client, fmt, pil_format):
    resp = wms(client, VERSION="1.3.0", CRS="EPSG:32633", **dict(DEM_GETMAP, FORMAT=fmt))
    assert resp.status_code == 200
    assert resp.content_type.split(";")[0] == fmt.split(";")[0]
    picture = Image.open(io.BytesIO(resp.data))
    assert picture.format == pil_format and picture.size == (190, 190)
    rgb = np.asarray(picture.convert("RGB")).astype(int)
    grey, nodata, _ = dem_grey_truth()
    # palette and lossy formats: near the truth (the 8-bit palettes hold at most 256 colours)
    assert np.abs(rgb[..., 0][~nodata] - grey[~nodata]).max() <= (0 if fmt == "image/png" else 16)
    assert np.all(rgb[12:18, 12:18] >= 240)


def test_getmap_image_tiff_holds_raw_float_values_and_georeferencing(client):
    resp = wms(client, VERSION="1.3.0", CRS="EPSG:32633", **dict(DEM_GETMAP, FORMAT="image/tiff"))
    assert resp.content_type == "image/tiff"
    with MemoryFile(resp.data) as mem, mem.open() as ds:
        assert (ds.width, ds.height, ds.count, ds.dtypes) == (190, 190, 1, ("float32",))
        assert ds.crs.to_epsg() == 32633
        assert tuple(ds.transform)[:6] == pytest.approx((10, 0, 500000, 0, -10, 5002000))
        data = ds.read(1, masked=True)
    xs, ys = centres(DEM_BOX, 190, 190)
    _, nodata, _ = dem_grey_truth()
    assert np.array_equal(np.ma.getmaskarray(data), nodata)
    assert np.array_equal(data.data[~nodata], dem_value(xs, ys)[~nodata])


def test_mosaic_rgb_is_the_stretch_of_bands_2_1_0(client):
    # The documented stretch source, the service statistics, are the fixture's scene 1 and scene 4 values.
    info = client.get("/arcgis/rest/services/mosaic/ImageServer", query_string={"f": "json"}).get_json()
    assert info["minValues"] == MOSAIC_MIN and info["maxValues"] == MOSAIC_MAX
    x, y = 501000, 5001200                           # in scenes 1, 2, 3 and 4 (scene 4 on top)
    box = f"{x - 50},{y - 50},{x + 50},{y + 50}"
    params = dict(DEM_GETMAP, LAYERS="mosaic", BBOX=box, WIDTH="10", HEIGHT="10", BGCOLOR="0x000000")

    def expected(k):
        return [int(stretch(mosaic_value(k, b), MOSAIC_MIN[b], MOSAIC_MAX[b])) for b in (2, 1, 0)]

    picture = image(wms(client, VERSION="1.3.0", CRS="EPSG:32633", **params), (10, 10), "RGBA")
    assert np.all(picture[..., :3] == expected(4)) and np.all(picture[..., 3] == 255)
    for k in (1, 2, 3):
        when = f"{synth.MOSAIC_DATES[k]}T10:30:00Z"
        picture = image(wms(client, VERSION="1.3.0", CRS="EPSG:32633", TIME=when, **params), (10, 10), "RGBA")
        assert np.all(picture[..., :3] == expected(k)), (k, picture[0, 0])


def ts_grey(month, height=180):
    lats = 90 - (np.arange(height) + 0.5) * 180 / height
    return stretch(ts_value(month, lats), TS_MIN, TS_MAX)


def test_getmap_time_on_the_monthly_series(client):
    info = client.get("/arcgis/rest/services/ts/ImageServer", query_string={"f": "json"}).get_json()
    assert info["minValues"] == [TS_MIN] and info["maxValues"] == [TS_MAX]
    params = dict(DEM_GETMAP, LAYERS="ts", BBOX="-180,-90,180,90", WIDTH="360", HEIGHT="180")

    def get(time):
        resp = wms(client, VERSION="1.3.0", CRS="CRS:84", TIME=time, **params)
        return resp, image(resp, (360, 180), "RGB")

    _, march = get("2024-03-10")
    _, july = get("2024-07-10")
    assert not np.array_equal(march, july)
    assert np.all(march[..., 0] == ts_grey(3)[:, None])
    assert np.all(july[..., 0] == ts_grey(7)[:, None])
    plain, default = get(None)
    assert plain.headers["Warning"] == "99 Default value used: time=2024-12-01T00:00:00Z ISO8601"
    chosen, december = get("2024-12-05")
    assert "Warning" not in chosen.headers
    assert np.array_equal(default, december)
    assert np.all(december[..., 0] == ts_grey(12)[:, None])


def test_getmap_time_current_is_the_latest(client):
    params = dict(DEM_GETMAP, LAYERS="ts", BBOX="-180,-90,180,90", WIDTH="360", HEIGHT="180")
    resp = wms(client, VERSION="1.3.0", CRS="CRS:84", TIME="current", **params)
    assert np.all(image(resp, (360, 180), "RGB")[..., 0] == ts_grey(12)[:, None])


@pytest.mark.parametrize("version", ["1.3.0", "1.1.1"])
@pytest.mark.parametrize("time", ["2025-06-01", "2023-01-01/2023-12-31", "2024-06-01,2026-01-01"])
def test_getmap_time_outside_the_extent(client, version, time):
    crs = {"CRS": "CRS:84"} if version == "1.3.0" else {"SRS": "EPSG:4326"}
    resp = wms(client, VERSION=version, TIME=time, **crs,
               **dict(DEM_GETMAP, LAYERS="ts", BBOX="-180,-90,180,90", WIDTH="36", HEIGHT="18"))
    exception(resp, version, "InvalidDimensionValue")


def test_multi_layer_getmap_draws_in_layer_order(client):
    xs, ys = centres(DEM_BOX, 190, 190)
    top = top_scene(xs, ys)
    dem_grey, nodata, _ = dem_grey_truth()
    scene_grey = {k: int(stretch(mosaic_value(k, 2), MOSAIC_MIN[2], MOSAIC_MAX[2])) for k in (1, 2, 3, 4)}
    assert scene_grey == {1: 0, 2: 85, 3: 170, 4: 255}
    common = dict(DEM_GETMAP, STYLES=",", TIME="2024-01-01/2024-12-31", BGCOLOR="0x0000FF")

    picture = image(wms(client, VERSION="1.3.0", CRS="EPSG:32633", **dict(common, LAYERS="dem,mosaic")),
                    (190, 190), "RGB")
    red = picture[..., 0]
    for k in (1, 2, 3, 4):
        assert (top == k).any() and np.all(red[top == k] == scene_grey[k]), k
    bare = top == 0
    assert np.array_equal(red[bare & ~nodata], dem_grey[bare & ~nodata])
    assert np.all(picture[bare & nodata] == (0, 0, 255))

    # the other way round the DEM hides the mosaic, except in its hole, where scene 1 shows
    picture = image(wms(client, VERSION="1.3.0", CRS="EPSG:32633", **dict(common, LAYERS="mosaic,dem")),
                    (190, 190), "RGB")
    assert np.array_equal(picture[..., 0][~nodata], dem_grey[~nodata])
    assert np.all(top[nodata] == 1) and np.all(picture[nodata] == (0, 0, 0))


# --- exceptions -------------------------------------------------------------------------------------

def getmap(client, version, path=WMS, **changes):
    crs = {"CRS" if version == "1.3.0" else "SRS": "EPSG:32633"}
    params = dict(DEM_GETMAP, VERSION=version, **crs)
    params.update(changes)
    return wms(client, path, **{k: v for k, v in params.items() if v is not None})


@pytest.mark.parametrize("version", ["1.3.0", "1.1.1"])
@pytest.mark.parametrize("changes,code", [
    ({"LAYERS": "nope"}, "LayerNotDefined"),
    ({"LAYERS": "dem,nope", "STYLES": ""}, "LayerNotDefined"),
    ({"STYLES": "fancy"}, "StyleNotDefined"),
    ({"LAYERS": "dem,mosaic", "STYLES": "default,fancy"}, "StyleNotDefined"),
    ({"FORMAT": "image/bogus"}, "InvalidFormat"),
    ({"CRS": "EPSG:4269", "SRS": "EPSG:4269"}, "CRS"),
    ({"CRS": "EPSG:999999", "SRS": "EPSG:999999"}, "CRS"),
    ({"BBOX": "501900,5000100,500000,5002000"}, None),
    ({"BBOX": "500000,5000100,500000,5002000"}, None),
    ({"BBOX": "500000,5000100,501900"}, None),
    ({"WIDTH": "0"}, None),
    ({"HEIGHT": "-5"}, None),
    ({"WIDTH": "100000"}, None),
    ({"LAYERS": None}, "MissingParameterValue"),
    ({"BBOX": None}, "MissingParameterValue"),
])
def test_getmap_exceptions(client, version, changes, code):
    if code == "CRS":
        code = "InvalidCRS" if version == "1.3.0" else "InvalidSRS"
    exception(getmap(client, version, **changes), version, code)


def test_getmap_without_version_is_an_exception(client):
    resp = wms(client, **dict(DEM_GETMAP, CRS="EPSG:32633"))
    exception(resp, "1.3.0", None)
    exception(wms(client, DEM_WMS, **dict(DEM_GETMAP, CRS="EPSG:32633")), "1.3.0", None)


@pytest.mark.parametrize("version", ["1.3.0", "1.1.1"])
def test_operation_not_supported_and_missing_request(client, version):
    exception(wms(client, SERVICE="WMS", VERSION=version, REQUEST="Foo"), version, "OperationNotSupported")
    exception(wms(client, SERVICE="WMS", VERSION=version), version, "MissingParameterValue")


@pytest.mark.parametrize("version,inimage,blank", [
    ("1.3.0", "INIMAGE", "BLANK"),
    ("1.1.1", "application/vnd.ogc.se_inimage", "application/vnd.ogc.se_blank"),
])
def test_exceptions_in_images(client, version, inimage, blank):
    bad = dict(LAYERS="nope", WIDTH="120", HEIGHT="80")
    resp = getmap(client, version, EXCEPTIONS=inimage, **bad)
    picture = image(resp, (120, 80), "RGB")
    assert resp.content_type == "image/png"
    assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 1       # a message is drawn
    resp = getmap(client, version, EXCEPTIONS=inimage, FORMAT="image/jpeg", **bad)
    assert resp.content_type == "image/jpeg" and Image.open(io.BytesIO(resp.data)).size == (120, 80)

    red = image(getmap(client, version, EXCEPTIONS=blank, BGCOLOR="0xFF0000", **bad), (120, 80), "RGBA")
    assert np.all(red == (255, 0, 0, 255))
    clear = image(getmap(client, version, EXCEPTIONS=blank, TRANSPARENT="TRUE", **bad), (120, 80), "RGBA")
    assert np.all(clear[..., 3] == 0)
    # a problem the image cannot be drawn for (no size, an unknown format): the XML report
    exception(getmap(client, version, EXCEPTIONS=inimage, LAYERS="nope", WIDTH=None), version, None)
    exception(getmap(client, version, EXCEPTIONS=inimage, FORMAT="image/bogus"), version, "InvalidFormat")


@pytest.mark.parametrize("changes", [
    {"LAYERS": "nope"}, {"STYLES": "x"}, {"FORMAT": "text/html"}, {"WIDTH": None}, {"WIDTH": "0"},
    {"WIDTH": "999999"}, {"BBOX": "1,2,3"}, {"CRS": "EPSG:1"}, {"TIME": "2030-01-01", "LAYERS": "ts"},
    {"BGCOLOR": "red"}, {"TRANSPARENT": "maybe"},
])
@pytest.mark.parametrize("exceptions", [None, "XML", "INIMAGE", "BLANK"])
def test_never_xml_labelled_as_an_image(client, changes, exceptions):
    resp = getmap(client, "1.3.0", EXCEPTIONS=exceptions, **changes)
    is_xml = resp.data.lstrip().startswith(b"<")
    assert is_xml == (resp.content_type.split(";")[0] == "text/xml"), (resp.content_type, resp.data[:200])
    if is_xml:
        exception(resp, "1.3.0", None)
    else:
        Image.open(io.BytesIO(resp.data)).load()


# --- GetFeatureInfo ---------------------------------------------------------------------------------

def gfi(client, version, path=WMS, **changes):
    crs = {"CRS" if version == "1.3.0" else "SRS": "EPSG:32633"}
    params = dict(DEM_GETMAP, VERSION=version, REQUEST="GetFeatureInfo", QUERY_LAYERS="dem",
                  INFO_FORMAT="application/json", **crs)
    params.update(changes)
    return wms(client, path, **{k: v for k, v in params.items() if v is not None})


@pytest.mark.parametrize("version", ["1.3.0", "1.1.1"])
@pytest.mark.parametrize("info_format", ["text/plain", "text/html", "application/json", "text/xml",
                                         "application/vnd.ogc.gml"])
def test_getfeatureinfo_gives_the_clicked_pixels_value(client, version, info_format):
    i, j = 137, 61
    truth = float(dem_value(500005 + 10 * i, 5001995 - 10 * j))
    point = {"I": str(i), "J": str(j)} if version == "1.3.0" else {"X": str(i), "Y": str(j)}
    resp = gfi(client, version, INFO_FORMAT=info_format, **point)
    assert resp.status_code == 200
    assert resp.content_type.split(";")[0] == info_format
    text = resp.data.decode()
    if info_format == "application/json":
        (feature,) = json.loads(text)["features"]
        assert feature["properties"]["layer"] == "dem"
        assert truth in feature["properties"].values()
    elif info_format in ("text/xml", "application/vnd.ogc.gml"):
        root = etree.fromstring(resp.data)
        values = [float(e.text) for e in root.iter() if isinstance(e.tag, str) and e.text
                  and re.fullmatch(r"-?\d+(\.\d+)?", e.text.strip())]
        assert truth in values
        assert any(etree.QName(e).localname == "dem_feature" for e in root.iter() if isinstance(e.tag, str))
    else:
        assert truth in numbers_in(text)
        assert "dem" in text
    # and a different pixel gives a different value: the answer is the clicked one
    assert truth != float(dem_value(500005 + 10 * (i + 1), 5001995 - 10 * j))


def test_getfeatureinfo_on_the_service_endpoint_and_in_the_hole(client):
    resp = gfi(client, "1.3.0", DEM_WMS, I="0", J="189")
    (feature,) = resp.get_json()["features"]
    assert float(dem_value(500005, 5000105)) in feature["properties"].values()
    resp = gfi(client, "1.3.0", I="15", J="15")          # pixel centre 500155, 5001845: the hole
    assert resp.get_json()["features"] == []
    plain = gfi(client, "1.3.0", I="15", J="15", INFO_FORMAT="text/plain")
    assert plain.status_code == 200 and "dem" in plain.data.decode()


def test_getfeatureinfo_axis_order_in_geographic_crs(client):
    """1.3.0 EPSG:4326 (lat,lon BBOX), CRS:84 and 1.1.1 EPSG:4326 (lon,lat): the clicked pixel's centre,
    taken to UTM by pyproj, is in the source pixel whose value comes back."""
    lon0, lat0, lon1, lat1 = GEO_BOX
    i, j = 75, 44
    lons, lats = centres(GEO_BOX, 120, 90)
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:32633", always_xy=True).transform(lons[j, i], lats[j, i])
    value, nodata, edge = dem_source(np.array([x]), np.array([y]))
    assert not nodata[0] and not edge[0]
    common = dict(WIDTH="120", HEIGHT="90")
    answers = [
        gfi(client, "1.3.0", CRS="EPSG:4326", BBOX=f"{lat0},{lon0},{lat1},{lon1}", I=str(i), J=str(j), **common),
        gfi(client, "1.3.0", CRS="CRS:84", BBOX=f"{lon0},{lat0},{lon1},{lat1}", I=str(i), J=str(j), **common),
        gfi(client, "1.1.1", SRS="EPSG:4326", BBOX=f"{lon0},{lat0},{lon1},{lat1}", X=str(i), Y=str(j), **common),
    ]
    for resp in answers:
        (feature,) = resp.get_json()["features"]
        assert float(value[0]) in feature["properties"].values()


def test_getfeatureinfo_on_the_series_by_time(client):
    # 1.3.0 EPSG:4326: BBOX lat,lon; J counts rows from the north
    params = dict(LAYERS="ts", QUERY_LAYERS="ts", CRS="EPSG:4326", BBOX="-90,-180,90,180", WIDTH="360",
                  HEIGHT="180", I="200", J="30")
    lat = 90 - 30.5
    resp = gfi(client, "1.3.0", **params)
    assert resp.headers["Warning"] == "99 Default value used: time=2024-12-01T00:00:00Z ISO8601"
    (feature,) = resp.get_json()["features"]
    assert float(ts_value(12, lat)) in feature["properties"].values()
    resp = gfi(client, "1.3.0", TIME="2024-04-20", **params)
    assert "Warning" not in resp.headers
    (feature,) = resp.get_json()["features"]
    assert float(ts_value(4, lat)) in feature["properties"].values()
    assert feature["properties"]["time"] == "2024-04-01T00:00:00Z"


@pytest.mark.parametrize("ij", [("190", "5"), ("5", "190"), ("-1", "5"), ("5", "-1")])
def test_getfeatureinfo_invalid_point(client, ij):
    exception(gfi(client, "1.3.0", I=ij[0], J=ij[1]), "1.3.0", "InvalidPoint")
    resp = gfi(client, "1.1.1", X=ij[0], Y=ij[1])
    exception(resp, "1.1.1", None)


@pytest.mark.parametrize("version", ["1.3.0", "1.1.1"])
def test_getfeatureinfo_exceptions(client, version):
    point = {"I": "5", "J": "5"} if version == "1.3.0" else {"X": "5", "Y": "5"}
    exception(gfi(client, version, QUERY_LAYERS="mosaic", **point), version, "LayerNotQueryable")
    exception(gfi(client, version, QUERY_LAYERS="nope", **point), version, "LayerNotDefined")
    exception(gfi(client, version, INFO_FORMAT="image/png", **point), version, "InvalidFormat")
    exception(gfi(client, version, LAYERS="nope", **point), version, "LayerNotDefined")
    exception(gfi(client, version, QUERY_LAYERS=None, **point), version, "MissingParameterValue")


def test_getfeatureinfo_feature_count_at_the_four_scene_overlap(client):
    x, y = 500900, 5001100
    assert top_scene(np.array([x]), np.array([y]))[0] == 4
    params = dict(LAYERS="mosaic", QUERY_LAYERS="mosaic", BBOX=f"{x - 55},{y - 55},{x + 55},{y + 55}",
                  WIDTH="11", HEIGHT="11", I="5", J="5", TIME="2024-01-01/2024-12-31")
    answer = gfi(client, "1.3.0", FEATURE_COUNT="3", **params).get_json()
    features = answer["features"]
    assert len(features) == 3
    for feature, k in zip(features, (4, 3, 2)):
        props = feature["properties"]
        assert props["time"] == f"{synth.MOSAIC_DATES[k]}T10:30:00Z"
        assert [props[band] for band in synth.MOSAIC_BANDS] == [mosaic_value(k, b) for b in range(4)]
    assert len(gfi(client, "1.3.0", FEATURE_COUNT="10", **params).get_json()["features"]) == 4
    (only,) = gfi(client, "1.3.0", **params).get_json()["features"]           # FEATURE_COUNT defaults to 1
    assert only["properties"]["Red"] == mosaic_value(4, 2)
    # the same through GML, as the 1.1.1 ETS reads it
    old = dict(params, X="5", Y="5", I=None, J=None)
    root = etree.fromstring(gfi(client, "1.1.1", FEATURE_COUNT="3", INFO_FORMAT="application/vnd.ogc.gml",
                                **old).data)
    reds = [float(e.text) for e in root.iter("Red")]
    assert reds == [mosaic_value(k, 2) for k in (4, 3, 2)]


# --- GetLegendGraphic -------------------------------------------------------------------------------

def test_get_legend_graphic(client):
    _, root = capabilities(client, VERSION="1.3.0")
    legend = named_layers(root)["dem"].find(f"{WMS_NS}Style/{WMS_NS}LegendURL")
    href = legend.find(f"{WMS_NS}OnlineResource").get(XLINK)
    resp = client.get(href.replace("http://localhost", ""))
    assert resp.status_code == 200 and resp.content_type == "image/png"
    picture = Image.open(io.BytesIO(resp.data))
    assert picture.format == "PNG"
    assert picture.size == (int(legend.get("width")), int(legend.get("height")))
    assert len(np.unique(np.asarray(picture.convert("RGB")).reshape(-1, 3), axis=0)) > 2
    for path in (WMS, DEM_WMS):
        resp = wms(client, path, SERVICE="WMS", VERSION="1.3.0", REQUEST="GetLegendGraphic", LAYER="dem",
                   FORMAT="image/png")
        assert resp.content_type == "image/png"
    exception(wms(client, SERVICE="WMS", VERSION="1.3.0", REQUEST="GetLegendGraphic", LAYER="dem",
                  STYLE="fancy", FORMAT="image/png"), "1.3.0", "StyleNotDefined")
    exception(wms(client, SERVICE="WMS", VERSION="1.3.0", REQUEST="GetLegendGraphic", LAYER="nope",
                  FORMAT="image/png"), "1.3.0", "LayerNotDefined")
    exception(wms(client, SERVICE="WMS", VERSION="1.1.1", REQUEST="GetLegendGraphic", LAYER="nope",
                  FORMAT="image/png"), "1.1.1", "LayerNotDefined")


# --- styles from raster-function templates ----------------------------------------------------------

# A minimum-maximum stretch from explicit statistics: 0..1000 onto 0..255, computed here.
CONTRAST = FunctionTemplate(name="Contrast", function="Stretch", description="Elevation 0 to 1000 m",
                            arguments={"StretchType": 5, "Min": 0, "Max": 255, "UseGamma": False,
                                       "Statistics": [[0, 1000, 500, 250]]})


@pytest.fixture(scope="module")
def styled_client(data_dir, tmp_path_factory):
    config = make_config(data_dir, tmp_path_factory.mktemp("styled-cache"))
    services = dict(config.services)
    services["dem"] = replace(services["dem"], raster_functions=(CONTRAST,))
    return create_app(replace(config, services=services)).test_client()


def test_template_style_in_capabilities(styled_client):
    for version, ns in (("1.3.0", WMS_NS), ("1.1.1", "")):
        resp, root = capabilities(styled_client, DEM_WMS, VERSION=version)
        validate(resp.data)
        styles = {s.findtext(f"{ns}Name"): s for s in named_layers(root)["dem"].findall(f"{ns}Style")}
        assert set(styles) == {"default", "Contrast"}
        href = styles["Contrast"].find(f"{ns}LegendURL/{ns}OnlineResource").get(XLINK)
        assert "STYLE=Contrast" in href
        resp = styled_client.get(href.replace("http://localhost", ""))
        assert resp.content_type == "image/png"
        Image.open(io.BytesIO(resp.data)).load()


@pytest.mark.parametrize("path", [WMS, DEM_WMS])
def test_template_style_getmap_is_its_stretch(styled_client, path):
    xs, ys = centres(DEM_BOX, 190, 190)
    grey, nodata, _ = dem_grey_truth()
    contrast = stretch(dem_value(xs, ys), 0, 1000)
    styled = image(getmap(styled_client, "1.3.0", path, STYLES="Contrast"), (190, 190), "RGB")
    default = image(getmap(styled_client, "1.3.0", path, STYLES="default"), (190, 190), "RGB")
    assert np.array_equal(styled[..., 0][~nodata], contrast[~nodata])
    assert np.array_equal(default[..., 0][~nodata], grey[~nodata])
    assert np.all(styled[nodata] == 255)
    assert not np.array_equal(styled, default)
    exception(getmap(styled_client, "1.3.0", path, STYLES="contrast"), "1.3.0", "StyleNotDefined")   # names are case-sensitive


def test_global_layer_box_stays_inside_web_mercator(client):
    """A global grid's EPSG:3857 BoundingBox is clipped to Web Mercator's area of use (±85.06°,
    which EPSG rounds: a little beyond the projection's ±85.0511°)."""
    _, root = capabilities(client, VERSION="1.3.0")
    box = next(b for b in named_layers(root)["ts"].findall(f"{WMS_NS}BoundingBox") if b.get("CRS") == "EPSG:3857")
    limit = 20037508.342789244
    for key in ("minx", "miny", "maxx", "maxy"):
        assert abs(float(box.get(key))) <= limit * 1.001


def test_time_late_on_the_last_day_is_that_months(client):
    """date_end holds plain dates, so 2024-12-31T12:00Z still lies in December's extent."""
    resp = wms(client, "/ogc/wms", SERVICE="WMS", VERSION="1.3.0", REQUEST="GetFeatureInfo", LAYERS="ts",
               QUERY_LAYERS="ts", STYLES="", CRS="CRS:84", BBOX="10,45,11,46", WIDTH=1, HEIGHT=1, I=0, J=0,
               INFO_FORMAT="application/json", TIME="2024-12-31T12:00:00Z")
    (feature,) = resp.get_json()["features"]
    assert feature["properties"]["Name"] == "t2024_12"
