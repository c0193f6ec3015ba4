"""WCS 2.0.1 (/ogc/wcs and /arcgis/services/{name}/ImageServer/WCSServer) against the analytic truth of
tests/synth.py: schema-valid capabilities, coverage descriptions and exception reports; GetCoverage
values bit for bit on the native grid; subsetting, the CRS, scaling, range-subsetting, interpolation
and GeoTIFF extensions; time; multipart; XML POST; every exception code with its HTTP status; and the
clients that read it on a real socket: GDAL's WCS driver (through rasterio) and OWSLib."""

from __future__ import annotations

import email
import email.policy
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import rasterio
from lxml import etree
from pyproj import Transformer
from rasterio.errors import RasterioIOError
from rasterio.io import MemoryFile
from rasterio.warp import transform_bounds
from rasterio.windows import Window

import ogc_schemas
from ogc_schemas import validate
from synth import DEM_NODATA, MOSAIC_BANDS, MOSAIC_DATES, dem_value, mosaic_value, ts_value

WCS = "/ogc/wcs"
DEM_WCS = "/arcgis/services/dem/ImageServer/WCSServer"
NS = {"wcs": "http://www.opengis.net/wcs/2.0", "ows": "http://www.opengis.net/ows/2.0",
      "gml": "http://www.opengis.net/gml/3.2", "gmlcov": "http://www.opengis.net/gmlcov/1.0",
      "swe": "http://www.opengis.net/swe/2.0", "crs": "http://www.opengis.net/wcs/crs/1.0",
      "int": "http://www.opengis.net/wcs/interpolation/1.0", "xlink": "http://www.w3.org/1999/xlink"}
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
INTERP = "http://www.opengis.net/def/interpolation/OGC/1/"
SPEC = "http://www.opengis.net/spec/"

DEM_BOX = (500000.0, 5000100.0, 501900.0, 5002000.0)
HOLE = (500100.0, 5001800.0, 500200.0, 5001900.0)
TS_MONTHS = [f"2024-{m:02d}-01T00:00:00Z" for m in range(1, 13)]


# --- helpers ----------------------------------------------------------------------------------------

def kvp(request: str, **params) -> dict:
    return {"SERVICE": "WCS", "VERSION": "2.0.1", "REQUEST": request, **params}


def xml(resp):
    return etree.fromstring(resp.data)


def tiff(data: bytes):
    """(values (bands, rows, cols), profile, bounds, band descriptions) of GeoTIFF bytes."""
    with MemoryFile(data) as memfile, memfile.open() as ds:
        return ds.read(), ds.profile, ds.bounds, ds.descriptions


def get_coverage(client, path=WCS, **params):
    resp = client.get(path, query_string=kvp("GetCoverage", **params))
    assert resp.status_code == 200, resp.data[-400:]
    assert resp.content_type == "image/tiff"
    return tiff(resp.data)


def centres(box, width, height):
    x0, y0, x1, y1 = box
    xs = x0 + (np.arange(width) + 0.5) * (x1 - x0) / width
    ys = y1 - (np.arange(height) + 0.5) * (y1 - y0) / height
    return np.meshgrid(xs, ys)


def dem_truth(box, width, height, res=10.0):
    """The DEM at the centres of a grid on `box` (EPSG:32633), nearest neighbour: the plane at the centre
    of the source pixel holding each centre, -9999 in the hole. `res` 20 is the tiles' overview (factor
    2, averaged), which the engine reads for coarser grids; on a plane an average of 2 x 2 pixels is the
    plane at the overview pixel's centre. Tests choose grids whose centres are source centres."""
    xs, ys = centres(box, width, height)
    cx = 500000.0 + res * (np.floor((xs - 500000.0) / res) + 0.5)
    cy = 5002000.0 - res * (np.floor((5002000.0 - ys) / res) + 0.5)
    assert np.allclose(cx, xs) and np.allclose(cy, ys), "the grid's centres are not source pixel centres"
    hole = (cx > HOLE[0]) & (cx < HOLE[2]) & (cy > HOLE[1]) & (cy < HOLE[3])
    return np.where(hole, np.float32(DEM_NODATA), dem_value(cx, cy))


def dem_at_points(xs, ys):
    """For UTM points: the value of the source pixel holding each (nearest neighbour), and whether the
    point is within 0.05 px of a pixel edge (either neighbour is then a fair answer)."""
    fx, fy = (np.asarray(xs) - 500000.0) / 10.0, (5002000.0 - np.asarray(ys)) / 10.0
    col, row = np.floor(fx), np.floor(fy)
    cx, cy = 500000.0 + 10 * (col + 0.5), 5002000.0 - 10 * (row + 0.5)
    values = dem_value(cx, cy)
    hole = (cx > HOLE[0]) & (cx < HOLE[2]) & (cy > HOLE[1]) & (cy < HOLE[3])
    edge = (np.minimum(fx - col, col + 1 - fx) < 0.05) | (np.minimum(fy - row, row + 1 - fy) < 0.05)
    return np.where(hole, np.float32(DEM_NODATA), values), edge


def exception_of(resp, code, status, locator=None):
    """Check an OWS 2.0 exception report: schema, code, status, locator, Content-Type."""
    assert resp.status_code == status, resp.data
    assert resp.content_type == "application/xml"
    validate(resp.data)
    root = xml(resp)
    assert root.tag == "{http://www.opengis.net/ows/2.0}ExceptionReport" and root.get("version") == "2.0.1"
    exc = root.find("ows:Exception", NS)
    assert exc.get("exceptionCode") == code
    if locator is not None:
        assert exc.get("locator") == locator
    assert exc.findtext("ows:ExceptionText", namespaces=NS).strip()


