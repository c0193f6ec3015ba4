"""engine/nodata.py's validity against GDAL's own nodata mask (rasterio's read_masks) on values
at and around the nodata value, for each pixel type the comparison covers."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.io import MemoryFile

from ogc_gateway.engine.nodata import nodata_validity

F32 = np.float32(-9999)
CASES = [
    ("float32", -9999.0, [F32, np.nextafter(F32, np.float32(-np.inf)), np.nextafter(F32, np.float32(0)),
                          F32 - np.float32(0.001), F32 + np.float32(0.002), F32 + np.float32(0.01),
                          0, np.nan, np.inf, -np.inf, 3.5]),
    ("float32", float("nan"), [1, np.nan, 0, np.inf, -9999]),
    ("float32", 0.0, [0, 1e-30, -1e-30, 1e-45, 1, np.nan]),
    ("float32", float("inf"), [np.inf, -np.inf, 1, np.nan]),
    ("float64", -9999.0, [-9999, -9999.0000000001, -9999.000001, -9999.002, -9998.9, np.nan, 3]),
    ("float64", 0.0, [0, 1e-11, -1e-11, 2e-10, np.nan]),
    ("float64", 1e-300, [1e-300, 0, 1.0000000000000002e-300, 2e-300]),
    ("uint8", 0, [0, 1, 255]),
    ("int16", -5.5, [-5, -6, 0]),
    ("uint16", 65535, [65535, 0, 1]),
    ("int32", -2147483648, [-2147483648, 0, 2147483647]),
]


def gdal_and_ours(dtype, nodata, values):
    data = np.array(values, dtype=dtype).reshape(1, 1, -1)
    with MemoryFile() as memfile:
        with memfile.open(driver="GTiff", width=data.shape[2], height=1, count=1, dtype=dtype, nodata=nodata,
                          transform=Affine(1, 0, 0, 0, -1, 1)) as ds:
            ds.write(data)
        with memfile.open() as ds:
            return ds.read_masks(1) > 0, nodata_validity(ds, [1], ds.read([1]))


@pytest.mark.parametrize(("dtype", "nodata", "values"), CASES)
def test_nodata_validity_is_gdals_mask(dtype, nodata, values):
    truth, ours = gdal_and_ours(dtype, nodata, values)
    assert ours is not None
    assert ours.shape == (1,) + truth.shape
    np.testing.assert_array_equal(ours[0], truth)


def test_other_masks_are_left_to_gdal(tmp_path):
    """An alpha band or an internal mask is not a nodata value: no answer, the reader asks GDAL."""
    path = tmp_path / "alpha.tif"
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=2, dtype="uint8",
                       photometric="minisblack", extrasamples=[2], transform=Affine(1, 0, 0, 0, -1, 4)) as ds:
        ds.write(np.full((2, 4, 4), 255, np.uint8))
    with rasterio.open(path) as ds:
        assert nodata_validity(ds, [1], ds.read([1])) is None
    with MemoryFile() as memfile:
        with memfile.open(driver="GTiff", width=4, height=4, count=1, dtype="uint8",
                          transform=Affine(1, 0, 0, 0, -1, 4)) as ds:
            ds.write(np.ones((1, 4, 4), np.uint8))
            ds.write_mask(np.eye(4, dtype=bool))
        with memfile.open() as ds:
            assert nodata_validity(ds, [1], ds.read([1])) is None


def test_per_band_nodata(tmp_path):
    """Per-band nodata gives one layer per band, as GDAL's per-band masks."""
    data = np.array([[[0, 5, 7]], [[5, 0, 7]], [[5, 5, 0]]], np.uint16)
    with MemoryFile() as memfile:
        with memfile.open(driver="GTiff", width=3, height=1, count=3, dtype="uint16", nodata=0,
                          transform=Affine(1, 0, 0, 0, -1, 1)) as ds:
            ds.write(data)
        with memfile.open() as ds:
            np.testing.assert_array_equal(nodata_validity(ds, [1, 2, 3], ds.read()), ds.read_masks() > 0)


def test_nodata_at_the_limit_of_float32():
    """A nodata of float32's largest value (a common choice) masks it and nothing else, quietly."""
    import warnings

    top = float(np.finfo(np.float32).max)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        truth, ours = gdal_and_ours("float32", top, [top, -top, 0, np.inf, np.nan, top * 0.9999999])
    np.testing.assert_array_equal(ours[0], truth)
