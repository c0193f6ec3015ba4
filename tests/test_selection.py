"""Catalog selection: the wide-selection paths (index walks, growing boxes around a point) return
exactly what a plain sort of every candidate in Python returns; incremental derivation gives the
same rows as a rebuild; given seamlines are stored as given."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from rasterio.crs import CRS
from shapely.geometry import box, shape

from ogc_gateway.config import ServiceConfig
from ogc_gateway.engine import catalog as catalog_module
from ogc_gateway.engine.catalog import Catalog, Order
from ogc_gateway.engine.where import compile_where
from pgserver import module_stores, pg_url, stores  # noqa: F401 (fixtures)

WKT = CRS.from_epsg(32633).to_wkt()
START = datetime(2020, 1, 1, tzinfo=UTC)


def record(west: float, north: float, tags: dict, size: int = 100) -> dict:
    return {"mtime_ns": 0, "size": 0, "crs_wkt": WKT, "transform": json.dumps([10.0, 0, west, 0, -10.0, north]),
            "width": size, "height": size, "band_count": 1, "dtype": "uint8", "nodata": "0",
            "band_names": json.dumps([None]), "overviews": "[]", "tags": json.dumps(tags),
            "stats": json.dumps([[1.0, 1.0, 1.0, 1.0, 1.0]]), "outline": "null"}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory, module_stores):
    """400 scenes of 1 km on a jittered 20 x 20 grid (700 m apart); some without a date or a value."""
    rnd = random.Random(3)
    records = []
    for k in range(400):
        row, col = divmod(k, 20)
        west, north = 500000 + col * 700 + rnd.uniform(0, 200), 5020000 - row * 700 - rnd.uniform(0, 200)
        tags = {"score": f"{rnd.uniform(0, 100):.4f}", "sensor": rnd.choice(["S2A", "L8"])}
        if k % 7:
            tags["acquired"] = (START + timedelta(hours=rnd.uniform(0, 20000))).isoformat(timespec="seconds")
        records.append((f"/synthetic/s{k:03d}.tif", record(west, north, tags)))
    cat = module_stores.open(tmp_path_factory.mktemp("sel") / "c.sqlite",
                  ServiceConfig(name="sel", sources=("/synthetic/*.tif",), time_field="acquired"))
    cat.add_records(records)
    return cat


@pytest.fixture
def wide(monkeypatch):
    """Make a few dozen items "many", so the wide paths run on a small catalog."""
    monkeypatch.setattr(catalog_module, "_FEW", 20)


def brute(catalog, key, bbox=None, time=None, where=None):
    """Every candidate, sorted in Python by `key`."""
    found = catalog.items(bbox=bbox, time=time, where=where)
    return sorted(found, key=key)


def dist2(item, p):
    return (item.center[0] - p[0]) ** 2 + (item.center[1] - p[1]) ** 2


VIEWS = [None, (500000, 5006000, 514000, 5021000), (503000, 5009000, 509500, 5016000)]


@pytest.mark.parametrize("bbox", VIEWS)
@pytest.mark.parametrize("ascending", [True, False])
def test_field_orders(catalog, wide, bbox, ascending):
    """ORDER BY field (NULLs last), then OBJECTID, both in the rule's direction."""
    for name in ("acquired", "score", "sensor"):
        found = catalog.items(bbox=bbox)
        truth = (sorted((i for i in found if i.attributes[name] is not None),
                        key=lambda i: (i.attributes[name], i.oid), reverse=not ascending)
                 + sorted((i for i in found if i.attributes[name] is None), key=lambda i: i.oid,
                          reverse=not ascending))
        for offset, limit in ((0, 28), (28, 28), (390, 28)):
            got = catalog.items(bbox=bbox, order=Order(field=name, ascending=ascending), limit=limit, offset=offset)
            assert [i.oid for i in got] == [i.oid for i in truth[offset:offset + limit]], (name, offset)


