"""The two catalog stores against each other and against the files: the same sources give the same
items, fields, facts, seamlines and query answers in SQLite and in PostGIS; footprints are the files'
own bounds as rasterio reads them; two instances on one PostGIS catalog see each other's changes at
their next request, and both come up when they create it at once; an unreachable database is a clear
error that never shows the password, and `/readyz` turns 503 while `/healthz` stays 200."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest
import rasterio
import yaml

from ogc_gateway.app import create_app
from ogc_gateway.config import ServiceConfig, load_config
from ogc_gateway.engine.catalog import Catalog, Order, items_ddl
from ogc_gateway.engine.catalog.postgis import PostgisStore, redact
from ogc_gateway.engine.errors import ConfigError, InvalidParameter
from ogc_gateway.engine.where import compile_where
from pgserver import PG_BIN, Cluster, Stores, pg_url  # noqa: F401 (fixture)
from synth import make_dem, make_mosaic

WHERES = ["", "sensor = 'S2A'", "cloud_cover > 0.2 AND cloud_cover < 0.9", "Name LIKE 'SCENE_%'",
          "Name NOT LIKE 'scene\\_1' ESCAPE '\\'", "acquired >= DATE '2024-01-01'", "UPPER(sensor) IN ('L8', 'X')",
          "Shape_Area BETWEEN 1 AND 1e12 OR ZOrder IS NULL"]


def both(tmp_path: Path, url: str, svc: ServiceConfig) -> tuple[Catalog, Catalog]:
    lite = Stores("sqlite", None).open(tmp_path / "lite.db", svc)
    pg = Stores("postgis", url).open(tmp_path / "pg.db", svc)
    lite.sync()
    pg.sync()
    return lite, pg


def test_the_two_stores_hold_the_same_catalog(tmp_path, pg_url):
    make_mosaic(tmp_path / "m")
    svc = ServiceConfig(name="cmp", sources=(str(tmp_path / "m" / "*.tif"),), catalog=tmp_path / "m" / "catalog.csv",
                        time_field="acquired")
    lite, pg = both(tmp_path, pg_url, svc)
    assert lite.info() == pg.info()
    assert lite.attribute_fields() == pg.attribute_fields()
    assert lite.items() == pg.items() and len(lite.items()) == 4
    for text in WHERES:
        where = compile_where(text, lite.info().fields)
        assert [i.oid for i in lite.items(where=where)] == [i.oid for i in pg.items(where=where)], text
        assert list(lite.entries(where)) == list(pg.entries(where)), text
    oids = [i.oid for i in lite.items()]
    assert lite.seamlines(oids).keys() == pg.seamlines(oids).keys()
    for oid, shape in lite.seamlines(oids).items():
        assert shape.equals(pg.seamlines(oids)[oid])
    x0, y0, x1, y1 = lite.info().extent
    middle = ((x0 + x1) / 2, (y0 + y1) / 2)
    for order in (Order(field="cloud_cover"), Order(field="acquired", base=1.7e12, ascending=False),
                  Order(point=middle), Order(ids=tuple(reversed(oids))), Order(seams=(x0, y0, middle[0], middle[1]))):
        assert lite.items(order=order) == pg.items(order=order), order
        assert lite.items(order=order, limit=2, offset=1) == pg.items(order=order, limit=2, offset=1), order
    assert lite.boxes(bbox=(x0, y0, middle[0], middle[1])) == pg.boxes(bbox=(x0, y0, middle[0], middle[1]))
    window = (lite.times()[1], None)
    assert lite.items(time=window) == pg.items(time=window) and lite.times() == pg.times()
    assert sorted(lite.time_bounds()) == sorted(pg.time_bounds())
    assert [lite.record(o) for o in oids] == [pg.record(o) for o in oids]
    assert lite.cell_size_range() == pg.cell_size_range()


def test_footprints_are_the_files_bounds(tmp_path, pg_url):
    make_dem(tmp_path / "dem")
    svc = ServiceConfig(name="fp", sources=(str(tmp_path / "dem" / "*.tif"),))
    for cat in both(tmp_path, pg_url, svc):
        for item in cat.items():
            with rasterio.open(item.path) as src:
                assert item.bounds == pytest.approx(tuple(src.bounds), abs=1e-6)
        x0, y0, x1, y1 = cat.items()[0].bounds
        probe = (x0 + 1, y0 + 1, x0 + 2, y0 + 2)
        truth = []
        for item in cat.items():
            with rasterio.open(item.path) as src:
                b = src.bounds
                if b.right >= probe[0] and b.left <= probe[2] and b.top >= probe[1] and b.bottom <= probe[3]:
                    truth.append(item.oid)
        assert [i.oid for i in cat.items(bbox=probe)] == truth and truth


def test_edits_removal_and_where_errors_on_both(tmp_path, pg_url):
    make_mosaic(tmp_path / "m")
    svc = ServiceConfig(name="ed", sources=(str(tmp_path / "m" / "*.tif"),), catalog=tmp_path / "m" / "catalog.csv")
    for cat in both(tmp_path, pg_url, svc):
        cat.set_attributes([1, 2], {"sensor": "XX"})
        cat.set_attributes([2], {"sensor": "YY"})
        assert [i.attributes["sensor"] for i in cat.items(oids=(1, 2))] == ["XX", "YY"]
        gone = cat.remove(compile_where("sensor = 'YY'", cat.info().fields))
        assert gone == [str(tmp_path / "m" / "scene_2.tif")] and cat.excluded() == gone
        assert cat.sync().added == 0 and len(cat.items()) == 3
        with pytest.raises(ConfigError, match="at least one"):
            cat.remove_ids([i.oid for i in cat.items()])
        try:                    # SQLite compares anything with anything; PostGIS refuses, as a where error
            found = cat.items(where=compile_where("Name > 5", cat.info().fields))
        except InvalidParameter as exc:
            assert cat.store.value_errors and exc.name == "where"
        else:
            assert not cat.store.value_errors and len(found) == 3


def test_a_change_by_one_instance_is_seen_by_the_other(tmp_path, pg_url):
    make_mosaic(tmp_path / "m")
    files = sorted((tmp_path / "m").glob("*.tif"))
    svc = ServiceConfig(name="two", sources=(str(tmp_path / "m" / "scene_1.tif"),))
    store = Stores("postgis", pg_url)
    a = store.open(tmp_path / "shared.db", svc)
    b = Catalog(tmp_path / "other.db", svc, PostgisStore(pg_url, a.store.schema[len("ogc_gateway_"):],
                                                         items_ddl([], PostgisStore.types, True)))
    a.sync()
    before = b.last_change()
    assert before == a.last_change() and [i.name for i in b.items()] == ["scene_1"]
    a.add([str(files[1])])
    assert b.last_change() > before and b.content_stamp() == a.content_stamp()
    assert [i.name for i in b.items()] == ["scene_1", files[1].stem]
    assert b.info().item_count == 2


def test_a_catalog_without_the_time_range_index_gets_it_when_opened(tmp_path, pg_url):
    """A schema made before the GiST time index (item_times without `span`) gets the column and the
    index from the next instance that opens it, filled from the rows it holds: windows select the same."""
    make_mosaic(tmp_path / "m")
    svc = ServiceConfig(name="span", sources=(str(tmp_path / "m" / "*.tif"),), catalog=tmp_path / "m" / "catalog.csv",
                        time_field="acquired")
    old = Stores("postgis", pg_url).open(tmp_path / "pg.db", svc)
    old.sync()
    every = old.items()
    with psycopg.connect(pg_url, autocommit=True) as raw:
        raw.execute(f'ALTER TABLE "{old.store.schema}".item_times DROP COLUMN span')    # its index goes too
    reopened = Catalog(tmp_path / "pg.db", svc, PostgisStore(pg_url, old.store.schema[len("ogc_gateway_"):],
                                                             items_ddl([], PostgisStore.types, True)))
    with psycopg.connect(pg_url, autocommit=True) as raw:
        assert raw.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = %s AND indexname = 'item_times_span'",
                           (old.store.schema,)).fetchone()[0] == 1
    times = sorted({i.time_start for i in every if i.time_start is not None})
    assert len(times) >= 2
    for window in ((times[0], times[0]), (None, times[0]), (times[-1], None), (times[0] + 1, times[-1] - 1)):
        lo, hi = (window[0] if window[0] is not None else -1e30), (window[1] if window[1] is not None else 1e30)
        truth = [i.oid for i in every if i.time_start is not None and i.time_start <= hi and i.time_end >= lo]
        assert [i.oid for i in reopened.items(time=window)] == truth, window


def test_two_instances_create_an_empty_catalog_at_once(tmp_path, pg_url):
    PostgisStore.drop(pg_url, "race")
    barrier, errors, stores = threading.Barrier(4), [], []

    def start():
        barrier.wait()
        try:
            stores.append(PostgisStore(pg_url, "race", items_ddl([], PostgisStore.types, True)))
        except Exception as exc:  # noqa: BLE001 - the test reports whatever an instance raised
            errors.append(exc)
    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(stores) == 4
    with psycopg.connect(pg_url) as con:
        tables = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
                             ("ogc_gateway_race",)).fetchone()[0]
        index = con.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND indexname = %s",
                            ("ogc_gateway_race", "footprints_box")).fetchone()[0]
    assert tables == 9 and "USING gist (box)" in index
    PostgisStore.drop(pg_url, "race")


def test_an_unreachable_database_never_shows_the_password(tmp_path):
    url = "postgresql://gw:s3cret-pw@127.0.0.1:1/nothing"
    assert redact(url) == "postgresql://gw:***@127.0.0.1:1/nothing"
    with pytest.raises(OSError) as caught:
        PostgisStore(url, "svc", items_ddl([], PostgisStore.types, True))
    assert "s3cret-pw" not in str(caught.value) and "***" in str(caught.value)


@pytest.mark.parametrize("value", ["mysql://x:secretword@h/db", "postgresql://", 5])
def test_catalog_url_is_validated_without_echoing_it(tmp_path, value):
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump({
        "server": {"cache_dir": str(tmp_path / "cache"), "catalog_url": value},
        "services": {"a": {"sources": [str(tmp_path / "*.tif")]}}}))
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "gateway.yaml")
    assert any("server.catalog_url" in p for p in caught.value.problems)
    assert "secretword" not in str(caught.value.problems)


@pytest.mark.skipif(not (PG_BIN / "postgres").exists(), reason="needs PostgreSQL's binaries to stop a server")
def test_readyz_turns_503_while_postgis_is_down(tmp_path):
    make_dem(tmp_path / "dem")
    cluster = Cluster()                 # its own server, so stopping it harms no other test
    try:
        (tmp_path / "gateway.yaml").write_text(yaml.safe_dump({
            "server": {"cache_dir": str(tmp_path / "cache"), "catalog_url": cluster.url},
            "services": {"dem": {"sources": [str(tmp_path / "dem" / "*.tif")]}}}))
        client = create_app(load_config(tmp_path / "gateway.yaml")).test_client()
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.get_json()["checks"]["catalog:dem"] == "ok"
        cluster.run(PG_BIN / "pg_ctl", "-D", cluster.dir / "data", "-m", "fast", "-w", "stop")
        down = client.get("/readyz")
        assert down.status_code == 503 and "catalog database postgresql://" in down.get_json()["checks"]["catalog:dem"]
        assert client.get("/healthz").status_code == 200
    finally:
        cluster.stop()
