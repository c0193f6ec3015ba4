"""The tile cache and the ImageServer tile resources: tiles rendered once (engine calls counted here) and
served from storage afterwards, by WMTS and `tile/{level}/{row}/{col}` alike; seeded tiles served without
any engine call; two processes rendering one tile leave one intact file; the cache invalidated when the
catalog or a template changes; `ogc-gateway seed` (progress, resume, empty blocks, --clean); and the
root JSON's tileInfo against the tile matrix set's definition, computed here."""

from __future__ import annotations

import io
import multiprocessing
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import synth
from conftest import make_config
from ogc_gateway import cli
from ogc_gateway import seed as seeding
from ogc_gateway.app import create_app
from ogc_gateway.config import FunctionTemplate, config_problems
from ogc_gateway.engine import tiles as engine_tiles
from ogc_gateway.engine.requests import TileRequest
from ogc_gateway.engine.service import open_services
from ogc_gateway.engine.tilecache import DiskTileStore
from test_wmts import COL0, COL1, ROW0, ROW1, WORLD, Z, dem_tile_truth, merc_range

DEM_TILE = f"/arcgis/rest/services/dem/ImageServer/tile/{Z}/{ROW0}/{COL0}"


def fresh_config(data_dir, tmp_path, **service_changes):
    config = make_config(data_dir, tmp_path / "cache")
    if service_changes:
        config = replace(config, services={**config.services,
                                           "dem": replace(config.services["dem"], **service_changes)})
    return config


@pytest.fixture()
def calls(monkeypatch):
    """Counts the engine exports the tile path makes."""
    counted = []
    real = engine_tiles.export

    def counting(service, req):
        counted.append(req.grid)
        return real(service, req)
    monkeypatch.setattr(engine_tiles, "export", counting)
    return counted


def wmts_tile(client, row=ROW0, col=COL0, fmt="png", style="default", layer="dem", z=Z):
    return client.get(f"/ogc/wmts/tile/1.0.0/{layer}/{style}/WebMercatorQuad/{z}/{row}/{col}.{fmt}")


# --- the cache ------------------------------------------------------------------------------------------

def test_a_metatile_is_rendered_once_and_its_tiles_served_from_the_cache(data_dir, tmp_path, calls):
    client = create_app(fresh_config(data_dir, tmp_path)).test_client()
    first = wmts_tile(client)
    assert first.status_code == 200 and len(calls) == 1
    # one export covered the whole (clipped) metatile: the DEM's 2 x 2 tiles at this level
    assert (calls[0].width, calls[0].height) == (2 * 256, 2 * 256)
    again = wmts_tile(client)
    neighbour = wmts_tile(client, row=ROW1, col=COL1)
    assert again.data == first.data and neighbour.status_code == 200
    assert len(calls) == 1
    # the ImageServer resource has its own format (MIXED) but the same blocks
    rest = client.get(DEM_TILE)
    assert rest.status_code == 200 and len(calls) == 2
    assert client.get(DEM_TILE).data == rest.data and len(calls) == 2
    # on disk, under the documented layout
    root = tmp_path / "cache" / "tiles" / "dem"
    files = sorted(p.relative_to(root).parts[1:] for p in root.rglob("*.png"))
    assert ("WebMercatorQuad", "default", "all", "png", str(Z), str(ROW0), f"{COL0}.png") in files


def test_a_metatile_stays_within_the_image_size_limits(data_dir, tmp_path, calls):
    from ogc_gateway.config import Limits
    client = create_app(fresh_config(data_dir, tmp_path, limits=Limits(max_image_width=300,
                                                                      max_image_height=600))).test_client()
    # the 4 x 4 metatile shrinks to one tile a side (300 // 256): every tile renders alone, none fails
    for row in (ROW0, ROW1):
        assert wmts_tile(client, row, COL0).status_code == 200
    assert [(g.width, g.height) for g in calls] == [(256, 256), (256, 256)]


