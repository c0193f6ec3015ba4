"""WCS 1.0.0 (/ogc/wcs and /arcgis/services/{name}/ImageServer/WCSServer, VERSION=1.0.0) against the
analytic truth of tests/synth.py: capabilities and coverage descriptions (schema-valid, grids and
envelopes computed here), GetCoverage GeoTIFFs (values from the fixture functions, georeferencing and
reprojected extents computed with pyproj here), exceptions (schema-valid, codes, Content-Type), and the
clients that read them: OWSLib and GDAL's WCS driver (through rasterio), on a real socket."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pytest
import rasterio
from lxml import etree
from pyproj import Transformer
from rasterio.io import MemoryFile
from rasterio.windows import Window

import ogc_schemas
from conftest import make_config
from ogc_gateway.app import create_app
from ogc_gateway.config import Contact
from ogc_schemas import validate
from synth import DEM_NODATA, MOSAIC_DATES, dem_value, mosaic_value, top_scene, ts_value

WCS = "/ogc/wcs"
DEM_WCS = "/arcgis/services/dem/ImageServer/WCSServer"
W = "{http://www.opengis.net/wcs}"
GML = "{http://www.opengis.net/gml}"
OGC = "{http://www.opengis.net/ogc}"
XLINK = "{http://www.w3.org/1999/xlink}href"
EXCEPTION_MIME = "application/vnd.ogc.se_xml"

DEM_BOX = (500000.0, 5000100.0, 501900.0, 5002000.0)
HOLE = (500100.0, 5001800.0, 500200.0, 5001900.0)
TS_MONTHS = [f"2024-{m:02d}-01T00:00:00Z" for m in range(1, 13)]
MOSAIC_TIMES = [f"{d}T10:30:00Z" for d in MOSAIC_DATES.values()]


# --- helpers ----------------------------------------------------------------------------------------

def wcs(client, path=WCS, **params):
    query = {"SERVICE": "WCS", "VERSION": "1.0.0", **params}
    return client.get(path, query_string={k: v for k, v in query.items() if v is not None})


def xml(resp):
    assert resp.status_code == 200, resp.data[:500]
    assert resp.content_type.split(";")[0] == "text/xml", (resp.content_type, resp.data[:500])
    validate(resp.data)
    return etree.fromstring(resp.data)


def exception(resp, code, locator=None):
    """A WCS 1.0 exception report with `code`: valid against OGC-exception.xsd, HTTP 200, the exact
    Content-Type that OWSLib and the CITE suite look for."""
    assert resp.status_code == 200
    assert resp.content_type == EXCEPTION_MIME, (resp.content_type, resp.data[:300])
    validate(resp.data)
    root = etree.fromstring(resp.data)
    assert root.tag == f"{OGC}ServiceExceptionReport" and root.get("version") == "1.2.0"
    found = root.findall(f"{OGC}ServiceException")
    assert len(found) == 1 and found[0].get("code") == code, etree.tostring(found[0])
    if locator is not None:
        assert found[0].get("locator") == locator
    assert (found[0].text or "").strip()
    return found[0]


def coverage(resp):
    """(values, dataset profile) of a GetCoverage GeoTIFF."""
    assert resp.status_code == 200, resp.data[:500]
    assert resp.content_type == "image/tiff", (resp.content_type, resp.data[:500])
    with MemoryFile(resp.data) as mem, mem.open() as ds:
        assert ds.driver == "GTiff"
        return ds.read(), dict(transform=ds.transform, crs=ds.crs, nodata=ds.nodata, bounds=tuple(ds.bounds),
                               dtypes=ds.dtypes, count=ds.count)


def centres(box, width, height):
    x0, y0, x1, y1 = box
    xs = x0 + (np.arange(width) + 0.5) * (x1 - x0) / width
    ys = y1 - (np.arange(height) + 0.5) * (y1 - y0) / height
    return np.meshgrid(xs, ys)


def dem_truth(box=DEM_BOX, width=190, height=190):
    """(values, nodata mask) of the DEM at the centres of a grid that coincides with its pixels."""
    xs, ys = centres(box, width, height)
    hole = (xs > HOLE[0]) & (xs < HOLE[2]) & (ys > HOLE[1]) & (ys < HOLE[3])
    return np.where(hole, np.float32(DEM_NODATA), dem_value(xs, ys)), hole


def dem_source(xs, ys):
    """For EPSG:32633 points: the value of the 10 m source pixel holding each, whether it is nodata
    (hole or outside), and whether the point is within 0.2 px of a pixel edge (either is fair)."""
    fx, fy = (xs - 500000.0) / 10.0, (5002000.0 - ys) / 10.0
    col, row = np.floor(fx), np.floor(fy)
    cx, cy = 500000.0 + 10.0 * (col + 0.5), 5002000.0 - 10.0 * (row + 0.5)
    hole = (cx > HOLE[0]) & (cx < HOLE[2]) & (cy > HOLE[1]) & (cy < HOLE[3])
    outside = (cx < DEM_BOX[0]) | (cx > DEM_BOX[2]) | (cy < DEM_BOX[1]) | (cy > DEM_BOX[3])
    edge = (np.minimum(fx - col, col + 1 - fx) < 0.2) | (np.minimum(fy - row, row + 1 - fy) < 0.2)
    return dem_value(cx, cy), hole | outside, edge


def lonlat_bounds(box, src="EPSG:32633"):
    return Transformer.from_crs(src, "EPSG:4326", always_xy=True).transform_bounds(*box, densify_pts=101)


def pos(element):
    return [float(v) for v in element.text.split(" ")]


def offerings(root, tag):
    return {o.findtext(f"{W}name"): o for o in root.iter(f"{W}{tag}")}


def section_schema_validate(data: bytes):
    """A single-SECTION document (root Service/Capability/ContentMetadata) against wcsCapabilities.xsd;
    ogc_schemas picks schemas by root element, which only knows WCS_Capabilities."""
    root = etree.fromstring(data)
    schema, _, _ = ogc_schemas._xsd_schema("ogc/wcs/1.0.0/wcsCapabilities.xsd", root)
    assert schema.validate(root.getroottree()), schema.error_log


@pytest.fixture()
def no_proxy(monkeypatch, tmp_path):
    """Clients on the local socket: no proxy, failures fast. GDAL's WCS driver keeps its service
    files in a private cache folder, and needs PAM (.aux.xml), which the engine switches off for its
    own reads (engine/read.py): with GDAL_PAM_ENABLED=NO, GDAL 3.10's WCS driver crashes on open."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with rasterio.Env(GDAL_HTTP_TIMEOUT="60", GDAL_HTTP_MAX_RETRY="0", GDAL_PAM_ENABLED="YES"):
        yield tmp_path


