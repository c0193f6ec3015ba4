"""Pixel inspection against analytic truth (tests/synth.py): identify, getSamples, computeHistograms,
computeStatisticsHistograms, the histograms / statistics / legend / keyProperties /
rasterFunctionInfos resources and thumbnails. Every expected value is computed here, never taken
from the server's own output."""

from __future__ import annotations

import base64
import io
import json
import math
from datetime import UTC, datetime

import numpy as np
import pytest
import rasterio
from PIL import Image
from pyproj import Transformer

import synth
from synth import MOSAIC_BANDS, dem_value, mosaic_value, ts_value

ROOT = "/arcgis/rest/services/{}/ImageServer"
OP = ROOT + "/{}"
OVERLAP = (500900, 5001100)         # inside all four mosaic scenes
DEM_HOLE = (500100, 5001800, 500200, 5001900)


def get(client, service, op, **query):
    query.setdefault("f", "json")
    resp = client.get(OP.format(service, op), query_string=query)
    assert resp.status_code == 200
    return resp.get_json()


def error_code(body) -> int:
    assert set(body) == {"error"}, body
    return body["error"]["code"]


def scene_values(k: int, sep: str = " ") -> str:
    return sep.join(str(mosaic_value(k, b)) for b in range(4))


def epoch_ms(*args) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


# --- DEM truth ------------------------------------------------------------------------------------

def dem_centre(x: float, y: float) -> tuple[float, float]:
    """Centre of the 10 m pixel containing (x, y) (all tiles share one grid)."""
    return (500000 + math.floor((x - 500000) / 10) * 10 + 5, 5002000 - math.floor((5002000 - y) / 10) * 10 - 5)


def dem_tile_bounds(oid: int) -> tuple[float, float, float, float]:
    r, c = divmod(oid - 1, 2)
    left, top = 500000 + c * 900, 5002000 - r * 900
    return left, top - 1000, left + 1000, top


def dem_tiles_at(x: float, y: float) -> set[int]:
    return {oid for oid in range(1, 5)
            if (lambda b: b[0] <= x <= b[2] and b[1] <= y <= b[3])(dem_tile_bounds(oid))}


def in_hole(x: float, y: float) -> bool:
    return DEM_HOLE[0] <= x <= DEM_HOLE[2] and DEM_HOLE[1] <= y <= DEM_HOLE[3]


def dem_all_pixel_values() -> np.ndarray:
    """Every valid pixel of every tile (overlaps counted once per tile)."""
    out = []
    for oid in range(1, 5):
        left, bottom, right, top = dem_tile_bounds(oid)
        xs = left + (np.arange(100) + 0.5) * 10
        ys = top - (np.arange(100) + 0.5) * 10
        gx, gy = np.meshgrid(xs, ys)
        valid = ~((gx > DEM_HOLE[0]) & (gx < DEM_HOLE[2]) & (gy > DEM_HOLE[1]) & (gy < DEM_HOLE[3])) \
            if oid == 1 else np.ones(gx.shape, bool)
        out.append(dem_value(gx[valid], gy[valid]).astype("f8"))
    return np.concatenate(out)


def centres_in_box(xmin, ymin, xmax, ymax, size=10.0):
    xs = np.arange(xmin + size / 2, xmax, size)
    ys = np.arange(ymax - size / 2, ymin, -size)
    return np.meshgrid(xs, ys)


# --- identify -------------------------------------------------------------------------------------

@pytest.mark.parametrize("x, y", [(500003.2, 5001998.9),        # tile 1's first pixel
                                  (500432.1, 5000567.8),        # tile 3 only
                                  (500987.5, 5001012.1),        # all four tiles overlap
                                  (501850.4, 5000150.6),        # tile 4's far corner
                                  (500095.0, 5001855.0)])       # next to the hole
def test_identify_dem_value_is_the_containing_pixel(client, x, y):
    body = get(client, "dem", "identify", geometry=f"{x},{y}")
    cx, cy = dem_centre(x, y)
    assert float(body["value"]) == pytest.approx(float(dem_value(cx, cy)), abs=1e-3)
    assert body["location"]["x"] == pytest.approx(x) and body["location"]["y"] == pytest.approx(y)
    assert body["location"]["spatialReference"]["wkid"] == 32633
    oids = [f["attributes"]["OBJECTID"] for f in body["catalogItems"]["features"]]
    assert set(oids) == dem_tiles_at(x, y) and len(oids) == len(set(oids))
    # every tile samples the same plane, so every item's value is the same pixel value
    assert [float(v) for v in body["properties"]["Values"]] == \
        pytest.approx([float(dem_value(cx, cy))] * len(oids), abs=1e-3)
    assert sorted(body["catalogItemVisibilities"]) == [0] * (len(oids) - 1) + [1]