def test_tiles_across_a_metatile_boundary_match_one_larger_render(data_dir, tmp_path, calls):
    """Metatiles of size 1 render every tile alone; their pixels equal the 2 x 2 metatile's."""
    big = create_app(fresh_config(data_dir, tmp_path / "a")).test_client()
    single_cfg = make_config(data_dir, tmp_path / "b" / "cache")
    single_cfg = replace(single_cfg, server=replace(single_cfg.server, tile_metatile_size=1))
    single = create_app(single_cfg).test_client()
    for row in (ROW0, ROW1):
        for col in (COL0, COL1):
            one, alone = (np.asarray(Image.open(io.BytesIO(wmts_tile(c, row, col).data)).convert("RGBA"))
                          for c in (big, single))
            # equal but where a pixel centre lies on a source pixel's edge (float noise decides there)
            _, _, edge = dem_tile_truth(Z, row, col)
            assert np.array_equal(one[~edge], alone[~edge])
            assert (one != alone).any(axis=2)[edge].mean() < 0.05
    assert len(calls) == 1 + 4


def test_hillshade_tiles_rendered_alone_match_the_metatile_along_their_edges(data_dir, tmp_path):
    """A neighbourhood function (issue 8's padded reads) through the tile path: each tile rendered on
    its own equals the same tile cut from a 2 x 2 metatile, including the rows and columns at its
    edges, where a tile without padding would shade against missing neighbours."""
    hillshade = FunctionTemplate("Hillshade", "Hillshade", {"Azimuth": 315, "Altitude": 45, "ZFactor": 1})
    big = create_app(fresh_config(data_dir, tmp_path / "a", raster_functions=(hillshade,))).test_client()
    alone_cfg = fresh_config(data_dir, tmp_path / "b", raster_functions=(hillshade,))
    alone = create_app(replace(alone_cfg, server=replace(alone_cfg.server, tile_metatile_size=1))).test_client()
    for row, col in ((ROW0, COL0), (ROW0, COL1), (ROW1, COL0)):
        one, single = (np.asarray(Image.open(io.BytesIO(wmts_tile(c, row, col, style="Hillshade").data))
                                  .convert("RGBA")).astype(int) for c in (big, alone))
        both = (one[..., 3] > 0) & (single[..., 3] > 0)
        edges = np.zeros((256, 256), bool)
        edges[:2, :] = edges[-2:, :] = edges[:, :2] = edges[:, -2:] = True
        assert (both & edges).sum() > 100
        diff = np.abs(one[..., 0] - single[..., 0])
        assert (diff[both & edges] <= 1).mean() > 0.98            # float noise at source pixel edges only
        assert (diff[both] <= 1).mean() > 0.98


def test_seeded_tiles_are_served_without_any_engine_call(data_dir, tmp_path, calls):
    config = fresh_config(data_dir, tmp_path)
    plan, found = seeding.prepare(config, "dem", tms=None, levels=f"{Z - 2}-{Z}", bbox=None, bbox_crs="EPSG:4326",
                                  style="default", fmt="png", time=None, metatile=None)
    done = []
    counts = seeding.run(config, plan, found, 1, lambda n, outcome: done.append(n))
    assert sum(done) == seeding.tile_count(plan, found) == sum(counts.values())
    seeded = len(calls)
    assert seeded >= 3
    client = create_app(config).test_client()
    for z in (Z - 2, Z - 1, Z):
        r0, r1, c0, c1 = merc_range((500000.0, 5000100.0, 501900.0, 5002000.0), z)
        for row in range(r0, r1 + 1):
            for col in range(c0, c1 + 1):
                assert wmts_tile(client, row, col, z=z).status_code == 200
    assert len(calls) == seeded                                     # every tile came from the store


