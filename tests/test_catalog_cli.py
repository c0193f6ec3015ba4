"""`ogc-gateway catalog ...` run as users run it (a subprocess), against a server app built from the
same configuration that keeps answering meanwhile: every change shows at its next request."""

from __future__ import annotations

import subprocess
import sys
from contextlib import chdir
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner
from rasterio.io import MemoryFile

from ogc_gateway.app import create_app
from ogc_gateway.cli import cli as cli_group
from ogc_gateway.config import load_config
from ogc_gateway.engine.catalog import Catalog
from ogc_gateway.engine.service import catalog_path

pytestmark = pytest.mark.slow                    # the CLI in subprocesses, as users run it

ROOT = "/arcgis/rest/services/tiles/ImageServer"
TILES = {"a": (500000, 10), "b": (506000, 20), "c": (512000, 30)}     # west edge, value; 6 km apart


def write_tile(path: Path, west: float, value: int, size: int = 600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=1, dtype="uint8", nodata=0,
                       crs="EPSG:32633", transform=Affine(10, 0, west, 0, -10, 5006000)) as ds:
        ds.write(np.full((1, size, size), value, "uint8"))
    return path


@pytest.fixture
def setup(tmp_path):
    for name in ("a", "b"):
        write_tile(tmp_path / "tiles" / f"{name}.tif", *TILES[name])
    write_tile(tmp_path / "extra" / "c.tif", *TILES["c"])
    (tmp_path / "extra" / "notes.txt").write_text("not a raster")
    config = tmp_path / "gateway.yaml"
    config.write_text("server:\n  cache_dir: cache\nservices:\n  tiles:\n    sources: tiles/*.tif\n"
                      "  other:\n    sources: extra/c.tif\n")
    return config


