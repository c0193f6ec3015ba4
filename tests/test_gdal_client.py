"""GDAL as a user runs it: a WMS-driver XML file (AGS mini-driver) pointing at exportImage on a real
socket, opened with rasterio, compared with the analytic truth of tests/synth.py."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from synth import DEM_NODATA, dem_value, top_scene

pytestmark = pytest.mark.slow                    # GDAL against a server on a real socket

EXPORT_URL = "{live_url}/arcgis/rest/services/{service}/ImageServer/exportImage?"


def gdal_wms_xml(live_url: str, service: str, image_format: str, window: tuple[float, float, float, float],
                 size: tuple[int, int], bands: int, data_type: str) -> str:
    """The description file a GDAL user writes for an ArcGIS image service (no <Cache>: nothing on disk)."""
    west, north, east, south = window
    return f"""<GDAL_WMS>
  <Service name="AGS">
    <ServerUrl>{EXPORT_URL.format(live_url=live_url, service=service)}</ServerUrl>
    <BBoxOrder>xyXY</BBoxOrder>
    <SRS>EPSG:32633</SRS>
    <ImageFormat>{image_format}</ImageFormat>
    <Transparent>FALSE</Transparent>
  </Service>
  <DataWindow>
    <UpperLeftX>{west}</UpperLeftX>
    <UpperLeftY>{north}</UpperLeftY>
    <LowerRightX>{east}</LowerRightX>
    <LowerRightY>{south}</LowerRightY>
    <SizeX>{size[0]}</SizeX>
    <SizeY>{size[1]}</SizeY>
  </DataWindow>
  <BandsCount>{bands}</BandsCount>
  <DataType>{data_type}</DataType>
  <BlockSizeX>64</BlockSizeX>
  <BlockSizeY>64</BlockSizeY>
</GDAL_WMS>
"""


@pytest.fixture()
def gdal_env(tmp_path, monkeypatch):
    """GDAL/curl settings for a test: a private WMS cache folder (should a cache ever be enabled), no
    proxy for the local socket, and HTTP errors that fail instead of being retried for long."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with rasterio.Env(GDAL_DEFAULT_WMS_CACHE_PATH=str(tmp_path / "wmscache"), GDAL_HTTP_TIMEOUT="60",
                      GDAL_HTTP_MAX_RETRY="0"):
        yield tmp_path


def cell_centres(west, north, res, width, height):
    xs = west + (np.arange(width) + 0.5) * res
    ys = north - (np.arange(height) + 0.5) * res
    return np.meshgrid(xs, ys)


def test_gdal_ags_minidriver_reads_the_dem_as_float32_truth(live_url, gdal_env):
    xml = gdal_env / "dem.xml"
    xml.write_text(gdal_wms_xml(live_url, "dem", "tiff", (500000, 5002000, 501900, 5000100), (190, 190),
                                1, "Float32"))
    with rasterio.open(xml) as ds:
        assert ds.driver == "WMS"
        assert (ds.width, ds.height, ds.count) == (190, 190, 1)
        assert ds.dtypes == ("float32",)
        assert ds.crs.to_epsg() == 32633
        assert tuple(ds.transform)[:6] == pytest.approx((10.0, 0.0, 500000.0, 0.0, -10.0, 5002000.0))
        assert ds.bounds == pytest.approx((500000, 5000100, 501900, 5002000))
        assert ds.block_shapes == [(64, 64)]
        data = ds.read(1)

    xs, ys = cell_centres(500000, 5002000, 10.0, 190, 190)
    truth = dem_value(xs, ys)
    hole = (xs > 500100) & (xs < 500200) & (ys > 5001800) & (ys < 5001900)
    assert hole.sum() == 100
    assert data.dtype == np.float32
    # Every 64x64 block is a separate exportImage (the last row and column reach past the extent):
    # all of them land exactly on the source grid, so nearest resampling gives the plane bit for bit.
    assert np.array_equal(data[~hole], truth[~hole])
    assert np.all(data[hole] == DEM_NODATA)


