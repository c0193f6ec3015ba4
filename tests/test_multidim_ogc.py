"""Multidimensional services through WMS and WCS, against the analytic cube of tests/synth_multidim.py:
StdTime is TIME, StdZ is ELEVATION (WCS: the `elevation` axis), several variables are DIM_VARIABLE
(`variable`); capabilities and coverage descriptions advertise them and stay schema-valid; raw GetMap
and GetCoverage (test client, OWSLib and GDAL on a real socket) return the slice asked for; every
malformed dimension value is an exception in the face's own format."""

from __future__ import annotations

import email
import email.policy
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import rasterio
from lxml import etree
from rasterio.io import MemoryFile

from ogc_schemas import validate
from synth_multidim import MONTHS, md_value

SERVICES = ("ocean", "cube")
FIRST = {"ocean": "temp", "cube": "salt"}            # the default variable (see test_multidim_rest.py)
WMS_NS = "{http://www.opengis.net/wms}"
OGC_NS = "{http://www.opengis.net/ogc}"
LONS = np.arange(20) + 0.5


def wms_url(name: str) -> str:
    return f"/arcgis/services/{name}/ImageServer/WMSServer"


def wcs_url(name: str) -> str:
    return f"/arcgis/services/{name}/ImageServer/WCSServer"


def iso(month: int) -> str:
    return f"2024-{month:02d}-01T00:00:00Z"


def truth(variable, month, depth, lons=LONS, rows=10) -> np.ndarray:
    return np.repeat(md_value(variable, month, depth, lons)[None, :], rows, axis=0)


def values_of(data: bytes) -> np.ndarray:
    with MemoryFile(data) as memfile, memfile.open() as ds:
        return ds.read(1)


def getmap(client, name, version="1.3.0", **dims):
    crs = {"CRS": "CRS:84"} if version == "1.3.0" else {"SRS": "EPSG:4326"}
    return client.get(wms_url(name), query_string={
        "SERVICE": "WMS", "VERSION": version, "REQUEST": "GetMap", "LAYERS": name, "STYLES": "",
        "BBOX": "0,40,20,50", "WIDTH": "20", "HEIGHT": "10", "FORMAT": "image/tiff", **crs, **dims})


def wms_exception(resp, version, code, locator):
    """The WMS exception report of `version`, valid, with `code` and `locator` (1.3.0 only: the
    1.1.1 DTD has no locator)."""
    mime = "text/xml" if version == "1.3.0" else "application/vnd.ogc.se_xml"
    assert resp.content_type.split(";")[0] == mime, resp.data[:300]
    validate(resp.data)
    ns = OGC_NS if version == "1.3.0" else ""
    found, = etree.fromstring(resp.data).findall(f"{ns}ServiceException")
    assert (found.get("code"), found.get("locator")) == (code, locator if version == "1.3.0" else None), \
        etree.tostring(found)


# --- WMS -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SERVICES)
def test_wms_capabilities_advertise_the_dimensions(md_client, name):
    resp = md_client.get(wms_url(name), query_string={"SERVICE": "WMS", "REQUEST": "GetCapabilities",
                                                      "VERSION": "1.3.0"})
    validate(resp.data)
    layer = etree.fromstring(resp.data).find(f".//{WMS_NS}Layer")
    dims = {d.get("name"): d for d in layer.findall(f"{WMS_NS}Dimension")}
    assert list(dims) == ["time", "variable", "elevation"]
    assert dims["time"].text == ",".join(iso(m) for m in MONTHS) and dims["time"].get("default") == iso(3)
    variables = ("temp", "salt") if name == "ocean" else ("salt", "temp")
    assert dims["variable"].text == ",".join(variables) and dims["variable"].get("default") == variables[0]
    elevation = dims["elevation"]
    assert elevation.text == "0,10,50" and elevation.get("default") == "0"
    assert (elevation.get("units"), elevation.get("unitSymbol")) == ("EPSG:5030", "m")


