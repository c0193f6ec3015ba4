"""The engine's fast paths against independent truth: numpy resampling (engine/warp.py) through the
reader, the direct GeoTIFF writer (engine/tiff.py) read back by GDAL, and the PNG writer
(engine/png.py) decoded by Pillow."""

from __future__ import annotations

import io

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.io import MemoryFile

from ogc_gateway.engine import read as reader
from ogc_gateway.engine import tiff
from ogc_gateway.engine.encode import _png, encode
from ogc_gateway.engine.requests import Grid, Raster

UTM = CRS.from_epsg(32633)
MERCATOR = CRS.from_epsg(3857)
ORIGIN = (500_000.0, 5_010_000.0)          # upper-left corner, 10 m cells, 300 x 300
RES = 10.0


def plane(x, y):
    """The raster's values: a plane, so bilinear resampling at any position is exact."""
    return 100.0 + 0.5 * (x - ORIGIN[0]) / RES + 0.25 * (ORIGIN[1] - y) / RES


@pytest.fixture(scope="module")
def dem(tmp_path_factory):
    path = tmp_path_factory.mktemp("fast") / "plane.tif"
    cols = ORIGIN[0] + (np.arange(300) + 0.5) * RES
    rows = ORIGIN[1] - (np.arange(300) + 0.5) * RES
    values = plane(cols[np.newaxis, :], rows[:, np.newaxis]).astype(np.float32)
    with rasterio.open(path, "w", driver="GTiff", width=300, height=300, count=1, dtype="float32",
                       crs=UTM, transform=Affine(RES, 0, ORIGIN[0], 0, -RES, ORIGIN[1]), nodata=-9999.0,
                       tiled=True, blockxsize=256, blockysize=256) as dst:
        dst.write(values[np.newaxis])
    return str(path)


@pytest.fixture(autouse=True)
def numpy_only(monkeypatch):
    """These cases are the numpy resampler's: GDAL's warper must not be asked."""
    def refuse(*args, **kwargs):
        raise AssertionError("GDAL's warper was used")
    monkeypatch.setattr(reader, "_gdal_warp", refuse)


def read_grid(path, grid, resampling):
    p = reader.plan(path, grid, resampling)
    data, _ = reader.read(p, grid, resampling)
    out = np.ma.masked_all((grid.height, grid.width), data.dtype)
    out[p.rows, p.cols] = data[0]
    return out


def centres(grid):
    x0, y0, x1, y1 = grid.bounds
    xs = x0 + (np.arange(grid.width) + 0.5) * (x1 - x0) / grid.width
    ys = y1 - (np.arange(grid.height) + 0.5) * (y1 - y0) / grid.height
    return np.meshgrid(xs, ys)


@pytest.mark.parametrize("size", [(1, 1), (1, 5), (7, 3), (256, 256)])
def test_web_mercator_bilinear_is_the_plane(dem, size):
    """Across CRSs (the lattice of positions, then 2-D taps): each cell holds the plane's value at
    its centre taken to UTM by pyproj, within float32 rounding."""
    to_merc = Transformer.from_crs(UTM, MERCATOR, always_xy=True)
    (x0, x1), (y0, y1) = to_merc.transform([500_400, 502_400], [5_007_600, 5_009_600])
    grid = Grid(MERCATOR, (x0, y0, x1, y1), *size)
    values = read_grid(dem, grid, "bilinear")
    mx, my = centres(grid)
    ux, uy = Transformer.from_crs(MERCATOR, UTM, always_xy=True).transform(mx, my)
    assert not np.ma.getmaskarray(values).any()
    assert np.abs(values.data - plane(ux, uy)).max() < 2e-3


def test_same_crs_bilinear_is_the_plane_and_aligned_grids_are_exact(dem):
    grid = Grid(UTM, (500_123.0, 5_007_345.0, 502_123.0, 5_009_345.0), 173, 173)     # 11.56 m cells
    xs, ys = centres(grid)
    assert np.abs(read_grid(dem, grid, "bilinear").data - plane(xs, ys)).max() < 1e-3
    aligned = Grid(UTM, (500_500.0, 5_008_000.0, 501_500.0, 5_009_000.0), 100, 100)
    xs, ys = centres(aligned)
    for resampling in ("nearest", "bilinear", "cubic"):
        assert np.array_equal(read_grid(dem, aligned, resampling).data, plane(xs, ys).astype(np.float32))


def test_nearest_across_crs_takes_the_pixel_holding_each_centre(dem):
    to_merc = Transformer.from_crs(UTM, MERCATOR, always_xy=True)
    (x0, x1), (y0, y1) = to_merc.transform([500_300, 502_700], [5_007_300, 5_009_700])
    grid = Grid(MERCATOR, (x0, y0, x1, y1), 200, 200)
    values = read_grid(dem, grid, "nearest").data
    ux, uy = Transformer.from_crs(MERCATOR, UTM, always_xy=True).transform(*centres(grid))
    col, row = (ux - ORIGIN[0]) / RES, (ORIGIN[1] - uy) / RES
    sure = (np.abs(col - np.round(col)) > 0.05) & (np.abs(row - np.round(row)) > 0.05)
    truth = plane(ORIGIN[0] + (np.floor(col) + 0.5) * RES, ORIGIN[1] - (np.floor(row) + 0.5) * RES)
    assert sure.sum() > 0.5 * sure.size
    assert np.abs(values - truth)[sure].max() < 1e-3


