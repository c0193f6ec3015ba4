"""Multidimensional services through the ArcGIS REST face, against the analytic cube of
tests/synth_multidim.py (every pixel names its variable, month, depth and column): hasMultidimensions,
multidimensionalInfo and slices list exactly the fixture's values; exportImage, identify and getSamples
return the slice asked for by sliceId, by multidimensionalDefinition and by time (StdTime); what a
request leaves out takes its default; every malformed definition is a 400 naming its parameter.

Both services hold the same cube: `ocean` from catalog attributes (a GeoTIFF per slice and half),
`cube` from the bands of NetCDF files (NETCDF_DIM_time, NETCDF_DIM_depth)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rasterio.io import MemoryFile

from synth_multidim import DEPTHS, MONTHS, VARIABLES, epoch_ms, md_value

SERVICES = ("ocean", "cube")
# The first variable: ocean lists its variables in the config (temp, salt); cube's come from the
# NetCDF files, in name order (salt, temp).
ORDER = {"ocean": ("temp", "salt"), "cube": ("salt", "temp")}
BOX = {"bbox": "0,40,20,50", "bboxSR": "4326", "size": "20,10"}
LONS = np.arange(20) + 0.5                       # the export grid's pixel-centre longitudes


def url(name: str, op: str = "") -> str:
    return f"/arcgis/rest/services/{name}/ImageServer" + (f"/{op}" if op else "")


def get(client, name, op, **params):
    resp = client.get(url(name, op), query_string={"f": "json", **params})
    assert resp.status_code == 200
    return resp.get_json()


def export(client, name, masked: bool = False, **params) -> np.ndarray:
    resp = client.get(url(name, "exportImage"), query_string={"f": "image", "format": "tiff", **BOX, **params})
    assert resp.content_type == "image/tiff", resp.data[:400]
    with MemoryFile(resp.data) as memfile, memfile.open() as ds:
        assert ds.count == 1 and ds.dtypes[0] == "float32"
        return ds.read(1, masked=masked)


def truth(variable, month, depth) -> np.ndarray:
    return np.repeat(md_value(variable, month, depth, LONS)[None, :], 10, axis=0)


def expected_slices(name):
    return [(v, m, d) for v in ORDER[name] for m in MONTHS for d in DEPTHS]


def definition(**dims) -> str:
    """A mosaic rule holding a multidimensionalDefinition: variable=..., StdTime=[...], StdZ=[...]."""
    variable = dims.pop("variable", None)
    entries = [{"variableName": variable or "", "dimensionName": k, "values": v, "isSlice": True}
               for k, v in dims.items()]
    if variable and not entries:
        entries = [{"variableName": variable}]
    return json.dumps({"multidimensionalDefinition": entries})


# --- metadata ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SERVICES)
def test_root_json_says_it_is_multidimensional(md_client, client, name):
    body = get(md_client, name, "")
    assert body["hasMultidimensions"] is True
    assert body["bandCount"] == 1 and body["pixelType"] == "F32"
    assert body["timeInfo"]["timeExtent"] == [epoch_ms(1), epoch_ms(3)]
    assert get(client, "dem", "")["hasMultidimensions"] is False


@pytest.mark.parametrize("name", SERVICES)
def test_multidimensional_info_lists_the_fixture(md_client, name):
    info = get(md_client, name, "multidimensionalInfo")["multidimensionalInfo"]
    assert [v["name"] for v in info["variables"]] == list(ORDER[name])
    for v in info["variables"]:
        assert (v["unit"], v["description"]) == {"temp": ("degC", "Sea water temperature"),
                                                 "salt": ("psu", "Sea water salinity")}[v["name"]]
        time, depth = v["dimensions"]
        assert time["name"] == "StdTime" and time["unit"] == "ISO8601"
        assert time["values"] == [epoch_ms(m) for m in MONTHS]
        assert time["extent"] == [epoch_ms(1), epoch_ms(3)] and time["hasRanges"] is False
        assert (time["hasRegularIntervals"], time["interval"], time["intervalUnit"]) == (True, 1, "Months")
        assert depth["name"] == "StdZ" and depth["unit"] == "m"
        assert depth["values"] == list(DEPTHS) and depth["extent"] == [0, 50]
        assert depth["hasRegularIntervals"] is False
        assert depth["description"] == {"ocean": "Depth", "cube": "Depth below the surface"}[name]
        every = np.concatenate([md_value(v["name"], m, d, LONS) for m in MONTHS for d in DEPTHS]).astype("f8")
        stats, = v["statistics"]
        assert (stats["min"], stats["max"]) == (every.min(), every.max())
        assert stats["mean"] == pytest.approx(every.mean(), rel=1e-9)
        assert stats["standardDeviation"] == pytest.approx(every.std(), rel=1e-6)


@pytest.mark.parametrize("name", SERVICES)
def test_multidimensional_info_leaves_out_regular_values_when_asked(md_client, name):
    never = get(md_client, name, "multidimensionalInfo", returnDimensionValues="never")
    assert all("values" not in d for v in never["multidimensionalInfo"]["variables"] for d in v["dimensions"])
    irregular = get(md_client, name, "multidimensionalInfo", returnDimensionValues="ifIrregular")
    time, depth = irregular["multidimensionalInfo"]["variables"][0]["dimensions"]
    assert "values" not in time and depth["values"] == list(DEPTHS)
    bad = get(md_client, name, "multidimensionalInfo", returnDimensionValues="sometimes")
    assert bad["error"]["code"] == 400 and "returnDimensionValues" in bad["error"]["message"]


@pytest.mark.parametrize("name", SERVICES)
def test_service_statistics_and_histograms_count_every_slice(md_client, name):
    every = np.concatenate([md_value(v, m, d, LONS) for v in VARIABLES for m in MONTHS for d in DEPTHS])
    stats, = get(md_client, name, "statistics")["statistics"]
    assert (stats["min"], stats["max"]) == (every.min(), every.max())
    histogram, = get(md_client, name, "histograms")["histograms"]
    assert sum(histogram["counts"]) == every.size * 10            # 10 rows of each slice's 20 columns


@pytest.mark.parametrize("name", SERVICES)
def test_slices_lists_every_slice_with_its_definition(md_client, name):
    slices = get(md_client, name, "slices")["slices"]
    assert [s["sliceId"] for s in slices] == list(range(18))
    for s, (variable, month, depth) in zip(slices, expected_slices(name)):
        assert s["multidimensionalDefinition"] == [
            {"variableName": variable, "dimensionName": "StdTime", "values": [epoch_ms(month)], "isSlice": True},
            {"variableName": variable, "dimensionName": "StdZ", "values": [depth], "isSlice": True}]


@pytest.mark.parametrize("name", SERVICES)
def test_slices_filtered_by_a_definition(md_client, name):
    def ids(entries):
        body = get(md_client, name, "slices", multidimensionalDefinition=json.dumps(entries))
        return [s["sliceId"] for s in body["slices"]]

    index = {key: n for n, key in enumerate(expected_slices(name))}
    assert ids([{"variableName": "temp", "dimensionName": "StdZ", "values": [10]}]) == \
        [index["temp", m, 10] for m in MONTHS]
    assert ids([{"variableName": "salt", "dimensionName": "StdZ", "values": [[0, 10]]},
                {"variableName": "salt", "dimensionName": "StdTime", "values": [epoch_ms(3)]}]) == \
        [index["salt", 3, 0], index["salt", 3, 10]]
    # a definition without a variable applies to every variable
    assert ids([{"dimensionName": "StdTime", "values": [[epoch_ms(2), epoch_ms(2, 15)]]},
                {"dimensionName": "StdZ", "values": [50]}]) == sorted(index[v, 2, 50] for v in VARIABLES)


# --- exportImage --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SERVICES)
def test_export_by_slice_id_returns_each_slice(md_client, name):
    for slice_id, (variable, month, depth) in enumerate(expected_slices(name)):
        assert np.array_equal(export(md_client, name, sliceId=slice_id), truth(variable, month, depth)), slice_id


@pytest.mark.parametrize("name", SERVICES)
@pytest.mark.parametrize("variable, month, depth", [("temp", 2, 10), ("salt", 1, 50), ("temp", 3, 0)])
def test_export_by_definition_returns_the_slice(md_client, name, variable, month, depth):
    rule = definition(variable=variable, StdTime=[epoch_ms(month)], StdZ=[depth])
    assert np.array_equal(export(md_client, name, mosaicRule=rule), truth(variable, month, depth))


@pytest.mark.parametrize("name", SERVICES)
def test_what_a_request_leaves_out_takes_its_default(md_client, name):
    first = ORDER[name][0]
    # nothing: the first variable, the depth closest to 0, every time with the newest on top
    assert np.array_equal(export(md_client, name), truth(first, 3, 0))
    # a variable only; a depth only (of the first variable)
    assert np.array_equal(export(md_client, name, mosaicRule=definition(variable="salt")), truth("salt", 3, 0))
    assert np.array_equal(export(md_client, name, mosaicRule=definition(StdZ=[50])), truth(first, 3, 50))
    # a range of depths: those slices mosaicked (each pixel is one of them)
    ranged = export(md_client, name, mosaicRule=definition(variable="temp", StdTime=[epoch_ms(1)], StdZ=[[5, 60]]))
    assert np.isin(ranged, [truth("temp", 1, d) for d in (10, 50)]).all()


@pytest.mark.parametrize("name", SERVICES)
def test_time_is_stdtime(md_client, name):
    first = ORDER[name][0]
    by_time = export(md_client, name, time=str(epoch_ms(2)))
    assert np.array_equal(by_time, truth(first, 2, 0))
    by_window = export(md_client, name, time=f"{epoch_ms(1, 20)},{epoch_ms(2, 10)}")
    assert np.array_equal(by_window, truth(first, 2, 0))
    both = export(md_client, name, time=str(epoch_ms(1)), mosaicRule=definition(variable="salt", StdZ=[10]))
    assert np.array_equal(both, truth("salt", 1, 10))
    empty = export(md_client, name, masked=True, time=str(epoch_ms(1)), mosaicRule=definition(StdTime=[epoch_ms(2)]))
    assert np.ma.getmaskarray(empty).all()                         # no slice is both: no data


@pytest.mark.parametrize("name", SERVICES)
def test_slice_id_wins_over_the_rules_definition(md_client, name):
    variable, month, depth = expected_slices(name)[7]
    rule = definition(variable="salt", StdZ=[50])
    assert np.array_equal(export(md_client, name, sliceId=7, mosaicRule=rule), truth(variable, month, depth))


# --- identify and getSamples -------------------------------------------------------------------------

def _number(value: float) -> str:
    return str(int(value))


@pytest.mark.parametrize("name", SERVICES)
def test_identify_returns_the_slice_value(md_client, name):
    for slice_id, (variable, month, depth) in enumerate(expected_slices(name)):
        if slice_id % 4:
            continue
        body = get(md_client, name, "identify", geometry="13.5,44.5", sliceId=slice_id)
        assert body["value"] == _number(md_value(variable, month, depth, 13.5)), slice_id
        values = body["properties"]["Values"]
        assert values == [_number(md_value(variable, month, depth, 13.5))]
        item = body["catalogItems"]["features"][0]["attributes"]
        assert item["Name"] == (f"{variable}_{month}_{depth}_e" if name == "ocean" else variable)
    body = get(md_client, name, "identify", geometry=json.dumps({"x": 2.5, "y": 41.5}),
               mosaicRule=definition(variable="salt", StdTime=[epoch_ms(1)], StdZ=[10]))
    assert body["value"] == _number(md_value("salt", 1, 10, 2.5))


@pytest.mark.parametrize("name", SERVICES)
def test_get_samples_returns_the_slice_values(md_client, name):
    points = json.dumps({"points": [[0.5, 49.5], [7.25, 45], [19.9, 40.1]], "spatialReference": {"wkid": 4326}})
    for params, (variable, month, depth) in [
            ({"sliceId": 16}, expected_slices(name)[16]),
            ({"mosaicRule": definition(variable="temp", StdTime=[epoch_ms(2)], StdZ=[50])}, ("temp", 2, 50))]:
        body = get(md_client, name, "getSamples", geometry=points, geometryType="esriGeometryMultipoint", **params)
        assert [s["value"] for s in body["samples"]] == [_number(md_value(variable, month, depth, x))
                                                         for x in (0.5, 7.25, 19.9)]
    every = get(md_client, name, "getSamples", geometry="3.5,45.5", returnFirstValueOnly="false",
                mosaicRule=definition(variable="temp", StdZ=[[0, 50]], StdTime=[epoch_ms(3)]))
    assert sorted(float(s["value"]) for s in every["samples"]) == sorted(md_value("temp", 3, d, 3.5) for d in DEPTHS)


# --- errors -------------------------------------------------------------------------------------------

BAD_DEFINITIONS = [
    ("x", "not valid JSON"),                                           # in a mosaic rule: JSON is required
    ({"multidimensionalDefinition": "x"}, "not valid JSON"),
    ({"multidimensionalDefinition": 5}, "must be an array"),
    ({"multidimensionalDefinition": [5]}, "must be an object"),
    ({"multidimensionalDefinition": [{"variableName": "nope"}]}, "no variable 'nope'"),
    ({"multidimensionalDefinition": [{"variableName": 3}]}, "variableName must be a string"),
    ({"multidimensionalDefinition": [{"dimensionName": "StdX", "values": [1]}]}, "no dimension 'StdX'"),
    ({"multidimensionalDefinition": [{"dimensionName": "StdZ", "values": 10}]}, "values must be an array"),
    ({"multidimensionalDefinition": [{"dimensionName": "StdZ", "values": ["deep"]}]}, "not a number"),
    ({"multidimensionalDefinition": [{"dimensionName": "StdZ", "values": [[1, 2, 3]]}]}, "a range is"),
    ({"multidimensionalDefinition": [{"dimensionName": "StdZ", "values": [[50, 0]]}]}, "lower bound above"),
    ({"multidimensionalDefinition": [{"dimensionName": "StdZ", "values": [True]}]}, "not a number"),
    ({"multidimensionalDefinition": [{"values": [1]}]}, "values need a dimensionName"),
    ({"multidimensionalDefinition": [{"dimensionName": "StdZ", "isSlice": "yes"}]}, "isSlice"),
]


@pytest.mark.parametrize("name", SERVICES)
@pytest.mark.parametrize("rule, says", BAD_DEFINITIONS)
def test_a_malformed_definition_is_a_400_naming_the_mosaic_rule(md_client, name, rule, says):
    text = rule if isinstance(rule, str) else json.dumps(rule)
    if text == "x":
        text = '{"multidimensionalDefinition": x}'
    for op, params in (("exportImage", BOX), ("identify", {"geometry": "5.5,45.5"}),
                       ("getSamples", {"geometry": "5.5,45.5"})):
        body = get(md_client, name, op, mosaicRule=text, **params)
        assert body["error"]["code"] == 400, (op, body)
        assert "mosaicRule" in body["error"]["message"] and says in body["error"]["message"], (op, body)


@pytest.mark.parametrize("name", SERVICES)
@pytest.mark.parametrize("value", ["x", "1.5", "-1", "18", "1e30", "nan", "[1]"])
def test_a_bad_slice_id_is_a_400_naming_it(md_client, name, value):
    for op, params in (("exportImage", BOX), ("identify", {"geometry": "5.5,45.5"}),
                       ("getSamples", {"geometry": "5.5,45.5"})):
        body = get(md_client, name, op, sliceId=value, **params)
        assert body["error"]["code"] == 400 and "sliceId" in body["error"]["message"], (op, value, body)


@pytest.mark.parametrize("name", SERVICES)
def test_a_bad_slices_filter_is_a_400_naming_it(md_client, name):
    for value in ('[{"variableName": "nope"}]', "[", '[{"dimensionName": "StdZ", "values": [[9, 1]]}]', "[]"):
        body = get(md_client, name, "slices", multidimensionalDefinition=value)
        assert body["error"]["code"] == 400 and "multidimensionalDefinition" in body["error"]["message"], value


def test_a_service_without_dimensions_says_so(client):
    body = get(client, "dem", "exportImage", sliceId="0", **BOX)
    assert body["error"]["code"] == 400 and "sliceId" in body["error"]["message"]
    body = get(client, "dem", "exportImage", mosaicRule=definition(StdZ=[1]), **BOX)
    assert body["error"]["code"] == 400 and "hasMultidimensions is false" in body["error"]["message"]
    assert get(client, "dem", "exportImage", mosaicRule=json.dumps({"multidimensionalDefinition": []}),
               f="json", **BOX).get("href")
    for resource in ("multidimensionalInfo", "slices"):
        assert get(client, "dem", resource)["error"]["code"] == 404


def test_time_extents_are_ranges(data_dir, tmp_path):
    """With end_time_field, StdTime values are [start, end] ranges; an instant inside one selects it."""
    from ogc_gateway.app import create_app
    from ogc_gateway.config import Config, ServerConfig, ServiceConfig, VariableConfig
    from synth import ts_value

    service = ServiceConfig(name="monthly", sources=(str(data_dir / "ts" / "*.tif"),),
                            catalog=data_dir / "ts" / "times.csv", time_field="date", end_time_field="date_end",
                            variables=(VariableConfig("t"),), default_resampling="nearest")
    client = create_app(Config(server=ServerConfig(cache_dir=tmp_path), services={"monthly": service})).test_client()
    dim, = get(client, "monthly", "multidimensionalInfo")["multidimensionalInfo"]["variables"][0]["dimensions"]
    assert dim["hasRanges"] is True and dim["intervalUnit"] == "Months"
    ends = [epoch_ms(m + 1) - 1 for m in range(1, 12)] + [epoch_ms(12, 31) + 86_400_000 - 1]
    assert dim["values"] == [[epoch_ms(m), end] for m, end in zip(range(1, 13), ends)]
    assert dim["extent"] == [epoch_ms(1), ends[-1]]
    slices = get(client, "monthly", "slices")["slices"]
    assert slices[2]["multidimensionalDefinition"][0]["values"] == [[epoch_ms(3), ends[2]]]
    box = {"bbox": "10,40,12,42", "bboxSR": "4326", "size": "2,2", "f": "image", "format": "tiff"}
    lats = np.array([[41.5, 41.5], [40.5, 40.5]])
    for params, month in [({"sliceId": 2}, 3), ({"mosaicRule": definition(StdTime=[epoch_ms(7, 20)])}, 7),
                          ({"time": str(epoch_ms(10, 31) + 3_600_000)}, 10)]:
        resp = client.get(url("monthly", "exportImage"), query_string={**box, **params})
        with MemoryFile(resp.data) as memfile, memfile.open() as ds:
            assert np.array_equal(ds.read(1), ts_value(month, lats)), params


@pytest.mark.parametrize("name", SERVICES)
def test_the_catalog_query_filters_by_definition_and_stdtime(md_client, name):
    def names(**params):
        body = get(md_client, name, "query", where="1=1", outFields="Name", **params)
        return sorted(f["attributes"]["Name"] for f in body["features"])

    rule = json.dumps({"multidimensionalDefinition": [{"variableName": "temp", "dimensionName": "StdZ",
                                                       "values": [10]}]})
    if name == "ocean":          # one file per slice and half: the query narrows to the slice's files
        assert names(mosaicRule=rule) == sorted(f"temp_{m}_10_{h}" for m in MONTHS for h in "we")
        assert names(time=str(epoch_ms(2))) == sorted(f"{v}_2_{d}_{h}" for v in VARIABLES for d in DEPTHS
                                                      for h in "we")
    else:                        # one file per variable: a file is found when one of its bands is
        assert names(mosaicRule=rule) == ["temp"]
        assert names(time=str(epoch_ms(2))) == ["salt", "temp"]
        assert names(time=str(epoch_ms(2, 15))) == []