# --- GetCapabilities --------------------------------------------------------------------------------

@pytest.mark.parametrize("path,names", [(WCS, {"dem", "mosaic", "ts"}), (DEM_WCS, {"dem"}),
                                        ("/arcgis/services/ts/ImageServer/WCSServer", {"ts"})])
def test_capabilities_are_schema_valid_with_url_prefixes(client, path, names):
    root = xml(wcs(client, path, REQUEST="GetCapabilities"))
    assert root.tag == f"{W}WCS_Capabilities" and root.get("version") == "1.0.0"
    assert set(offerings(root, "CoverageOfferingBrief")) == names
    hrefs = [e.get(XLINK) for e in root.iter(f"{W}OnlineResource")]
    assert len(hrefs) == 3 and set(hrefs) == {"http://localhost" + path + "?"}
    assert [f.text for f in root.iter(f"{W}Format")] == [EXCEPTION_MIME]
    for child in root:                           # whole document: no attributes on its sections
        assert child.get("version") is None and child.get("updateSequence") is None
    service = root.find(f"{W}Service")
    assert service.findtext(f"{W}fees") == "NONE" and service.findtext(f"{W}accessConstraints") == "NONE"
    assert service.findtext(f"{W}label") == ("ogc-gateway" if path == WCS else "Analytic DEM" if path == DEM_WCS
                                             else "Monthly series")


def test_capabilities_version_forms_and_unknown_parameters(client):
    plain = wcs(client, REQUEST="GetCapabilities").data
    for variant in ({"VERSION": "1.0"}, {"VERSION": "1.0.0", "BOGUS": "x", "dpi": "96"}):
        resp = client.get(WCS, query_string={"SeRvIcE": "wcs", "ReQuEsT": "GetCapabilities", **variant})
        assert resp.data == plain