@pytest.mark.parametrize("bbox", VIEWS)
@pytest.mark.parametrize("ascending", [True, False])
def test_distance_from_a_value(catalog, wide, bbox, ascending):
    base = (START + timedelta(hours=9000)).timestamp() * 1000
    s = 1 if ascending else -1
    truth = brute(catalog, lambda i: (i.attributes["acquired"] is None,
                                      s * abs((i.attributes["acquired"] or 0) - base), s * i.oid), bbox)
    for offset in (0, 40):
        got = catalog.items(bbox=bbox, order=Order(field="acquired", base=base, ascending=ascending), limit=30,
                            offset=offset)
        assert [i.oid for i in got] == [i.oid for i in truth[offset:offset + 30]]


@pytest.mark.parametrize("bbox", VIEWS)
@pytest.mark.parametrize("point", [(500000, 5021000), (507000, 5013000), (530000, 4990000)])
def test_nearest_centres(catalog, wide, monkeypatch, bbox, point):
    calls = []
    real = Catalog._nearest
    monkeypatch.setattr(Catalog, "_nearest", lambda self, *a: calls.append(1) or real(self, *a))
    truth = brute(catalog, lambda i: (dist2(i, point), i.oid), bbox)
    for offset in (0, 25):
        got = catalog.items(bbox=bbox, order=Order(point=point), limit=25, offset=offset)
        assert [i.oid for i in got] == [i.oid for i in truth[offset:offset + 25]]
    assert calls                              # the growing-box search answered


def test_wide_selection_with_time_and_where(catalog, wide):
    window = (int((START + timedelta(hours=5000)).timestamp() * 1000),
              int((START + timedelta(hours=15000)).timestamp() * 1000))
    where = compile_where("sensor = 'L8' AND score > 20", catalog.info().fields)
    truth = brute(catalog, lambda i: (-i.attributes["acquired"], -i.oid), time=window, where=where)
    got = catalog.items(time=window, where=where, order=Order(field="acquired", ascending=False), limit=50)
    assert [i.oid for i in got] == [i.oid for i in truth[:50]]
    assert all(window[0] <= i.time_start <= window[1] for i in got)
    truth = brute(catalog, lambda i: (dist2(i, (500000, 5021000)), i.oid), time=window, where=where)
    got = catalog.items(time=window, where=where, order=Order(point=(500000, 5021000)), limit=50)
    assert [i.oid for i in got] == [i.oid for i in truth[:50]]


@pytest.mark.parametrize("few", [20, 1000])
@pytest.mark.parametrize("hours", [(5000, 5300), (None, 300), (19800, None), (None, None), (7000, 7000)])
def test_time_windows_through_the_time_index(catalog, monkeypatch, few, hours):
    """A window (open ends included) narrowed by the time index (a GiST range index on PostGIS, an
    R*Tree on SQLite) or not (`few` = 20) selects exactly the dated items whose time meets it."""
    monkeypatch.setattr(catalog_module, "_FEW", few)
    window = tuple(None if h is None else int((START + timedelta(hours=h)).timestamp() * 1000) for h in hours)
    lo, hi = (-float("inf") if window[0] is None else window[0]), (float("inf") if window[1] is None else window[1])
    every = catalog.items()
    truth = sorted(i.oid for i in every if i.time_start is not None and i.time_start <= hi and i.time_end >= lo)
    assert truth or hours == (7000, 7000)
    assert sorted(i.oid for i in catalog.items(time=window)) == truth
    got = catalog.items(time=window, order=Order(field="acquired", ascending=False), limit=10)
    assert [i.oid for i in got] == [i.oid for i in sorted((i for i in every if i.oid in set(truth)),
                                                          key=lambda i: (-i.attributes["acquired"], -i.oid))][:10]


def test_query_boxes_match_items(catalog, wide):
    bbox = VIEWS[1]
    assert [oid for oid, _ in catalog.boxes(bbox=bbox)] == [i.oid for i in catalog.items(bbox=bbox)]


# --- incremental derivation ----------------------------------------------------------------------------

def rows(cat: Catalog):
    return [(i.oid, i.name, i.center, i.time_start, i.time_end, i.attributes) for i in cat.items()], \
        cat.attribute_fields()