def test_identify_in_the_hole_is_nodata(client):
    body = get(client, "dem", "identify", geometry="500155,5001855")
    assert body["value"] == "NoData"
    assert [f["attributes"]["OBJECTID"] for f in body["catalogItems"]["features"]] == [1]
    assert body["catalogItems"]["features"][0]["attributes"]["Name"] == "dem_r0_c0"
    assert body["properties"]["Values"] == ["NoData"]
    assert body["catalogItemVisibilities"] == [0]


def test_identify_point_json_in_wgs84(client):
    x, y = 500432.1, 5000567.8
    lon, lat = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True).transform(x, y)
    geometry = json.dumps({"x": lon, "y": lat, "spatialReference": {"wkid": 4326}})
    body = get(client, "dem", "identify", geometry=geometry, geometryType="esriGeometryPoint")
    assert float(body["value"]) == pytest.approx(float(dem_value(*dem_centre(x, y))), abs=1e-3)
    assert body["location"]["x"] == pytest.approx(x, abs=1e-3)
    assert body["location"]["y"] == pytest.approx(y, abs=1e-3)
    assert body["location"]["spatialReference"]["wkid"] == 32633


def test_identify_mosaic_default_is_newest_first(client):
    body = get(client, "mosaic", "identify", geometry="%s,%s" % OVERLAP)
    assert body["value"] == scene_values(4, ", ")
    assert [f["attributes"]["OBJECTID"] for f in body["catalogItems"]["features"]] == [4, 3, 2, 1]
    assert body["properties"]["Values"] == [scene_values(k) for k in (4, 3, 2, 1)]
    assert body["catalogItemVisibilities"] == [1, 0, 0, 0]
    attrs = {f["attributes"]["OBJECTID"]: f["attributes"] for f in body["catalogItems"]["features"]}
    for k in range(1, 5):
        assert attrs[k]["sensor"] == ("S2A" if k % 2 else "L8")
        assert attrs[k]["cloud_cover"] == pytest.approx(k * 0.1)
        assert attrs[k]["priority"] == 5 - k
        y, m, d = map(int, synth.MOSAIC_DATES[k].split("-"))
        assert attrs[k]["acquired"] == epoch_ms(y, m, d, 10, 30)


@pytest.mark.parametrize("rule, winner, items", [
    ({"mosaicMethod": "esriMosaicLockRaster", "lockRasterIds": [2]}, 2, [2]),
    ({"where": "sensor='S2A'"}, 3, [3, 1]),
    ({"mosaicMethod": "esriMosaicNorthwest"}, 1, None),
    ({"mosaicOperation": "MT_MIN"}, 1, [4, 3, 2, 1]),
])
def test_identify_mosaic_rules(client, rule, winner, items):
    body = get(client, "mosaic", "identify", geometry="%s,%s" % OVERLAP, mosaicRule=json.dumps(rule))
    assert body["value"] == scene_values(winner, ", ")
    oids = [f["attributes"]["OBJECTID"] for f in body["catalogItems"]["features"]]
    if items is not None:
        assert oids == items
    assert body["properties"]["Values"] == [scene_values(k) for k in oids]
    visible = [oid for oid, v in zip(oids, body["catalogItemVisibilities"]) if v == 1]
    assert visible == [winner]


def test_identify_max_item_count_and_switches(client):
    one = get(client, "mosaic", "identify", geometry="%s,%s" % OVERLAP, maxItemCount=1)
    assert [f["attributes"]["OBJECTID"] for f in one["catalogItems"]["features"]] == [4]
    assert one["properties"]["Values"] == [scene_values(4)]
    bare = get(client, "mosaic", "identify", geometry="%s,%s" % OVERLAP, returnCatalogItems="false")
    assert bare["catalogItems"] is None and bare["value"] == scene_values(4, ", ")
    no_pixels = get(client, "mosaic", "identify", geometry="%s,%s" % OVERLAP, returnPixelValues="false")
    assert no_pixels["properties"] is None and len(no_pixels["catalogItems"]["features"]) == 4