def test_lon_lat_envelopes_and_time_positions(client):
    briefs = offerings(xml(wcs(client, REQUEST="GetCapabilities")), "CoverageOfferingBrief")
    for name, box in (("dem", DEM_BOX),):
        env = briefs[name].find(f"{W}lonLatEnvelope")
        assert env.get("srsName") == "urn:ogc:def:crs:OGC:1.3:CRS84"
        lower, upper = (pos(p) for p in env.findall(f"{GML}pos"))
        assert lower + upper == pytest.approx(list(lonlat_bounds(box)), abs=1e-9)
        assert env.findall(f"{GML}timePosition") == []
    ts = briefs["ts"].find(f"{W}lonLatEnvelope")
    assert [pos(p) for p in ts.findall(f"{GML}pos")] == [[-180, -90], [180, 90]]
    assert [t.text for t in ts.findall(f"{GML}timePosition")] == [TS_MONTHS[0], TS_MONTHS[-1]]
    mosaic = briefs["mosaic"].find(f"{W}lonLatEnvelope")
    assert [t.text for t in mosaic.findall(f"{GML}timePosition")] == [MOSAIC_TIMES[0], MOSAIC_TIMES[-1]]


def test_update_sequence(client):
    root = xml(wcs(client, REQUEST="GetCapabilities"))
    current = int(root.get("updateSequence"))
    exception(wcs(client, REQUEST="GetCapabilities", UPDATESEQUENCE=str(current)), "CurrentUpdateSequence",
              "UPDATESEQUENCE")
    exception(wcs(client, REQUEST="GetCapabilities", UPDATESEQUENCE=str(current + 1)), "InvalidUpdateSequence",
              "UPDATESEQUENCE")
    for lower in (str(current - 1), "0", "not-a-number"):
        again = xml(wcs(client, REQUEST="GetCapabilities", UPDATESEQUENCE=lower))
        assert set(offerings(again, "CoverageOfferingBrief")) == {"dem", "mosaic", "ts"}


@pytest.mark.parametrize("section,tag", [("/WCS_Capabilities/Service", "Service"),
                                         ("/WCS_Capabilities/Capability", "Capability"),
                                         ("/WCS_Capabilities/ContentMetadata", "ContentMetadata")])
def test_capabilities_sections(client, section, tag):
    resp = wcs(client, REQUEST="GetCapabilities", SECTION=section)
    assert resp.status_code == 200 and resp.content_type.startswith("text/xml")
    root = etree.fromstring(resp.data)
    assert root.tag == f"{W}{tag}" and root.get("version") == "1.0.0" and root.get("updateSequence")
    section_schema_validate(resp.data)
    whole = xml(wcs(client, REQUEST="GetCapabilities", SECTION="/"))
    assert whole.tag == f"{W}WCS_Capabilities"
    exception(wcs(client, REQUEST="GetCapabilities", SECTION="/WCS_Capabilities/Nope"), "InvalidParameterValue",
              "SECTION")


def test_capabilities_with_contact_keywords_and_fees(data_dir, tmp_path_factory):
    config = make_config(data_dir, tmp_path_factory.mktemp("wcs10-contact"))
    contact = Contact(person="Ada Lovelace", organization="Analytical Engines", position="Engineer",
                      email="ada@example.org", phone="+44 1", fax="+44 2", address="1 Loop Street",
                      city="London", state_or_province="Greater London", postcode="EC1", country="UK")
    server = replace(config.server, contact=contact, keywords=("raster", "elevation"), fees="free",
                     access_constraints="internal use", abstract="Analytic fixtures")
    client = create_app(replace(config, server=server)).test_client()
    root = xml(wcs(client, REQUEST="GetCapabilities"))
    service = root.find(f"{W}Service")
    assert service.findtext(f"{W}description") == "Analytic fixtures"
    assert [k.text for k in service.iter(f"{W}keyword")] == ["raster", "elevation"]
    party = service.find(f"{W}responsibleParty")
    assert party.findtext(f"{W}individualName") == "Ada Lovelace"
    assert party.findtext(f"{W}organisationName") == "Analytical Engines"
    assert party.findtext(f"{W}contactInfo/{W}phone/{W}voice") == "+44 1"
    assert party.findtext(f"{W}contactInfo/{W}address/{W}electronicMailAddress") == "ada@example.org"
    assert service.findtext(f"{W}fees") == "free" and service.findtext(f"{W}accessConstraints") == "internal use"


# --- DescribeCoverage -------------------------------------------------------------------------------

