"""Make Image Server Layer: a `.xml` layer GDAL opens like a file (rasterio here, and Debian's
gdal_translate), and a `.tif` cloud-optimised GeoTIFF, each equal to the truth from the source
files, with bands, a lock raster, a where clause and a processing template."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from dataclasses import replace

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.warp import transform_bounds

from client_fixtures import client_config, warped_truth
from conftest import serving
from ogc_gateway.app import create_app
from ogc_gateway.cli import cli
from ogc_gateway.client import make_image_server_layer
from ogc_gateway.client.layer import LayerError

logging.getLogger("werkzeug").setLevel(logging.ERROR)
BOX = (500000.0, 5000400.0, 502000.0, 5002000.0)


@pytest.fixture(scope="module")
def mosaic_url(config, tmp_path_factory):
    cfg = client_config(config)
    cfg = replace(cfg, server=replace(cfg.server, cache_dir=tmp_path_factory.mktemp("layer-cache")))
    with serving(create_app(cfg)) as url:
        yield f"{url}/arcgis/rest/services/mosaic/ImageServer"


@pytest.fixture()
def gdal_env(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with rasterio.Env(GDAL_HTTP_TIMEOUT="60", GDAL_HTTP_MAX_RETRY="0"):
        yield


def read(path):
    with rasterio.open(path) as ds:
        return ds.read(), ds.profile, ds.tags(ns="IMAGE_STRUCTURE")


def locked_truth(data_dir, profile, bands):
    return warped_truth([data_dir / "mosaic" / "scene_2.tif"], profile["crs"], profile["transform"],
                        profile["width"], profile["height"], band_indexes=bands)


def test_xml_layer_with_bands_and_a_lock_raster_reads_the_truth(mosaic_url, data_dir, tmp_path, gdal_env):
    out = make_image_server_layer(mosaic_url, tmp_path / "locked.xml", bands="3;1", mosaic_method="LOCK_RASTER",
                                  lock_rasterid="2", cell_size=20)
    text = out.read_text()
    assert text.startswith("<GDAL_WMS>") and '<Service name="AGS">' in text and "exportImage?" in text
    data, profile, _ = read(out)
    assert profile["driver"] == "WMS" and profile["dtype"] == "uint16" and profile["nodata"] == 0
    assert (profile["width"], profile["height"], profile["count"]) == (100, 80, 2)
    assert profile["crs"].to_epsg() == 32633 and profile["transform"].a == 20
    truth, filled = locked_truth(data_dir, profile, [3, 1])
    assert filled.sum() == 60 * 60 and np.array_equal(data, truth)

    tif = make_image_server_layer(mosaic_url, tmp_path / "locked.tif", bands="3;1", lock_rasterid="2",
                                  cell_size=20, progress=False)
    values, cog, structure = read(tif)
    assert structure.get("LAYOUT") == "COG" and cog["driver"] == "GTiff" and cog["nodata"] == 0
    assert cog["transform"] == profile["transform"] and np.array_equal(values, truth)


def test_where_clause_and_processing_template(mosaic_url, data_dir, tmp_path, gdal_env):
    """S2A scenes (1 and 3), newest first, through the Sum12 template (B1 + B2)."""
    out = make_image_server_layer(mosaic_url, tmp_path / "sum.xml", where_clause="sensor = 'S2A'",
                                  processing_template="Sum12", cell_size=20)
    data, profile, _ = read(out)
    assert profile["dtype"] == "float32" and profile["count"] == 1
    paths = [data_dir / "mosaic" / f"scene_{k}.tif" for k in (3, 1)]
    truth, filled = warped_truth(paths, profile["crs"], profile["transform"], profile["width"], profile["height"])
    expected = truth[0].astype("float32") + truth[1].astype("float32")
    assert np.array_equal(data[0][filled], expected[filled])
    assert set(np.unique(expected[filled])) == {2030.0, 6030.0}
    assert np.all(data[0][~filled] == profile["nodata"])

    tif = make_image_server_layer(mosaic_url, tmp_path / "sum.tif", where_clause="sensor = 'S2A'",
                                  processing_template="Sum12", cell_size=20, progress=False)
    values, cog, _ = read(tif)
    assert np.array_equal(values, data) and cog["nodata"] == profile["nodata"]


@pytest.mark.skipif(shutil.which("gdal_translate") is None, reason="gdal-bin is not installed")
def test_gdal_command_line_opens_the_layer(mosaic_url, data_dir, tmp_path):
    """Debian's GDAL (gdal_translate, another build than rasterio's) reads the layer like a file."""
    layer = make_image_server_layer(mosaic_url, tmp_path / "l.vrt", bands="3;1", lock_rasterid="2", cell_size=20)
    env = {"NO_PROXY": "127.0.0.1,localhost", "PATH": "/usr/bin:/bin", "GDAL_HTTP_TIMEOUT": "60"}
    subprocess.run(["gdal_translate", "-q", str(layer), str(tmp_path / "copy.tif")], check=True, env=env,
                   timeout=120)
    data, profile, _ = read(tmp_path / "copy.tif")
    truth, _ = locked_truth(data_dir, profile, [3, 1])
    assert np.array_equal(data, truth)


def test_cli_make_layer_writes_a_cog_with_the_extent_of_a_vector_file(mosaic_url, data_dir, tmp_path):
    west, south, east, north = transform_bounds("EPSG:32633", "EPSG:4326", 500400, 5000800, 501200, 5001600)
    (tmp_path / "aoi.geojson").write_text(json.dumps({
        "type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"id": 1}, "geometry": {
            "type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north],
                                                [west, south]]]}}]}))
    result = CliRunner().invoke(cli, ["make-layer", mosaic_url, str(tmp_path / "aoi.tif"), "--extent-of",
                                      str(tmp_path / "aoi.geojson"), "--bands", "2", "--mosaic-method", "LOCK_RASTER",
                                      "--lock-rasterid", "2", "--cell-size", "20", "--quiet"])
    assert result.exit_code == 0, result.output
    data, profile, structure = read(tmp_path / "aoi.tif")
    assert structure.get("LAYOUT") == "COG" and profile["count"] == 1
    b = rasterio.transform.array_bounds(profile["height"], profile["width"], profile["transform"])
    expected = transform_bounds("EPSG:4326", "EPSG:32633", west, south, east, north, densify_pts=21)
    assert b[0] == pytest.approx(expected[0]) and b[3] == pytest.approx(expected[3])
    truth, _ = locked_truth(data_dir, profile, [2])
    assert np.array_equal(data, truth)


def test_cli_extent_and_a_raster_file_extent(mosaic_url, tmp_path):
    with rasterio.open(tmp_path / "ref.tif", "w", driver="GTiff", width=10, height=10, count=1, dtype="uint8",
                       crs="EPSG:32633", transform=rasterio.transform.from_origin(500200, 5001800, 40, 40)) as ds:
        ds.write(np.zeros((1, 10, 10), "uint8"))
    out = make_image_server_layer(mosaic_url, tmp_path / "r.xml", extent_of=tmp_path / "ref.tif", cell_size=20)
    with rasterio.open(out) as ds:
        assert tuple(ds.bounds) == pytest.approx((500200, 5001400, 500600, 5001800)) and ds.count == 4
    result = CliRunner().invoke(cli, ["make-layer", mosaic_url, str(tmp_path / "e.xml"), "--extent",
                                      "500000,5001000,500400,5001400"])
    assert result.exit_code == 0, result.output
    with rasterio.open(tmp_path / "e.xml") as ds:
        assert tuple(ds.bounds)[0] == 500000 and tuple(ds.bounds)[3] == 5001400


@pytest.mark.parametrize("kwargs, message", [
    (dict(bands="1;9"), "bands"),
    (dict(processing_template="Nope"), "Sum12"),
    (dict(mosaic_method="LOCK_RASTER"), "lock raster ids"),
    (dict(mosaic_method="BY_ATTRIBUTE", lock_rasterid="2"), "LOCK_RASTER"),
    (dict(mosaic_method="SIDEWAYS"), "mosaic method"),
    (dict(order_field="nope"), "order field"),
    (dict(extent="1,2,3"), "XMIN,YMIN,XMAX,YMAX"),
])
def test_bad_options_are_clear_errors(mosaic_url, tmp_path, kwargs, message):
    with pytest.raises(LayerError, match=message):
        make_image_server_layer(mosaic_url, tmp_path / "x.xml", **kwargs)
    assert not (tmp_path / "x.xml").exists()


def test_cli_errors_are_one_line(mosaic_url, tmp_path):
    result = CliRunner().invoke(cli, ["make-layer", mosaic_url, str(tmp_path / "x.png")])
    assert result.exit_code == 1 and "must end in .xml" in result.output
