"""WCS 1.1.1 (/ogc/wcs and /arcgis/services/{name}/ImageServer/WCSServer, VERSION=1.1.1) against the
analytic truth of tests/synth.py: capabilities and coverage descriptions (schema-valid, axis order from
pyproj here), GetCoverage multipart answers (the GeoTIFF part compared with the fixture functions, bit
for bit at the native grid), KVP and XML POST requests, OWS 1.1 exception reports, and the clients
that read them on a real socket: OWSLib and GDAL's WCS driver (through rasterio)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import rasterio
from lxml import etree
from pyproj import Transformer
from rasterio.io import MemoryFile

from conftest import make_config
from ogc_gateway.app import create_app
from ogc_gateway.config import Contact
from ogc_schemas import validate
from synth import DEM_NODATA, dem_value, geographic_bounds, mosaic_value, ts_value

WCS = "/ogc/wcs"
DEM_WCS = "/arcgis/services/dem/ImageServer/WCSServer"
NS = {"wcs": "http://www.opengis.net/wcs/1.1.1", "ows": "http://www.opengis.net/ows/1.1",
      "gml": "http://www.opengis.net/gml", "xlink": "http://www.w3.org/1999/xlink"}
XLINK = "{http://www.w3.org/1999/xlink}href"

# The DEM: 190 x 190 cells of 10 m, cell centres 500005..501895 / 5000105..5001995, nodata hole.
DEM_BOX = (500000.0, 5000100.0, 501900.0, 5002000.0)
HOLE = (500100.0, 5001800.0, 500200.0, 5001900.0)
DEM_CENTRES = "500005,5000105,501895,5001995,urn:ogc:def:crs:EPSG::32633"
TS_MONTHS = [f"2024-{m:02d}-01T00:00:00Z" for m in range(1, 13)]
MOSAIC_TIMES = [f"2024-{m}-15T10:30:00Z" for m in ("01", "03", "05", "07")]


# --- truth ------------------------------------------------------------------------------------------

def dem_truth(xs, ys, res=10.0):
    """(values, nodata mask) of the DEM source cells holding the points (EPSG:32633); `res` 20 is the
    tiles' overview, whose averaged cells hold the plane at their centres."""
    col, row = np.floor((np.asarray(xs) - 500000.0) / res), np.floor((5002000.0 - np.asarray(ys)) / res)
    cx, cy = 500000.0 + res * (col + 0.5), 5002000.0 - res * (row + 0.5)
    hole = (cx > HOLE[0]) & (cx < HOLE[2]) & (cy > HOLE[1]) & (cy < HOLE[3])
    return dem_value(cx, cy), hole


def pixel_centres(transform, width, height):
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    xs = transform.c + cols * transform.a
    ys = transform.f + rows * transform.e
    return xs, ys


# --- helpers ----------------------------------------------------------------------------------------

def wcs(client, path=WCS, **params):
    return client.get(path, query_string={k: v for k, v in params.items() if v is not None})


def document(resp, root_name):
    assert resp.status_code == 200, resp.data[:800]
    assert resp.content_type.split(";")[0] == "text/xml"
    validate(resp.data)
    root = etree.fromstring(resp.data)
    assert root.tag == f"{{{NS['wcs']}}}{root_name}"
    return root


def capabilities(client, path=WCS, **params):
    return document(wcs(client, path, SERVICE="WCS", REQUEST="GetCapabilities", **params), "Capabilities")


def describe(client, identifiers, path=WCS):
    root = document(wcs(client, path, SERVICE="WCS", VERSION="1.1.1", REQUEST="DescribeCoverage",
                        IDENTIFIERS=identifiers), "CoverageDescriptions")
    return root.findall("wcs:CoverageDescription", NS)


def exception(resp, code, locator=None, status=400):
    """The OWS 1.1 exception report of `code`, valid against its schema."""
    assert resp.status_code == status, (resp.status_code, resp.data[:500])
    assert resp.content_type.split(";")[0] == "application/xml"
    validate(resp.data)
    root = etree.fromstring(resp.data)
    assert root.tag == f"{{{NS['ows']}}}ExceptionReport" and root.get("version") == "1.1.0"
    (found,) = root.findall("ows:Exception", NS)
    assert found.get("exceptionCode") == code, etree.tostring(found)
    if locator is not None:
        assert found.get("locator") == locator
    assert found.findtext("ows:ExceptionText", namespaces=NS).strip()
    return found