def cli(config: Path, *args: str) -> subprocess.CompletedProcess:
    """The command as users run it: another process, beside the server app of the test."""
    return subprocess.run([sys.executable, "-m", "ogc_gateway.cli", "catalog", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=120, cwd=config.parent)


def run(config: Path, *args: str):
    """The same in this process (quicker, for answers that need no running server beside them)."""
    with chdir(config.parent):
        return CliRunner().invoke(cli_group, ["catalog", *args, "--config", str(config)])


def count(client) -> int:
    return client.get(f"{ROOT}/query", query_string={"where": "1=1", "returnCountOnly": "true",
                                                     "f": "json"}).get_json()["count"]


def value_at(client, name: str) -> int:
    """The exported value at the centre of tile `name` (0: no data)."""
    west = TILES[name][0]
    resp = client.get(f"{ROOT}/exportImage", query_string={
        "bbox": f"{west + 2900},{5002900},{west + 3100},{5003100}", "size": "2,2", "format": "tiff",
        "f": "image"})
    with MemoryFile(resp.data) as mem, mem.open() as ds:
        return int(ds.read(1, masked=True).filled(0)[0, 0])


def update_sequence(client) -> int:
    resp = client.get("/arcgis/services/tiles/ImageServer/WMSServer",
                      query_string={"SERVICE": "WMS", "REQUEST": "GetCapabilities", "VERSION": "1.3.0"})
    return int(resp.data.split(b'updateSequence="')[1].split(b'"')[0])


def test_a_running_server_sees_add_remove_and_sync(setup):
    client = create_app(load_config(setup)).test_client()
    assert count(client) == 2 and value_at(client, "c") == 0
    extent = client.get(ROOT, query_string={"f": "json"}).get_json()["extent"]
    sequence = update_sequence(client)

    added = cli(setup, "add", "tiles", "extra/c.tif")
    assert added.returncode == 0, added.stderr
    assert "tiles: 1 added" in added.stdout
    assert count(client) == 3 and value_at(client, "c") == 30
    assert client.get(ROOT, query_string={"f": "json"}).get_json()["extent"]["xmax"] == extent["xmax"] + 6000
    assert update_sequence(client) > sequence

    removed = cli(setup, "remove", "tiles", "--where", "Name = 'a'")
    assert removed.returncode == 0, removed.stderr
    assert count(client) == 2 and value_at(client, "a") == 0 and value_at(client, "b") == 20

    synced = cli(setup, "sync", "tiles")                      # a stays out; c (added by hand) stays in
    assert synced.returncode == 0 and "0 added or re-read, 0 removed, 2 unchanged" in synced.stdout
    assert count(client) == 2 and value_at(client, "c") == 30
    listed = cli(setup, "list", "tiles", "--excluded")
    assert listed.stdout.split() == [str(setup.parent / "tiles" / "a.tif")]

    again = cli(setup, "add", "tiles", "tiles/a.tif")          # adding an excluded file takes it back
    assert again.returncode == 0 and count(client) == 3 and value_at(client, "a") == 10
    assert cli(setup, "list", "tiles", "--excluded").stdout == ""


def test_list_prints_items_with_their_origin(setup):
    assert run(setup, "add", "tiles", "extra/c.tif").exit_code == 0
    out = run(setup, "list", "tiles").stdout.splitlines()
    assert out[0] == "OBJECTID\tName\torigin\tpath"
    rows = [line.split("\t") for line in out[1:]]
    assert [(r[1], r[2]) for r in rows] == [("a", "sync"), ("b", "sync"), ("c", "add")]
    assert rows[2][3] == str(setup.parent / "extra" / "c.tif")
    some = run(setup, "list", "tiles", "--where", "Name IN ('b', 'c')").stdout.splitlines()
    assert [line.split("\t")[1] for line in some[1:]] == ["b", "c"]


def test_every_change_makes_a_new_generation(setup):
    config = load_config(setup)
    catalog = Catalog(catalog_path(config, "tiles"), config.services["tiles"])
    catalog.sync()
    seen = [catalog.last_change()]
    extra = str(setup.parent / "extra" / "c.tif")
    from ogc_gateway.engine.where import compile_where
    for change in (lambda: catalog.add([extra]),
                   lambda: catalog.remove(compile_where("Name = 'c'", catalog.info().fields)),
                   lambda: catalog.add([extra])):
        change()
        seen.append(catalog.last_change())
    assert seen == sorted(set(seen))                        # strictly growing, even within a millisecond
    catalog.sync()                                          # nothing changed: the same generation
    assert catalog.last_change() == seen[-1]


def test_overviews_are_built_for_sources_that_lack_them(setup):
    client = create_app(load_config(setup)).test_client()
    info = client.get(f"{ROOT}/1/info", query_string={"f": "json"}).get_json()
    assert info["maxPyramidLevel"] == 0
    done = cli(setup, "overviews", "tiles")
    assert done.returncode == 0, done.stderr
    assert "overviews built for 2 file(s); 0 skipped" in done.stdout
    with rasterio.open(setup.parent / "tiles" / "a.tif") as ds:
        assert ds.overviews(1) == [2, 4]                     # 600 -> 300 -> 150 cells
        assert (ds.read(1, out_shape=(150, 150)) == 10).all()
    info = client.get(f"{ROOT}/1/info", query_string={"f": "json"}).get_json()
    assert info["maxPyramidLevel"] == 2
    assert count(client) == 2 and value_at(client, "a") == 10      # same items, same OBJECTIDs
    assert cli(setup, "overviews", "tiles").stdout.strip() == "tiles: overviews built for 0 file(s); 0 skipped"


@pytest.mark.parametrize("args, message", [
    (("list", "nope"), "no service named 'nope'; services: tiles, other"),
    (("remove", "tiles", "--where", "Nmae = 'a'"), "unknown field 'Nmae'"),
    (("remove", "tiles", "--where", "1=1"), "matches all 2 items"),
    (("list", "tiles", "--where", "Name = 'a'; DROP TABLE items"), "--where"),
    (("add", "tiles", "extra/notes.txt"), "not a usable raster"),
    (("add", "tiles", "extra/missing.tif"), "does not exist"),
    (("sync", "nope"), "no service named 'nope'"),
])
def test_mistakes_are_clean_lines(setup, args, message):
    result = run(setup, *args)
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit)     # no traceback
    assert message in result.stderr


def test_a_missing_configuration_is_a_clean_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ogc_gateway.cli", "catalog", "list", "x"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 1 and "no configuration" in result.stderr and "Traceback" not in result.stderr