def test_edges_of_the_raster_lose_support(dem):
    """Cells whose kernel reaches past the raster's edge are partial, cells outside it masked."""
    # 10 m cells straddling the west edge: column 5's centre is 3 m inside the raster, 2 m short of
    # its first pixel centre, so bilinear gives 0.3 of the weight to a pixel beyond the edge
    grid = Grid(UTM, (499_947.0, 5_007_000.0, 500_147.0, 5_010_050.0), 20, 305)
    values = read_grid(dem, grid, "bilinear")
    p = reader.plan(dem, grid, "bilinear")
    data, full = reader.read(p, grid, "bilinear")
    assert np.ma.getmaskarray(values)[:, :5].all()                  # west of the raster
    column = 5 - p.cols.start
    assert not np.ma.getmaskarray(data)[0][10:, column].any() and not full[10:, column].any()
    assert full[10:, column + 1:].all()
    xs, ys = centres(grid)
    inside = ~np.ma.getmaskarray(values)
    assert np.abs(values.data - plane(np.maximum(xs, 500_005.0), ys))[inside].max() < 1e-3


def test_direct_geotiff_reads_back_as_gdal_writes_it():
    grid = Grid(UTM, (500_000.0, 5_000_000.0, 505_120.0, 5_005_120.0), 512, 512)
    values = np.arange(512 * 512, dtype=np.float32).reshape(1, 512, 512)
    mask = np.zeros(values.shape, bool)
    mask[0, :3, :7] = True
    raster = Raster(np.ma.MaskedArray(values, mask), grid, ("Elevation",), "F32", -9999.0)
    data = encode(raster, "tiff").data
    assert data == tiff.geotiff(raster.data.filled(-9999.0), UTM, grid.transform, -9999.0, "Elevation",
                                tiled=True)
    with MemoryFile(data) as mem, mem.open() as ds:
        assert ds.crs.to_epsg() == 32633 and ds.transform == grid.transform
        assert ds.nodata == -9999.0 and ds.descriptions == ("Elevation",)
        assert ds.block_shapes == [(256, 256)] and ds.dtypes == ("float32",)
        read = ds.read(1, masked=True)
        assert np.array_equal(read.mask, mask[0]) and np.array_equal(read.data[~mask[0]], values[0][~mask[0]])


@pytest.mark.parametrize("shape,mode", [((40, 30), "L"), ((40, 30, 2), "LA"), ((40, 30, 3), "RGB"),
                                        ((40, 30, 4), "RGBA"), ((1, 1, 4), "RGBA")])
def test_png_decodes_to_its_pixels(shape, mode):
    pixels = np.random.default_rng(7).integers(0, 256, shape, dtype=np.uint8)
    image = Image.open(io.BytesIO(_png(pixels)))
    assert image.mode == mode and np.array_equal(np.asarray(image), pixels)


def test_outline_box_is_the_transformed_outline():
    """warp.outline_box (the read window's box from the grid's lattice) against the outline of the
    cells transformed point by point by pyproj, every cell edge, for sub-grids of Web Mercator
    grids over UTM: within the tolerance asked (a quarter of a 10 m pixel)."""
    from ogc_gateway.engine import warp

    to_utm = Transformer.from_crs(MERCATOR, UTM, always_xy=True)
    rng = np.random.default_rng(13)
    for _ in range(40):
        x, y = rng.uniform(1.60e6, 1.75e6), rng.uniform(5.6e6, 5.8e6)
        side = 10 ** rng.uniform(3, 4.5)
        width, height = (int(v) for v in rng.choice([64, 256, 300], 2))
        grid = Grid(MERCATOR, (x, y, x + side, y + side * height / width), width, height)
        r0, c0 = int(rng.integers(height)), int(rng.integers(width))
        r1, c1 = int(rng.integers(r0 + 1, height + 1)), int(rng.integers(c0 + 1, width + 1))
        box = warp.outline_box(grid, UTM, slice(r0, r1), slice(c0, c1), RES / 4)
        assert box is not None
        t = grid.transform
        cols, rows = np.arange(c0, c1 + 1), np.arange(r0, r1 + 1)
        edge_c = np.concatenate([cols, cols, np.full(len(rows), c0), np.full(len(rows), c1)])
        edge_r = np.concatenate([np.full(len(cols), r0), np.full(len(cols), r1), rows, rows])
        ux, uy = to_utm.transform(*(t * (edge_c, edge_r)))
        truth = (ux.min(), uy.min(), ux.max(), uy.max())
        np.testing.assert_allclose(box, truth, rtol=0, atol=RES / 4)