def test_identify_return_geometry_is_the_footprint(client):
    body = get(client, "dem", "identify", geometry="500950,5001050", returnGeometry="true")
    for f in body["catalogItems"]["features"]:
        xs = [p[0] for ring in f["geometry"]["rings"] for p in ring]
        ys = [p[1] for ring in f["geometry"]["rings"] for p in ring]
        assert (min(xs), min(ys), max(xs), max(ys)) == pytest.approx(dem_tile_bounds(f["attributes"]["OBJECTID"]))


def test_identify_rendering_rules_none_gives_the_value(client):
    body = get(client, "dem", "identify", geometry="500432.1,5000567.8",
               renderingRules=json.dumps([{"rasterFunction": "None"}]))
    assert body["processedValues"] == [body["value"]]
    assert float(body["value"]) == pytest.approx(float(dem_value(*dem_centre(500432.1, 5000567.8))), abs=1e-3)


@pytest.mark.parametrize("when, month", [(epoch_ms(2024, 3, 10), 3), (epoch_ms(2024, 11, 15, 12), 11),
                                         (epoch_ms(2024, 11, 30), 11), (epoch_ms(2024, 1, 1), 1)])
def test_identify_time_picks_the_month(client, when, month):
    body = get(client, "ts", "identify", geometry="10.5,45.2", time=when)
    assert float(body["value"]) == pytest.approx(float(ts_value(month, 45.5)), abs=1e-3)
    assert [float(v) for v in body["properties"]["Values"]] == pytest.approx([float(ts_value(month, 45.5))])


def test_identify_multipoint_answers_each_point(client):
    points = [[500055, 5001955], [500155, 5001855], [501456.7, 5000333.3]]
    body = get(client, "dem", "identify", geometry=json.dumps({"points": points}),
               geometryType="esriGeometryMultipoint")
    assert list(body) == ["results"] and len(body["results"]) == 3
    for (x, y), res in zip(points, body["results"]):
        assert res["location"]["x"] == pytest.approx(x) and res["location"]["y"] == pytest.approx(y)
        if in_hole(x, y):
            assert res["value"] == "NoData"
        else:
            assert float(res["value"]) == pytest.approx(float(dem_value(*dem_centre(x, y))), abs=1e-3)


@pytest.mark.parametrize("geometry", ["abc", "1,2,3", '{"foo": 1}', '{"points": []}', '{"x": "NaN", "y": 1}', None])
def test_identify_bad_geometry_is_400(client, geometry):
    query = {} if geometry is None else {"geometry": geometry}
    assert error_code(get(client, "dem", "identify", **query)) == 400


def test_identify_html_form(client):
    resp = client.get(OP.format("dem", "identify"))
    assert resp.status_code == 200 and resp.content_type.startswith("text/html")
    assert b"<html" in resp.data.lower() and b"Identify" in resp.data


# --- getSamples -----------------------------------------------------------------------------------

def test_get_samples_operator_names_the_raster_it_sampled(client):
    (s,) = get(client, "mosaic", "getSamples", geometry="%s,%s" % OVERLAP,
               mosaicRule=json.dumps({"mosaicOperation": "MT_MIN"}))["samples"]
    assert s["value"] == scene_values(1)
    assert s["rasterId"] == 1 and s["resolution"] == pytest.approx(20)


def test_get_samples_time_and_outside_everything(client):
    (ts,) = get(client, "ts", "getSamples", geometry="10.5,45.2", time=epoch_ms(2024, 3, 10))["samples"]
    assert float(ts["value"]) == pytest.approx(float(ts_value(3, 45.5)), abs=1e-3) and ts["rasterId"] == 3
    (out,) = get(client, "dem", "getSamples", geometry="503000,5001500")["samples"]
    assert out["value"] == "NaN" and "rasterId" not in out and out["locationId"] == 0