@pytest.fixture()
def gdal_env(monkeypatch, tmp_path):
    """GDAL on the local socket: no proxy, failures fast, a private WCS cache. GDAL_PAM_ENABLED=YES:
    GDAL's WCS driver segfaults with PAM off, which ogc_gateway.engine.read sets for the server's own
    reads (the server runs in this process)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with rasterio.Env(GDAL_PAM_ENABLED="YES", GDAL_HTTP_TIMEOUT="60", GDAL_HTTP_MAX_RETRY="0"):
        yield tmp_path / "wcscache"


# --- GetCapabilities ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path, ids", [(WCS, {"dem", "mosaic", "ts"}), (DEM_WCS, {"dem"})])
def test_capabilities_are_schema_valid_and_complete(client, path, ids):
    resp = client.get(path, query_string={"SERVICE": "WCS", "REQUEST": "GetCapabilities"})
    assert resp.status_code == 200 and resp.content_type == "application/xml"
    validate(resp.data)
    root = xml(resp)
    assert root.tag == "{http://www.opengis.net/wcs/2.0}Capabilities" and root.get("version") == "2.0.1"
    ident = root.find("ows:ServiceIdentification", NS)
    assert ident.findtext("ows:ServiceType", namespaces=NS) == "OGC WCS"
    assert ident.findtext("ows:ServiceTypeVersion", namespaces=NS) == "2.0.1"
    assert ident.findtext("ows:Fees", namespaces=NS) and ident.findtext("ows:AccessConstraints", namespaces=NS)
    profiles = {p.text for p in ident.findall("ows:Profile", NS)}
    for extension in ("WCS/2.0/conf/core", "WCS_protocol-binding_get-kvp/1.0/conf/get-kvp",
                      "GMLCOV/1.0/conf/multipart", "GMLCOV_geotiff-coverages/1.0/conf/geotiff-coverage",
                      "WCS_service-extension_crs/1.0/conf/crs",
                      "WCS_service-extension_scaling/1.0/conf/scaling",
                      "WCS_service-extension_range-subsetting/1.0/conf/record-subsetting",
                      "WCS_service-extension_interpolation/1.0/conf/interpolation"):
        assert SPEC + extension in profiles
    assert SPEC + "GMLCOV/1.0/conf/gml-coverage" not in profiles        # no application/gml+xml output
    endpoint = "http://localhost" + path + "?"
    for op in ("GetCapabilities", "DescribeCoverage", "GetCoverage"):
        http = root.find(f"ows:OperationsMetadata/ows:Operation[@name='{op}']/ows:DCP/ows:HTTP", NS)
        assert http.find("ows:Get", NS).get(f"{{{NS['xlink']}}}href") == endpoint
        assert http.find("ows:Post", NS).get(f"{{{NS['xlink']}}}href") == endpoint
    meta = root.find("wcs:ServiceMetadata", NS)
    assert [f.text for f in meta.findall("wcs:formatSupported", NS)] == ["image/tiff"]
    crs = [c.text for c in meta.findall("wcs:Extension/crs:CrsMetadata/crs:crsSupported", NS)]
    assert {EPSG + "32633", EPSG + "4326", EPSG + "3857"} <= set(crs) and len(crs) == len(set(crs))
    interp = [c.text for c in meta.findall("wcs:Extension/int:InterpolationMetadata/int:InterpolationSupported", NS)]
    assert interp == [INTERP + "nearest-neighbor", INTERP + "linear", INTERP + "cubic"]
    summaries = {s.findtext("wcs:CoverageId", namespaces=NS): s
                 for s in root.findall("wcs:Contents/wcs:CoverageSummary", NS)}
    assert set(summaries) == ids
    dem = summaries["dem"]
    assert dem.findtext("wcs:CoverageSubtype", namespaces=NS) == "RectifiedGridCoverage"
    lower = [float(v) for v in dem.findtext("ows:WGS84BoundingBox/ows:LowerCorner", namespaces=NS).split()]
    upper = [float(v) for v in dem.findtext("ows:WGS84BoundingBox/ows:UpperCorner", namespaces=NS).split()]
    w, s, e, n = transform_bounds("EPSG:32633", "EPSG:4326", *DEM_BOX, densify_pts=21)
    assert lower + upper == pytest.approx([w, s, e, n], abs=1e-7)
    box = dem.find("ows:BoundingBox", NS)
    assert box.get("crs") == EPSG + "32633"
    assert box.findtext("ows:LowerCorner", namespaces=NS) == "500000 5000100"


def test_capabilities_version_negotiation(client):
    for accept in ("2.0.1", "2.0.0,1.0.0", "3.0,2.0.1"):
        resp = client.get(WCS, query_string={"service": "WCS", "request": "GetCapabilities", "acceptversions": accept})
        assert xml(resp).get("version") == "2.0.1"
    resp = client.get(WCS, query_string={"SERVICE": "WCS", "REQUEST": "GetCapabilities", "ACCEPTVERSIONS": "9.9.9"})
    exception_of(resp, "VersionNegotiationFailed", 400)


def test_capabilities_sections_and_update_sequence(client):
    base = {"SERVICE": "WCS", "REQUEST": "GetCapabilities", "VERSION": "2.0.1"}
    full = xml(client.get(WCS, query_string=base))
    sequence = int(full.get("updateSequence"))
    resp = client.get(WCS, query_string={**base, "SECTIONS": "Contents,ServiceMetadata"})
    validate(resp.data)
    assert [etree.QName(c).localname for c in xml(resp)] == ["ServiceMetadata", "Contents"]
    resp = client.get(WCS, query_string={**base, "UPDATESEQUENCE": str(sequence)})
    validate(resp.data)
    root = xml(resp)
    assert len(root) == 0 and root.get("updateSequence") == str(sequence)
    assert len(xml(client.get(WCS, query_string={**base, "UPDATESEQUENCE": str(sequence - 1)}))) == 5
    exception_of(client.get(WCS, query_string={**base, "UPDATESEQUENCE": str(sequence + 1)}),
                 "InvalidUpdateSequence", 400)
    exception_of(client.get(WCS, query_string={**base, "SECTIONS": "Everything"}), "InvalidParameterValue", 400)


def test_unknown_service_endpoint_is_an_exception_report(client):
    resp = client.get("/arcgis/services/nope/ImageServer/WCSServer",
                      query_string={"SERVICE": "WCS", "REQUEST": "GetCapabilities"})
    exception_of(resp, "NoApplicableCode", 404)
    exception_of(client.get("/arcgis/services/nope/ImageServer/WCSServer",
                            query_string=kvp("DescribeCoverage", COVERAGEID="nope")), "NoSuchCoverage", 404, "nope")


# --- DescribeCoverage ---------------------------------------------------------------------------------

def description(client, cid, path=WCS):
    resp = client.get(path, query_string=kvp("DescribeCoverage", COVERAGEID=cid))
    assert resp.status_code == 200 and resp.content_type == "application/xml"
    validate(resp.data)
    return xml(resp)


def test_describe_dem_is_its_native_grid(client):
    root = description(client, "dem", DEM_WCS)
    cov = root.find("wcs:CoverageDescription", NS)
    assert cov.get(f"{{{NS['gml']}}}id") == "dem" and cov.findtext("wcs:CoverageId", namespaces=NS) == "dem"
    env = cov.find("gml:boundedBy/gml:Envelope", NS)
    assert env.get("srsName") == EPSG + "32633"
    assert env.get("axisLabels") == "E N" and env.get("uomLabels") == "m m" and env.get("srsDimension") == "2"
    assert env.findtext("gml:lowerCorner", namespaces=NS) == "500000 5000100"
    assert env.findtext("gml:upperCorner", namespaces=NS) == "501900 5002000"
    grid = cov.find("gml:domainSet/gml:RectifiedGrid", NS)
    assert grid.get("dimension") == "2"
    assert grid.findtext("gml:limits/gml:GridEnvelope/gml:low", namespaces=NS) == "0 0"
    assert grid.findtext("gml:limits/gml:GridEnvelope/gml:high", namespaces=NS) == "189 189"
    assert grid.findtext("gml:axisLabels", namespaces=NS) == "i j"
    point = grid.find("gml:origin/gml:Point", NS)
    assert point.findtext("gml:pos", namespaces=NS) == "500005 5001995"          # centre of the top-left pixel
    assert [v.text for v in grid.findall("gml:offsetVector", NS)] == ["10 0", "0 -10"]
    srs = {point.get("srsName")} | {v.get("srsName") for v in grid.findall("gml:offsetVector", NS)}
    assert srs == {EPSG + "32633"}
    fields = cov.findall("gmlcov:rangeType/swe:DataRecord/swe:field", NS)
    assert len(fields) == 1
    nil = fields[0].find("swe:Quantity/swe:nilValues/swe:NilValues/swe:nilValue", NS)
    assert float(nil.text) == DEM_NODATA and nil.get("reason")
    assert fields[0].find("swe:Quantity/swe:uom", NS).get("code")
    assert cov.findtext("wcs:ServiceParameters/wcs:CoverageSubtype", namespaces=NS) == "RectifiedGridCoverage"
    assert cov.findtext("wcs:ServiceParameters/wcs:nativeFormat", namespaces=NS) == "image/tiff"
    assert cov.find("gmlcov:metadata", NS) is None                             # no time


def test_describe_ts_uses_the_crs_axis_order_and_lists_its_times(client):
    from pyproj import CRS as ProjCRS
    labels = " ".join(a.abbrev for a in ProjCRS.from_epsg(4326).axis_info)      # the EPSG database decides
    cov = description(client, "ts").find("wcs:CoverageDescription", NS)
    env = cov.find("gml:boundedBy/gml:Envelope", NS)
    assert env.get("srsName") == EPSG + "4326" and env.get("axisLabels") == labels
    assert labels.split()[0] == "Lat"
    assert env.findtext("gml:lowerCorner", namespaces=NS) == "-90 -180"
    assert env.findtext("gml:upperCorner", namespaces=NS) == "90 180"
    grid = cov.find("gml:domainSet/gml:RectifiedGrid", NS)
    assert grid.findtext("gml:limits/gml:GridEnvelope/gml:high", namespaces=NS) == "359 179"
    assert grid.findtext("gml:origin/gml:Point/gml:pos", namespaces=NS) == "89.5 -179.5"
    assert [v.text for v in grid.findall("gml:offsetVector", NS)] == ["0 1", "-1 0"]
    times = [t.text for t in cov.iterfind("gmlcov:metadata/gmlcov:Extension/*/gml:TimeInstant/gml:timePosition", NS)]
    assert times == TS_MONTHS
    assert cov.find("gmlcov:rangeType//swe:nilValues", NS) is None               # ts has no nodata


def test_describe_mosaic_fields_and_several_ids(client):
    root = description(client, "mosaic,dem")
    covs = root.findall("wcs:CoverageDescription", NS)
    assert [c.findtext("wcs:CoverageId", namespaces=NS) for c in covs] == ["mosaic", "dem"]
    fields = covs[0].findall("gmlcov:rangeType/swe:DataRecord/swe:field", NS)
    assert [f.get("name") for f in fields] == list(MOSAIC_BANDS)
    assert {f.findtext("swe:Quantity/swe:nilValues/swe:NilValues/swe:nilValue", namespaces=NS) for f in fields} == {"0"}
    times = [t.text for t in covs[0].iterfind(".//gml:timePosition", NS)]
    assert times == [f"{d}T10:30:00Z" for d in MOSAIC_DATES.values()]


def test_describe_errors(client):
    exception_of(client.get(WCS, query_string=kvp("DescribeCoverage", COVERAGEID="dem,nope")),
                 "NoSuchCoverage", 404, "nope")
    exception_of(client.get(WCS, query_string=kvp("DescribeCoverage")), "MissingParameterValue", 400)
    exception_of(client.get(WCS, query_string=kvp("DescribeCoverage", COVERAGEID=" , ")), "emptyCoverageIdList", 404)
    # names are case-insensitive (values are not): the CITE tests send coverageid and CoverageId
    resp = client.get(WCS, query_string={"service": "WCS", "version": "2.0.1", "request": "DescribeCoverage",
                                         "CoverageId": "dem", "format": "text/xml"})
    assert resp.status_code == 200
    exception_of(client.get(WCS, query_string=kvp("DescribeCoverage", coverageid="DEM")), "NoSuchCoverage", 404)


# --- GetCoverage: the native grid ----------------------------------------------------------------------

def test_whole_dem_is_the_source_bit_for_bit(client):
    resp = client.get(DEM_WCS, query_string=kvp("GetCoverage", COVERAGEID="dem"))
    assert resp.headers["Content-Disposition"] == 'inline; filename="dem.tif"'
    values, profile, bounds, _ = tiff(resp.data)
    assert values.dtype == np.float32 and values.shape == (1, 190, 190)
    assert profile["crs"].to_epsg() == 32633 and profile["nodata"] == DEM_NODATA
    assert tuple(profile["transform"])[:6] == (10.0, 0.0, 500000.0, 0.0, -10.0, 5002000.0)
    truth = dem_truth(DEM_BOX, 190, 190)
    assert (truth == DEM_NODATA).sum() == 100
    assert np.array_equal(values[0], truth)


def test_trims_select_the_pixels_whose_centres_they_hold(client):
    # GDAL sends the outer edges of the pixels it wants (%.17g)
    values, profile, bounds, _ = get_coverage(client, COVERAGEID="dem",
                                              SUBSET=["E(%.17g,%.17g)" % (500100, 500300), "N(5001000,5001100)"])
    assert tuple(bounds) == (500100, 5001000, 500300, 5001100) and values.shape == (1, 10, 20)
    assert np.array_equal(values[0], dem_truth(tuple(bounds), 20, 10))
    # edges that cut pixels: only the centres inside count (inclusive); '*' is unbounded
    values, _, bounds, _ = get_coverage(client, COVERAGEID="dem", SUBSET=["E(500103,500305)", "N(5001985,*)"])
    assert tuple(bounds) == (500100, 5001980, 500310, 5002000) and values.shape == (1, 2, 21)
    assert np.array_equal(values[0], dem_truth(tuple(bounds), 21, 2))
    # trims reaching past the coverage are clamped to it
    values, _, bounds, _ = get_coverage(client, COVERAGEID="dem", SUBSET=["E(499000,500050)", "N(4000000,6000000)"])
    assert tuple(bounds) == (500000, 5000100, 500050, 5002000)


def test_subset_order_and_key_spelling_do_not_matter(client):
    a = get_coverage(client, COVERAGEID="dem", SUBSET=["E(500400,500600)", "N(5001200,5001500)"])
    b = get_coverage(client, COVERAGEID="dem", SUBSET=["N(5001200,5001500)", "E(500400,500600)"])
    query = "&".join(f"{k}={v}" for k, v in kvp("GetCoverage", COVERAGEID="dem").items())
    resp = client.get(WCS + "?" + query + "&SUBSET0=N(5001200,5001500)&subsetX=E(500400,500600)")
    c = tiff(resp.data)
    for other in (b, c):
        assert np.array_equal(a[0], other[0]) and tuple(a[2]) == tuple(other[2])


def test_a_spatial_slice_is_one_pixel_wide(client):
    values, _, bounds, _ = get_coverage(client, COVERAGEID="dem", SUBSET=["E(500123)", "N(5001000,5001100)"])
    assert values.shape == (1, 10, 1) and tuple(bounds) == (500120, 5001000, 500130, 5001100)
    assert np.array_equal(values[0], dem_truth(tuple(bounds), 1, 10))


# --- GetCoverage: the CRS extension --------------------------------------------------------------------

@pytest.mark.parametrize("lon_label", ["Lon", "Long"])
def test_subset_and_output_in_epsg_4326_land_where_pyproj_says(client, lon_label):
    lat0, lat1, lon0, lon1 = 45.160, 45.165, 15.005, 15.015
    values, profile, bounds, _ = get_coverage(
        client, COVERAGEID="dem", SUBSETTINGCRS=EPSG + "4326", OUTPUTCRS=EPSG + "4326",
        SUBSET=[f"Lat({lat0},{lat1})", f"{lon_label}({lon0},{lon1})"])
    assert profile["crs"].to_epsg() == 4326
    assert tuple(bounds) == pytest.approx((lon0, lat0, lon1, lat1), abs=1e-12)
    height, width = values.shape[1:]
    lons, lats = centres((lon0, lat0, lon1, lat1), width, height)
    xs, ys = Transformer.from_crs(4326, 32633, always_xy=True).transform(lons, lats)
    truth, edge = dem_at_points(xs, ys)
    assert edge.mean() < 0.3           # 0.05 px either side of both edges: ~20 % of the points
    assert np.array_equal(values[0][~edge], truth[~edge])


def test_subsetting_crs_alone_returns_native_pixels(client):
    lat0, lat1, lon0, lon1 = 45.160, 45.165, 15.005, 15.015
    values, profile, bounds, _ = get_coverage(client, COVERAGEID="dem", SUBSETTINGCRS="EPSG:4326",
                                              SUBSET=[f"Lat({lat0},{lat1})", f"Lon({lon0},{lon1})"])
    assert profile["crs"].to_epsg() == 32633
    x0, y0, x1, y1 = transform_bounds("EPSG:4326", "EPSG:32633", lon0, lat0, lon1, lat1, densify_pts=21)
    # native pixels whose centres lie in the box pyproj gives
    assert bounds.left == pytest.approx(np.ceil((x0 - 500005) / 10) * 10 + 500000)
    assert bounds.right == pytest.approx(np.floor((x1 - 500005) / 10) * 10 + 500010)
    assert bounds.top == pytest.approx(5002000 - np.ceil((5001995 - y1) / 10) * 10)
    assert bounds.bottom == pytest.approx(5002000 - np.floor((5001995 - y0) / 10) * 10 - 10)
    height, width = values.shape[1:]
    assert np.array_equal(values[0], dem_truth(tuple(bounds), width, height))
    # the WCS 2.0.0 form, with the CRS inside the SUBSET, means the same
    old = get_coverage(client, COVERAGEID="dem", SUBSET=[f"Lat,{EPSG}4326({lat0},{lat1})",
                                                         f"Lon,{EPSG}4326({lon0},{lon1})"])
    assert tuple(old[2]) == tuple(bounds) and np.array_equal(old[0], values)


def test_output_crs_web_mercator_covers_the_dem(client):
    values, profile, bounds, _ = get_coverage(client, COVERAGEID="dem", OUTPUTCRS=EPSG + "3857")
    assert profile["crs"].to_epsg() == 3857
    from rasterio.crs import CRS

    from ogc_gateway.engine.grid import extent_in
    expected = extent_in(DEM_BOX, CRS.from_epsg(32633), CRS.from_epsg(3857))
    assert tuple(bounds) == pytest.approx(expected)
    height, width = values.shape[1:]
    xs, ys = centres(tuple(bounds), width, height)
    ux, uy = Transformer.from_crs(3857, 32633, always_xy=True).transform(xs, ys)
    truth, edge = dem_at_points(ux, uy)
    inside = (ux > 500000) & (ux < 501900) & (uy > 5000100) & (uy < 5002000) & ~edge
    assert inside.mean() > 0.8
    assert np.array_equal(values[0][inside], truth[inside])


# --- GetCoverage: scaling, interpolation, range subsetting, GeoTIFF ----------------------------------------

def test_scalefactor_multiplies_the_size(client):
    values, _, bounds, _ = get_coverage(client, COVERAGEID="dem", SCALEFACTOR="0.5")
    assert values.shape == (1, 95, 95) and tuple(bounds) == DEM_BOX
    assert np.array_equal(values[0], dem_truth(DEM_BOX, 95, 95, res=20))       # 20 m cells: the overview
    values, _, bounds, _ = get_coverage(client, COVERAGEID="dem", SCALEAXES="i(0.2),j(0.1)")
    assert values.shape == (1, 19, 38) and tuple(bounds) == DEM_BOX


AXIS = "http://www.opengis.net/def/axis/OGC/1/"


@pytest.mark.parametrize("i, j", [("i", "j"), ("x", "y"), ("E", "N"), (AXIS + "i", AXIS + "j")])
def test_scalesize_accepts_grid_crs_and_uri_labels(client, i, j):
    # 19 x 5 cells of 100 x 380 m, whose centres are centres of the 20 m overview's pixels
    values, _, bounds, _ = get_coverage(client, COVERAGEID="dem", SCALESIZE=f"{j}(5),{i}(19)")
    assert values.shape == (1, 5, 19) and tuple(bounds) == DEM_BOX
    assert np.array_equal(values[0], dem_truth(DEM_BOX, 19, 5, res=20))


def test_scaleextent_and_vendor_size(client):
    values, _, _, _ = get_coverage(client, COVERAGEID="dem", SCALEEXTENT="i(0:37),j(0:9)")
    assert values.shape == (1, 10, 38)
    values, _, _, _ = get_coverage(client, COVERAGEID="dem", SIZE="E(38)")            # MapServer's, from OWSLib
    assert values.shape == (1, 190, 38)


def test_interpolation_uris_and_short_names(client):
    sub = ["E(500400,500800)", "N(5001200,5001600)"]
    nearest = get_coverage(client, COVERAGEID="dem", SUBSET=sub, INTERPOLATION=INTERP + "nearest-neighbor")
    assert np.array_equal(nearest[0][0], dem_truth(tuple(nearest[2]), 40, 40))
    # on a plane, linear interpolation between pixel centres is the plane itself
    linear = get_coverage(client, COVERAGEID="dem", SUBSET=sub, SCALESIZE="i(30),j(30)",
                          INTERPOLATION=INTERP + "linear")
    assert np.allclose(linear[0][0], dem_value(*centres(tuple(linear[2]), 30, 30)), atol=1e-3)
    short = get_coverage(client, COVERAGEID="dem", SUBSET=sub, SCALESIZE="i(30),j(30)", INTERPOLATION="linear")
    assert np.array_equal(short[0], linear[0])
    cubic = get_coverage(client, COVERAGEID="dem", SUBSET=sub, INTERPOLATIONPERAXIS=f"i,{INTERP}cubic;j,{INTERP}cubic")
    assert cubic[0].shape == (1, 40, 40)


def test_rangesubset_returns_those_bands_in_order(client):
    year = 'time("2024-01-01T00:00:00Z","2024-12-31T23:59:59Z")'
    values, profile, _, names = get_coverage(client, COVERAGEID="mosaic", SUBSET=year, RANGESUBSET="Red,Blue")
    assert values.dtype == np.uint16 and values.shape[0] == 2 and names == ("Red", "Blue")
    valid = values[0] != 0
    assert np.array_equal(values[1] != 0, valid)
    # every pixel names its scene k: Red = 1000k + 30, Blue = 1000k + 10; all four scenes show in 2024
    assert set(np.unique(values[0][valid])) == {mosaic_value(k, 2) for k in (1, 2, 3, 4)}
    assert np.all(values[0][valid] - values[1][valid] == 20)
    values, _, _, names = get_coverage(client, COVERAGEID="mosaic", SUBSET=year, RANGESUBSET="Green:NearInfrared,1")
    assert names == ("Green", "Red", "NearInfrared", "Blue")
    # without a time: the latest scene only (4)
    values, _, _, _ = get_coverage(client, COVERAGEID="mosaic", RANGESUBSET="NearInfrared")
    assert set(np.unique(values[0])) == {0, mosaic_value(4, 3)}


@pytest.mark.parametrize("axis", ["time", "ansi", "t"])
def test_time_slice_returns_that_month(client, axis):
    values, profile, bounds, _ = get_coverage(client, COVERAGEID="ts",
                                              SUBSET=[f'{axis}("2024-03-01")', "Lat(40,50)", "Lon(0,10)"])
    assert profile["crs"].to_epsg() == 4326 and tuple(bounds) == (0, 40, 10, 50)
    lats = 50 - (np.arange(10) + 0.5)
    assert np.array_equal(values[0], np.repeat(ts_value(3, lats)[:, None], 10, axis=1))
    # no time: the latest month (December)
    values, _, _, _ = get_coverage(client, COVERAGEID="ts", SUBSET=["Lat(40,50)", "Lon(0,10)"])
    assert np.array_equal(values[0][:, 0], ts_value(12, lats))


def test_geotiff_parameters(client):
    sub = ["E(500000,500640)", "N(5001360,5002000)"]
    values, profile, bounds, _ = get_coverage(
        client, COVERAGEID="dem", SUBSET=sub, **{"GEOTIFF:COMPRESSION": "Deflate", "GEOTIFF:PREDICTOR": "FloatingPoint",
                                                 "GEOTIFF:TILING": "true", "GEOTIFF:TILEWIDTH": "32",
                                                 "GEOTIFF:TILEHEIGHT": "32", "GEOTIFF:INTERLEAVE": "Band"})
    assert profile["compress"] == "deflate" and profile["blockxsize"] == 32 and profile["tiled"]
    assert profile["nodata"] == DEM_NODATA
    assert np.array_equal(values[0], dem_truth(tuple(bounds), 64, 64))
    resp = client.get(WCS, query_string=kvp("GetCoverage", COVERAGEID="dem", **{"GEOTIFF:COMPRESSION": "JPEG"}))
    exception_of(resp, "InvalidParameterValue", 400, "geotiff:compression")


def test_multipart_holds_a_gml_coverage_and_the_geotiff(client):
    sub = ["E(500100,500300)", "N(5001000,5001100)"]
    resp = client.get(WCS, query_string=kvp("GetCoverage", COVERAGEID="dem", SUBSET=sub, MEDIATYPE="multipart/related",
                                            FORMAT="image/tiff"))
    assert resp.status_code == 200 and resp.mimetype == "multipart/related"
    message = email.message_from_bytes(b"Content-Type: " + resp.headers["Content-Type"].encode() + b"\r\n\r\n"
                                       + resp.data, policy=email.policy.HTTP)
    gml_part, tiff_part = list(message.iter_parts())
    assert gml_part.get_content_type() == "application/gml+xml"
    gml = gml_part.get_payload(decode=True)
    schema_path = ogc_schemas.SCHEMAS_DIR / "ogc/gmlcov/1.0/gmlcovAll.xsd"
    schema = ogc_schemas._compile_xsd(("ogc/gmlcov/1.0/gmlcovAll.xsd",), schema_path.read_bytes(), str(schema_path))
    doc = etree.fromstring(gml)
    assert schema.validate(doc.getroottree()), schema.error_log
    env = doc.find("gml:boundedBy/gml:Envelope", NS)
    described = description(client, "dem").find("wcs:CoverageDescription/gml:boundedBy/gml:Envelope", NS)
    assert env.get("axisLabels") == described.get("axisLabels") and env.get("srsName") == described.get("srsName")
    assert env.findtext("gml:lowerCorner", namespaces=NS) == "500100 5001000"
    assert doc.findtext(".//gml:GridEnvelope/gml:high", namespaces=NS) == "19 9"
    reference = doc.findtext("gml:rangeSet/gml:File/gml:fileReference", namespaces=NS)
    assert tiff_part.get_content_type() == "image/tiff"
    assert "cid:" + tiff_part["Content-ID"].strip("<>") == reference
    plain = client.get(WCS, query_string=kvp("GetCoverage", COVERAGEID="dem", SUBSET=sub))
    assert tiff_part.get_payload(decode=True) == plain.data


# --- XML POST ---------------------------------------------------------------------------------------------

POST_GETCOVERAGE = f"""<?xml version="1.0" encoding="UTF-8"?>
<wcs:GetCoverage xmlns:wcs="http://www.opengis.net/wcs/2.0" xmlns:scal="http://www.opengis.net/wcs/scaling/1.0"
    xmlns:int="http://www.opengis.net/wcs/interpolation/1.0" xmlns:crs="http://www.opengis.net/wcs/crs/1.0"
    service="WCS" version="2.0.1">
  <wcs:Extension>
    <scal:Scaling><scal:ScaleToSize>
      <scal:TargetAxisSize><scal:axis>i</scal:axis><scal:targetSize>19</scal:targetSize></scal:TargetAxisSize>
      <scal:TargetAxisSize><scal:axis>j</scal:axis><scal:targetSize>5</scal:targetSize></scal:TargetAxisSize>
    </scal:ScaleToSize></scal:Scaling>
    <int:Interpolation><int:globalInterpolation>{INTERP}nearest-neighbor</int:globalInterpolation></int:Interpolation>
  </wcs:Extension>
  <wcs:CoverageId>dem</wcs:CoverageId>
  <wcs:DimensionTrim>
    <wcs:Dimension>E</wcs:Dimension><wcs:TrimLow>500000</wcs:TrimLow><wcs:TrimHigh>501900</wcs:TrimHigh>
  </wcs:DimensionTrim>
  <wcs:DimensionTrim><wcs:Dimension>N</wcs:Dimension><wcs:TrimLow>5000100</wcs:TrimLow></wcs:DimensionTrim>
  <wcs:format>image/tiff</wcs:format>