@pytest.mark.parametrize("name", SERVICES)
def test_wms_111_capabilities_have_dimension_and_extent_in_dtd_order(md_client, name):
    resp = md_client.get(wms_url(name), query_string={"SERVICE": "WMS", "REQUEST": "GetCapabilities",
                                                      "VERSION": "1.1.1"})
    validate(resp.data)
    layer = etree.fromstring(resp.data).find(".//Layer")
    assert [d.get("name") for d in layer.findall("Dimension")] == ["time", "variable", "elevation"]
    extents = {e.get("name"): e for e in layer.findall("Extent")}
    assert extents["elevation"].text == "0,10,50" and extents["elevation"].get("default") == "0"


def test_the_combined_wms_is_valid_with_every_layer(md_client):
    for version in ("1.3.0", "1.1.1"):
        resp = md_client.get("/ogc/wms", query_string={"SERVICE": "WMS", "REQUEST": "GetCapabilities",
                                                       "VERSION": version})
        validate(resp.data)


@pytest.mark.parametrize("name", SERVICES)
@pytest.mark.parametrize("version", ["1.3.0", "1.1.1"])
def test_getmap_returns_the_slice_asked_for(md_client, name, version):
    for variable, month, depth in [("temp", 2, 10), ("salt", 1, 50), ("temp", 3, 0)]:
        resp = getmap(md_client, name, version, TIME=iso(month), ELEVATION=str(depth), DIM_VARIABLE=variable)
        assert resp.content_type == "image/tiff", resp.data[:300]
        assert np.array_equal(values_of(resp.data), truth(variable, month, depth))
        assert "Warning" not in resp.headers
    # parameter names and variable names are case-insensitive; TIME at reduced precision
    resp = getmap(md_client, name, version, time="2024-02", elevation="50", dim_variable="TEMP")
    assert np.array_equal(values_of(resp.data), truth("temp", 2, 50))


@pytest.mark.parametrize("name", SERVICES)
def test_getmap_defaults_are_announced(md_client, name):
    resp = getmap(md_client, name)
    assert np.array_equal(values_of(resp.data), truth(FIRST[name], 3, 0))
    assert resp.headers["Warning"] == (f"99 Default value used: time={iso(3)} ISO8601, "
                                       f"99 Default value used: variable={FIRST[name]}, "
                                       "99 Default value used: elevation=0 EPSG:5030")
    resp = getmap(md_client, name, ELEVATION="10", DIM_VARIABLE="default", TIME="current")
    assert np.array_equal(values_of(resp.data), truth(FIRST[name], 3, 10))


@pytest.mark.parametrize("name", SERVICES)
def test_getmap_lists_and_intervals_select_several_slices(md_client, name):
    both = values_of(getmap(md_client, name, TIME=iso(1), ELEVATION="0,50", DIM_VARIABLE="temp").data)
    assert np.isin(both, [truth("temp", 1, d) for d in (0, 50)]).all()
    interval = values_of(getmap(md_client, name, TIME=iso(2), ELEVATION="5/60", DIM_VARIABLE="salt").data)
    assert np.isin(interval, [truth("salt", 2, d) for d in (10, 50)]).all()
    times = values_of(getmap(md_client, name, TIME=f"{iso(1)},{iso(3)}", ELEVATION="10",
                             DIM_VARIABLE="temp").data)
    assert np.isin(times, [truth("temp", m, 10) for m in (1, 3)]).all()


@pytest.mark.parametrize("name", SERVICES)
@pytest.mark.parametrize("version", ["1.3.0", "1.1.1"])
@pytest.mark.parametrize("param, value", [("ELEVATION", "7"), ("ELEVATION", "deep"), ("ELEVATION", "100/200"),
                                          ("ELEVATION", "50/0"), ("ELEVATION", "0,,10"), ("ELEVATION", "1/2/3/4"),
                                          ("DIM_VARIABLE", "oxygen"), ("DIM_VARIABLE", "temp,"),
                                          ("TIME", "2025-01-01"), ("TIME", "soon")])
def test_a_bad_dimension_value_is_invalid_dimension_value(md_client, name, version, param, value):
    wms_exception(getmap(md_client, name, version, **{param: value}), version, "InvalidDimensionValue", param)