def test_get_samples_polyline_sample_count(client):
    line = {"paths": [[[500005, 5001995], [501005, 5001995]]], "spatialReference": {"wkid": 32633}}
    body = get(client, "dem", "getSamples", geometry=json.dumps(line), geometryType="esriGeometryPolyline",
               sampleCount=3)
    samples = body["samples"]
    assert [s["locationId"] for s in samples] == [0, 1, 2]
    assert [s["location"]["x"] for s in samples] == pytest.approx([500005, 500505, 501005])
    assert [s["location"]["y"] for s in samples] == pytest.approx([5001995] * 3)
    for s in samples:
        x = s["location"]["x"]
        assert float(s["value"]) == pytest.approx(float(dem_value(x, 5001995)), abs=1e-3)
        assert s["rasterId"] in dem_tiles_at(x, 5001995)
        assert s["resolution"] == pytest.approx(10)
    assert samples[2]["rasterId"] == 2          # x 501005 lies in tile 2 only


def test_get_samples_multipoint_with_the_hole(client):
    points = [[500055, 5001955], [500150, 5001850], [501234.5, 5000987.6]]
    body = get(client, "dem", "getSamples", geometry=json.dumps({"points": points}),
               geometryType="esriGeometryMultipoint")
    samples = {s["locationId"]: s for s in body["samples"]}
    assert sorted(samples) == [0, 1, 2]
    hole = samples[1]
    assert hole["value"] == "NaN" and "rasterId" not in hole
    for k in (0, 2):
        x, y = points[k]
        assert float(samples[k]["value"]) == pytest.approx(float(dem_value(*dem_centre(x, y))), abs=1e-3)
        assert samples[k]["rasterId"] in dem_tiles_at(x, y)


OFF_CENTRE = [[500333.3, 5001444.4], [500671.7, 5001234.5], [501456.7, 5000333.3], [500912.3, 5001021.9]]


def test_get_samples_bilinear_reproduces_the_plane(client):
    body = get(client, "dem", "getSamples", geometry=json.dumps({"points": OFF_CENTRE}),
               geometryType="esriGeometryMultipoint", interpolation="RSP_BilinearInterpolation")
    got = {s["locationId"]: float(s["value"]) for s in body["samples"]}
    assert sorted(got) == list(range(len(OFF_CENTRE)))
    for k, (x, y) in enumerate(OFF_CENTRE):
        assert got[k] == pytest.approx(float(dem_value(x, y)), abs=1e-3)


def test_get_samples_nearest_is_the_containing_pixel(client):
    body = get(client, "dem", "getSamples", geometry=json.dumps({"points": OFF_CENTRE}),
               geometryType="esriGeometryMultipoint", interpolation="RSP_NearestNeighbor")
    got = {s["locationId"]: float(s["value"]) for s in body["samples"]}
    for k, (x, y) in enumerate(OFF_CENTRE):
        assert got[k] == pytest.approx(float(dem_value(*dem_centre(x, y))), abs=1e-3)
        assert abs(got[k] - float(dem_value(x, y))) > 0.01       # so the two tests tell them apart


def test_get_samples_every_item_at_the_overlap(client):
    body = get(client, "mosaic", "getSamples", geometry="%s,%s" % OVERLAP, returnFirstValueOnly="false")
    samples = body["samples"]
    assert len(samples) == 4 and {s["locationId"] for s in samples} == {0}
    assert {s["rasterId"] for s in samples} == {1, 2, 3, 4}
    for s in samples:
        assert s["value"] == scene_values(s["rasterId"])
    first = get(client, "mosaic", "getSamples", geometry="%s,%s" % OVERLAP)["samples"]
    assert len(first) == 1 and first[0]["rasterId"] == 4 and first[0]["value"] == scene_values(4)


def test_get_samples_out_fields(client):
    body = get(client, "dem", "getSamples", geometry="501456.7,5000333.3", outFields="Name")
    (s,) = body["samples"]
    assert s["rasterId"] == 4 and s["attributes"]["Name"] == "dem_r1_c1"
    plain = get(client, "dem", "getSamples", geometry="501456.7,5000333.3")["samples"][0]
    assert "attributes" not in plain
    mosaic = get(client, "mosaic", "getSamples", geometry="%s,%s" % OVERLAP, outFields="Name,sensor")
    assert mosaic["samples"][0]["attributes"]["Name"] == "scene_4"
    assert mosaic["samples"][0]["attributes"]["sensor"] == "L8"