</wcs:GetCoverage>"""


def test_post_xml_equals_kvp(client):
    resp = client.post(WCS, data=POST_GETCOVERAGE, content_type="application/xml")
    assert resp.status_code == 200 and resp.content_type == "image/tiff"
    posted = tiff(resp.data)
    got = get_coverage(client, COVERAGEID="dem", SUBSET=["E(500000,501900)", "N(5000100,*)"],
                       SCALESIZE="i(19),j(5)", INTERPOLATION=INTERP + "nearest-neighbor")
    assert np.array_equal(posted[0], got[0]) and tuple(posted[2]) == tuple(got[2])
    assert np.array_equal(posted[0][0], dem_truth(DEM_BOX, 19, 5, res=20))
    body = ('<wcs:DescribeCoverage xmlns:wcs="http://www.opengis.net/wcs/2.0" service="WCS" version="2.0.1">'
            "<wcs:CoverageId>dem</wcs:CoverageId><wcs:CoverageId>ts</wcs:CoverageId></wcs:DescribeCoverage>")
    resp = client.post(WCS, data=body, content_type="application/xml")
    assert resp.data == client.get(WCS, query_string=kvp("DescribeCoverage", COVERAGEID="dem,ts")).data
    body = ('<wcs:GetCapabilities xmlns:wcs="http://www.opengis.net/wcs/2.0" xmlns:ows="http://www.opengis.net/ows/2.0"'
            ' service="WCS"><ows:AcceptVersions><ows:Version>2.0.1</ows:Version></ows:AcceptVersions>'
            "<ows:Sections><ows:Section>Contents</ows:Section></ows:Sections></wcs:GetCapabilities>")
    resp = client.post(WCS, data=body, content_type="application/xml")
    validate(resp.data)
    assert [etree.QName(c).localname for c in xml(resp)] == ["Contents"]
    body = ('<wcs:GetCoverage xmlns:wcs="http://www.opengis.net/wcs/2.0" service="WCS" version="2.0.1">'
            "<wcs:CoverageId>nope</wcs:CoverageId></wcs:GetCoverage>")
    exception_of(client.post(WCS, data=body, content_type="application/xml"), "NoSuchCoverage", 404, "nope")
    exception_of(client.post(WCS, data="<wcs:GetCoverage", content_type="application/xml"),
                 "InvalidEncodingSyntax", 400)                                  # not well-formed


# --- exceptions -------------------------------------------------------------------------------------------

U = EPSG
ERRORS = [
    # (parameters beyond SERVICE/VERSION/REQUEST=GetCoverage, code, status, locator)
    (dict(COVERAGEID="nope"), "NoSuchCoverage", 404, "nope"),
    (dict(), "MissingParameterValue", 400, "coverageId"),
    (dict(COVERAGEID="dem", SUBSET="Foo(1,2)"), "InvalidAxisLabel", 404, "Foo"),
    (dict(COVERAGEID="dem", SUBSET="e(500100,500300)"), "InvalidAxisLabel", 404, "e"),
    (dict(COVERAGEID="dem", SUBSET=["E(500100,500300)", "E(500100,500200)"]), "InvalidAxisLabel", 404, "E"),
    (dict(COVERAGEID="dem", SUBSET="Lat(45,46)"), "InvalidAxisLabel", 404, "Lat"),
    (dict(COVERAGEID="dem", SUBSET='time("2024-03-01")'), "InvalidAxisLabel", 404, "time"),
    (dict(COVERAGEID="dem", SUBSET="E(500300,500100)"), "InvalidSubsetting", 404, "E"),
    (dict(COVERAGEID="dem", SUBSET="E(600000,700000)"), "InvalidSubsetting", 404, "E"),
    (dict(COVERAGEID="dem", SUBSET="N(4000000)"), "InvalidSubsetting", 404, "N"),
    (dict(COVERAGEID="dem", SUBSET="E(abc,500300)"), "InvalidSubsetting", 404, "E"),
    (dict(COVERAGEID="ts", SUBSET='time("2030-01-01")'), "InvalidSubsetting", 404, None),
    (dict(COVERAGEID="ts", SUBSET='time("2024-05-01","2024-02-01")'), "InvalidSubsetting", 404, "time"),
    (dict(COVERAGEID="ts", SUBSET='time("yesterday")'), "InvalidSubsetting", 404, "time"),
    (dict(COVERAGEID="dem", SUBSET="E500100"), "InvalidEncodingSyntax", 400, "subset"),
    (dict(COVERAGEID="dem", FORMAT="image/bogus"), "InvalidParameterValue", 400, "format"),
    (dict(COVERAGEID="dem", MEDIATYPE="text/plain"), "InvalidParameterValue", 400, "mediaType"),
    (dict(COVERAGEID="dem", SUBSETTINGCRS=U + "99999"), "SubsettingCrs-NotSupported", 404, "subsettingcrs"),
    (dict(COVERAGEID="dem", SUBSETTINGCRS=U + "2056"), "SubsettingCrs-NotSupported", 404, "subsettingcrs"),
    (dict(COVERAGEID="dem", OUTPUTCRS="bogus"), "OutputCrs-NotSupported", 404, "outputcrs"),
    (dict(COVERAGEID="dem", SCALEFACTOR="0"), "InvalidScaleFactor", 404, None),
    (dict(COVERAGEID="dem", SCALEAXES="k(2)"), "ScaleAxisUndefined", 404, "k"),
    (dict(COVERAGEID="dem", SCALESIZE="i(10),i(20)"), "ScaleAxisUndefined", 404, "i"),
    (dict(COVERAGEID="dem", SCALEEXTENT="i(10:5)"), "InvalidExtent", 404, "i"),
    (dict(COVERAGEID="dem", SCALEFACTOR="2", SCALESIZE="i(10)"), "InvalidParameterValue", 400, None),
    (dict(COVERAGEID="dem", SCALESIZE="i(5000),j(10)"), "InvalidParameterValue", 400, "subset"),
    (dict(COVERAGEID="dem", INTERPOLATION=INTERP + "quadratic"), "InterpolationMethodNotSupported", 404, None),
    (dict(COVERAGEID="mosaic", RANGESUBSET="Bogus"), "NoSuchField", 404, "Bogus"),
    (dict(COVERAGEID="mosaic", RANGESUBSET="Red:Blue"), "IllegalFieldSequence", 400, "Red"),
]


@pytest.mark.parametrize("params, code, status, locator", ERRORS,
                         ids=[f"{e[1]}-{i}" for i, e in enumerate(ERRORS)])
def test_getcoverage_exceptions(client, params, code, status, locator):
    resp = client.get(WCS, query_string=kvp("GetCoverage", **params))
    exception_of(resp, code, status, locator)


def test_operation_and_version_exceptions(client):
    exception_of(client.get(WCS, query_string=kvp("GetFoo")), "OperationNotSupported", 501)
    resp = client.get(WCS, query_string={"SERVICE": "WCS", "REQUEST": "GetCoverage", "COVERAGEID": "dem"})
    exception_of(resp, "MissingParameterValue", 400, "VERSION")
    resp = client.get(WCS, query_string=kvp("GetCoverage", COVERAGEID="dem", SERVICE="WMS"))
    exception_of(resp, "InvalidParameterValue", 400, "SERVICE")
    # 2.0.0 is answered as 2.0.1
    resp = client.get(WCS, query_string=kvp("GetCoverage", COVERAGEID="dem", VERSION="2.0.0", SCALEFACTOR="0.1"))
    assert resp.status_code == 200 and resp.content_type == "image/tiff"


# --- GDAL and OWSLib on a real socket ----------------------------------------------------------------------

def test_gdal_reads_the_dem_bit_for_bit(live_url, gdal_env):
    url = f"WCS:{live_url}{DEM_WCS}?version=2.0.1&coverage=dem"
    with rasterio.open(url, CACHE=str(gdal_env)) as ds:
        assert ds.driver == "WCS"
        assert (ds.width, ds.height, ds.count) == (190, 190, 1)
        assert ds.dtypes == ("float32",)
        assert ds.crs.to_epsg() == 32633
        assert tuple(ds.transform)[:6] == (10.0, 0.0, 500000.0, 0.0, -10.0, 5002000.0)
        tags = ds.tags()
        assert tags["DOMAIN"] == "E,N" and tags["FIELD_1_NAME"] == "Band_1"
        window = ds.read(1, window=Window(col_off=7, row_off=11, width=33, height=21))
        whole = ds.read(1)
    with rasterio.open(url, CACHE=str(gdal_env)) as ds:     # nothing cached: GDAL asks the server to scale
        coarse = ds.read(1, out_shape=(19, 95))             # SCALESIZE=i(95),j(19) (GDAL scales
        # buffers of 100 pixels or more on the server; smaller ones it reads whole and scales itself)
    assert window.dtype == np.float32
    assert np.array_equal(window, dem_truth((500070, 5001680, 500400, 5001890), 33, 21))
    truth = dem_truth(DEM_BOX, 190, 190)
    assert np.array_equal(whole, truth)
    # GDAL's 2.0.1 parser looks for Quantity.nilValues.NilValue, which the SWE schema does not allow, so
    # the dataset reports no nodata; the values carry it (and so does the GeoTIFF, see the tests above)
    assert np.all(whole[truth == DEM_NODATA] == DEM_NODATA) and (whole == DEM_NODATA).sum() == 100
    assert np.array_equal(coarse, dem_truth(DEM_BOX, 95, 19, res=20))


def test_gdal_reads_the_time_series_in_lon_lat_and_slices_time(live_url, gdal_env):
    url = f"WCS:{live_url}{WCS}?version=2.0.1&coverage=ts"
    with rasterio.open(url, CACHE=str(gdal_env)) as ds:
        assert ds.crs.to_epsg() == 4326 and (ds.width, ds.height) == (360, 180)
        assert tuple(ds.transform)[:6] == (1.0, 0.0, -180.0, 0.0, -1.0, 90.0)
        assert ds.tags()["TimeDomain"].split(",") == TS_MONTHS
        december = ds.read(1, window=Window(0, 30, 5, 10))
    lats = 90 - (np.arange(30, 40) + 0.5)
    assert np.array_equal(december, np.repeat(ts_value(12, lats)[:, None], 5, axis=1))
    # the Subset open option: GDAL adds SUBSET0=time("...") to its GetCoverage requests
    with rasterio.open(url, CACHE=str(gdal_env), SUBSET='time("2024-03-01T00:00:00Z")') as ds:
        march = ds.read(1, window=Window(0, 30, 5, 10))
    assert np.array_equal(march, np.repeat(ts_value(3, lats)[:, None], 5, axis=1))


def test_gdal_reports_an_unknown_coverage(live_url, gdal_env):
    def open_it():
        with rasterio.open(f"WCS:{live_url}{WCS}?version=2.0.1&coverage=nope", CACHE=str(gdal_env)) as ds:
            ds.read(1)

    # in a thread of its own: GDAL keeps the error in thread-local state
    with ThreadPoolExecutor(1) as pool, pytest.raises(RasterioIOError):
        pool.submit(open_it).result()


def test_owslib_reads_capabilities_description_and_coverage(live_url, gdal_env):
    from owslib.wcs import WebCoverageService
    service = WebCoverageService(live_url + DEM_WCS + "?", version="2.0.1")
    assert list(service.contents) == ["dem"]
    assert service.identification.type == "OGC WCS"
    assert {op.name for op in service.operations} == {"GetCapabilities", "DescribeCoverage", "GetCoverage"}
    dem = service["dem"]
    assert dem.supportedFormats == ["image/tiff"]
    grid = dem.grid
    assert grid.axislabels == ["i", "j"] and grid.highlimits == ["189", "189"]
    assert grid.origin == ["500005", "5001995"] and grid.offsetvectors == [["10", "0"], ["0", "-10"]]
    assert dem.boundingboxes == [{"nativeSrs": EPSG + "32633", "bbox": DEM_BOX}]
    resp = service.getCoverage(identifier="dem", format="image/tiff",
                               subsets=[("E", 500400, 500700), ("N", 5001100, 5001300)])
    values, profile, bounds, _ = tiff(resp.read())
    assert tuple(bounds) == (500400, 5001100, 500700, 5001300)
    assert np.array_equal(values[0], dem_truth(tuple(bounds), 30, 20))