def test_adding_items_one_by_one_derives_what_a_rebuild_does(stores, tmp_path, monkeypatch):
    """Rows that fit the fields are written alone; a widened type, a new field or plain dates
    turning into date-times rebuild everything - with the same result either way."""
    incremental = []
    real = Catalog._derive_rows
    monkeypatch.setattr(Catalog, "_derive_rows",
                        lambda self, *a: incremental.append(r := real(self, *a)) or r)
    cfg = ServiceConfig(name="inc", sources=("/synthetic/*.tif",), time_field="acquired", end_time_field="until")
    first = [(f"/synthetic/{k}.tif", record(500000 + k * 500, 5001000,
                                            {"acquired": f"2024-01-{k + 1:02d}", "until": f"2024-02-{k + 1:02d}",
                                             "n": str(k)})) for k in range(5)]
    later = [
        ("/synthetic/5.tif", record(503000, 5001000, {"acquired": "2024-01-09", "until": "2024-02-09", "n": "7"})),
        ("/synthetic/6.tif", record(503500, 5001000, {"acquired": "2024-01-10", "n": "2.5"})),      # n widens
        ("/synthetic/7.tif", record(504000, 5001000, {"acquired": "2024-01-11", "extra": "x"})),  # a new field
        ("/synthetic/8.tif", record(504500, 5001000, {"acquired": "2024-01-12T06:00:00",           # a time of day
                                                      "until": "2024-02-12T06:00:00"})),
    ]
    stepwise = stores.open(tmp_path / "a.sqlite", cfg)
    stepwise.add_records(first)
    for entry in later:
        incremental.clear()
        stepwise.add_records([entry])
        assert (incremental[0] is not None) == (entry is later[0])
        rebuilt = stores.open(tmp_path / f"b{entry[0][-5]}.sqlite", cfg)
        rebuilt.add_records(first + later[:later.index(entry) + 1])
        assert rows(stepwise) == rows(rebuilt)
    fields = {f.name: f.type for f in stepwise.attribute_fields()}
    assert fields["n"] == "esriFieldTypeDouble" and fields["extra"] == "esriFieldTypeString"


# --- given seamlines -------------------------------------------------------------------------------------

def test_given_seamlines_are_stored_and_the_others_cut(stores, tmp_path):
    geojson = tmp_path / "seams.geojson"
    seam = box(500100, 4999100, 500600, 5000000)
    geojson.write_text(json.dumps({
        "type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:32633"}},
        "features": [{"type": "Feature", "properties": {"Name": "0"}, "geometry": seam.__geo_interface__},
                     {"type": "Feature", "properties": {"name": "nothing"}, "geometry": seam.__geo_interface__}]}))
    cfg = ServiceConfig(name="seam", sources=("/synthetic/*.tif",), seamlines=geojson)
    cat = stores.open(tmp_path / "s.sqlite", cfg)
    cat.add_records([(f"/synthetic/{k}.tif", record(500000 + k * 600, 5000000, {})) for k in range(2)])
    shapes = cat.seamlines([1, 2])
    assert shapes[1].equals(seam)
    # item 2 (x 500600..501600) is cut where item 1's centre (500500) is nearer: x < 500800
    assert shapes[2].equals(box(500800, 4999000, 501600, 5000000))


def test_a_bad_seamline_file_is_a_config_problem(stores, tmp_path):
    bad = tmp_path / "seams.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [{"properties": {"name": "0"}, '
                   '"geometry": {"type": "Point", "coordinates": [15, 45]}}]}')
    cat = stores.open(tmp_path / "s.sqlite", ServiceConfig(name="seam", sources=("/x/*.tif",), seamlines=bad))
    with pytest.raises(catalog_module.ConfigError, match="a seamline is a polygon, not a Point"):
        cat.add_records([("/synthetic/0.tif", record(500000, 5000000, {}))])
    assert shape({"type": "Point", "coordinates": [15, 45]})        # the file itself is valid GeoJSON