def test_get_samples_location_is_in_the_input_sr(client):
    x, y = 501234.5, 5000987.6
    lon, lat = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True).transform(x, y)
    geometry = json.dumps({"x": lon, "y": lat, "spatialReference": {"wkid": 4326}})
    (s,) = get(client, "dem", "getSamples", geometry=geometry)["samples"]
    assert s["location"]["x"] == pytest.approx(lon, abs=1e-9) and s["location"]["y"] == pytest.approx(lat, abs=1e-9)
    assert s["location"]["spatialReference"]["wkid"] == 4326
    assert float(s["value"]) == pytest.approx(float(dem_value(*dem_centre(x, y))), abs=1e-3)


def test_get_samples_envelope_grid(client):
    env = {"xmin": 500000, "ymin": 5001000, "xmax": 500300, "ymax": 5001200, "spatialReference": {"wkid": 32633}}
    body = get(client, "dem", "getSamples", geometry=json.dumps(env), geometryType="esriGeometryEnvelope",
               sampleDistance=50)
    samples = body["samples"]
    expected = {(500025 + 50 * i, 5001175 - 50 * j) for i in range(6) for j in range(4)}
    got = {(s["location"]["x"], s["location"]["y"]) for s in samples}
    assert len(samples) == 24 and {(round(x, 6), round(y, 6)) for x, y in got} == expected
    assert sorted(s["locationId"] for s in samples) == list(range(24))
    for s in samples:
        x, y = s["location"]["x"], s["location"]["y"]
        assert env["xmin"] <= x <= env["xmax"] and env["ymin"] <= y <= env["ymax"]
        assert float(s["value"]) == pytest.approx(float(dem_value(*dem_centre(x, y))), abs=1e-3)


def test_get_samples_polygon_keeps_inside_locations(client):
    tri = [[500000, 5001000], [500000, 5001300], [500300, 5001000], [500000, 5001000]]
    body = get(client, "dem", "getSamples", geometry=json.dumps({"rings": [tri]}),
               geometryType="esriGeometryPolygon", sampleDistance=30)
    samples = body["samples"]
    # cell centres of the 30 m grid over the bounds that lie strictly inside x + y' < 300
    expected = {(500015 + 30 * i, 5001285 - 30 * j) for i in range(10) for j in range(10)
                if (15 + 30 * i) + (285 - 30 * j) < 300}
    got = {(round(s["location"]["x"], 6), round(s["location"]["y"], 6)) for s in samples}
    assert got == expected
    for s in samples:
        x, y = s["location"]["x"], s["location"]["y"]
        assert float(s["value"]) == pytest.approx(float(dem_value(*dem_centre(x, y))), abs=1e-3)


@pytest.mark.parametrize("kind", ["multipoint", "polyline"])
def test_get_samples_more_than_1000_locations_is_400(client, kind):
    if kind == "multipoint":
        geometry = {"points": [[500000 + i, 5001500] for i in range(1001)]}
        query = dict(geometryType="esriGeometryMultipoint")
    else:
        geometry = {"paths": [[[500000, 5001500], [501900, 5001500]]]}
        query = dict(geometryType="esriGeometryPolyline", sampleDistance=1)
    body = client.post(OP.format("dem", "getSamples"),
                       data={"f": "json", "geometry": json.dumps(geometry), **query}).get_json()
    assert error_code(body) == 400


# --- computeHistograms / computeStatisticsHistograms ----------------------------------------------

def numpy_histogram(truth: np.ndarray) -> list[int]:
    return np.histogram(truth, bins=256, range=(truth.min(), truth.max()))[0].tolist()


def test_compute_histograms_dem_envelope(client):
    gx, gy = centres_in_box(500000, 5001900, 500100, 5002000)
    truth = dem_value(gx, gy).astype("f8").ravel()
    assert truth.size == 100
    body = get(client, "dem", "computeHistograms", geometry="500000,5001900,500100,5002000",
               geometryType="esriGeometryEnvelope")
    (h,) = body["histograms"]
    assert h["size"] == 256 and len(h["counts"]) == 256
    assert h["min"] == pytest.approx(truth.min()) and h["max"] == pytest.approx(truth.max())
    assert h["counts"] == numpy_histogram(truth)
    assert h["counts"][-1] >= 1 and h["counts"][0] >= 1


