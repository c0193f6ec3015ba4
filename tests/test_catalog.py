"""Catalog: sync bookkeeping, footprints and R*Tree queries, attributes, time — checked against the
analytic fixtures of `synth`, whose geometry, values and dates are known."""

from __future__ import annotations

import csv
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rasterio.crs import CRS

from ogc_gateway.config import ServiceConfig
from ogc_gateway.engine import catalog as catalog_module
from ogc_gateway.engine import rasterinfo
from ogc_gateway.engine.catalog import Catalog
from ogc_gateway.engine.errors import ConfigError
from pgserver import Stores, pg_url, stores  # noqa: F401 (fixtures)
from synth import DEM_NODATA, MOSAIC_DATES, SCENE4_UTM_BOX, make_dem, make_mosaic, make_timeseries, write_scene

UTC = UTC


def ms(*args) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def service(folder: Path, name: str = "svc", **kw) -> ServiceConfig:
    return ServiceConfig(name=name, sources=(str(folder / "*.tif"),), **kw)


def synced(stores: Stores, tmp_path: Path, svc: ServiceConfig) -> Catalog:
    cat = stores.open(tmp_path / "cache" / f"{svc.name}.db", svc)
    cat.sync()
    return cat


def names(items) -> list[str]:
    return [i.name for i in items]


@pytest.fixture
def dem(tmp_path):
    make_dem(tmp_path / "dem")
    return tmp_path / "dem"


@pytest.fixture
def mosaic(tmp_path):
    make_mosaic(tmp_path / "mosaic")
    return tmp_path / "mosaic"


# --- sync bookkeeping ------------------------------------------------------------------------------

def test_sync_adds_then_leaves_unchanged_files_unopened(stores, tmp_path, dem, monkeypatch):
    cat = stores.open(tmp_path / "c.db", service(dem))
    assert cat.sync() == catalog_module.SyncReport(added=4, removed=0, unchanged=0)

    def refuse(*a, **k):
        raise AssertionError("an unchanged file was opened")
    monkeypatch.setattr(rasterinfo.rasterio, "open", refuse)
    assert cat.sync() == catalog_module.SyncReport(added=0, removed=0, unchanged=4)
    # a fresh Catalog on the same database (a restart) does not re-read either
    assert stores.open(tmp_path / "c.db", service(dem)).sync().unchanged == 4


def test_touched_file_is_reread_and_keeps_its_objectid(stores, tmp_path, dem):
    cat = synced(stores, tmp_path, service(dem))
    before = {i.name: i.oid for i in cat.items()}
    path = dem / "dem_r1_c0.tif"
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert cat.sync() == catalog_module.SyncReport(added=1, removed=0, unchanged=3)
    assert {i.name: i.oid for i in cat.items()} == before


def test_deleted_file_is_removed(stores, tmp_path, dem, caplog):
    cat = synced(stores, tmp_path, service(dem))
    (dem / "dem_r0_c1.tif").unlink()
    with caplog.at_level("INFO", logger="ogc_gateway.catalog"):
        assert cat.sync() == catalog_module.SyncReport(added=0, removed=1, unchanged=3)
    assert "dem_r0_c1.tif" in caplog.text
    assert names(cat.items()) == ["dem_r0_c0", "dem_r1_c0", "dem_r1_c1"]
    assert cat.info().item_count == 3


def test_excluded_path_is_never_added(stores, tmp_path, dem):
    svc = service(dem)
    cat = stores.open(tmp_path / "c.db", svc)
    with cat.store.write() as con:      # what `catalog remove` will record
        con.execute("INSERT INTO excluded (path) VALUES (?)", (str(dem / "dem_r1_c1.tif"),))
    assert cat.sync().added == 3
    assert "dem_r1_c1" not in names(cat.items())


