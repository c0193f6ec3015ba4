"""The catalog face: query (where, dates, geometry in other CRSs, relations, paging, ordering),
raster items, option=footprints, and hostile where clauses in every parameter that takes one.

Truth is the fixture's own definition (tests/synth.py): scene k of the mosaic has OBJECTID k,
cloud_cover k/10, sensor S2A for odd k else L8, acquired MOSAIC_DATES[k] 10:30, priority 5-k.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from pyproj import Transformer

import synth
from conftest import make_config
from ogc_gateway.app import create_app
from ogc_gateway.engine.service import catalog_path

Q = "/arcgis/rest/services/mosaic/ImageServer/query"
ROOT = "/arcgis/rest/services/mosaic/ImageServer"
SCENES = range(1, 5)
ATTRS = {k: {"cloud_cover": k / 10, "sensor": "S2A" if k % 2 else "L8",
             "acquired": datetime.fromisoformat(synth.MOSAIC_DATES[k] + "T10:30:00+00:00"), "priority": 5 - k}
         for k in SCENES}


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def query(client, **params) -> dict:
    params.setdefault("f", "json")
    r = client.get(Q, query_string=params)
    assert r.status_code == 200
    return r.get_json()


def ids(client, **params) -> list[int]:
    body = query(client, returnIdsOnly="true", **params)
    assert "error" not in body, body
    return body["objectIds"]


def expect(pred) -> list[int]:
    return [k for k in SCENES if pred(ATTRS[k])]


@pytest.mark.parametrize("where, pred", [
    ("1=1", lambda a: True),
    ("cloud_cover > 0.15", lambda a: a["cloud_cover"] > 0.15),
    ("SENSOR = 'S2A'", lambda a: a["sensor"] == "S2A"),
    ("sensor <> 'S2A' AND priority >= 3", lambda a: a["sensor"] != "S2A" and a["priority"] >= 3),
    ("NOT (sensor = 'L8' OR cloud_cover < 0.2)", lambda a: not (a["sensor"] == "L8" or a["cloud_cover"] < 0.2)),
    ("priority BETWEEN 2 AND 3", lambda a: 2 <= a["priority"] <= 3),
    ("priority IN (1, 4)", lambda a: a["priority"] in (1, 4)),
    ("UPPER(Name) LIKE 'SCENE_%' AND LOWER(sensor) = 's2a'", lambda a: a["sensor"] == "S2A"),
    ("cloud_cover IS NOT NULL AND ZOrder IS NULL", lambda a: True),
    ("acquired >= DATE '2024-03-01'", lambda a: a["acquired"] >= datetime(2024, 3, 1, tzinfo=UTC)),
    ("acquired < TIMESTAMP '2024-05-15 10:30:00'",
     lambda a: a["acquired"] < datetime(2024, 5, 15, 10, 30, tzinfo=UTC)),
    ("acquired BETWEEN '2024-02-01' AND '2024/06/01'",
     lambda a: datetime(2024, 2, 1, tzinfo=UTC) <= a["acquired"] <= datetime(2024, 6, 1, tzinfo=UTC)),
    ("acquired < CURRENT_DATE", lambda a: True),
    ("Name = 'scene_2' OR OBJECTID = 4", lambda a: a["priority"] in (3, 1)),
])
def test_where_clauses_select_exactly_the_matching_items(client, where, pred):
    assert ids(client, where=where) == expect(pred)


def test_object_ids_override_every_other_filter(client):
    assert ids(client, objectIds="3,1", where="1=0") == [1, 3]
    body = query(client, objectIds="3,1", where="1=0", outFields="Name")
    assert [f["attributes"]["Name"] for f in body["features"]] == ["scene_1", "scene_3"]


def test_time_instant_and_window(client):
    assert ids(client, time=f"{ms('2024-02-01')},{ms('2024-06-01')}") == [2, 3]
    assert ids(client, time=str(ms("2024-07-15T10:30:00"))) == [4]
    assert ids(client, time=f"null,{ms('2024-02-01')}") == [1]


def test_geometry_in_another_crs(client):
    to_wgs84 = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    # a box only scene 1 reaches (scene 2 starts at x 500400), given in EPSG:4326
    x0, y0 = to_wgs84.transform(500050, 5001850)
    x1, y1 = to_wgs84.transform(500300, 5001980)
    env = {"xmin": x0, "ymin": y0, "xmax": x1, "ymax": y1, "spatialReference": {"wkid": 4326}}
    assert ids(client, geometry=json.dumps(env), geometryType="esriGeometryEnvelope") == [1]
    # the same as bare numbers with inSR
    assert ids(client, geometry=f"{x0},{y0},{x1},{y1}", inSR="4326") == [1]
    # a Web Mercator point only scene 3 covers
    to_merc = Transformer.from_crs("EPSG:32633", "EPSG:3857", always_xy=True)
    mx, my = to_merc.transform(501800, 5000500)
    point = {"x": mx, "y": my, "spatialReference": {"wkid": 102100}}
    assert ids(client, geometry=json.dumps(point), geometryType="esriGeometryPoint") == [3]


def test_spatial_relations(client):
    around4 = {"xmin": 500500, "ymin": 5000800, "xmax": 501500, "ymax": 5001600}
    geometry = json.dumps(around4)
    assert ids(client, geometry=geometry) == [1, 2, 3, 4]
    assert ids(client, geometry=geometry, spatialRel="esriSpatialRelContains") == [4]
    # within: the query geometry lies inside the footprint
    assert ids(client, geometry="500100,5001900,500300,5001950", spatialRel="esriSpatialRelWithin") == [1]
    poly = {"rings": [[[501700, 5000500], [501900, 5000500], [501900, 5000450], [501700, 5000500]]]}
    assert ids(client, geometry=json.dumps(poly), geometryType="esriGeometryPolygon") == [3]
    line = {"paths": [[[500100, 5001900], [500100, 5000000]]]}
    assert ids(client, geometry=json.dumps(line), geometryType="esriGeometryPolyline") == [1]


def test_order_and_paging(client):
    body = query(client, orderByFields="priority ASC", resultRecordCount=2, outFields="priority")
    assert [f["attributes"]["OBJECTID"] for f in body["features"]] == [4, 3]
    assert body["exceededTransferLimit"] is True
    body = query(client, orderByFields="priority", resultOffset=2, resultRecordCount=2)
    assert [f["attributes"]["OBJECTID"] for f in body["features"]] == [2, 1]
    assert "exceededTransferLimit" not in body
    body = query(client, orderByFields="sensor DESC, cloud_cover DESC", returnGeometry="false")
    assert [f["attributes"]["OBJECTID"] for f in body["features"]] == [3, 1, 4, 2]
    assert "geometry" not in body["features"][0]


def test_max_record_count_caps_a_page(data_dir, tmp_path):
    cfg = make_config(data_dir, tmp_path)
    cfg = replace(cfg, services={k: replace(v, limits=replace(v.limits, max_record_count=3))
                                 for k, v in cfg.services.items()})
    client = create_app(cfg).test_client()
    body = query(client, resultRecordCount=100)
    assert [f["attributes"]["OBJECTID"] for f in body["features"]] == [1, 2, 3]
    assert body["exceededTransferLimit"] is True
    assert len(ids(client)) == 4                     # ids are not paged
    assert query(client, returnCountOnly="true") == {"count": 4}


def test_fields_and_date_attributes(client):
    body = query(client, where="OBJECTID = 2", outFields="name,ACQUIRED,cloud_cover")
    assert [f["name"] for f in body["fields"]] == ["OBJECTID", "Name", "acquired", "cloud_cover"]
    assert body["fields"][2]["type"] == "esriFieldTypeDate"
    assert body["features"][0]["attributes"] == {"OBJECTID": 2, "Name": "scene_2",
                                                 "acquired": ms("2024-03-15T10:30:00"), "cloud_cover": 0.2}
    assert body["geometryType"] == "esriGeometryPolygon"
    assert query(client, outFields="nope")["error"]["code"] == 400


def test_footprints_in_out_sr(client):
    body = query(client, objectIds="1", outSR="4326")
    assert body["spatialReference"]["wkid"] == 4326
    ring = body["features"][0]["geometry"]["rings"][0]
    to_wgs84 = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    corners = [to_wgs84.transform(x, y) for x, y in
               [(500000, 5002000), (501200, 5002000), (501200, 5000800), (500000, 5000800)]]
    for cx, cy in corners:
        assert min((x - cx) ** 2 + (y - cy) ** 2 for x, y in ring) < 1e-16
    # clockwise outer ring (negative shoelace area), closed
    area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:]))
    assert area < 0 and ring[0] == ring[-1]


def test_extent_and_count(client):
    body = query(client, where="sensor = 'S2A'", returnExtentOnly="true", returnCountOnly="true")
    assert body["count"] == 2
    e = body["extent"]
    assert (e["xmin"], e["ymin"], e["xmax"], e["ymax"]) == pytest.approx((500000, 5000400, 502000, 5002000))


def test_mosaic_rule_and_pixel_size_restrict(client):
    assert ids(client, mosaicRule=json.dumps({"fids": [2, 3]})) == [2, 3]
    assert ids(client, mosaicRule=json.dumps({"where": "priority > 2"})) == [1, 2]
    assert ids(client, pixelSize="100000,100000") == []


def test_bad_query_parameters_are_400(client):
    for params in ({"spatialRel": "esriSpatialRelNearby"}, {"geometry": "1,2,3"},
                   {"orderByFields": "Name UP"}, {"orderByFields": "Shape"}, {"resultOffset": "-1"},
                   {"geometry": '{"rings": [[[0, 0], [1, 1]]]}'}, {"inSR": "999999", "geometry": "1,2"}):
        body = query(client, **params)
        assert body["error"]["code"] == 400, params


# --- items and footprints -------------------------------------------------------------------------

def test_raster_item_and_info(client):
    body = client.get(f"{ROOT}/2?f=json").get_json()
    assert body["attributes"]["OBJECTID"] == 2 and body["attributes"]["sensor"] == "L8"
    assert body["geometry"]["spatialReference"]["wkid"] == 32633
    info = client.get(f"{ROOT}/2/info?f=json").get_json()
    assert info["origin"] == {"x": 500400.0, "y": 5001800.0}
    assert (info["pixelSizeX"], info["pixelSizeY"], info["bandCount"], info["pixelType"]) == (20, 20, 4, "U16")
    e = info["extent"]
    assert (e["xmin"], e["ymin"], e["xmax"], e["ymax"]) == (500400, 5000600, 501600, 5001800)
    assert info["statistics"] == [[synth.mosaic_value(2, b)] * 3 + [0.0] for b in range(4)]
    keys = client.get(f"{ROOT}/2/info/keyProperties?f=json").get_json()
    assert keys["sensor"] == "L8" and keys["AcquisitionDate"] == ms("2024-03-15T10:30:00")
    assert [b["BandName"] for b in keys["BandProperties"]] == list(synth.MOSAIC_BANDS)
    assert client.get(f"{ROOT}/99?f=json").get_json()["error"]["code"] == 404
    assert client.get(f"{ROOT}/bogus?f=json").get_json()["error"]["code"] == 400


def test_option_footprints_is_a_feature_collection(client):
    body = client.get(ROOT, query_string={"f": "json", "option": "footprints"}).get_json()
    layer = body["layers"][0]
    assert layer["layerDefinition"]["geometryType"] == "esriGeometryPolygon"
    fs = layer["featureSet"]
    assert fs["spatialReference"]["wkid"] == 4326
    assert [f["attributes"]["OBJECTID"] for f in fs["features"]] == [1, 2, 3, 4]
    for f in fs["features"]:
        for x, y in f["geometry"]["rings"][0]:
            assert 14.9 < x < 15.1 and 45.1 < y < 45.2
    merc = client.get(ROOT, query_string={"f": "json", "option": "footprints", "outSR": "3857"}).get_json()
    x, y = merc["layers"][0]["featureSet"]["features"][0]["geometry"]["rings"][0][0]
    assert 1.6e6 < x < 1.7e6 and 5.6e6 < y < 5.7e6


def test_root_advertises_catalog(client):
    body = client.get(f"{ROOT}?f=json").get_json()
    assert "Catalog" in body["capabilities"].split(",")
    assert body["hasHistograms"] is True


# --- hostile where clauses ------------------------------------------------------------------------

ATTACKS = [
    "1=1; DROP TABLE items", "1=1); DROP TABLE items; --", "Name = 'x' UNION SELECT sql FROM sqlite_master",
    "1=1 -- comment", "1=1 /* comment */", "OBJECTID IN (SELECT OBJECTID FROM items)",
    "sqlite_version() = '3'", "load_extension('x') IS NULL", "nope = 1", "\"Name\"\" OR 1=1 --",
    "Name = 'unterminated", "`Name` = 'a'", "[Name] = 'a'", "Name = 'a' OR", "Name = x'41'",
    "Name = ?", "Name = :n", "OBJECTID = 1 || 1", "Shape IS NULL", "Name = 'a'\x00",
    "EXISTS (SELECT 1)", "CAST(OBJECTID AS TEXT) = '1'", "1=1 " + "OR 1=1 " * 2000, "(" * 200 + "1=1" + ")" * 200,
    "Name = char(65)", "randomblob(1000000000) IS NULL",
]


def _db_state(path) -> tuple:
    con = sqlite3.connect(path)
    try:
        schema = con.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
        rows = con.execute("SELECT * FROM items ORDER BY OBJECTID").fetchall()
        rasters = con.execute("SELECT oid, path FROM rasters ORDER BY oid").fetchall()
    finally:
        con.close()
    return schema, rows, rasters


@pytest.mark.parametrize("attack", ATTACKS)
def test_hostile_where_is_refused_everywhere_and_changes_nothing(client, config, attack):
    before = _db_state(catalog_path(config, "mosaic"))
    rule = json.dumps({"mosaicMethod": "esriMosaicNorthwest", "where": attack})
    requests = [
        ("query", {"where": attack}),
        ("query", {"where": attack, "returnIdsOnly": "true"}),
        ("query", {"mosaicRule": rule}),
        ("exportImage", {"mosaicRule": rule, "format": "png"}),
        ("identify", {"geometry": "500900,5001100", "mosaicRule": rule}),
        ("getSamples", {"geometry": "500900,5001100", "geometryType": "esriGeometryPoint", "mosaicRule": rule}),
        ("computeHistograms", {"geometry": "500000,5001800,500100,5002000", "mosaicRule": rule}),
    ]
    for op, params in requests:
        r = client.get(f"{ROOT}/{op}", query_string={"f": "json", **params})
        body = r.get_json()
        assert body and body.get("error", {}).get("code") == 400, (op, params, body)
    assert _db_state(catalog_path(config, "mosaic")) == before
    assert ids(client) == [1, 2, 3, 4]


def test_hostile_order_by_is_refused(client):
    for value in ("Name; DROP TABLE items", "Name) --", "(SELECT 1)", "Name COLLATE NOCASE", "1"):
        assert query(client, orderByFields=value)["error"]["code"] == 400, value