@pytest.mark.parametrize("path,params,names", [
    (WCS, {}, ["dem", "mosaic", "ts"]), (WCS, {"COVERAGE": "ts,dem"}, ["ts", "dem"]),
    (WCS, {"COVERAGE": "mosaic"}, ["mosaic"]), (DEM_WCS, {}, ["dem"]), (DEM_WCS, {"coverage": "dem"}, ["dem"]),
])
def test_describe_coverage_is_schema_valid(client, path, params, names):
    root = xml(wcs(client, path, REQUEST="DescribeCoverage", **params))
    assert root.tag == f"{W}CoverageDescription" and root.get("version") == "1.0.0"
    assert [o.findtext(f"{W}name") for o in root.findall(f"{W}CoverageOffering")] == names


def test_describe_dem_grid_range_and_options(client):
    dem = offerings(xml(wcs(client, REQUEST="DescribeCoverage", COVERAGE="dem")), "CoverageOffering")["dem"]
    spatial = dem.find(f"{W}domainSet/{W}spatialDomain")
    envelope = spatial.find(f"{GML}Envelope")
    assert envelope.get("srsName") == "EPSG:32633"
    assert [pos(p) for p in envelope.findall(f"{GML}pos")] == [[500000, 5000100], [501900, 5002000]]
    grid = spatial.find(f"{GML}RectifiedGrid")
    assert grid.get("dimension") == "2" and grid.get("srsName") == "EPSG:32633"
    assert grid.findtext(f"{GML}limits/{GML}GridEnvelope/{GML}low") == "0 0"
    assert grid.findtext(f"{GML}limits/{GML}GridEnvelope/{GML}high") == "189 189"
    assert [a.text for a in grid.findall(f"{GML}axisName")] == ["x", "y"]
    assert pos(grid.find(f"{GML}origin/{GML}pos")) == [500005, 5001995]     # centre of the upper-left pixel
    assert [pos(v) for v in grid.findall(f"{GML}offsetVector")] == [[10, 0], [0, -10]]
    assert dem.find(f"{W}domainSet/{W}temporalDomain") is None
    rangeset = dem.find(f"{W}rangeSet/{W}RangeSet")
    axis = rangeset.find(f"{W}axisDescription/{W}AxisDescription")
    assert axis.findtext(f"{W}name") == "Band" and [v.text for v in axis.iter(f"{W}singleValue")] == ["1"]
    assert float(rangeset.findtext(f"{W}nullValues/{W}singleValue")) == DEM_NODATA
    crs = [e.text for e in dem.findall(f"{W}supportedCRSs/{W}requestResponseCRSs")]
    assert crs == ["EPSG:32633", "EPSG:4326", "EPSG:3857"]                  # one per element
    assert grid.get("srsName") in crs and dem.findtext(f"{W}supportedCRSs/{W}nativeCRSs") == "EPSG:32633"
    assert [f.text for f in dem.findall(f"{W}supportedFormats/{W}formats")] == ["GeoTIFF"]
    interpolations = dem.find(f"{W}supportedInterpolations")
    methods = [m.text for m in interpolations.findall(f"{W}interpolationMethod")]
    assert methods == ["nearest neighbor", "bilinear", "bicubic"] and interpolations.get("default") in methods


def test_describe_time_domains_and_bands(client):
    described = offerings(xml(wcs(client, REQUEST="DescribeCoverage")), "CoverageOffering")
    times = {name: [t.text for t in o.findall(f"{W}domainSet/{W}temporalDomain/{GML}timePosition")]
             for name, o in described.items()}
    assert times == {"dem": [], "mosaic": MOSAIC_TIMES, "ts": TS_MONTHS}
    mosaic = described["mosaic"].find(f"{W}rangeSet/{W}RangeSet")
    assert [v.text for v in mosaic.iter(f"{W}singleValue")] == ["1", "2", "3", "4", "0"]   # bands, then nodata
    ts = described["ts"]
    assert ts.find(f"{W}rangeSet/{W}RangeSet/{W}nullValues") is None
    assert pos(ts.find(f"{W}domainSet/{W}spatialDomain/{GML}RectifiedGrid/{GML}origin/{GML}pos")) == [-179.5, 89.5]
    assert [e.text for e in ts.findall(f"{W}supportedCRSs/{W}requestResponseCRSs")] == ["EPSG:4326", "EPSG:3857"]