def test_compute_statistics_histograms_dem_envelope_json(client):
    gx, gy = centres_in_box(500000, 5001900, 500100, 5002000)
    truth = dem_value(gx, gy).astype("f8").ravel()
    env = {"xmin": 500000, "ymin": 5001900, "xmax": 500100, "ymax": 5002000, "spatialReference": {"wkid": 32633}}
    body = get(client, "dem", "computeStatisticsHistograms", geometry=json.dumps(env),
               geometryType="esriGeometryEnvelope")
    (s,) = body["statistics"]
    assert s["count"] == 100
    assert s["min"] == pytest.approx(truth.min()) and s["max"] == pytest.approx(truth.max())
    assert s["mean"] == pytest.approx(truth.mean(), abs=1e-4)
    assert s["standardDeviation"] == pytest.approx(truth.std(), abs=1e-4)
    assert s["median"] == pytest.approx(np.median(truth), abs=1e-4)
    assert body["histograms"][0]["counts"] == numpy_histogram(truth)


def _inside_triangle(px, py, tri) -> np.ndarray:
    """Half-plane test: strictly on the same side of all three edges."""
    signs = []
    for (ax, ay), (bx, by) in zip(tri, tri[1:] + tri[:1]):
        signs.append((bx - ax) * (py - ay) - (by - ay) * (px - ax))
    signs = np.array(signs)
    assert np.abs(signs).min() > 1e-3            # no centre on an edge: the answer is unambiguous
    return (signs > 0).all(axis=0) | (signs < 0).all(axis=0)


def test_compute_statistics_histograms_triangle(client):
    tri = [(500013.7, 5000213.2), (500211.3, 5000633.9), (500487.1, 5000301.4)]
    gx, gy = centres_in_box(500000, 5000200, 500500, 5000700)
    inside = _inside_triangle(gx, gy, tri)
    truth = dem_value(gx[inside], gy[inside]).astype("f8")
    ring = [list(p) for p in tri + tri[:1]]
    body = get(client, "dem", "computeStatisticsHistograms",
               geometry=json.dumps({"rings": [ring], "spatialReference": {"wkid": 32633}}),
               geometryType="esriGeometryPolygon")
    (s,) = body["statistics"]
    assert s["count"] == int(inside.sum()) > 100
    assert s["min"] == pytest.approx(truth.min()) and s["max"] == pytest.approx(truth.max())
    assert s["mean"] == pytest.approx(truth.mean(), abs=1e-4)
    assert s["standardDeviation"] == pytest.approx(truth.std(), abs=1e-4)
    assert body["histograms"][0]["counts"] == numpy_histogram(truth)


def test_compute_histograms_polygon_hole_is_excluded(client):
    outer = [[500000, 5001900], [500000, 5002000], [500100, 5002000], [500100, 5001900], [500000, 5001900]]
    hole = [[500040, 5001940], [500060, 5001940], [500060, 5001960], [500040, 5001960], [500040, 5001940]]
    gx, gy = centres_in_box(500000, 5001900, 500100, 5002000)
    keep = ~((gx > 500040) & (gx < 500060) & (gy > 5001940) & (gy < 5001960))
    truth = dem_value(gx[keep], gy[keep]).astype("f8")
    body = get(client, "dem", "computeStatisticsHistograms", geometry=json.dumps({"rings": [outer, hole]}),
               geometryType="esriGeometryPolygon")
    assert body["statistics"][0]["count"] == truth.size == 96
    assert body["histograms"][0]["counts"] == numpy_histogram(truth)


def test_compute_histograms_over_the_hole_is_empty(client):
    body = get(client, "dem", "computeStatisticsHistograms", geometry="%s,%s,%s,%s" % DEM_HOLE)
    assert sum(body["histograms"][0]["counts"]) == 0
    assert body["statistics"][0]["count"] == 0


def test_compute_histograms_mosaic_single_scene(client):
    body = get(client, "mosaic", "computeHistograms", geometry="500000,5001800,500200,5002000", pixelSize=20)
    assert len(body["histograms"]) == 4
    for b, h in enumerate(body["histograms"]):
        assert h["size"] == 1
        assert h["min"] == mosaic_value(1, b) - 0.5 and h["max"] == mosaic_value(1, b) + 0.5
        assert h["counts"] == [100]             # 200 m / 20 m squared