def _render_in_process(config, start, queue):
    """A separate worker: its own services, a tile of the DEM, the engine calls it made."""
    from ogc_gateway.engine import tiles

    made = []
    real = tiles.export

    def counting(service, req):
        made.append(1)
        time.sleep(0.5)                       # hold the lock long enough for the other to wait
        return real(service, req)
    tiles.export = counting
    services = open_services(config, sync=False)
    store = DiskTileStore(config.server.cache_dir / "tiles")
    req = TileRequest(tile_set="WebMercatorQuad", level=Z, row=ROW0, col=COL0)
    start.wait()
    stored = tiles.get_tile(services["dem"], req, store)
    queue.put((len(made), stored.data))


@pytest.mark.slow          # two forked processes
def test_two_processes_rendering_one_tile_leave_one_intact_file(data_dir, tmp_path):
    config = fresh_config(data_dir, tmp_path)
    open_services(config, sync=True)
    context = multiprocessing.get_context("fork")
    start, queue = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_render_in_process, args=(config, start, queue)) for _ in range(2)]
    for w in workers:
        w.start()
    results = [queue.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    assert sorted(n for n, _ in results) == [0, 1]                  # one rendered, the other waited
    assert results[0][1] == results[1][1]
    files = [p for p in (tmp_path / "cache" / "tiles").rglob(f"{COL0}.png") if f"/{ROW0}/" in str(p)]
    assert len(files) == 1
    assert not list((tmp_path / "cache" / "tiles").rglob("*.tmp"))
    rgba = np.asarray(Image.open(files[0]).convert("RGBA"))
    grey, nodata, edge = dem_tile_truth(Z, ROW0, COL0)
    sure = ~edge & ~nodata
    assert np.array_equal(rgba[..., 0][sure], grey[sure])


def test_a_catalog_change_invalidates_the_service_tiles(data_dir, tmp_path, calls):
    own = tmp_path / "data"
    synth.make_dem(own / "dem")
    config = make_config(own, tmp_path / "cache")
    config = replace(config, services={"dem": config.services["dem"]})
    client = create_app(config).test_client()
    before = wmts_tile(client)
    assert len(calls) == 1
    # a source file changes; the next start-up's sync records a new catalog state
    stamp = int(time.time())
    while int(time.time()) == stamp:
        time.sleep(0.05)
    path = own / "dem" / "dem_r0_c0.tif"
    os.utime(path, ns=(time.time_ns(), time.time_ns()))
    restarted = create_app(config).test_client()
    after = wmts_tile(restarted)
    assert len(calls) == 2 and after.data == before.data
    assert after.headers["ETag"] != before.headers["ETag"]
    deadline = time.time() + 10                                    # the old generation goes away
    service_dir = tmp_path / "cache" / "tiles" / "dem"
    while len(list(service_dir.iterdir())) > 1 and time.time() < deadline:
        time.sleep(0.05)
    assert len(list(service_dir.iterdir())) == 1


def test_a_template_style_renders_apart_and_a_changed_template_invalidates(data_dir, tmp_path, calls):
    contrast = FunctionTemplate("Contrast", "Stretch", {"StretchType": 5, "Min": 0, "Max": 100})
    client = create_app(fresh_config(data_dir, tmp_path, raster_functions=(contrast,))).test_client()
    plain, styled = wmts_tile(client), wmts_tile(client, style="Contrast")
    assert plain.status_code == styled.status_code == 200 and plain.data != styled.data
    assert len(calls) == 2
    changed = replace(contrast, arguments={"StretchType": 5, "Min": 0, "Max": 50})
    client = create_app(fresh_config(data_dir, tmp_path, raster_functions=(changed,))).test_client()
    assert wmts_tile(client, style="Contrast").data != styled.data and len(calls) == 3


# --- the ImageServer tile resources ---------------------------------------------------------------------

def test_tile_info_is_the_web_mercator_quad(client):
    body = client.get("/arcgis/rest/services/dem/ImageServer", query_string={"f": "json"}).get_json()
    info = body["tileInfo"]
    # dem is in UTM 33N: the Web Mercator cache is not the service's own CRS, so not a fused map cache
    # (QGIS would draw it in the wrong place; test_qgis_client.py), yet its tileInfo is there for GDAL
    assert body["singleFusedMapCache"] is False and body["cacheType"] == "Map"
    assert (info["rows"], info["cols"], info["dpi"], info["format"]) == (256, 256, 96, "MIXED")
    assert info["spatialReference"] == {"wkid": 102100, "latestWkid": 3857}
    assert (info["origin"]["x"], info["origin"]["y"]) == pytest.approx((-WORLD, WORLD), rel=1e-15)
    assert [lod["level"] for lod in info["lods"]] == list(range(25))
    for lod in info["lods"]:
        resolution = 2 * WORLD / 256 / 2 ** lod["level"]
        assert lod["resolution"] == pytest.approx(resolution, rel=1e-12)
        assert lod["scale"] == pytest.approx(resolution * 96 * 39.37, rel=1e-12)
    assert info["lods"][0]["scale"] == pytest.approx(591657527.591555, rel=1e-9)    # Esri's own table
    assert (body["minLOD"], body["maxLOD"]) == (0, Z)


def test_tile_resource_pixels_status_and_headers(client):
    resp = client.get(DEM_TILE)
    assert resp.status_code == 200 and resp.content_type == "image/png"     # partly empty: PNG
    assert resp.headers["Cache-Control"].startswith("public, max-age=") and resp.headers["ETag"]
    rgba = np.asarray(Image.open(io.BytesIO(resp.data)).convert("RGBA"))
    grey, nodata, edge = dem_tile_truth(Z, ROW0, COL0)
    sure = ~edge
    assert np.array_equal(rgba[..., 3][sure] == 0, nodata[sure])
    assert np.array_equal(rgba[..., 0][sure & ~nodata], grey[sure & ~nodata])
    assert client.get(DEM_TILE, headers={"If-None-Match": resp.headers["ETag"]}).status_code == 304


def test_a_full_tile_is_jpeg_and_a_missing_one_is_404(client):
    # a mosaic tile inside scene 4 (its latest time, which tiles show by default) at level 18, 0.6 m
    r0, r1, c0, c1 = merc_range((500995.0, 5001195.0, 501005.0, 5001205.0), 18)
    full = client.get(f"/arcgis/rest/services/mosaic/ImageServer/tile/18/{r0}/{c0}")
    assert full.status_code == 200 and full.content_type == "image/jpeg"
    assert Image.open(io.BytesIO(full.data)).size == (256, 256)
    outside = client.get(f"/arcgis/rest/services/dem/ImageServer/tile/{Z}/0/0")
    assert outside.status_code == 404 and outside.get_json()["error"]["code"] == 404
    assert client.get("/arcgis/rest/services/dem/ImageServer/tile/30/0/0").status_code == 404
    # inside the scheme's limits but without data: 404, or a marked blank tile on request
    empty = merc_range((500000.0, 5000400.0, 500100.0, 5000500.0), 17)
    path = f"/arcgis/rest/services/mosaic/ImageServer/tile/17/{empty[1]}/{empty[2]}"
    assert client.get(path).status_code == 404
    blank = client.get(path, query_string={"blankTile": "true"})
    assert blank.status_code == 200 and blank.headers["blank-tile"] == "true"
    assert not np.asarray(Image.open(io.BytesIO(blank.data)).convert("RGBA"))[..., 3].any()


def test_tilemap_marks_the_tiles_with_data(client):
    resp = client.get(f"/arcgis/rest/services/dem/ImageServer/tilemap/{Z}/{ROW0 - 1}/{COL0 - 1}/4/4",
                      query_string={"f": "json"})
    body = resp.get_json()
    assert body["location"] == {"left": COL0 - 1, "top": ROW0 - 1, "width": 4, "height": 4}
    grid = np.array(body["data"]).reshape(4, 4)
    expected = np.zeros((4, 4), int)
    expected[1:3, 1:3] = 1                       # the DEM's 2 x 2 tiles
    assert np.array_equal(grid, expected)
    bad = client.get(f"/arcgis/rest/services/dem/ImageServer/tilemap/{Z}/0/0/999/1", query_string={"f": "json"})
    assert bad.get_json()["error"]["code"] == 400


def test_native_tile_scheme(data_dir, tmp_path):
    client = create_app(fresh_config(data_dir, tmp_path, tile_scheme="native")).test_client()
    body = client.get("/arcgis/rest/services/dem/ImageServer", query_string={"f": "json"}).get_json()
    info = body["tileInfo"]
    assert info["spatialReference"] == {"wkid": 32633, "latestWkid": 32633}
    assert (info["origin"]["x"], info["origin"]["y"]) == (500000.0, 5002000.0)
    assert [lod["resolution"] for lod in info["lods"]] == [10.0]        # 190 px fit one tile at 10 m
    resp = client.get("/arcgis/rest/services/dem/ImageServer/tile/0/0/0")
    rgba = np.asarray(Image.open(io.BytesIO(resp.data)).convert("RGBA"))
    assert rgba.shape == (256, 256, 4)
    assert not rgba[:, 190:, 3].any() and not rgba[190:, :, 3].any()     # the DEM ends at 190 px
    xs = 500000 + (np.arange(190) + 0.5) * 10
    ys = 5002000 - (np.arange(190) + 0.5) * 10
    values = synth.dem_value(*np.meshgrid(xs, ys))
    grey = np.clip(np.rint((values - 28.75) * 255 / (1446.25 - 28.75)), 0, 255)
    valid = rgba[:190, :190, 3] > 0
    assert valid.sum() == 190 * 190 - 100                                 # all but the 10 x 10 hole
    assert np.array_equal(rgba[:190, :190, 0][valid], grey[valid])


# --- seeding --------------------------------------------------------------------------------------------

def write_config(data_dir, tmp_path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(f"""
server:
  cache_dir: {tmp_path / 'cache'}
services:
  dem:
    sources: {data_dir / 'dem' / '*.tif'}
    default_resampling: nearest
  ts:
    sources: {data_dir / 'ts' / '*.tif'}
    catalog: {data_dir / 'ts' / 'times.csv'}
    time_field: date
    end_time_field: date_end
""")
    return path


def test_seed_command_progress_resume_and_clean(data_dir, tmp_path):
    config = write_config(data_dir, tmp_path)
    runner = CliRunner()
    first = runner.invoke(cli.cli, ["seed", "dem", "--config", str(config), "--levels", "10-14", "--workers", "2"])
    assert first.exit_code == 0, first.output
    total = sum((r1 - r0 + 1) * (c1 - c0 + 1) for r0, r1, c0, c1 in
                (merc_range((500000.0, 5000100.0, 501900.0, 5002000.0), z) for z in range(10, 15)))
    assert f"levels 10-14, style default, format png, 1 time(s): {total} tiles" in first.output
    assert f"{total}/{total}" in first.output and "tile/s" in first.output
    assert "0 already cached" in first.output
    second = runner.invoke(cli.cli, ["seed", "dem", "--config", str(config), "--levels", "10-14", "--workers", "1"])
    assert second.exit_code == 0 and f"0 rendered, {total} already cached" in second.output
    def level_dirs():
        return {p.name for p in (tmp_path / "cache" / "tiles" / "dem").glob("*/WebMercatorQuad/*/*/png/*")}
    assert level_dirs() == {str(z) for z in range(10, 15)}
    cleaned = runner.invoke(cli.cli, ["seed", "dem", "--config", str(config), "--clean", "--levels", "13-14"])
    assert cleaned.exit_code == 0 and "Removed 2" in cleaned.output
    assert level_dirs() == {"10", "11", "12"}


def test_seed_skips_blocks_without_data_and_takes_a_time_and_a_box(data_dir, tmp_path, calls):
    config = write_config(data_dir, tmp_path)
    runner = CliRunner()
    # the monthly series at two times, WorldCRS84Quad level 2, only the tiles meeting Europe
    result = runner.invoke(cli.cli, ["seed", "ts", "--config", str(config), "--tms", "WorldCRS84Quad",
                                     "--levels", "2", "--bbox", "-10,35,30,60", "--time",
                                     "2024-03-01T00:00:00Z,2024-04-01", "--format", "jpeg", "--workers", "1"])
    assert result.exit_code == 0, result.output
    # level 2: 0.17578125 deg a pixel, 45 deg a tile: Europe meets cols 3-4, row 0-1 (lat 90..0)
    assert "2 time(s): 8 tiles" in result.output
    jpgs = list((tmp_path / "cache" / "tiles" / "ts").rglob("*.jpg"))
    assert len(jpgs) == 8
    # the DEM at level 5 is one tile of the world; a box far away has nothing to seed
    empty = runner.invoke(cli.cli, ["seed", "dem", "--config", str(config), "--levels", "14",
                                    "--bbox", "100,-10,101,-9", "--workers", "1"])
    assert empty.exit_code == 0 and ": 0 tiles" in empty.output


@pytest.mark.parametrize("args,message", [
    (["nope"], "service: no service 'nope'"),
    (["dem", "--levels", "0-99"], "levels: '0-99': WebMercatorQuad has levels 0..24"),
    (["dem", "--levels", "a-b"], "levels: 'a-b' is not a level"),
    (["dem", "--tms", "NoSet"], "tms: dem is not tiled in 'NoSet'"),
    (["dem", "--style", "Fancy"], "style: dem has no style 'Fancy'"),
    (["dem", "--format", "gif"], "format: 'gif'"),
    (["dem", "--bbox", "1,2,3"], "bbox: '1,2,3' is not W,S,E,N"),
    (["ts", "--time", "1999-01-01"], "time: '1999-01-01' is not one of the service's times"),
    (["dem", "--clean"], "--clean needs --levels"),
])
def test_seed_errors_are_one_clean_line(data_dir, tmp_path, args, message):
    config = write_config(data_dir, tmp_path)
    result = CliRunner().invoke(cli.cli, ["seed", *args, "--config", str(config)])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


# --- configuration --------------------------------------------------------------------------------------

def test_tile_configuration_keys_are_validated(tmp_path, data_dir):
    raw = {"server": {"tile_metatile_size": 0, "tile_cache_max_age": "soon"},
           "services": {"dem": {"sources": str(data_dir / "dem" / "*.tif"),
                                "tile_matrix_sets": ["EuropeanETRS89_LAEAQuad", "webmercatorquad", "NoSuch",
                                                     "CDB1GlobalGrid"]}}}
    problems = config_problems(raw, tmp_path / "gateway.yaml")
    assert "gateway.yaml: server.tile_metatile_size: must be a whole number from 1 to 16, not 0" in problems
    assert "gateway.yaml: server.tile_cache_max_age: must be a whole number from 0 to 31536000, not 'soon'" in problems
    assert any("services.dem.tile_matrix_sets[2]: unknown tile matrix set 'NoSuch'" in p for p in problems)
    assert any("services.dem.tile_matrix_sets[3]: CDB1GlobalGrid has variable matrix widths" in p for p in problems)
    assert len(problems) == 4


def test_an_extra_tile_matrix_set_from_the_registry_is_offered(data_dir, tmp_path):
    client = create_app(fresh_config(data_dir, tmp_path, tile_matrix_sets=("EuropeanETRS89_LAEAQuad",))).test_client()
    caps = client.get("/arcgis/rest/services/dem/ImageServer/WMTS/1.0.0/WMTSCapabilities.xml").data.decode()
    assert "<TileMatrixSet>EuropeanETRS89_LAEAQuad</TileMatrixSet>" in caps
    # a northing/easting CRS: the corner is written northing first
    assert "<TopLeftCorner>5500000 2000000</TopLeftCorner>" in caps
    from ogc_schemas import validate
    validate(caps.encode())