def test_no_matching_file_is_a_config_error(stores, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError) as err:
        stores.open(tmp_path / "c.db", service(tmp_path / "empty", name="void")).sync()
    assert err.value.problems[0].startswith("services.void.sources: no raster file matches")


# --- DEM: geometry, R*Tree, statistics -----------------------------------------------------------

def test_dem_info_matches_the_fixture(stores, tmp_path, dem):
    info = synced(stores, tmp_path, service(dem)).info()
    assert CRS.from_wkt(info.crs_wkt).to_epsg() == 32633
    assert info.extent == pytest.approx((500000, 5000100, 501900, 5002000))
    assert info.cell_size == pytest.approx((10, 10))
    assert (info.band_count, info.dtype, info.nodata) == (1, "float32", DEM_NODATA)
    assert info.band_names == ("Band_1",)
    assert info.time_extent is None
    # analytic range of the plane over pixel centres x 500005..501895, y 5000105..5001995;
    # the -9999 hole must not show up
    assert info.stats[0].min == pytest.approx(5 * 0.5 + 105 * 0.25, abs=15)
    assert info.stats[0].max == pytest.approx(1895 * 0.5 + 1995 * 0.25, abs=15)
    assert 600 < info.stats[0].mean < 880 and info.stats[0].stdv > 0
    assert [f.name for f in info.fields] == [
        "OBJECTID", "Shape", "Name", "MinPS", "MaxPS", "LowPS", "HighPS", "Category", "ZOrder",
        "CenterX", "CenterY", "Shape_Length", "Shape_Area"]


def test_dem_item_fields(stores, tmp_path, dem):
    cat = synced(stores, tmp_path, service(dem))
    item = next(i for i in cat.items() if i.name == "dem_r1_c1")
    assert item.bounds == pytest.approx((500900, 5000100, 501900, 5001100))
    assert item.center == pytest.approx((501400, 5000600))
    a = item.attributes
    # overviews [2]: HighPS = 2 x LowPS, MaxPS = 2 x HighPS
    assert (a["LowPS"], a["HighPS"], a["MinPS"], a["MaxPS"]) == pytest.approx((10, 20, 0, 40))
    assert (a["Category"], a["ZOrder"]) == (1, None)
    assert (a["Shape_Length"], a["Shape_Area"]) == pytest.approx((4000, 1_000_000))
    ring = cat.footprint(item.oid)
    assert ring[0] == ring[-1]
    assert min(p[0] for p in ring) == pytest.approx(500900)
    assert max(p[1] for p in ring) == pytest.approx(5001100)
    assert cat.item(item.oid).path == str(dem / "dem_r1_c1.tif")
    assert cat.item(999) is None


@pytest.mark.parametrize("bbox, expected", [
    ((500050, 5001850, 500060, 5001860), ["dem_r0_c0"]),                        # in the hole's tile only
    ((500950, 5001050, 500960, 5001060),                                           # 4-way overlap
     ["dem_r0_c0", "dem_r0_c1", "dem_r1_c0", "dem_r1_c1"]),
    ((501500, 5000200, 501600, 5001900), ["dem_r0_c1", "dem_r1_c1"]),             # right column
    ((500000, 5000100, 500800, 5000800), ["dem_r1_c0"]),
    ((400000, 4000000, 400100, 4000100), []),                                    # far away
])
def test_dem_bbox_queries(stores, tmp_path, dem, bbox, expected):
    assert names(synced(stores, tmp_path, service(dem)).items(bbox=bbox)) == expected


def test_oids_filter(stores, tmp_path, dem):
    cat = synced(stores, tmp_path, service(dem))
    assert [i.oid for i in cat.items(oids=(4, 2, 77))] == [2, 4]
    assert [i.oid for i in cat.items(bbox=(501500, 5000200, 501600, 5001900), oids=(1, 2))] == [2]


# --- mosaic: service CRS, reprojected footprint, attributes -----------------------------------------

