"""The publishing API's storage pieces on their own: uploads (checks, parts, expiry), jobs, attribute
edits in the catalog. The HTTP flow is in test_publish_http.py."""

from __future__ import annotations

import io
import os
import time
import zipfile

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from ogc_gateway.engine.catalog import DATE, DOUBLE, INTEGER, STRING, Field, check_attributes
from ogc_gateway.engine.errors import InvalidParameter, NotFound, TooLarge
from ogc_gateway.publish.jobs import Jobs
from ogc_gateway.publish.uploads import Expect, Uploads


def write_tif(path, bands=1, dtype="float32", size=32, **extra):
    profile = dict(driver="GTiff", width=size, height=size, count=bands, dtype=dtype, crs="EPSG:32633",
                   transform=from_origin(500000, 5000000, 10, 10), **extra)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(np.arange(bands * size * size, dtype=dtype).reshape(bands, size, size))
    return path


@pytest.fixture()
def store(tmp_path):
    return Uploads(tmp_path / "uploads", max_bytes=1_000_000, ttl_seconds=3600)


def test_a_raster_upload_is_committed_with_its_name(store, tmp_path):
    src = write_tif(tmp_path / "a.tif")
    item = store.upload(open(src, "rb"), "a.tif", "first")
    assert item.committed and item.itemName == "a.tif" and item.description == "first"
    assert store.get(item.itemID) == item
    _, path = store.file(item.itemID)
    assert path.read_bytes() == src.read_bytes()


@pytest.mark.parametrize("name", ["../a.tif", "a/b.tif", "..", "a\\b.tif", ".hidden.tif", ""])
def test_names_with_paths_are_refused(store, tmp_path, name):
    src = write_tif(tmp_path / "a.tif")
    with pytest.raises(InvalidParameter) as err:
        store.upload(open(src, "rb"), name)
    assert err.value.name == "file"
    assert not list((tmp_path / "uploads").glob("*")) if (tmp_path / "uploads").exists() else True