@pytest.mark.parametrize("names", ["nope", "dem,nope", "DEM"])
def test_describe_unknown_coverage(client, names):
    exception(wcs(client, REQUEST="DescribeCoverage", COVERAGE=names), "CoverageNotDefined", "COVERAGE")


# --- OWSLib -----------------------------------------------------------------------------------------

def test_owslib_reads_capabilities_and_descriptions(live_url, no_proxy):
    from owslib.wcs import WebCoverageService
    service = WebCoverageService(live_url + WCS, version="1.0.0")
    assert service.version == "1.0.0" and set(service.contents) == {"dem", "mosaic", "ts"}
    assert service.identification.fees == "NONE" and service.identification.accessConstraints == "NONE"
    dem = service["dem"]
    assert dem.boundingBoxWGS84 == pytest.approx(lonlat_bounds(DEM_BOX), abs=1e-9)
    assert [c.getcode() for c in dem.supportedCRS][:3] == ["EPSG:32633", "EPSG:4326", "EPSG:3857"]
    assert dem.supportedFormats == ["GeoTIFF"]
    grid = dem.grid
    assert (grid.lowlimits, grid.highlimits, grid.axislabels) == (["0", "0"], ["189", "189"], ["x", "y"])
    assert [float(v) for v in grid.origin] == [500005, 5001995]
    assert [[float(v) for v in o] for o in grid.offsetvectors] == [[10, 0], [0, -10]]
    assert service["ts"].timelimits == [TS_MONTHS[0], TS_MONTHS[-1]]
    assert service["mosaic"].timepositions == MOSAIC_TIMES
    axes = service["mosaic"].axisDescriptions
    assert [(a.name, a.values) for a in axes] == [("Band", ["1", "2", "3", "4"])]


def test_owslib_getcoverage_is_the_dem_bit_for_bit(live_url, no_proxy):
    from owslib.wcs import WebCoverageService
    service = WebCoverageService(live_url + WCS, version="1.0.0")
    box = (500300.0, 5001100.0, 501100.0, 5001900.0)
    resp = service.getCoverage(identifier="dem", bbox=box, crs="EPSG:32633", format="GeoTIFF", width=80, height=80)
    with MemoryFile(resp.read()) as mem, mem.open() as ds:
        data = ds.read(1)
        assert ds.dtypes == ("float32",) and ds.crs.to_epsg() == 32633 and ds.nodata == DEM_NODATA
        assert tuple(ds.transform)[:6] == (10.0, 0.0, 500300.0, 0.0, -10.0, 5001900.0)
    truth, _ = dem_truth(box, 80, 80)
    assert np.array_equal(data, truth)


# --- GDAL (WCS driver) ------------------------------------------------------------------------------

def test_gdal_lists_the_coverages_as_subdatasets(live_url, no_proxy):
    with rasterio.open(f"WCS:{live_url}{WCS}?version=1.0.0", CACHE=str(no_proxy / "cache")) as ds:
        subdatasets = ds.subdatasets
    assert sorted(s.rsplit("COVERAGE=", 1)[1] for s in subdatasets) == ["dem", "mosaic", "ts"]


def test_gdal_reads_a_dem_window_bit_for_bit(live_url, no_proxy):
    url = f"WCS:{live_url}{DEM_WCS}?version=1.0.0&coverage=dem"
    with rasterio.open(url, CACHE=str(no_proxy / "cache")) as ds:
        assert (ds.width, ds.height, ds.count, ds.dtypes) == (190, 190, 1, ("float32",))
        assert tuple(ds.transform)[:6] == (10.0, 0.0, 500000.0, 0.0, -10.0, 5002000.0)
        assert ds.crs.to_epsg() == 32633 and ds.nodata == DEM_NODATA
        window = ds.read(1, window=Window(5, 10, 64, 48))       # the hole is at cols/rows 10..19
        whole = ds.read(1)
    truth, hole = dem_truth()
    assert np.array_equal(whole, truth) and hole.sum() == 100
    assert np.array_equal(window, truth[10:58, 5:69])


def test_gdal_reports_an_exception_instead_of_pixels(live_url, no_proxy):
    def read():
        with rasterio.open(f"WCS:{live_url}{WCS}?version=1.0.0&coverage=nope", CACHE=str(no_proxy / "c2")) as ds:
            ds.read(1)

    # In a thread of its own: GDAL keeps the failure in thread-local state.
    with ThreadPoolExecutor(1) as pool, pytest.raises(rasterio.errors.RasterioIOError):
        pool.submit(read).result()