def test_mosaic_service_crs_is_the_majority(stores, tmp_path, mosaic):
    cat = synced(stores, tmp_path, service(mosaic))
    assert CRS.from_wkt(cat.info().crs_wkt).to_epsg() == 32633        # 3 of 4 scenes
    scene4 = next(i for i in cat.items() if i.name == "scene_4")
    assert CRS.from_wkt(scene4.crs_wkt).to_epsg() == 4326
    assert scene4.bounds == pytest.approx(SCENE4_UTM_BOX, abs=25)      # ~1 pixel of 0.0002 deg
    assert scene4.cell_size == pytest.approx(18.7, abs=0.5)            # 0.0002 deg at 45 N, both axes


def test_configured_crs_wins(stores, tmp_path, mosaic):
    cat = synced(stores, tmp_path, service(mosaic, crs="EPSG:4326"))
    assert CRS.from_wkt(cat.info().crs_wkt).to_epsg() == 4326
    scene1 = next(i for i in cat.items() if i.name == "scene_1")
    assert 14.9 < scene1.bounds[0] < 15.1 and 45 < scene1.bounds[1] < 45.2


def test_footprints_follow_a_new_majority_crs(stores, tmp_path):
    folder = tmp_path / "shift"
    folder.mkdir()
    write_scene(folder / "scene_3.tif", 3)
    write_scene(folder / "scene_4.tif", 4)
    cat = synced(stores, tmp_path, service(folder))
    assert CRS.from_wkt(cat.info().crs_wkt).to_epsg() == 32633          # tie: first by path
    for k in (5, 6):
        shutil.copy(folder / "scene_4.tif", folder / f"scene_{k}.tif")
    cat.sync()
    assert CRS.from_wkt(cat.info().crs_wkt).to_epsg() == 4326
    scene3 = next(i for i in cat.items() if i.name == "scene_3")
    assert 14.9 < scene3.bounds[0] < 15.1 and 45 < scene3.bounds[1] < 45.2   # now in degrees
    assert names(cat.items(bbox=scene3.bounds)) == ["scene_3", "scene_4", "scene_5", "scene_6"]


def test_mosaic_attributes_from_csv_and_tags(stores, tmp_path, mosaic, caplog):
    with caplog.at_level("WARNING", logger="ogc_gateway.catalog"):
        cat = synced(stores, tmp_path, service(mosaic, catalog=mosaic / "catalog.csv"))
    assert "missing.tif" in caplog.text
    fields = {f.name: f for f in cat.info().fields}
    assert fields["cloud_cover"].type == "esriFieldTypeDouble"
    assert fields["sensor"].type == "esriFieldTypeString" and fields["sensor"].length >= 3
    assert fields["acquired"].type == "esriFieldTypeDate"
    assert fields["priority"].type == "esriFieldTypeInteger"
    assert fields["ACQUISITION_DATE"].type == "esriFieldTypeDate"
    order = [f.name for f in cat.info().fields]
    assert order.index("CenterY") < order.index("cloud_cover") < order.index("Shape_Length")
    s1 = cat.items()[0].attributes
    assert s1["acquired"] == ms(2024, 1, 15, 10, 30)
    assert s1["ACQUISITION_DATE"] == ms(2024, 1, 15)
    assert (s1["cloud_cover"], s1["sensor"], s1["priority"]) == (0.1, "S2A", 4)
    info = cat.info()
    assert info.band_names == ("Blue", "Green", "Red", "NearInfrared")
    assert (info.nodata, info.dtype, info.band_count) == (0, "uint16", 4)
    assert [s.min for s in info.stats] == [1010, 1020, 1030, 1040]
    assert [s.max for s in info.stats] == [4010, 4020, 4030, 4040]