def test_not_a_raster_corrupt_and_zip_are_refused_and_nothing_is_kept(store, tmp_path):
    text = tmp_path / "notes.tif"
    text.write_text("hello, not a raster")
    good = write_tif(tmp_path / "good.tif", size=256, compress="deflate", tiled=True, blockxsize=64, blockysize=64)
    truncated = tmp_path / "cut.tif"
    data = good.read_bytes()
    truncated.write_bytes(data[: len(data) * 2 // 3])
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.tif", b"\0" * 5_000_000)
    for path in (text, truncated, archive):
        with pytest.raises(InvalidParameter) as err:
            store.upload(open(path, "rb"), path.name)
        assert path.name in err.value.why
    assert list((tmp_path / "uploads").iterdir()) == []


def test_a_decompression_bomb_is_refused_before_reading(store, tmp_path):
    bomb = tmp_path / "bomb.tif"
    with rasterio.open(bomb, "w", driver="GTiff", width=40000, height=40000, count=1, dtype="uint8",
                       crs="EPSG:4326", transform=from_origin(0, 90, 0.001, 0.001), tiled=True, compress="deflate",
                       sparse_ok=True) as ds:
        ds.write(np.ones((1, 256, 256), "uint8"), window=((0, 256), (0, 256)))
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(TooLarge) as err:
        store.upload(open(bomb, "rb"), "bomb.tif")
    assert "decompression bomb" in err.value.why


def test_the_size_bound_stops_the_stream(tmp_path):
    small = Uploads(tmp_path / "up", max_bytes=1000, ttl_seconds=60)
    with pytest.raises(TooLarge):
        small.upload(io.BytesIO(b"x" * 5000), "big.tif")
    assert list((tmp_path / "up").iterdir()) == []


def test_another_band_count_or_type_is_refused_for_a_service(store, tmp_path):
    three = write_tif(tmp_path / "three.tif", bands=3, dtype="uint8")
    with pytest.raises(InvalidParameter) as err:
        store.upload(open(three, "rb"), "three.tif", service="dem", expect=Expect(1, "float32"))
    assert "3 band(s) of uint8" in err.value.why and "1 band(s) of float32" in err.value.why


def test_parts_are_joined_in_order_and_checked(store, tmp_path):
    src = write_tif(tmp_path / "p.tif", size=200)
    data = src.read_bytes()
    item = store.register("p.tif", "in parts")
    assert not item.committed
    cuts = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    for i in (2, 0, 1):                     # any arrival order
        store.upload_part(item.itemID, str(i), io.BytesIO(data[cuts[i]:cuts[i + 1]]))
    with pytest.raises(InvalidParameter):
        store.commit(item.itemID, ["0", "1", "7"])
    done = store.commit(item.itemID)
    assert done.committed and done.size == len(data)
    assert store.file(done.itemID)[1].read_bytes() == data
    with pytest.raises(InvalidParameter):
        store.upload_part(item.itemID, "3", io.BytesIO(b"late"))


def test_uploads_of_one_service_cannot_go_to_another(store, tmp_path):
    src = write_tif(tmp_path / "a.tif")
    mine = store.upload(open(src, "rb"), "a.tif", service="dem")
    shared = store.upload(open(src, "rb"), "a.tif")
    assert store.file(shared.itemID, "dem") and store.file(mine.itemID, "dem")
    with pytest.raises(InvalidParameter):
        store.file(mine.itemID, "other")
    with pytest.raises(InvalidParameter):
        store.file(mine.itemID)


def test_old_and_half_written_uploads_expire(store, tmp_path):
    src = write_tif(tmp_path / "a.tif")
    item = store.upload(open(src, "rb"), "a.tif")
    half = tmp_path / "uploads" / ("i" + "0" * 32)
    half.mkdir()
    (half / "partial").write_bytes(b"x")
    assert store.expire() == 0
    assert store.expire(now=time.time() + 7200) == 2
    with pytest.raises(NotFound):
        store.get(item.itemID)
    with pytest.raises(NotFound):
        store.get("../../etc")


def test_jobs_record_success_failure_and_a_dead_worker(tmp_path):
    jobs = Jobs(tmp_path / "jobs.sqlite")
    ok = jobs.submit("t", lambda message: (message("working"), {"n": 1})[1], wait=True)
    state = jobs.get(ok)
    assert state["jobStatus"] == "esriJobSucceeded" and state["results"] == {"n": 1}
    assert state["messages"][0]["description"] == "working"
    bad = jobs.submit("t", lambda message: (_ for _ in ()).throw(InvalidParameter("x", "no good")), wait=True)
    assert jobs.get(bad)["jobStatus"] == "esriJobFailed"
    assert any("no good" in m["description"] for m in jobs.get(bad)["messages"])
    threaded = jobs.submit("t", lambda message: {"done": True})
    for _ in range(100):
        if jobs.get(threaded)["jobStatus"] == "esriJobSucceeded":
            break
        time.sleep(0.05)
    assert jobs.get(threaded)["results"] == {"done": True}
    # A job whose process died is failed, whoever asks.
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    with jobs._con() as con:
        con.execute("UPDATE jobs SET status = 'esriJobExecuting', pid = ? WHERE id = ?", (pid, threaded))
    assert jobs.get(threaded)["jobStatus"] == "esriJobFailed"
    with pytest.raises(NotFound):
        jobs.get("j-none")


def test_attribute_values_are_checked_against_field_types():
    fields = [Field("cloud", DOUBLE, "cloud"), Field("sensor", STRING, "sensor", 10),
              Field("orbit", INTEGER, "orbit"), Field("acquired", DATE, "acquired")]
    cells = check_attributes(fields, {"CLOUD": 3, "sensor": "S2A", "orbit": 7, "acquired": 0})
    assert cells == {"cloud": "3.0", "sensor": "S2A", "orbit": "7", "acquired": "1970-01-01T00:00:00+00:00"}
    assert check_attributes(fields, {"acquired": "2024-05-01", "orbit": None}) == {"acquired": "2024-05-01",
                                                                                  "orbit": None}
    for bad in ({"nosuch": 1}, {"orbit": 1.5}, {"orbit": "7"}, {"cloud": "x"}, {"sensor": 5},
                {"acquired": "yesterday"}, {"orbit": True}, {"Name": "x"}, {"cloud": float("nan")}, [1]):
        with pytest.raises(InvalidParameter):
            check_attributes(fields, bad)


def test_publish_cli_makes_a_service_a_running_server_serves(data_dir, tmp_path):
    """`ogc-gateway publish` does locally what createService does; an app already running serves it."""
    from click.testing import CliRunner

    from ogc_gateway.app import create_app
    from ogc_gateway.cli import cli
    from ogc_gateway.config import load_config

    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "gateway.yaml").write_text(
        f"server: {{cache_dir: {folder / 'cache'}}}\nservices:\n  dem: {{sources: '{data_dir / 'dem' / '*.tif'}'}}\n")
    app = create_app(load_config(folder / "gateway.yaml"))
    a = write_tif(tmp_path / "a.tif", tags=None)
    with rasterio.open(a, "r+") as ds:
        ds.update_tags(flown="2024-06-01")
    result = CliRunner().invoke(cli, ["publish", "flights", str(a), "--config", str(folder / "gateway.yaml"),
                                      "--title", "Flights", "--time-field", "flown"])
    assert result.exit_code == 0, result.output
    assert "Published flights: 1 raster(s)" in result.output
    root = app.test_client().get("/arcgis/rest/services/flights/ImageServer?f=json").get_json()
    assert root["name"] == "flights" and root["description"] == "" and root["timeInfo"]["timeExtent"][0] == 1717200000000
    again = CliRunner().invoke(cli, ["publish", "dem", str(a), "--config", str(folder / "gateway.yaml")])
    assert again.exit_code == 1 and "exists already" in again.output


def test_orphans_of_a_killed_add_are_swept_after_the_ttl(tmp_path):
    from ogc_gateway.publish.services import sweep

    class Catalog:
        def entries(self):
            yield 1, "kept", "add", str(tmp_path / "kept.tif")

    for name in ("kept.tif", "orphan.tif", "young.tif"):
        (tmp_path / name).write_bytes(b"x")
    old = time.time() - 7200
    os.utime(tmp_path / "kept.tif", (old, old))
    os.utime(tmp_path / "orphan.tif", (old, old))
    assert sweep(tmp_path, Catalog(), 3600) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.tif", "young.tif"]


def test_the_request_front_lets_uploads_be_larger_than_other_bodies_and_spools_them():
    """asgi.py reads whole requests before the app runs: an upload path may carry up to
    max_upload_bytes (spooled, not held in memory), any other path only max_request_bytes."""
    import asyncio

    from ogc_gateway.asgi import WsgiOnAsgi

    seen = {}

    def app(environ, start_response):
        body = environ["wsgi.input"].read()
        seen[environ["PATH_INFO"]] = (len(body), int(environ["CONTENT_LENGTH"]))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    front = WsgiOnAsgi(app, max_body=1000, max_upload=5_000_000, threads=1)

    def post(path, size):
        sent = []
        chunks = [b"x" * 100_000] * (size // 100_000) + [b"x" * (size % 100_000)]
        messages = iter([{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                         for i, c in enumerate(chunks)])

        async def receive():
            return next(messages)

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": path, "headers": [], "query_string": b""}
        asyncio.run(front(scope, receive, send))
        return sent[0]["status"]

    assert post("/arcgis/admin/uploads/upload", 3_000_000) == 200
    assert seen["/arcgis/admin/uploads/upload"] == (3_000_000, 3_000_000)
    assert post("/arcgis/admin/uploads/i0/uploadPart", 3_000_000) == 200
    assert post("/arcgis/admin/uploads/upload", 6_000_000) == 413
    assert post("/arcgis/rest/services/x/ImageServer/exportImage", 3_000) == 413
    assert post("/arcgis/rest/services/x/ImageServer/exportImage", 900) == 200