def test_a_refused_change_leaves_the_catalog_as_it_was(setup):
    write_tile(setup.parent / "extra" / "wide.tif", 520000, 40)
    with rasterio.open(setup.parent / "extra" / "rgb.tif", "w", driver="GTiff", width=4, height=4, count=3,
                       dtype="uint8", crs="EPSG:32633", transform=Affine(10, 0, 530000, 0, -10, 5006000)) as ds:
        ds.write(np.ones((3, 4, 4), "uint8"))
    result = run(setup, "add", "tiles", "extra/wide.tif", "extra/rgb.tif")
    assert result.exit_code == 1 and "has 3 band(s) of uint8; the service has 1 band(s)" in result.stderr
    listed = run(setup, "list", "tiles").stdout.splitlines()[1:]
    assert [line.split("\t")[1] for line in listed] == ["a", "b"]


def test_item_image_is_the_item_alone(setup):
    """`{rasterId}/image`: an item's own pixels even where the mosaic shows another one."""
    write_tile(setup.parent / "tiles" / "z.tif", 503000, 90)          # overlaps a and b
    client = create_app(load_config(setup)).test_client()
    names = {f["attributes"]["Name"]: f["attributes"]["OBJECTID"] for f in client.get(
        f"{ROOT}/query", query_string={"where": "1=1", "outFields": "Name", "f": "json"}).get_json()["features"]}
    box = "503000,5002000,504000,5003000"                                 # inside a and z
    mosaic = client.get(f"{ROOT}/exportImage", query_string={"bbox": box, "size": "10,10", "format": "tiff",
                                                             "f": "image"})
    with MemoryFile(mosaic.data) as mem, mem.open() as ds:
        assert (ds.read(1) == 10).all()                                   # Northwest puts a on top
    for name, value in (("z", 90), ("a", 10)):
        resp = client.get(f"{ROOT}/{names[name]}/image", query_string={"bbox": box, "size": "10,10",
                                                                       "format": "tiff", "f": "image"})
        with MemoryFile(resp.data) as mem, mem.open() as ds:
            assert (ds.read(1) == value).all()
    whole = client.get(f"{ROOT}/{names['z']}/image", query_string={"f": "image"})
    assert whole.content_type == "image/png"                              # PNG of the whole item by default
    described = client.get(f"{ROOT}/{names['z']}/image", query_string={"f": "json"}).get_json()
    assert described["extent"]["xmin"] == 503000 and described["extent"]["xmax"] == 509000
    assert client.get(described["href"]).status_code == 200
    missing = client.get(f"{ROOT}/99/image", query_string={"f": "json"}).get_json()
    assert missing["error"]["code"] == 404
    thumb = client.get(f"{ROOT}/{names['z']}/thumbnail")
    assert thumb.content_type == "image/png"


def test_catalog_help_lists_the_commands():
    result = CliRunner().invoke(cli_group, ["catalog", "--help"])
    assert result.exit_code == 0
    for command in ("sync", "add", "remove", "list", "overviews"):
        assert f"  {command} " in result.output


def test_a_catalog_change_invalidates_a_running_server_tiles(setup):
    """The tile cache's generation follows the catalog: after `catalog add` (another process) the
    server renders the tile anew, with the new item in it, instead of serving the stored one."""
    import io

    from PIL import Image

    from ogc_gateway.engine import tiles as engine_tiles

    app = create_app(load_config(setup))
    client = app.test_client()
    # the native tile matrix set's level 0: one tile holds the whole extent
    tile = f"{ROOT}/WMTS/tile/1.0.0/tiles/default/tiles-native/0/0/0.png"
    before = client.get(tile)
    assert before.status_code == 200
    calls = []
    real = engine_tiles.export
    engine_tiles.export = lambda service, req: calls.append(req) or real(service, req)
    try:
        assert client.get(tile).data == before.data and not calls                    # from the cache
        added = cli(setup, "add", "tiles", str(setup.parent / "extra" / "c.tif"))
        assert added.returncode == 0, added.stderr
        after = client.get(tile)
    finally:
        engine_tiles.export = real
    assert len(calls) == 1 and after.status_code == 200
    assert after.headers["ETag"] != before.headers["ETag"]
    # c (value 30) lies east of b: the new tile shows it where the old one was empty
    old, new = (np.asarray(Image.open(io.BytesIO(r.data)).convert("RGBA")) for r in (before, after))
    assert (new[..., 3] > 0).sum() > (old[..., 3] > 0).sum()