def test_attribute_columns_are_queryable_with_parameters(stores, tmp_path, mosaic):
    cat = synced(stores, tmp_path, service(mosaic, catalog=mosaic / "catalog.csv"))
    rows = cat.store.con().execute('SELECT "Name" FROM items WHERE "sensor" = ? AND "cloud_cover" > ? '
                                   'ORDER BY "OBJECTID"', ("S2A", 0.2)).fetchall()
    rows = [tuple(r) for r in rows]
    assert rows == [("scene_3",)]


def test_tags_only_without_csv(stores, tmp_path, mosaic):
    cat = synced(stores, tmp_path, service(mosaic, time_field="acquisition_date"))   # case-insensitive
    assert [i.time_start for i in cat.items()] == [ms(2024, m, 15) for m in (1, 3, 5, 7)]


# --- time ------------------------------------------------------------------------------------------

def test_time_windows_select_scenes(stores, tmp_path, mosaic):
    cat = synced(stores, tmp_path, service(mosaic, catalog=mosaic / "catalog.csv", time_field="acquired"))
    assert names(cat.items(time=(ms(2024, 2, 1), ms(2024, 4, 1)))) == ["scene_2"]
    assert names(cat.items(time=(ms(2024, 5, 15, 10, 30), ms(2024, 5, 15, 10, 30)))) == ["scene_3"]
    assert names(cat.items(time=(None, ms(2024, 3, 31)))) == ["scene_1", "scene_2"]
    assert names(cat.items(time=(ms(2024, 6, 1), None))) == ["scene_4"]
    assert names(cat.items(time=(ms(2025, 1, 1), None))) == []
    assert cat.info().time_extent == (ms(2024, 1, 15, 10, 30), ms(2024, 7, 15, 10, 30))
    item = cat.items()[1]
    assert item.time_start == item.time_end == ms(2024, 3, 15, 10, 30)


def test_items_without_time_never_match_a_time_filter(stores, tmp_path, mosaic):
    with open(mosaic / "partial.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "acquired"])
        for k in (1, 2, 4):
            w.writerow([f"scene_{k}.tif", MOSAIC_DATES[k]])
        w.writerow(["scene_3.tif", ""])
    cat = synced(stores, tmp_path, service(mosaic, catalog=mosaic / "partial.csv", time_field="acquired"))
    assert names(cat.items(time=(None, None))) == ["scene_1", "scene_2", "scene_4"]
    assert names(cat.items(time=(ms(2000, 1, 1), ms(2030, 1, 1)))) == ["scene_1", "scene_2", "scene_4"]
    assert len(cat.items()) == 4
    assert next(i for i in cat.items() if i.name == "scene_3").attributes["acquired"] is None


def test_timeseries_with_end_field(stores, tmp_path):
    folder = tmp_path / "ts"
    make_timeseries(folder)
    cat = synced(stores, tmp_path, service(folder, catalog=folder / "times.csv", time_field="date",
                                   end_time_field="date_end"))
    assert names(cat.items(time=(ms(2024, 3, 10), ms(2024, 3, 20)))) == ["t2024_03"]
    assert names(cat.items(time=(ms(2024, 2, 29), ms(2024, 3, 1)))) == ["t2024_02", "t2024_03"]
    # date_end holds plain dates: each month's item lasts to the end of its last day
    noon = ms(2024, 12, 31) + 12 * 3600 * 1000
    assert names(cat.items(time=(noon, noon))) == ["t2024_12"]
    info = cat.info()
    assert info.time_extent == (ms(2024, 1, 1), ms(2025, 1, 1) - 1)
    assert CRS.from_wkt(info.crs_wkt).to_epsg() == 4326
    assert info.extent == pytest.approx((-180, -90, 180, 90))
    assert info.cell_size == pytest.approx((1, 1))
    # values month*100 + lat over lat -89.5..89.5 and months 1..12
    assert (info.stats[0].min, info.stats[0].max) == pytest.approx((100 - 89.5, 1200 + 89.5))
    assert info.stats[0].mean == pytest.approx(650, abs=0.01)


def test_changed_time_field_rederives_without_reading(stores, tmp_path, mosaic, monkeypatch):
    db = tmp_path / "c.db"
    stores.open(db, service(mosaic, catalog=mosaic / "catalog.csv")).sync()

    def refuse(*a, **k):
        raise AssertionError("a file was re-read")
    monkeypatch.setattr(rasterinfo.rasterio, "open", refuse)
    cat = stores.open(db, service(mosaic, catalog=mosaic / "catalog.csv", time_field="acquired"))
    assert cat.sync().unchanged == 4
    assert cat.info().time_extent == (ms(2024, 1, 15, 10, 30), ms(2024, 7, 15, 10, 30))


# --- configuration errors --------------------------------------------------------------------------

def test_time_field_without_attribute_is_a_config_error(stores, tmp_path, mosaic):
    with pytest.raises(ConfigError) as err:
        synced(stores, tmp_path, service(mosaic, name="scenes", catalog=mosaic / "catalog.csv", time_field="taken"))
    problem = err.value.problems[0]
    assert problem.startswith("services.scenes.time_field: no attribute 'taken'")
    assert "acquired" in problem


def test_band_count_mismatch_names_the_file(stores, tmp_path, mosaic):
    write_scene(mosaic / "scene_5.tif", 1, count=3)
    with pytest.raises(ConfigError) as err:
        synced(stores, tmp_path, service(mosaic))
    assert len(err.value.problems) == 1
    assert "scene_5.tif" in err.value.problems[0] and "3 band" in err.value.problems[0]
    assert "4 band" in err.value.problems[0]


@pytest.mark.parametrize("column", ["Name", "shape_area", "objectid", "cloud cover"])
def test_bad_csv_column_is_a_config_error(stores, tmp_path, mosaic, column):
    with open(mosaic / "bad.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", column], ["scene_1.tif", "x"]])
    with pytest.raises(ConfigError) as err:
        synced(stores, tmp_path, service(mosaic, catalog=mosaic / "bad.csv"))
    assert any("bad.csv" in p and repr(column) in p for p in err.value.problems)


