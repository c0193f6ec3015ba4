"""Bad source files are left out, not fatal (issue 15, item 8): a corrupt, empty, unrecognised or
unreprojectable file is skipped at start with one warning naming it; a file that goes bad while serving
is left out of the mosaic (logged), not a 500; a changed file is reopened."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.io import MemoryFile

from ogc_gateway.app import create_app
from ogc_gateway.config import load_config
from ogc_gateway.engine.service import open_services

GEOS = "+proj=geos +h=35786023 +lon_0=0 +sweep=y +ellps=WGS84 +units=m"
EXPORT = "/arcgis/rest/services/terrain/ImageServer/exportImage"
BBOX = "500000,4999840,500320,5000000"       # both good tiles, side by side


def write_tif(path, value, x0=500000, crs="EPSG:32633", transform=None, size=16):
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=1, dtype="uint8", nodata=0,
                       crs=crs, transform=transform or Affine(10, 0, x0, 0, -10, 5000000)) as dst:
        dst.write(np.full((1, size, size), value, dtype="uint8"))


@pytest.fixture
def folder(tmp_path):
    terrain = tmp_path / "terrain"
    terrain.mkdir()
    write_tif(terrain / "a.tif", 10)
    write_tif(terrain / "b.tif", 20, x0=500160)
    (tmp_path / "gateway.yaml").write_text("services:\n  terrain:\n    sources: terrain/*.tif\n")
    return tmp_path


def add_bad_files(terrain):
    (terrain / "empty.tif").write_bytes(b"")
    (terrain / "corrupt.tif").write_bytes(b"II*\x00" + bytes(range(256)) * 4)
    (terrain / "notes.tif").write_text("not a raster\n")
    # a full-disk geostationary scene: its corners are off the Earth, its footprint does not reproject
    write_tif(terrain / "geos.tif", 5, crs=GEOS, size=32,
              transform=Affine(5.4e5, 0, -8.8e6, 0, -5.4e5, 8.8e6))
    return ["empty.tif", "corrupt.tif", "notes.tif", "geos.tif"]


def values(client, **extra) -> np.ndarray:
    resp = client.get(EXPORT, query_string={"bbox": BBOX, "size": "32,16", "format": "tiff", "f": "image", **extra})
    assert resp.status_code == 200 and resp.content_type == "image/tiff", resp.data[:300]
    with MemoryFile(resp.data) as mem, mem.open() as ds:
        return ds.read(1)


def test_bad_files_are_skipped_with_one_warning_each(folder, caplog):
    bad = add_bad_files(folder / "terrain")
    bad.remove("geos.tif")      # a full disk beside UTM files is served from its outline on the Earth (issue 14)
    config = load_config(folder / "gateway.yaml")
    with caplog.at_level(logging.WARNING):
        services = open_services(config, sync=True)
    assert services["terrain"].info.item_count == 3
    for name in bad:
        named = [r for r in caplog.records if name in r.getMessage() and "skipped" in r.getMessage()]
        assert len(named) == 1, (name, [r.getMessage() for r in caplog.records])
    # the good tiles alone (the disk, served too, lies over them in north-west order)
    lock = '{"mosaicMethod": "esriMosaicLockRaster", "lockRasterIds": ["a", "b"]}'
    got = values(create_app(config, sync=False).test_client(), mosaicRule=lock)
    assert (got[:, :16] == 10).all() and (got[:, 16:] == 20).all()


def test_only_bad_files_is_still_a_config_error_naming_them(tmp_path):
    terrain = tmp_path / "terrain"
    terrain.mkdir()
    add_bad_files(terrain)
    (terrain / "geos.tif").unlink()          # alone, a geostationary scene is a fine service
    (tmp_path / "gateway.yaml").write_text("services:\n  terrain:\n    sources: terrain/*.tif\n")
    from ogc_gateway.engine.errors import ConfigError
    with pytest.raises(ConfigError) as err:
        open_services(load_config(tmp_path / "gateway.yaml"), sync=True)
    assert any("corrupt.tif" in p for p in err.value.problems)


def test_a_file_that_goes_bad_is_left_out_and_a_changed_file_reopened(folder, caplog):
    config = load_config(folder / "gateway.yaml")
    client = create_app(config).test_client()
    got = values(client)
    assert (got[:, :16] == 10).all() and (got[:, 16:] == 20).all()
    # b.tif is rewritten with other values: the open handle is stale, the new values are served
    write_tif(folder / "terrain" / "b.tif", 30, x0=500160)
    got = values(client)
    assert (got[:, 16:] == 30).all()
    # b.tif is truncated: left out (no data there), a.tif still served, the log names b.tif
    (folder / "terrain" / "b.tif").write_bytes(b"II*\x00garbage")
    with caplog.at_level(logging.WARNING):
        got = values(client)
        got_again = values(client)
    assert (got[:, :16] == 10).all() and (got[:, 16:] == 0).all()
    assert (got_again == got).all()
    named = [r for r in caplog.records if "b.tif" in r.getMessage()]
    assert len(named) == 1                     # once, not once per request
    resp = client.get("/arcgis/rest/services/terrain/ImageServer/identify",
                      query_string={"geometry": '{"x":500200,"y":4999900}', "geometryType": "esriGeometryPoint",
                                    "f": "json"})
    assert resp.status_code == 200 and "error" not in resp.get_json(), resp.data[:300]