# --- GetCoverage ------------------------------------------------------------------------------------

DEM_GET = dict(REQUEST="GetCoverage", COVERAGE="dem", CRS="EPSG:32633", FORMAT="GeoTIFF",
               BBOX=",".join(str(v) for v in DEM_BOX), WIDTH="190", HEIGHT="190")


@pytest.mark.parametrize("path", [WCS, DEM_WCS])
@pytest.mark.parametrize("fmt", ["GeoTIFF", "GTiff", "image/tiff", "tiff"])
def test_getcoverage_native_grid_is_the_dem_bit_for_bit(client, path, fmt):
    resp = wcs(client, path, **{**DEM_GET, "FORMAT": fmt})
    assert resp.headers["Content-Disposition"] == 'inline; filename="dem.tif"'
    data, info = coverage(resp)
    truth, _ = dem_truth()
    assert info["dtypes"] == ("float32",) and info["nodata"] == DEM_NODATA and info["crs"].to_epsg() == 32633
    assert tuple(info["transform"])[:6] == (10.0, 0.0, 500000.0, 0.0, -10.0, 5002000.0)
    assert np.array_equal(data[0], truth)


def test_getcoverage_response_crs_lands_where_pyproj_says(client):
    resp = wcs(client, **{**DEM_GET, "RESPONSE_CRS": "EPSG:4326", "WIDTH": "150", "HEIGHT": "120"})
    data, info = coverage(resp)
    assert info["crs"].to_epsg() == 4326 and data.shape == (1, 120, 150)
    west, south, east, north = lonlat_bounds(DEM_BOX)
    assert info["bounds"] == pytest.approx((west, south, east, north), abs=1e-8)
    # every pixel centre, taken back into UTM by pyproj, holds the source pixel it falls in
    lon, lat = centres(info["bounds"], 150, 120)
    xs, ys = Transformer.from_crs("EPSG:4326", "EPSG:32633", always_xy=True).transform(lon, lat)
    truth, nodata, edge = dem_source(np.asarray(xs), np.asarray(ys))
    sure = ~edge
    assert sure.sum() > 5000
    assert np.array_equal(data[0][sure & ~nodata], truth[sure & ~nodata])
    assert np.all(data[0][sure & nodata] == DEM_NODATA)


def test_getcoverage_bbox_in_epsg4326_is_lon_lat(client):
    """CRS=EPSG:4326 in WCS 1.0 is lon,lat (no axis swap): a tall box over the monthly series."""
    data, info = coverage(wcs(client, REQUEST="GetCoverage", COVERAGE="ts", CRS="EPSG:4326", FORMAT="GeoTIFF",
                              BBOX="10,20,15,60", WIDTH="5", HEIGHT="40", TIME="2024-06"))
    assert info["bounds"] == pytest.approx((10, 20, 15, 60))
    lats = 60 - (np.arange(40) + 0.5)
    assert np.array_equal(data[0], np.repeat(ts_value(6, lats)[:, None], 5, axis=1))


def test_getcoverage_resx_resy_halves_the_size(client):
    params = {k: v for k, v in DEM_GET.items() if k not in ("WIDTH", "HEIGHT")}
    data, info = coverage(wcs(client, **params, RESX="20", RESY="20"))
    assert data.shape == (1, 95, 95)
    assert tuple(info["transform"])[:6] == (20.0, 0.0, 500000.0, 0.0, -20.0, 5002000.0)
    # 20 m cells read the DEM's overview (2 x 2 averages of the plane: the plane at the cell centre)
    xs, ys = centres(DEM_BOX, 95, 95)
    hole = (xs > HOLE[0]) & (xs < HOLE[2]) & (ys > HOLE[1]) & (ys < HOLE[3])
    assert np.allclose(data[0][~hole], dem_value(xs, ys)[~hole], rtol=0, atol=1e-3)
    assert np.all(data[0][hole] == DEM_NODATA)
    # a resolution in RESPONSE_CRS units: degrees
    lon_res = 0.0005
    data, info = coverage(wcs(client, **params, RESPONSE_CRS="EPSG:4326", RESX=str(lon_res), RESY=str(lon_res)))
    west, south, east, north = lonlat_bounds(DEM_BOX)
    assert info["transform"].a == pytest.approx(lon_res) and info["transform"].e == pytest.approx(-lon_res)
    assert data.shape[2] == math.ceil((east - west) / lon_res - 1e-9)
    assert data.shape[1] == math.ceil((north - south) / lon_res - 1e-9)