def test_every_problem_is_reported_at_once(stores, tmp_path, mosaic):
    write_scene(mosaic / "scene_5.tif", 1, count=3)
    with open(mosaic / "bad.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", "Name"], ["scene_1.tif", "x"]])
    with pytest.raises(ConfigError) as err:
        synced(stores, tmp_path, service(mosaic, catalog=mosaic / "bad.csv", time_field="nope"))
    assert len(err.value.problems) == 3


def test_queries_from_other_threads(stores, tmp_path, dem):
    from concurrent.futures import ThreadPoolExecutor
    cat = synced(stores, tmp_path, service(dem))
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda _: names(cat.items(bbox=(501500, 5000200, 501600, 5001900))), range(8)))
    assert found == [["dem_r0_c1", "dem_r1_c1"]] * 8


def test_adding_items_warns_only_about_rows_that_match_no_file_at_all(stores, tmp_path, caplog):
    """`catalog add` derives the new items alone: the CSV rows of the other items are not reported
    as matching no source file (only a full sync says that, of rows that really match none)."""
    folder = tmp_path / "mosaic"
    make_mosaic(folder)
    extra = tmp_path / "extra"
    extra.mkdir()
    shutil.move(folder / "scene_3.tif", extra / "scene_3.tif")
    svc = service(folder, catalog=folder / "catalog.csv")
    with caplog.at_level("WARNING", logger="ogc_gateway.catalog"):
        cat = synced(stores, tmp_path, svc)
    full_sync = caplog.text
    assert "'missing.tif' matches no source file" in full_sync and "'scene_1.tif'" not in full_sync
    caplog.clear()
    with caplog.at_level("WARNING", logger="ogc_gateway.catalog"):
        cat.add([str(extra / "scene_3.tif")])
    assert "matches no source file" not in caplog.text
    assert len(cat.items()) == 4
