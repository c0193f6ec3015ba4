"""The demo data set: four realistic services from a fixed seed, and a config the loader accepts."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import rasterio

from ogc_gateway.config import load_config
from ogc_gateway.demo import generate


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    return folder, generate(folder)


def test_config_is_valid(demo):
    folder, config_path = demo
    assert config_path == folder / "gateway.yaml"
    config = load_config(config_path)
    assert list(config.services) == ["elevation", "multispectral", "monthly", "ocean"]
    assert config.services["ocean"].multidimensional
    assert config.services["multispectral"].default_band_ids == (2, 1, 0)
    assert config.services["monthly"].end_time_field == "date_end"
    assert config.services["elevation"].raster_functions[0].function == "Stretch"


def test_dem_tiles_have_a_void(demo):
    folder, _ = demo
    tiles = sorted((folder / "elevation").glob("*.tif"))
    assert len(tiles) == 4
    holes = 0
    for tile in tiles:
        with rasterio.open(tile) as src:
            assert src.crs.to_epsg() == 32633 and src.dtypes[0] == "float32"
            assert src.nodata == -9999 and src.res == (30, 30) and src.shape == (512, 512)
            assert src.overviews(1) == [2, 4, 8]
            data = src.read(1, masked=True)
            holes += int(data.mask.any())
            assert 150 < data.min() and data.max() < 2600
    assert holes == 1


def test_multispectral_mosaic(demo):
    folder, _ = demo
    scenes = sorted((folder / "multispectral").glob("*.tif"))
    assert len(scenes) == 6
    epsg, dates = [], []
    for scene in scenes:
        with rasterio.open(scene) as src:
            assert src.count == 4 and set(src.dtypes) == {"uint16"} and src.nodata == 0
            assert src.descriptions == ("Blue", "Green", "Red", "NearInfrared")
            epsg.append(src.crs.to_epsg())
            dates.append(src.tags()["ACQUISITION_DATE"])
    assert sorted(epsg) == [32632] + [32633] * 5
    assert all(d.startswith("2024-") for d in dates) and len(set(dates)) == 6
    with open(folder / "multispectral" / "catalog.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["path"] for r in rows} == {s.name for s in scenes}
    assert set(rows[0]) == {"path", "acquired", "cloud_cover", "sensor"}


def test_vegetation_is_bright_in_near_infrared(demo):
    folder, _ = demo
    with rasterio.open(sorted((folder / "multispectral").glob("*.tif"))[0]) as src:
        red, nir = src.read(3).astype(float), src.read(4).astype(float)
    ndvi = (nir - red) / np.maximum(nir + red, 1)
    assert ndvi.max() > 0.6 and ndvi.min() < 0       # vegetation and water both present


def test_monthly_series(demo):
    folder, _ = demo
    files = sorted((folder / "monthly").glob("*.tif"))
    assert len(files) == 12
    with open(folder / "monthly" / "times.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["date"] for r in rows] == [f"2024-{m:02d}-01" for m in range(1, 13)]
    assert rows[1]["date_end"] == "2024-02-29"
    with rasterio.open(files[0]) as jan, rasterio.open(files[6]) as jul:
        assert jan.crs.to_epsg() == 4326 and jan.shape == (180, 360)
        north = jan.index(10, 60)
        south = jan.index(10, -40)
        january, july = jan.read(1), jul.read(1)
    # Opposite seasons in the two hemispheres.
    assert july[north] > january[north] and july[south] < january[south]


def test_ocean_cube_is_netcdf_by_month_and_depth(demo):
    folder, _ = demo
    with rasterio.open(folder / "ocean" / "temperature.nc") as cube:
        assert cube.driver == "netCDF" and cube.count == 12 * 4 and cube.crs.to_epsg() == 4326
        tags = [cube.tags(b) for b in range(1, cube.count + 1)]
        assert {t["NETCDF_DIM_depth"] for t in tags} == {"0", "50", "200", "1000"}
        assert tags[4]["NETCDF_DIM_time"] == "31" and tags[4]["NETCDF_DIM_depth"] == "0"   # February, surface
        tropics = cube.index(-150, 1)
        surface, deep = cube.read(1)[tropics], cube.read(4)[tropics]          # January at 0 and 1000 m
        land = np.isnan(cube.read(1)).mean()
    assert surface > 25 and 1.5 < deep < 3 and 0.05 < land < 0.3


def test_existing_files_are_kept_unless_forced(demo, tmp_path):
    folder = tmp_path / "d"
    config_path = generate(folder)
    config_path.write_text(config_path.read_text() + "# edited\n")
    generate(folder)
    assert config_path.read_text().endswith("# edited\n")
    generate(folder, force=True)
    assert not config_path.read_text().endswith("# edited\n")


def test_every_demo_template_renders_and_describes_itself(demo, tmp_path):
    """The templates the demo offers (YAML, a chain file, an RFT file) load and draw pictures."""
    import io
    import json

    from PIL import Image

    from ogc_gateway.app import create_app

    _, config_path = demo
    config = load_config(config_path)
    client = create_app(config).test_client()
    for name, service in config.services.items():
        for template in service.raster_functions:
            rule = json.dumps({"rasterFunction": template.name})
            resp = client.get(f"/arcgis/rest/services/{name}/ImageServer/exportImage",
                              query_string={"f": "image", "format": "png", "size": "64,64", "renderingRule": rule})
            assert resp.content_type == "image/png", (template.name, resp.data[:300])
            picture = np.asarray(Image.open(io.BytesIO(resp.data)).convert("RGBA"))
            assert len(np.unique(picture[..., :3].reshape(-1, 3), axis=0)) > 2, template.name
            root = client.get(f"/arcgis/rest/services/{name}/ImageServer",
                              query_string={"f": "json", "renderingRule": rule}).get_json()
            assert len(root["minValues"]) == root["bandCount"] > 0, template.name
    assert [t.name for t in config.services["multispectral"].raster_functions] == \
        ["NDVI", "NDVI colorized", "False colour"]