def test_compute_histograms_mosaic_two_scenes(client):
    # scene 1 covers the whole region; scene 2 (newer, on top) x 500400..500800, y 5001700..5001800
    body = get(client, "mosaic", "computeStatisticsHistograms", geometry="500000,5001700,500800,5002000",
               pixelSize=20)
    n2 = (400 // 20) * (100 // 20)
    n1 = (800 // 20) * (300 // 20) - n2
    for b, (h, s) in enumerate(zip(body["histograms"], body["statistics"])):
        lo, hi = mosaic_value(1, b), mosaic_value(2, b)
        assert h["size"] == 256 and h["min"] == lo - 0.5 and h["max"] == hi + 0.5
        expected = [0] * 256
        expected[0], expected[255] = n1, n2
        assert h["counts"] == expected
        assert s["count"] == n1 + n2 and s["min"] == lo and s["max"] == hi
        assert s["mean"] == pytest.approx((n1 * lo + n2 * hi) / (n1 + n2))


@pytest.mark.parametrize("rule, expect", [({"where": "sensor='L8'"}, None),
                                          ({"mosaicMethod": "esriMosaicLockRaster", "lockRasterIds": [1]}, 1)])
def test_compute_histograms_honour_the_mosaic_rule(client, rule, expect):
    # default: scene 2 on top over 500400..500600 x 5001600..5001800; scene 1 is under it
    default = get(client, "mosaic", "computeHistograms", geometry="500400,5001600,500600,5001800", pixelSize=20)
    assert default["histograms"][0]["min"] == mosaic_value(2, 0) - 0.5
    if expect is None:      # sensor L8 = scenes 2 and 4, none over scene 1's corner
        body = get(client, "mosaic", "computeHistograms", geometry="500000,5001800,500200,5002000",
                   pixelSize=20, mosaicRule=json.dumps(rule))
        assert all(sum(h["counts"]) == 0 for h in body["histograms"])
    else:
        body = get(client, "mosaic", "computeHistograms", geometry="500400,5001600,500600,5001800",
                   pixelSize=20, mosaicRule=json.dumps(rule))
        for b, h in enumerate(body["histograms"]):
            assert h["min"] == mosaic_value(expect, b) - 0.5 and h["counts"] == [100]


def test_compute_statistics_histograms_time(client):
    truth = np.array([ts_value(7, 45.5), ts_value(7, 46.5)] * 2, "f8")     # 2x2 one-degree cells
    body = get(client, "ts", "computeStatisticsHistograms", geometry="10,45,12,47", time=epoch_ms(2024, 7, 4))
    (s,) = body["statistics"]
    assert s["count"] == 4 and s["min"] == pytest.approx(truth.min()) and s["max"] == pytest.approx(truth.max())
    assert s["mean"] == pytest.approx(truth.mean()) and s["standardDeviation"] == pytest.approx(truth.std())
    assert body["histograms"][0]["counts"] == numpy_histogram(truth)


def test_compute_histograms_needs_an_area(client):
    assert error_code(get(client, "dem", "computeHistograms")) == 400
    assert error_code(get(client, "dem", "computeHistograms", geometry=json.dumps({"x": 500100, "y": 5001100}))) == 400


# --- histograms and statistics resources ----------------------------------------------------------

def test_histograms_resource_mosaic(client, data_dir):
    with rasterio.open(data_dir / "mosaic" / "scene_4.tif") as ds:
        n4 = int(ds.read(1, masked=True).count())
    body = get(client, "mosaic", "histograms")
    assert len(body["histograms"]) == 4
    for b, h in enumerate(body["histograms"]):
        lo, hi = mosaic_value(1, b) - 0.5, mosaic_value(4, b) + 0.5
        assert h["size"] == 256 and h["min"] == lo and h["max"] == hi
        expected = [0] * 256
        for k, n in ((1, 3600), (2, 3600), (3, 3600), (4, n4)):
            expected[min(255, math.floor((mosaic_value(k, b) - lo) / (hi - lo) * 256))] += n
        assert h["counts"] == expected
        assert h["counts"][0] == 3600 and h["counts"][255] == n4
        assert sum(h["counts"]) == 3 * 3600 + n4


def test_histograms_resource_dem(client):
    truth = dem_all_pixel_values()
    (h,) = get(client, "dem", "histograms")["histograms"]
    assert h["size"] == 256
    assert h["min"] == pytest.approx(truth.min()) and h["max"] == pytest.approx(truth.max())
    assert sum(h["counts"]) == truth.size == 4 * 100 * 100 - 100
    assert h["counts"] == numpy_histogram(truth)


def test_statistics_resource(client):
    truth = dem_all_pixel_values()
    (dem,) = get(client, "dem", "statistics")["statistics"]
    assert dem["min"] == pytest.approx(truth.min()) == 28.75
    assert dem["max"] == pytest.approx(truth.max()) == 1446.25
    mosaic = get(client, "mosaic", "statistics")["statistics"]
    assert [s["min"] for s in mosaic] == [mosaic_value(1, b) for b in range(4)] == [1010, 1020, 1030, 1040]
    assert [s["max"] for s in mosaic] == [mosaic_value(4, b) for b in range(4)]


# --- legend, keyProperties, rasterFunctionInfos, thumbnails ---------------------------------------

def swatch(entry) -> Image.Image:
    assert entry["contentType"] == "image/png"
    image = Image.open(io.BytesIO(base64.b64decode(entry["imageData"])))
    assert image.format == "PNG" and image.size == (20, 20)
    return image.convert("RGB")


def colours(image: Image.Image) -> set:
    return {c for _, c in image.getcolors()}


def test_legend_mosaic_rgb(client):
    (layer,) = get(client, "mosaic", "legend")["layers"]
    assert layer["legendType"] == "RGB Composite"
    entries = layer["legend"]
    assert [e["label"] for e in entries] == ["Red: Red", "Green: Green", "Blue: Blue"]
    for e, colour in zip(entries, [(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        image = swatch(e)
        assert colours(image) == {colour}


def test_legend_one_band_is_stretched(client):
    (layer,) = get(client, "mosaic", "legend", bandIds="3")["layers"]
    assert layer["legendType"] == "Stretched"
    assert [e["label"] for e in layer["legend"]] == [f"High : {mosaic_value(4, 3)}", f"Low : {mosaic_value(1, 3)}"]
    assert colours(swatch(layer["legend"][0])) == {(255, 255, 255)}
    assert colours(swatch(layer["legend"][1])) == {(0, 0, 0)}


def test_legend_dem(client):
    (layer,) = get(client, "dem", "legend")["layers"]
    assert layer["legendType"] == "Stretched"
    assert [e["label"] for e in layer["legend"]] == ["High : 1446.25", "Low : 28.75"]


def test_key_properties(client):
    dem = get(client, "dem", "keyProperties")
    dem_root = client.get(ROOT.format("dem"), query_string={"f": "json"}).get_json()
    assert dem["DataType"] == "Elevation"
    assert [b["BandName"] for b in dem["BandProperties"]] == dem_root["bandNames"]
    mosaic = get(client, "mosaic", "keyProperties")
    assert [b["BandName"] for b in mosaic["BandProperties"]] == list(MOSAIC_BANDS)
    item = client.get(OP.format("mosaic", "2/info/keyProperties"), query_string={"f": "json"}).get_json()
    assert item["sensor"] == "L8" and item["priority"] == 3
    assert item["AcquisitionDate"] == epoch_ms(2024, 3, 15, 10, 30)
    assert item["LowCellSize"] == pytest.approx(20)


def test_raster_function_infos_match_the_root(client):
    for name in ("dem", "mosaic", "ts"):
        root = client.get(ROOT.format(name), query_string={"f": "json"}).get_json()
        body = get(client, name, "rasterFunctionInfos")
        assert body == {"rasterFunctionInfos": root["rasterFunctionInfos"]}
        assert body["rasterFunctionInfos"][0]["name"] == "None"


@pytest.mark.parametrize("service, path", [("dem", "info/thumbnail"), ("mosaic", "info/thumbnail"),
                                           ("mosaic", "2/thumbnail"), ("dem", "1/info/thumbnail")])
def test_thumbnails_are_small_pngs(client, service, path):
    resp = client.get(OP.format(service, path))
    assert resp.status_code == 200 and resp.content_type == "image/png"
    assert resp.data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(resp.data))
    image.load()
    assert 0 < max(image.size) <= 200


def test_thumbnail_of_a_missing_item_is_404(client):
    body = client.get(OP.format("mosaic", "99/thumbnail")).get_json()
    assert error_code(body) == 404