MOSAIC_BOX = (500000.0, 5000400.0, 502000.0, 5002000.0)          # 20 m cells on scenes 1-3's grid


@pytest.mark.parametrize("band,expected", [("3,1", (2, 0)), ("2/4", (1, 2, 3)), ("4", (3,)), (None, (0, 1, 2, 3))])
def test_getcoverage_band_subset_of_the_mosaic(client, band, expected):
    data, info = coverage(wcs(client, REQUEST="GetCoverage", COVERAGE="mosaic", CRS="EPSG:32633", FORMAT="GeoTIFF",
                              BBOX=",".join(str(v) for v in MOSAIC_BOX), WIDTH="100", HEIGHT="80",
                              TIME="2024-01-01/2024-12-31", BAND=band))
    assert info["dtypes"] == ("uint16",) * len(expected) and info["nodata"] == 0
    xs, ys = centres(MOSAIC_BOX, 100, 80)
    top = top_scene(xs, ys)
    assert {1, 2, 3, 4} <= set(np.unique(top))
    for i, b in enumerate(expected):
        for k in (1, 2, 3, 4):
            assert np.all(data[i][top == k] == mosaic_value(k, b)), (b, k)
        assert np.all(data[i][top == 0] == 0)


def test_getcoverage_band_as_the_axis_name_in_any_case(client):
    params = dict(REQUEST="GetCoverage", COVERAGE="mosaic", CRS="EPSG:32633", FORMAT="GeoTIFF",
                  BBOX="500000,5001000,500400,5002000", WIDTH="20", HEIGHT="50", TIME="2024-01-15T10:30:00Z")
    for key in ("Band", "band", "BANDS"):
        data, _ = coverage(wcs(client, **params, **{key: "2"}))
        assert data.shape == (1, 50, 20) and np.all(data == mosaic_value(1, 1))


def test_getcoverage_default_time_is_the_latest(client):
    data, _ = coverage(wcs(client, REQUEST="GetCoverage", COVERAGE="mosaic", CRS="EPSG:32633", FORMAT="GeoTIFF",
                           BBOX=",".join(str(v) for v in MOSAIC_BOX), WIDTH="100", HEIGHT="80"))
    xs, ys = centres(MOSAIC_BOX, 100, 80)
    top = top_scene(xs, ys)
    assert np.all(data[:, top == 4] == np.array([mosaic_value(4, b) for b in range(4)])[:, None])
    assert np.all(data[:, (top >= 0) & (top != 4)] == 0)            # scenes 1-3 are older: not shown


@pytest.mark.parametrize("time,month", [("2024-03-01T00:00:00Z", 3), ("2024-03-15", 3), ("2024-12", 12),
                                        (None, 12), ("current", 12)])
def test_getcoverage_time_on_the_monthly_series(client, time, month):
    data, info = coverage(wcs(client, REQUEST="GetCoverage", COVERAGE="ts", CRS="EPSG:4326", FORMAT="GeoTIFF",
                              BBOX="-180,-90,180,90", WIDTH="360", HEIGHT="180", TIME=time))
    lats = 90 - (np.arange(180) + 0.5)
    assert info["dtypes"] == ("float32",)
    assert np.array_equal(data[0], np.repeat(ts_value(month, lats)[:, None], 360, axis=1))


def test_getcoverage_time_without_bbox_is_the_whole_extent(client):
    data, info = coverage(wcs(client, REQUEST="GetCoverage", COVERAGE="ts", CRS="EPSG:4326", FORMAT="GeoTIFF",
                              WIDTH="36", HEIGHT="18", TIME="2024-02-10"))
    assert info["bounds"] == pytest.approx((-180, -90, 180, 90))
    assert data.shape == (1, 18, 36)