def test_gdal_ags_minidriver_reads_a_window_of_the_dem(live_url, gdal_env):
    """A window that is not aligned with GDAL's blocks or the source tiles: reads go through block
    requests whose boxes straddle the tile seams (x 500900..501000, y 5001000..5001100)."""
    xml = gdal_env / "dem.xml"
    xml.write_text(gdal_wms_xml(live_url, "dem", "tiff", (500000, 5002000, 501900, 5000100), (190, 190),
                                1, "Float32"))
    with rasterio.open(xml) as ds:
        window = Window(col_off=70, row_off=75, width=50, height=40)
        data = ds.read(1, window=window)
    xs, ys = cell_centres(500000 + 70 * 10, 5002000 - 75 * 10, 10.0, 50, 40)
    assert np.array_equal(data, dem_value(xs, ys))


def test_gdal_ags_minidriver_decodes_png_pictures_of_the_mosaic(live_url, gdal_env, client):
    xml = gdal_env / "mosaic.xml"
    # The scenes cover x 500000..502000, y 5000400..5002000 at 20 m; 100 x 80 cells of 20 m.
    xml.write_text(gdal_wms_xml(live_url, "mosaic", "png", (500000, 5002000, 502000, 5000400), (100, 80),
                                3, "Byte"))
    with rasterio.open(xml) as ds:
        assert ds.driver == "WMS"
        assert (ds.width, ds.height, ds.count) == (100, 80, 3)
        assert ds.dtypes == ("uint8",) * 3
        assert ds.crs.to_epsg() == 32633
        assert tuple(ds.transform)[:6] == pytest.approx((20.0, 0.0, 500000.0, 0.0, -20.0, 5002000.0))
        data = ds.read()
    assert data.shape == (3, 80, 100)

    # A picture of the scenes, not a blank: each scene is one flat grey (band values differ between
    # bands only by a constant, so the default rendering of bands 2, 1, 0 gives R = G = B), and the
    # greys rise with the scene's values (1000 k + 10 (b + 1)).
    assert np.array_equal(data[0], data[1]) and np.array_equal(data[1], data[2])
    xs, ys = cell_centres(500000, 5002000, 20.0, 100, 80)
    top = top_scene(xs, ys)
    greys = []
    for k in (1, 2, 3, 4):
        levels = np.unique(data[0][top == k])
        assert len(levels) == 1, (k, levels)
        greys.append(int(levels[0]))
    assert greys == sorted(greys) and len(set(greys)) == 4 and greys[-1] > greys[0]

    # GDAL assembled four block requests; the one-request PNG of the same view, decoded by Pillow,
    # has the same colours (its alpha band, which BandsCount 3 drops, marks the uncovered corners).
    resp = client.get("/arcgis/rest/services/mosaic/ImageServer/exportImage",
                      query_string=dict(bbox="500000,5000400,502000,5002000", bboxSR=32633, imageSR=32633,
                                        size="100,80", format="png", f="image"))
    assert resp.content_type == "image/png"
    picture = np.asarray(Image.open(io.BytesIO(resp.data)).convert("RGBA"))
    assert np.array_equal(picture[..., :3].transpose(2, 0, 1), data)
    assert np.array_equal(picture[..., 3] == 0, top == 0)


def test_gdal_reports_a_server_error_instead_of_inventing_pixels(live_url, gdal_env):
    """An unknown service: the REST face answers a JSON error, which GDAL must not decode as an image."""
    xml = gdal_env / "nope.xml"
    xml.write_text(gdal_wms_xml(live_url, "nope", "tiff", (500000, 5002000, 501900, 5000100), (190, 190),
                                1, "Float32"))

    def read():
        with rasterio.open(xml) as ds:
            ds.read(1, window=Window(0, 0, 64, 64))

    # In a thread of its own: GDAL keeps the failed read's error in thread-local state, where a
    # later rasterio call on the test's main thread (the Flask test client) would trip over it.
    with ThreadPoolExecutor(1) as pool, pytest.raises(RasterioIOError):
        pool.submit(read).result()