def parse_multipart(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart body (headers by lower-case name, exact content), parsed here."""
    assert content_type.split(";")[0].strip() in ("multipart/related", "multipart/mixed")
    boundary = re.search(r'boundary="?([^";]+)"?', content_type).group(1).encode()
    chunks = body.split(b"--" + boundary)
    assert chunks[0] == b"" and chunks[-1] in (b"--\r\n", b"--")
    parts = []
    for chunk in chunks[1:-1]:
        assert chunk.startswith(b"\r\n") and chunk.endswith(b"\r\n")        # CRLF around every part
        head, sep, content = chunk[2:-2].partition(b"\r\n\r\n")
        assert sep
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        parts.append(({k.lower(): v for k, v in headers.items()}, content))
    return parts


def coverage_parts(content_type, body, identifier):
    """(Coverages root, GeoTIFF bytes) of a GetCoverage answer: the XML first, valid, pointing at the
    second part by its Content-ID; the second part a binary image/tiff."""
    (xml_headers, xml), (tiff_headers, tiff) = parse_multipart(content_type, body)
    assert xml_headers["content-type"].split(";")[0] == "text/xml"
    validate(xml)
    root = etree.fromstring(xml)
    assert root.tag == f"{{{NS['wcs']}}}Coverages"
    (cov,) = root.findall("wcs:Coverage", NS)
    assert cov.findtext("ows:Identifier", namespaces=NS) == identifier
    href = cov.find("ows:Reference", NS).get(XLINK)
    assert tiff_headers["content-type"] == "image/tiff"
    assert tiff_headers["content-transfer-encoding"] == "binary"
    assert href == "cid:" + tiff_headers["content-id"].strip("<>")
    return root, tiff


def get_coverage(client, path=WCS, **params):
    resp = wcs(client, path, SERVICE="WCS", VERSION="1.1.1", REQUEST="GetCoverage", **params)
    assert resp.status_code == 200, resp.data[:800]
    return coverage_parts(resp.headers["Content-Type"], resp.data, params["IDENTIFIER"])[1]


def raster(tiff: bytes):
    """(data, profile) of a GeoTIFF."""
    with MemoryFile(tiff) as mem, mem.open() as ds:
        return ds.read(), ds.profile


# --- GetCapabilities --------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [WCS, DEM_WCS])
def test_capabilities_are_schema_valid_and_describe_the_coverages(client, path):
    root = capabilities(client, path, ACCEPTVERSIONS="1.1.1")
    assert root.get("version") == "1.1.1" and root.get("updateSequence").isdigit()
    ident = root.find("ows:ServiceIdentification", NS)
    assert ident.findtext("ows:ServiceType", namespaces=NS) == "WCS"
    assert "1.1.1" in [v.text for v in ident.findall("ows:ServiceTypeVersion", NS)]
    assert ident.find("ows:Fees", NS) is not None and ident.find("ows:AccessConstraints", NS) is not None
    endpoint = "http://localhost" + path + "?"
    ops = {op.get("name"): op for op in root.findall("ows:OperationsMetadata/ows:Operation", NS)}
    assert set(ops) == {"GetCapabilities", "DescribeCoverage", "GetCoverage"}
    hrefs = [h.get(XLINK) for h in root.iterfind(".//ows:DCP/ows:HTTP/*", NS)]
    assert hrefs and all(h == endpoint for h in hrefs)
    store = ops["GetCoverage"].find("ows:Parameter[@name='store']", NS)
    assert [v.text for v in store.findall("ows:AllowedValues/ows:Value", NS)] == ["false"]
    summaries = {s.findtext("wcs:Identifier", namespaces=NS): s
                 for s in root.findall("wcs:Contents/wcs:CoverageSummary", NS)}
    assert set(summaries) == ({"dem", "mosaic", "ts"} if path == WCS else {"dem"})
    dem = summaries["dem"]
    assert dem.findtext("ows:Title", namespaces=NS) == "Analytic DEM"
    lower = [float(v) for v in dem.findtext("ows:WGS84BoundingBox/ows:LowerCorner", namespaces=NS).split()]
    upper = [float(v) for v in dem.findtext("ows:WGS84BoundingBox/ows:UpperCorner", namespaces=NS).split()]
    assert lower + upper == pytest.approx(list(geographic_bounds(DEM_BOX)), abs=1e-7)     # lon lat
    crs = [c.text for c in dem.findall("wcs:SupportedCRS", NS)]
    assert {"urn:ogc:def:crs:EPSG::32633", "urn:ogc:def:crs:EPSG::4326", "urn:ogc:def:crs:EPSG::3857"} <= set(crs)
    assert [f.text for f in dem.findall("wcs:SupportedFormat", NS)] == ["image/tiff"]
    union = {c.text for c in root.findall("wcs:Contents/wcs:SupportedCRS", NS)}
    assert union == {c.text for s in summaries.values() for c in s.findall("wcs:SupportedCRS", NS)}


@pytest.mark.parametrize("params", [dict(ACCEPTVERSIONS="1.1.1,1.0.0"), dict(ACCEPTVERSIONS="1.1.0"),
                                    dict(VERSION="1.1.1"), dict(ACCEPTVERSIONS="3.0.0,1.1.1")])
def test_capabilities_version_negotiation_answers_1_1_1(client, params):
    assert capabilities(client, **params).get("version") == "1.1.1"


def test_capabilities_sections(client):
    root = capabilities(client, VERSION="1.1.1", SECTIONS="Contents")
    assert [etree.QName(c).localname for c in root] == ["Contents"]
    root = capabilities(client, VERSION="1.1.1", SECTIONS="ServiceIdentification,OperationsMetadata")
    assert [etree.QName(c).localname for c in root] == ["ServiceIdentification", "OperationsMetadata"]
    assert len(capabilities(client, VERSION="1.1.1", SECTIONS="All")) == 4
    resp = wcs(client, SERVICE="WCS", REQUEST="GetCapabilities", VERSION="1.1.1", SECTIONS="Bogus")
    exception(resp, "InvalidParameterValue", "sections")


def test_capabilities_update_sequence(client):
    current = int(capabilities(client, VERSION="1.1.1").get("updateSequence"))
    minimal = capabilities(client, VERSION="1.1.1", UPDATESEQUENCE=str(current))
    assert len(minimal) == 0 and minimal.get("updateSequence") == str(current)
    assert len(capabilities(client, VERSION="1.1.1", UPDATESEQUENCE=str(current - 1))) == 4
    resp = wcs(client, SERVICE="WCS", REQUEST="GetCapabilities", VERSION="1.1.1", UPDATESEQUENCE=str(current + 1))
    exception(resp, "InvalidUpdateSequence", "updatesequence")


def test_capabilities_carry_the_configured_contact(data_dir, tmp_path):
    contact = Contact(person="Ada", organization="Example Org", position="Curator", email="ada@example.org",
                      phone="+1 555", city="Trieste", country="Italy")
    app = create_app(make_config(data_dir, tmp_path / "cache", contact=contact, fees="10 EUR"))
    root = capabilities(app.test_client(), VERSION="1.1.1")
    provider = root.find("ows:ServiceProvider", NS)
    assert provider.findtext("ows:ProviderName", namespaces=NS) == "Example Org"
    assert provider.findtext("ows:ServiceContact/ows:IndividualName", namespaces=NS) == "Ada"
    info = provider.find("ows:ServiceContact/ows:ContactInfo", NS)
    assert info.findtext("ows:Phone/ows:Voice", namespaces=NS) == "+1 555"
    assert info.findtext("ows:Address/ows:ElectronicMailAddress", namespaces=NS) == "ada@example.org"
    assert root.findtext("ows:ServiceIdentification/ows:Fees", namespaces=NS) == "10 EUR"


# --- DescribeCoverage -------------------------------------------------------------------------------

def boxes_of(description):
    out = {}
    for box in description.findall("wcs:Domain/wcs:SpatialDomain/ows:BoundingBox", NS):
        out[box.get("crs")] = [float(v) for v in (box.findtext("ows:LowerCorner", namespaces=NS) + " "
                                                  + box.findtext("ows:UpperCorner", namespaces=NS)).split()]
    return out


def test_describe_dem_native_grid_cell_centres(client):
    (dem,) = describe(client, "dem")
    assert dem.findtext("wcs:Identifier", namespaces=NS) == "dem"
    boxes = boxes_of(dem)
    assert boxes["urn:ogc:def:crs:EPSG::32633"] == [500005, 5000105, 501895, 5001995]
    assert boxes["urn:ogc:def:crs:OGC::imageCRS"] == [0, 0, 189, 189]
    west, south, east, north = geographic_bounds(DEM_BOX)
    assert boxes["urn:ogc:def:crs:EPSG::4326"] == pytest.approx([south, west, north, east], abs=1e-7)  # lat lon
    grid = dem.find("wcs:Domain/wcs:SpatialDomain/wcs:GridCRS", NS)
    assert grid.findtext("wcs:GridBaseCRS", namespaces=NS) == "urn:ogc:def:crs:EPSG::32633"
    assert grid.findtext("wcs:GridType", namespaces=NS) == "urn:ogc:def:method:WCS:1.1:2dSimpleGrid"
    assert [float(v) for v in grid.findtext("wcs:GridOrigin", namespaces=NS).split()] == [500005, 5001995]
    assert [float(v) for v in grid.findtext("wcs:GridOffsets", namespaces=NS).split()] == [10, -10]
    assert grid.findtext("wcs:GridCS", namespaces=NS) == "urn:ogc:def:cs:OGC:0.0:Grid2dSquareCS"
    assert dem.find("wcs:Domain/wcs:TemporalDomain", NS) is None
    field = dem.find("wcs:Range/wcs:Field", NS)
    assert field.findtext("wcs:Identifier", namespaces=NS) == "contents"
    assert float(field.findtext("wcs:NullValue", namespaces=NS)) == DEM_NODATA
    assert field.findtext("wcs:InterpolationMethods/wcs:Default", namespaces=NS) == "nearest"
    methods = [m.text for m in field.findall("wcs:InterpolationMethods/wcs:InterpolationMethod", NS)]
    assert set(methods) <= {"nearest", "linear", "cubic", "quadratic", "none"}     # the 1.1 dictionary
    axis = field.find("wcs:Axis", NS)
    assert axis.get("identifier") == "Band"
    assert [k.text for k in axis.findall("wcs:AvailableKeys/wcs:Key", NS)] == ["1"]
    assert "urn:ogc:def:crs:EPSG::32633" in [c.text for c in dem.findall("wcs:SupportedCRS", NS)]
    assert [f.text for f in dem.findall("wcs:SupportedFormat", NS)] == ["image/tiff"]


def test_describe_ts_in_lat_lon_order_with_its_times(client):
    (ts,) = describe(client, "ts")
    assert boxes_of(ts)["urn:ogc:def:crs:EPSG::4326"] == [-89.5, -179.5, 89.5, 179.5]     # lat lon centres
    assert boxes_of(ts)["urn:ogc:def:crs:OGC::imageCRS"] == [0, 0, 359, 179]
    grid = ts.find("wcs:Domain/wcs:SpatialDomain/wcs:GridCRS", NS)
    assert [float(v) for v in grid.findtext("wcs:GridOrigin", namespaces=NS).split()] == [89.5, -179.5]
    assert [float(v) for v in grid.findtext("wcs:GridOffsets", namespaces=NS).split()] == [-1, 1]
    times = [t.text for t in ts.findall("wcs:Domain/wcs:TemporalDomain/gml:timePosition", NS)]
    assert times == TS_MONTHS
    assert ts.find("wcs:Range/wcs:Field/wcs:NullValue", NS) is None


def test_describe_several_coverages_mosaic_bands(client):
    dem, mosaic = describe(client, "dem,mosaic")
    assert mosaic.findtext("wcs:Identifier", namespaces=NS) == "mosaic"
    axis = mosaic.find("wcs:Range/wcs:Field/wcs:Axis", NS)
    assert [k.text for k in axis.findall("wcs:AvailableKeys/wcs:Key", NS)] == ["1", "2", "3", "4"]
    assert "Red" in axis.findtext("ows:Abstract", namespaces=NS)
    assert mosaic.findtext("wcs:Range/wcs:Field/wcs:NullValue", namespaces=NS) == "0"
    times = [t.text for t in mosaic.findall("wcs:Domain/wcs:TemporalDomain/gml:timePosition", NS)]
    assert times == MOSAIC_TIMES


@pytest.mark.parametrize("params,code", [(dict(), "MissingParameterValue"),
                                         (dict(IDENTIFIERS=""), "MissingParameterValue"),
                                         (dict(IDENTIFIERS="nope"), "InvalidParameterValue"),
                                         (dict(IDENTIFIERS="dem,nope"), "InvalidParameterValue")])
def test_describe_coverage_errors(client, params, code):
    resp = wcs(client, SERVICE="WCS", VERSION="1.1.1", REQUEST="DescribeCoverage", **params)
    exception(resp, code, "identifiers")


# --- GetCoverage (KVP) ------------------------------------------------------------------------------

@pytest.mark.parametrize("bbox", [DEM_CENTRES, "0,0,189,189,urn:ogc:def:crs:OGC::imageCRS"])
def test_minimal_getcoverage_is_the_native_dem_bit_for_bit(client, bbox):
    tiff = get_coverage(client, IDENTIFIER="dem", FORMAT="image/tiff", BOUNDINGBOX=bbox)
    data, profile = raster(tiff)
    assert (profile["width"], profile["height"], profile["count"]) == (190, 190, 1)
    assert profile["dtype"] == "float32" and profile["nodata"] == DEM_NODATA
    assert profile["crs"].to_epsg() == 32633
    assert tuple(profile["transform"])[:6] == (10, 0, 500000, 0, -10, 5002000)
    truth, hole = dem_truth(*pixel_centres(profile["transform"], 190, 190))
    assert hole.sum() == 100
    assert np.array_equal(data[0][~hole], truth[~hole])
    assert np.all(data[0][hole] == DEM_NODATA)


@pytest.mark.parametrize("grid", [
    # QGIS: 2dSimpleGrid, origin = upper-left centre, offsets dx,-dy
    dict(GRIDTYPE="urn:ogc:def:method:WCS:1.1:2dSimpleGrid", GRIDORIGIN="500405,5001595", GRIDOFFSETS="10,-10"),
    # GDAL: 2dGridIn2dCrs, four offsets
    dict(GRIDTYPE="urn:ogc:def:method:WCS:1.1:2dGridIn2dCrs", GRIDORIGIN="500405,5001595",
         GRIDOFFSETS="10,0,0,-10"),
    # no grid at all: the native lattice
    dict(),
])
def test_getcoverage_window_with_grid_parameters(client, grid):
    tiff = get_coverage(client, IDENTIFIER="dem", FORMAT="image/tiff",
                        BOUNDINGBOX="500405,5001205,500795,5001595,urn:ogc:def:crs:EPSG::32633",
                        GRIDBASECRS="urn:ogc:def:crs:EPSG::32633" if grid else None,
                        GRIDCS="urn:ogc:def:cs:OGC:0.0:Grid2dSquareCS" if grid else None, **grid)
    data, profile = raster(tiff)
    assert (profile["width"], profile["height"]) == (40, 40)
    assert tuple(profile["transform"])[:6] == (10, 0, 500400, 0, -10, 5001600)
    truth, hole = dem_truth(*pixel_centres(profile["transform"], 40, 40))
    assert not hole.any() and np.array_equal(data[0], truth)


def test_doubled_gridoffsets_halve_the_size(client):
    tiff = get_coverage(client, IDENTIFIER="dem", FORMAT="image/tiff", BOUNDINGBOX=DEM_CENTRES,
                        GRIDBASECRS="urn:ogc:def:crs:EPSG::32633", GRIDORIGIN="500005,5001995", GRIDOFFSETS="20,-20")
    data, profile = raster(tiff)
    assert (profile["width"], profile["height"]) == (95, 95)          # floor(1890 / 20) + 1
    assert tuple(profile["transform"])[:6] == (20, 0, 499995, 0, -20, 5002005)
    # 20 m cells are read from the tiles' overview (factor 2, averaged), as every face of the engine
    # reads them: an average of 2 x 2 cells of the plane is the plane at the overview cell's centre
    truth, hole = dem_truth(*pixel_centres(profile["transform"], 95, 95), res=20.0)
    assert hole.sum() == 25
    assert np.array_equal(data[0][~hole], truth[~hole]) and np.all(data[0][hole] == DEM_NODATA)


def test_epsg4326_boundingbox_is_lat_lon(client):
    """A box in urn:ogc:def:crs:EPSG::4326 (lat, lon) lands where pyproj puts it: delivered on the native
    lattice when GRIDBASECRS is the native CRS, and in lon/lat GeoTIFF order when it is EPSG:4326."""
    sub = (500405.0, 5001205.0, 500795.0, 5001595.0)                  # centres of cols/rows 40..79
    west, south, east, north = geographic_bounds(sub)
    bbox = f"{south!r},{west!r},{north!r},{east!r},urn:ogc:def:crs:EPSG::4326"
    tiff = get_coverage(client, IDENTIFIER="dem", FORMAT="image/tiff", BOUNDINGBOX=bbox,
                        GRIDBASECRS="urn:ogc:def:crs:EPSG::32633")
    data, profile = raster(tiff)
    t = profile["transform"]
    assert profile["crs"].to_epsg() == 32633 and (t.a, t.e) == (10, -10)
    assert (t.c - 500000) % 10 == 0 and (5002000 - t.f) % 10 == 0   # the native lattice
    left, top = t.c, t.f
    right, bottom = left + 10 * profile["width"], top - 10 * profile["height"]
    # the box's cells and not much more (the lat/lon box of a UTM square is a little larger)
    assert 500380 <= left <= 500400 and 500800 <= right <= 500820
    assert 5001180 <= bottom <= 5001200 and 5001600 <= top <= 5001620
    truth, hole = dem_truth(*pixel_centres(t, profile["width"], profile["height"]))
    assert np.array_equal(data[0], truth)
    # the same box delivered in EPSG:4326, offsets in lat, lon order
    step = 0.0001
    tiff = get_coverage(client, IDENTIFIER="dem", FORMAT="image/tiff", BOUNDINGBOX=bbox,
                        GRIDOFFSETS=f"{-step},{step}", GRIDORIGIN=f"{north!r},{west!r}")
    data, profile = raster(tiff)
    t = profile["transform"]
    assert profile["crs"].to_epsg() == 4326
    assert t.a == pytest.approx(step) and t.e == pytest.approx(-step)
    assert t.c == pytest.approx(west - step / 2) and t.f == pytest.approx(north + step / 2)      # lon, lat
    assert profile["width"] == int((east - west) / step + 1e-6) + 1
    assert profile["height"] == int((north - south) / step + 1e-6) + 1
    lon, lat = pixel_centres(t, profile["width"], profile["height"])
    xs, ys = Transformer.from_crs("EPSG:4326", "EPSG:32633", always_xy=True).transform(lon, lat)
    truth, hole = dem_truth(xs, ys)
    fx, fy = (xs - 500000) / 10 % 1, (5002000 - ys) / 10 % 1
    clear = (np.minimum(fx, 1 - fx) > 0.01) & (np.minimum(fy, 1 - fy) > 0.01)
    assert clear.mean() > 0.9 and np.array_equal(data[0][clear], truth[clear])


def test_ts_lat_lon_grid_as_qgis_sends_it(client):
    # 2dSimpleGrid, box shrunk by half a pixel, origin (maxLat, minLon), offsets (-dLat, dLon)
    tiff = get_coverage(client, IDENTIFIER="ts", FORMAT="image/tiff",
                        BOUNDINGBOX="30.5,10.5,59.5,39.5,urn:ogc:def:crs:EPSG::4326",
                        GRIDBASECRS="urn:ogc:def:crs:EPSG::4326", GRIDCS="urn:ogc:def:cs:OGC:0.0:Grid2dSquareCS",
                        GRIDTYPE="urn:ogc:def:method:WCS:1.1:2dSimpleGrid", GRIDORIGIN="59.5,10.5", GRIDOFFSETS="-1,1")
    data, profile = raster(tiff)
    assert profile["crs"].to_epsg() == 4326 and (profile["width"], profile["height"]) == (30, 30)
    assert tuple(profile["transform"])[:6] == (1, 0, 10, 0, -1, 60)
    lats = 59.5 - np.arange(30)
    assert np.array_equal(data[0], np.repeat(ts_value(12, lats)[:, None], 30, axis=1))   # default: latest


@pytest.mark.parametrize("time,month", [("2024-03-01T00:00:00Z", 3), ("2024-07-15", 7), ("2024-02", 2)])
def test_timesequence_selects_the_month(client, time, month):
    tiff = get_coverage(client, IDENTIFIER="ts", FORMAT="image/tiff", TIMESEQUENCE=time,
                        BOUNDINGBOX="-9.5,-9.5,9.5,9.5,urn:ogc:def:crs:EPSG::4326")
    data, profile = raster(tiff)
    assert (profile["width"], profile["height"]) == (20, 20)
    lats = 9.5 - np.arange(20)
    assert np.array_equal(data[0], np.repeat(ts_value(month, lats)[:, None], 20, axis=1))


SCENE1_ONLY = "500050,5001820,500350,5001980,urn:ogc:def:crs:EPSG::32633"    # inside scene 1, no other
SCENE4_INNER = "500700,5001000,501300,5001400,urn:ogc:def:crs:EPSG::32633"   # scene 4, well inside


@pytest.mark.parametrize("subset,bands", [("contents:nearest[Band[1,3]]", [0, 2]), ("contents[Band[Red]]", [2]),
                                          ("contents[Band[4,NearInfrared,99]]", [3]), ("contents", [0, 1, 2, 3]),
                                          ("contents:linear", [0, 1, 2, 3])])
def test_rangesubset_returns_the_asked_bands(client, subset, bands):
    for bbox, scene in ((SCENE1_ONLY, 1), (SCENE4_INNER, 4)):
        tiff = get_coverage(client, IDENTIFIER="mosaic", FORMAT="image/tiff", BOUNDINGBOX=bbox, RANGESUBSET=subset,
                            TIMESEQUENCE="2024-01-01T00:00:00Z/2024-12-31T00:00:00Z")
        data, profile = raster(tiff)
        assert profile["dtype"] == "uint16" and profile["count"] == len(bands)
        for out, b in zip(data, bands):
            assert np.all(out == mosaic_value(scene, b)), (scene, b, np.unique(out))


def test_mosaic_default_time_is_the_latest_scene_only(client):
    data, _ = raster(get_coverage(client, IDENTIFIER="mosaic", FORMAT="image/tiff", BOUNDINGBOX=SCENE1_ONLY))
    assert np.all(data == 0)                                          # nodata: scene 1 is not the latest
    data, _ = raster(get_coverage(client, IDENTIFIER="mosaic", FORMAT="image/tiff", BOUNDINGBOX=SCENE4_INNER))
    assert [int(np.unique(band)[0]) for band in data] == [mosaic_value(4, b) for b in range(4)]


@pytest.mark.parametrize("bbox", ["600000,6000000,600100,6000100,urn:ogc:def:crs:EPSG::32633",    # outside
                                  "499000,5000000,500100,5000300,urn:ogc:def:crs:EPSG::32633",    # overlapping
                                  "500000.5,5000101,500001,5000102,urn:ogc:def:crs:EPSG::32633"])  # in one cell
def test_boxes_outside_or_overlapping_are_answered(client, bbox):
    data, profile = raster(get_coverage(client, IDENTIFIER="dem", FORMAT="image/geotiff", BOUNDINGBOX=bbox,
                                        STORE="False"))
    assert profile["width"] >= 1 and profile["height"] >= 1


@pytest.mark.parametrize("params,code,locator", [
    (dict(IDENTIFIER="nope"), "InvalidParameterValue", "identifier"),
    (dict(IDENTIFIER=None), "MissingParameterValue", "identifier"),
    (dict(BOUNDINGBOX=None), "MissingParameterValue", "boundingbox"),
    (dict(BOUNDINGBOX="1,2,3"), "InvalidParameterValue", "boundingbox"),
    (dict(BOUNDINGBOX="500100,5001000,500000,5001100,urn:ogc:def:crs:EPSG::32633"), "InvalidParameterValue",
     "boundingbox"),
    (dict(BOUNDINGBOX="1,2,3,4,urn:ogc:def:crs:EPSG::999999"), "InvalidParameterValue", "boundingbox"),
    (dict(FORMAT="image/png"), "InvalidParameterValue", "format"),
    (dict(FORMAT=""), "MissingParameterValue", "format"),
    (dict(FORMAT=None), "MissingParameterValue", "format"),
    (dict(STORE="true"), "InvalidParameterValue", "store"),
    (dict(STORE="maybe"), "InvalidParameterValue", "store"),
    (dict(RANGESUBSET="contents[Band[1]"), "InvalidParameterValue", "rangesubset"),
    (dict(RANGESUBSET="contents;contents"), "InvalidParameterValue", "rangesubset"),
    (dict(RANGESUBSET="contents:nearest:cubic"), "InvalidParameterValue", "rangesubset"),
    (dict(RANGESUBSET="other[Band[1]]"), "InvalidParameterValue", "rangesubset"),
    (dict(RANGESUBSET="contents[Band[1,]]"), "InvalidParameterValue", "rangesubset"),
    (dict(GRIDTYPE="urn:ogc:def:method:WCS:1.1:bogus"), "InvalidParameterValue", "gridtype"),
    (dict(GRIDOFFSETS="10,0,5,-10"), "InvalidParameterValue", "gridoffsets"),
    (dict(GRIDOFFSETS="0,-10"), "InvalidParameterValue", "gridoffsets"),
    (dict(GRIDCS="urn:ogc:def:cs:OGC:0.0:Other"), "InvalidParameterValue", "gridcs"),
    (dict(TIMESEQUENCE="2024-01-01/"), "InvalidParameterValue", "timesequence"),
    (dict(TIMESEQUENCE="yesterday"), "InvalidParameterValue", "timesequence"),
])
def test_getcoverage_errors(client, params, code, locator):
    query = dict(SERVICE="WCS", VERSION="1.1.1", REQUEST="GetCoverage", IDENTIFIER="mosaic", FORMAT="image/tiff",
                 BOUNDINGBOX=SCENE4_INNER)
    query.update(params)
    exception(wcs(client, **query), code, locator)


def test_other_requests_and_endpoints(client):
    exception(wcs(client, SERVICE="WCS", VERSION="1.1.1", REQUEST="GetMap"), "OperationNotSupported", "request",
              status=501)
    resp = wcs(client, "/arcgis/services/nope/ImageServer/WCSServer", SERVICE="WCS", VERSION="1.1.1",
               REQUEST="GetCapabilities")
    exception(resp, "InvalidParameterValue", status=404)
    # the one coverage of a service's own endpoint; the others are unknown there
    assert get_coverage(client, DEM_WCS, IDENTIFIER="dem", FORMAT="image/tiff", BOUNDINGBOX=DEM_CENTRES)
    resp = wcs(client, DEM_WCS, SERVICE="WCS", VERSION="1.1.1", REQUEST="DescribeCoverage", IDENTIFIERS="ts")
    exception(resp, "InvalidParameterValue", "identifiers")


# --- XML requests (POST) ----------------------------------------------------------------------------

POST_DEM = """<?xml version="1.0" encoding="UTF-8"?>
<GetCoverage xmlns="http://www.opengis.net/wcs/1.1.1" xmlns:ows="http://www.opengis.net/ows/1.1"
    service="WCS" version="1.1.1">
  <ows:Identifier>dem</ows:Identifier>
  <DomainSubset>
    <ows:BoundingBox crs="urn:ogc:def:crs:EPSG::32633">
      <ows:LowerCorner>500405 5001205</ows:LowerCorner>
      <ows:UpperCorner>500795 5001595</ows:UpperCorner>
    </ows:BoundingBox>
  </DomainSubset>
  <RangeSubset>
    <FieldSubset><ows:Identifier>contents</ows:Identifier><InterpolationType>nearest</InterpolationType></FieldSubset>
  </RangeSubset>
  <Output format="image/tiff" store="false">
    <GridCRS>
      <GridBaseCRS>urn:ogc:def:crs:EPSG::32633</GridBaseCRS>
      <GridType>urn:ogc:def:method:WCS:1.1:2dSimpleGrid</GridType>
      <GridOrigin>500405 5001595</GridOrigin>
      <GridOffsets>20 -20</GridOffsets>
      <GridCS>urn:ogc:def:cs:OGC:0.0:Grid2dSquareCS</GridCS>
    </GridCRS>
  </Output>
</GetCoverage>"""
KVP_DEM = dict(IDENTIFIER="dem", FORMAT="image/tiff", STORE="false",
               BOUNDINGBOX="500405,5001205,500795,5001595,urn:ogc:def:crs:EPSG::32633", RANGESUBSET="contents:nearest",
               GRIDBASECRS="urn:ogc:def:crs:EPSG::32633", GRIDTYPE="urn:ogc:def:method:WCS:1.1:2dSimpleGrid",
               GRIDORIGIN="500405,5001595", GRIDOFFSETS="20,-20", GRIDCS="urn:ogc:def:cs:OGC:0.0:Grid2dSquareCS")
POST_MOSAIC = """<GetCoverage xmlns="http://www.opengis.net/wcs/1.1.1" xmlns:ows="http://www.opengis.net/ows/1.1"
    xmlns:gml="http://www.opengis.net/gml" service="WCS" version="1.1.1">
  <ows:Identifier>mosaic</ows:Identifier>
  <DomainSubset>
    <ows:BoundingBox crs="urn:ogc:def:crs:EPSG::32633">
      <ows:LowerCorner>500050 5001820</ows:LowerCorner><ows:UpperCorner>500350 5001980</ows:UpperCorner>
    </ows:BoundingBox>
    <TemporalSubset>
      <TimePeriod>
        <BeginPosition>2024-01-01T00:00:00Z</BeginPosition><EndPosition>2024-12-31T00:00:00Z</EndPosition>
      </TimePeriod>
    </TemporalSubset>
  </DomainSubset>
  <RangeSubset>
    <FieldSubset>
      <ows:Identifier>contents</ows:Identifier>
      <AxisSubset><Identifier>Band</Identifier><Key>2</Key><Key>4</Key></AxisSubset>
    </FieldSubset>
  </RangeSubset>
  <Output format="image/tiff"/>
</GetCoverage>"""
KVP_MOSAIC = dict(IDENTIFIER="mosaic", FORMAT="image/tiff", BOUNDINGBOX=SCENE1_ONLY, RANGESUBSET="contents[Band[2,4]]",
                  TIMESEQUENCE="2024-01-01T00:00:00Z/2024-12-31T00:00:00Z")


@pytest.mark.parametrize("body,params", [(POST_DEM, KVP_DEM), (POST_MOSAIC, KVP_MOSAIC)])
def test_post_xml_getcoverage_equals_the_kvp_one(client, body, params):
    resp = client.post(WCS, data=body, content_type="text/xml")
    assert resp.status_code == 200, resp.data[:800]
    _, posted = coverage_parts(resp.headers["Content-Type"], resp.data, params["IDENTIFIER"])
    by_kvp = get_coverage(client, **params)
    (a, pa), (b, pb) = raster(posted), raster(by_kvp)
    assert np.array_equal(a, b) and pa["transform"] == pb["transform"] and pa["crs"] == pb["crs"]
    assert posted == by_kvp
    if params["IDENTIFIER"] == "dem":
        assert (pa["width"], pa["height"]) == (20, 20)
    else:
        assert [int(np.unique(band)[0]) for band in a] == [mosaic_value(1, 1), mosaic_value(1, 3)]


def test_post_xml_describe_coverage(client):
    body = ('<DescribeCoverage xmlns="http://www.opengis.net/wcs/1.1.1" service="WCS" version="1.1.1">'
            '<Identifier>ts</Identifier><Identifier>dem</Identifier></DescribeCoverage>')
    root = document(client.post(WCS, data=body, content_type="text/xml"), "CoverageDescriptions")
    assert [d.findtext("wcs:Identifier", namespaces=NS) for d in root] == ["ts", "dem"]


def test_post_xml_with_a_doctype_is_refused_without_expanding_entities(client):
    body = """<?xml version="1.0"?>
<!DOCTYPE GetCoverage [<!ENTITY xxe SYSTEM "file:///etc/passwd"><!ENTITY big "dem">]>
<GetCoverage xmlns="http://www.opengis.net/wcs/1.1.1" xmlns:ows="http://www.opengis.net/ows/1.1"
    service="WCS" version="1.1.1"><ows:Identifier>&big;&xxe;</ows:Identifier>
  <Output format="image/tiff"/></GetCoverage>"""
    resp = client.post(WCS, data=body, content_type="text/xml")
    exception(resp, "InvalidParameterValue", "request")
    assert b"root:" not in resp.data


# --- clients: OWSLib and GDAL on a real socket ------------------------------------------------------

@pytest.fixture()
def no_proxy(monkeypatch, tmp_path):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return tmp_path


def test_owslib_reads_the_capabilities(live_url, no_proxy):
    from owslib.wcs import WebCoverageService
    service = WebCoverageService(live_url + WCS, version="1.1.1")
    assert service.version == "1.1.1"
    assert service.identification.type == "WCS" and service.identification.fees == "none"
    assert {"dem", "mosaic", "ts"} == set(service.contents)
    dem = service["dem"]
    assert dem.title == "Analytic DEM"
    assert dem.boundingBoxWGS84 == pytest.approx(geographic_bounds(DEM_BOX), abs=1e-7)
    assert {"EPSG:32633", "EPSG:4326", "EPSG:3857"} <= {c.getcode() for c in dem.supportedCRS}
    assert dem.supportedFormats == ["image/tiff"]
    assert [op.name for op in service.operations] == ["GetCapabilities", "DescribeCoverage", "GetCoverage"]


def test_owslib_getcoverage_round_trip(live_url, no_proxy, client):
    from owslib.wcs import WebCoverageService
    service = WebCoverageService(live_url + WCS, version="1.1.1")
    answer = service.getCoverage(identifier="dem", bbox=(500005, 5001205, 500395, 5001995),
                                 crs="urn:ogc:def:crs:EPSG::32633", format="image/tiff")
    _, tiff = coverage_parts(answer.info()["Content-Type"], answer.read(), "dem")
    data, profile = raster(tiff)
    assert (profile["width"], profile["height"]) == (40, 80)
    assert tuple(profile["transform"])[:6] == (10, 0, 500000, 0, -10, 5002000)
    truth, hole = dem_truth(*pixel_centres(profile["transform"], 40, 80))
    assert hole.sum() == 100
    assert np.array_equal(data[0][~hole], truth[~hole]) and np.all(data[0][hole] == DEM_NODATA)
    assert tiff == get_coverage(client, IDENTIFIER="dem", FORMAT="image/tiff",
                                BOUNDINGBOX="500005,5001205,500395,5001995,urn:ogc:def:crs:EPSG::32633")


def gdal(fn):
    """Run a GDAL client call in a thread of its own, with PAM enabled there: the engine sets
    GDAL_PAM_ENABLED=NO for the process (engine/read.py), and GDAL 3.10's WCS driver crashes without
    PAM. A thread also keeps a failed read's error state away from the test's own GDAL calls."""
    def run():
        with rasterio.Env(GDAL_PAM_ENABLED="YES", GDAL_HTTP_TIMEOUT="60", GDAL_HTTP_MAX_RETRY="0"):
            return fn()
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def test_gdal_reads_a_dem_window_bit_for_bit(live_url, no_proxy):
    def read():
        with rasterio.open(f"WCS:{live_url}{WCS}?version=1.1.1&coverage=dem", CACHE=str(no_proxy / "wcs")) as ds:
            return ds.profile, ds.read(1, window=((5, 45), (8, 58))), ds.nodatavals
    profile, data, nodata = gdal(read)
    assert profile["crs"].to_epsg() == 32633 and profile["dtype"] == "float32"
    assert tuple(profile["transform"])[:6] == (10, 0, 500000, 0, -10, 5002000)
    assert nodata == (DEM_NODATA,)
    # GDAL reads the imageCRS upper corner (W-1, H-1) as the size: one cell fewer, harmless
    assert (profile["width"], profile["height"]) == (189, 189)
    rows, cols = np.mgrid[5:45, 8:58]
    truth, hole = dem_truth(500005.0 + 10 * cols, 5001995.0 - 10 * rows)
    assert hole.sum() == 100
    assert np.array_equal(data[~hole], truth[~hole]) and np.all(data[hole] == DEM_NODATA)


def test_gdal_reads_the_lat_lon_series_and_the_mosaic_bands(live_url, no_proxy):
    def read(coverage, window):
        with rasterio.open(f"WCS:{live_url}{WCS}?version=1.1.1&coverage={coverage}",
                           CACHE=str(no_proxy / "wcs")) as ds:
            return ds.profile, ds.read(window=window)
    profile, data = gdal(lambda: read("ts", ((10, 40), (100, 120))))
    assert profile["crs"].to_epsg() == 4326 and profile["count"] == 1
    assert tuple(profile["transform"])[:6] == (1, 0, -180, 0, -1, 90)     # lon/lat, not swapped
    lats = 89.5 - np.arange(10, 40)
    assert np.array_equal(data[0], np.repeat(ts_value(12, lats)[:, None], 20, axis=1))
    profile, data = gdal(lambda: read("mosaic", ((35, 45), (45, 55))))   # inside scene 4, the default time
    assert profile["count"] == 4 and profile["dtype"] == "uint16" and profile["nodata"] == 0
    assert [int(np.unique(band)[0]) for band in data] == [mosaic_value(4, b) for b in range(4)]