def test_a_layer_without_the_dimension_ignores_it(client):
    resp = client.get("/arcgis/services/dem/ImageServer/WMSServer", query_string={
        "SERVICE": "WMS", "VERSION": "1.3.0", "REQUEST": "GetMap", "LAYERS": "dem", "STYLES": "",
        "CRS": "EPSG:32633", "BBOX": "500000,5000100,501900,5002000", "WIDTH": "19", "HEIGHT": "19",
        "FORMAT": "image/tiff", "ELEVATION": "7", "DIM_VARIABLE": "x"})
    assert resp.content_type == "image/tiff"


@pytest.mark.parametrize("name", SERVICES)
def test_getfeatureinfo_gives_the_slice_value(md_client, name):
    resp = md_client.get(wms_url(name), query_string={
        "SERVICE": "WMS", "VERSION": "1.3.0", "REQUEST": "GetFeatureInfo", "LAYERS": name, "QUERY_LAYERS": name,
        "STYLES": "", "CRS": "CRS:84", "BBOX": "0,40,20,50", "WIDTH": "20", "HEIGHT": "10", "I": "13", "J": "4",
        "INFO_FORMAT": "application/json", "TIME": iso(2), "ELEVATION": "50", "DIM_VARIABLE": "temp"})
    feature, = resp.get_json()["features"]
    assert feature["properties"]["Band_1"] == md_value("temp", 2, 50, 13.5)
    assert feature["properties"]["time"] == iso(2)
    resp = md_client.get(wms_url(name), query_string={
        "SERVICE": "WMS", "VERSION": "1.1.1", "REQUEST": "GetFeatureInfo", "LAYERS": name, "QUERY_LAYERS": name,
        "STYLES": "", "SRS": "EPSG:4326", "BBOX": "0,40,20,50", "WIDTH": "20", "HEIGHT": "10", "X": "2", "Y": "4",
        "INFO_FORMAT": "application/json", "ELEVATION": "oops"})
    wms_exception(resp, "1.1.1", "InvalidDimensionValue", "ELEVATION")


def test_owslib_reads_the_dimensions_and_gets_a_slice(md_live_url, local_clients):
    from owslib.wms import WebMapService

    service = WebMapService(md_live_url + wms_url("cube") + "?", version="1.3.0")
    layer = service["cube"]
    assert layer.timepositions == [iso(m) for m in MONTHS] and layer.elevations == ["0", "10", "50"]
    assert layer.dimensions["variable"]["values"] == ["salt", "temp"]
    picture = service.getmap(layers=["cube"], styles=[""], srs="CRS:84", bbox=(0, 40, 20, 50), size=(20, 10),
                             format="image/tiff", time=iso(1), elevation=10, dimensions={"variable": "temp"})
    assert np.array_equal(values_of(picture.read()), truth("temp", 1, 10))


# --- WCS -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SERVICES)
def test_coverage_descriptions_describe_the_dimensions(md_client, name):
    wcs = wcs_url(name)
    d20 = md_client.get(wcs, query_string={"SERVICE": "WCS", "VERSION": "2.0.1", "REQUEST": "DescribeCoverage",
                                           "COVERAGEID": name})
    validate(d20.data)
    gs = "{http://www.geoserver.org/wcsgs/2.0}"
    root = etree.fromstring(d20.data)
    elevation = root.find(f".//{gs}ElevationDomain")
    assert [v.text for v in elevation.findall(f"{gs}SingleValue")] == ["0", "10", "50"]
    assert elevation.get("default") == "0"
    variable = root.find(f".//{gs}DimensionDomain[@name='variable']")
    assert variable.get("default") == FIRST[name] and len(variable) == 2
    d10 = md_client.get(wcs, query_string={"SERVICE": "WCS", "VERSION": "1.0.0", "REQUEST": "DescribeCoverage",
                                           "COVERAGE": name})
    validate(d10.data)
    axes = etree.fromstring(d10.data).findall(".//{http://www.opengis.net/wcs}AxisDescription")
    assert [a.findtext("{http://www.opengis.net/wcs}name") for a in axes] == ["Band", "variable", "elevation"]
    d11 = md_client.get(wcs, query_string={"SERVICE": "WCS", "VERSION": "1.1.1", "REQUEST": "DescribeCoverage",
                                           "IDENTIFIERS": name})
    validate(d11.data)
    axes = etree.fromstring(d11.data).findall(".//{http://www.opengis.net/wcs/1.1.1}Axis")
    assert [a.get("identifier") for a in axes] == ["Band", "variable", "elevation"]
    keys = axes[2].findall(".//{http://www.opengis.net/wcs/1.1.1}Key")
    assert [k.text for k in keys] == ["0", "10", "50"]