@pytest.mark.parametrize("interpolation", ["nearest neighbor", "bilinear", "bicubic", "nearest_neighbor"])
def test_getcoverage_every_advertised_interpolation(client, interpolation):
    data, _ = coverage(wcs(client, **{**DEM_GET, "INTERPOLATION": interpolation}))
    truth, hole = dem_truth()
    inner = np.zeros_like(hole)
    inner[3:-3, 3:-3] = True
    near_hole = np.zeros_like(hole)
    near_hole[7:23, 7:23] = True
    # on the native grid a linear plane is kept by every kernel, away from the edges and the hole
    assert np.allclose(data[0][inner & ~near_hole], truth[inner & ~near_hole], rtol=0, atol=1e-3)


def test_post_and_unknown_operations_are_not_supported(client):
    body = b'<GetCoverage service="WCS" version="1.0.0" xmlns="http://www.opengis.net/wcs"/>'
    exception(client.post(WCS, data=body, content_type="text/xml"), "OperationNotSupported")
    exception(wcs(client, REQUEST="GetMap"), "OperationNotSupported", "REQUEST")
    exception(wcs(client, "/arcgis/services/nope/ImageServer/WCSServer", REQUEST="GetCapabilities"),
              "CoverageNotDefined")


@pytest.mark.parametrize("changes,code,locator", [
    ({"COVERAGE": "nope"}, "CoverageNotDefined", "COVERAGE"),
    ({"COVERAGE": None}, "MissingParameterValue", "COVERAGE"),
    ({"CRS": None}, "MissingParameterValue", "CRS"),
    ({"CRS": "EPSG:2056"}, "InvalidParameterValue", "CRS"),                   # known, but not offered
    ({"CRS": "EPSG:999999"}, "InvalidParameterValue", "CRS"),
    ({"RESPONSE_CRS": "EPSG:31467"}, "InvalidParameterValue", "RESPONSE_CRS"),
    ({"FORMAT": "image/png"}, "InvalidFormat", "FORMAT"),
    ({"FORMAT": None}, "MissingParameterValue", "FORMAT"),
    ({"BAND": "2"}, "InvalidParameterValue", "BAND"),                         # the DEM has one band
    ({"BAND": "0"}, "InvalidParameterValue", "BAND"),
    ({"BAND": "x"}, "InvalidParameterValue", "BAND"),
    ({"BAND": "1/3"}, "InvalidParameterValue", "BAND"),
    ({"BBOX": None}, "MissingParameterValue", "BBOX"),
    ({"BBOX": "501900,5000100,500000,5002000"}, "InvalidParameterValue", "BBOX"),
    ({"BBOX": "1,2,3"}, "InvalidParameterValue", "BBOX"),
    ({"WIDTH": None, "HEIGHT": None}, "MissingParameterValue", "WIDTH"),
    ({"HEIGHT": None}, "MissingParameterValue", "HEIGHT"),
    ({"WIDTH": "0"}, "InvalidParameterValue", "WIDTH"),
    ({"WIDTH": "5000"}, "InvalidParameterValue", "WIDTH"),                     # above the server's 4100
    ({"WIDTH": None, "HEIGHT": None, "RESX": "0.01", "RESY": "0.01"}, "InvalidParameterValue", "RESX"),
    ({"WIDTH": None, "HEIGHT": None, "RESX": "10"}, "MissingParameterValue", "RESY"),
    ({"INTERPOLATION": "none"}, "InvalidParameterValue", "INTERPOLATION"),
    ({"INTERPOLATION": "lost area"}, "InvalidParameterValue", "INTERPOLATION"),
])
def test_getcoverage_exceptions(client, changes, code, locator):
    exception(wcs(client, **{**DEM_GET, **changes}), code, locator)


@pytest.mark.parametrize("time", ["2030-01-01", "2023-01-01/2023-06-01", "yesterday", "2024-13-01"])
def test_getcoverage_bad_time(client, time):
    params = dict(REQUEST="GetCoverage", COVERAGE="ts", CRS="EPSG:4326", FORMAT="GeoTIFF", BBOX="0,0,10,10",
                  WIDTH="10", HEIGHT="10", TIME=time)
    exception(wcs(client, **params), "InvalidParameterValue", "TIME")


def test_version_alias_reaches_wcs10(client):
    """VERSION=1.0 is 1.0.0: this module answers (and its exceptions are WCS 1.0 reports)."""
    exception(wcs(client, REQUEST="GetCoverage", VERSION="1.0"), "MissingParameterValue", "COVERAGE")
    root = xml(wcs(client, REQUEST="DescribeCoverage", VERSION="1.0", COVERAGE="dem"))
    assert root.get("version") == "1.0.0"
