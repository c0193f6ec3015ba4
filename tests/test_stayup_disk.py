"""Disk the server may fill (issue 15, items 5 and 6): tile-cache time keys snap to the catalog's times,
the tile cache and the f=json output folder have size bounds (oldest files go first), and output files
are streamed."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import numpy as np
import pytest
from rasterio.io import MemoryFile

from conftest import make_config
from ogc_gateway.app import create_app
from ogc_gateway.engine.sizebound import FolderBound

TS_TILE = "/arcgis/rest/services/ts/ImageServer/tile/1/0/0"


def ms(*args) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def fresh(data_dir, tmp_path):
    """An app with its own cache folder; small bounds where a test sets them."""
    def build(**server):
        config = make_config(data_dir, tmp_path / "cache", **server)
        return create_app(config).test_client(), tmp_path / "cache"
    return build


def time_folders(cache) -> set[str]:
    root = cache / "tiles" / "ts"
    return {p.name for p in root.glob("*/*/*/*") if p.is_dir()}


def test_arbitrary_times_share_the_cache_folders_of_the_items_they_select(fresh):
    client, cache = fresh()
    march = ms(2024, 3, 5)
    bodies = set()
    for k in range(30):                               # 30 different windows, all inside March
        start = march + k * 3_600_000
        resp = client.get(TS_TILE, query_string={"time": f"{start},{start + 86_400_000}"})
        assert resp.status_code == 200, resp.data[:200]
        bodies.add(resp.data)
    assert len(bodies) == 1
    for k in range(10):                               # 10 windows over late March and early April
        start = ms(2024, 3, 20) + k * 3_600_000
        resp = client.get(TS_TILE, query_string={"time": f"{start},{ms(2024, 4, 3) + k}"})
        assert resp.status_code == 200
    assert len(time_folders(cache)) == 2, time_folders(cache)
    # the snapped tile is the tile of March itself, as an instant request draws it
    plain = client.get(TS_TILE, query_string={"time": str(ms(2024, 3, 1))})
    assert plain.data in bodies


def test_a_window_between_items_and_none_selecting_nothing(fresh):
    client, cache = fresh()
    before = ms(2023, 1, 1)
    for k in range(5):
        resp = client.get(TS_TILE, query_string={"time": f"{before + k},{before + k + 1000}"})
        assert resp.status_code in (200, 404)
    assert len(time_folders(cache)) <= 1


def test_folder_bound_removes_the_oldest_files(tmp_path):
    bound = FolderBound(tmp_path, 64 * 1024)
    now = time.time()
    for n in range(40):                               # 40 files of one block each: 160 KiB
        path = tmp_path / f"d{n % 4}" / f"{n}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x" * 1000)
        os.utime(path, (now - 1000 + n, now - 1000 + n))
        bound.wrote([1000])
    left = sorted(int(p.stem) for p in tmp_path.rglob("*.bin"))
    assert 0 < len(left) * 4096 <= 64 * 1024
    assert left == list(range(40 - len(left), 40))    # the newest stay


def test_the_tile_cache_stays_within_its_bound(fresh):
    client, cache = fresh(tile_cache_max_bytes=2**20)
    for level in (2, 3):
        for row in range(2 ** level):
            for col in range(2 ** level):
                resp = client.get(f"/arcgis/rest/services/ts/ImageServer/tile/{level}/{row}/{col}")
                assert resp.status_code in (200, 404)
    used = sum(max(1, -(-p.stat().st_size // 4096)) * 4096
               for p in (cache / "tiles").rglob("*") if p.is_file() and not p.name.startswith("."))
    assert used <= 2**20


def dem_json_export(client):
    resp = client.get("/arcgis/rest/services/dem/ImageServer/exportImage", query_string={
        "bbox": "500000,5000100,501900,5002000", "size": "400,400", "format": "tiff", "f": "json"})
    assert resp.status_code == 200 and "href" in resp.get_json(), resp.data[:300]
    return resp.get_json()["href"].replace("http://localhost", "")


def test_the_output_folder_stays_within_its_bound_and_streams(fresh):
    client, cache = fresh(output_max_bytes=2**20)
    hrefs = [dem_json_export(client) for _ in range(4)]     # 4 x 640 kB of float32 TIFF
    first, last = client.get(hrefs[0]), client.get(hrefs[-1])
    assert first.status_code == 404
    assert last.status_code == 200 and last.is_streamed
    data = last.get_data()
    assert int(last.headers["Content-Length"]) == len(data)
    image = client.get("/arcgis/rest/services/dem/ImageServer/exportImage", query_string={
        "bbox": "500000,5000100,501900,5002000", "size": "400,400", "format": "tiff", "f": "image"})
    with MemoryFile(data) as a, a.open() as ds_a, MemoryFile(image.data) as b, b.open() as ds_b:
        assert np.array_equal(ds_a.read(), ds_b.read())
    used = sum(p.stat().st_size for p in (cache / "output").rglob("*") if p.is_file())
    assert used <= 2**20