def wcs20(client, name, *subsets, **params):
    query = [("SERVICE", "WCS"), ("VERSION", "2.0.1"), ("REQUEST", "GetCoverage"), ("COVERAGEID", name)]
    return client.get(wcs_url(name), query_string=query + [("SUBSET", s) for s in subsets] + list(params.items()))


@pytest.mark.parametrize("name", SERVICES)
def test_wcs20_slices_by_dimension(md_client, name):
    for subsets, (variable, month, depth) in [
            (('elevation("10")', 'variable("temp")', f'time("{iso(2)}")'), ("temp", 2, 10)),
            (("StdZ(50)", "variable(salt)", f"time({iso(1)})"), ("salt", 1, 50)),
            (("elevation(0)",), (FIRST[name], 3, 0))]:
        resp = wcs20(md_client, name, *subsets)
        assert resp.status_code == 200 and resp.content_type == "image/tiff", resp.data[:300]
        assert np.array_equal(values_of(resp.data), truth(variable, month, depth))
    trimmed = wcs20(md_client, name, "elevation(5,60)", "variable(temp)", f'time("{iso(3)}")', "Long(3,5)")
    assert np.isin(values_of(trimmed.data), [truth("temp", 3, d, LONS[3:5]) for d in (10, 50)]).all()


@pytest.mark.parametrize("name", SERVICES)
@pytest.mark.parametrize("subset", ["elevation(7)", "elevation(deep)", 'variable("oxygen")', "variable(temp,salt)",
                                    "elevation(100,200)", "elevation(50,0)", "time(2030-01-01)"])
def test_wcs20_bad_dimension_subsets_are_invalid_subsetting(md_client, name, subset):
    resp = wcs20(md_client, name, subset)
    assert resp.status_code == 404 and resp.content_type == "application/xml"
    validate(resp.data)
    exc = etree.fromstring(resp.data).find("{http://www.opengis.net/ows/2.0}Exception")
    assert exc.get("exceptionCode") == "InvalidSubsetting" and exc.get("locator") == subset.split("(")[0]


def test_wcs20_the_same_dimension_twice_is_refused(md_client):
    resp = wcs20(md_client, "cube", "elevation(0)", "StdZ(10)")
    assert resp.status_code == 404 and b"InvalidAxisLabel" in resp.data
    validate(resp.data)


def wcs10(client, name, **params):
    return client.get(wcs_url(name), query_string={
        "SERVICE": "WCS", "VERSION": "1.0.0", "REQUEST": "GetCoverage", "COVERAGE": name, "CRS": "EPSG:4326",
        "BBOX": "0,40,20,50", "WIDTH": "20", "HEIGHT": "10", "FORMAT": "GeoTIFF", **params})


@pytest.mark.parametrize("name", SERVICES)
def test_wcs10_takes_dimensions_as_axis_parameters(md_client, name):
    for params, (variable, month, depth) in [
            ({"ELEVATION": "10", "VARIABLE": "temp", "TIME": iso(2)}, ("temp", 2, 10)),
            ({"elevation": "50", "DIM_VARIABLE": "salt", "TIME": iso(1)}, ("salt", 1, 50)),
            ({}, (FIRST[name], 3, 0))]:
        resp = wcs10(md_client, name, **params)
        assert resp.content_type == "image/tiff", resp.data[:300]
        assert np.array_equal(values_of(resp.data), truth(variable, month, depth))


@pytest.mark.parametrize("name", SERVICES)
@pytest.mark.parametrize("params", [{"ELEVATION": "7"}, {"VARIABLE": "oxygen"}, {"DIM_VARIABLE": "x"},
                                    {"ELEVATION": "a/b"}])
def test_wcs10_bad_dimension_values_are_exceptions(md_client, name, params):
    resp = wcs10(md_client, name, **params)
    assert resp.status_code == 200 and resp.content_type == "application/vnd.ogc.se_xml"
    validate(resp.data)
    exc = etree.fromstring(resp.data).find(f"{OGC_NS}ServiceException")
    assert exc.get("code") == "InvalidParameterValue" and exc.get("locator") == next(iter(params))


def wcs11(client, name, **params):
    return client.get(wcs_url(name), query_string={
        "SERVICE": "WCS", "VERSION": "1.1.1", "REQUEST": "GetCoverage", "IDENTIFIER": name,
        "BOUNDINGBOX": "0.5,40.5,19.5,49.5,urn:ogc:def:crs:OGC:1.3:CRS84", "FORMAT": "image/tiff", **params})


def tiff_part(resp) -> bytes:
    head = f"Content-Type: {resp.headers['Content-Type']}\r\n\r\n".encode()
    message = email.message_from_bytes(head + resp.data, policy=email.policy.HTTP)
    return next(p.get_payload(decode=True) for p in message.iter_parts() if p.get_content_type() == "image/tiff")


@pytest.mark.parametrize("name", SERVICES)
def test_wcs11_takes_dimensions_as_range_axes(md_client, name):
    for params, (variable, month, depth) in [
            ({"RANGESUBSET": "contents[elevation[10],variable[temp]]", "TIMESEQUENCE": iso(2)}, ("temp", 2, 10)),
            ({"RANGESUBSET": "contents:nearest[Band[1],elevation[50]]", "DIM_VARIABLE": "salt",
              "TIMESEQUENCE": iso(1)}, ("salt", 1, 50)),
            ({"ELEVATION": "0"}, (FIRST[name], 3, 0))]:
        resp = wcs11(md_client, name, **params)
        assert resp.status_code == 200, resp.data[:300]
        assert np.array_equal(values_of(tiff_part(resp)), truth(variable, month, depth))
    bad = wcs11(md_client, name, RANGESUBSET="contents[elevation[7]]")
    assert bad.status_code == 400 and b"InvalidParameterValue" in bad.data
    validate(bad.data)


def test_owslib_wcs20_gets_a_slice(md_live_url, local_clients):
    from owslib.wcs import WebCoverageService

    service = WebCoverageService(md_live_url + wcs_url("ocean") + "?", version="2.0.1")
    resp = service.getCoverage(identifier="ocean", format="image/tiff",
                               subsets=[("elevation", 50), ("variable", "salt"), ("time", iso(2))])
    assert np.array_equal(values_of(resp.read()), truth("salt", 2, 50))


def test_owslib_wcs10_gets_a_slice(md_live_url, local_clients):
    from owslib.wcs import WebCoverageService

    service = WebCoverageService(md_live_url + wcs_url("cube") + "?", version="1.0.0")
    resp = service.getCoverage(identifier="cube", bbox=(0, 40, 20, 50), crs="EPSG:4326", format="GeoTIFF",
                               width=20, height=10, time=[iso(1)], ELEVATION="10", VARIABLE="temp")
    assert np.array_equal(values_of(resp.read()), truth("temp", 1, 10))


def gdal(fn):
    """A GDAL client call in a thread of its own (GDAL keeps errors in thread-local state)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


@pytest.mark.parametrize("name", SERVICES)
def test_gdal_wcs20_reads_a_slice(md_live_url, local_clients, name):
    url = f"WCS:{md_live_url}{wcs_url(name)}?version=2.0.1&coverage={name}"

    def read(subset):
        with rasterio.open(url, CACHE=str(local_clients), Subset=subset) as ds:
            return (ds.width, ds.height, ds.count), ds.read(1)

    shape, data = gdal(lambda: read(f"elevation(10);variable(temp);time({iso(2)})"))
    assert shape == (20, 10, 1) and np.array_equal(data, truth("temp", 2, 10))
    _, data = gdal(lambda: read("elevation(50);variable(salt)"))
    assert np.array_equal(data, truth("salt", 3, 50))


def test_gdal_wcs10_reads_a_slice_through_extra_parameters(md_live_url, local_clients):
    url = f"WCS:{md_live_url}{wcs_url('cube')}?version=1.0.0&coverage=cube"

    def read():
        with rasterio.open(url, CACHE=str(local_clients), GetCoverageExtra="&ELEVATION=50&VARIABLE=temp") as ds:
            return ds.read(1)

    assert np.array_equal(gdal(read), truth("temp", 3, 50))
