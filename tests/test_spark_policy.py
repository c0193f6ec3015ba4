"""The Spark writer's rules as pure functions (no Spark session): the promotion policy of the
reference document, rows without a spatial reference skipped and counted, the raster struct's
encoding, and the driver-side commit (its log line and its refusal of an empty frame)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import rasterio
from affine import Affine

from conftest import serving
from ogc_gateway.spark.promotion import ReferencedRasters, check_uniform, promote, promoted_type
from ogc_gateway.spark.raster import has_spatial_reference, raster_value, to_dataset, to_numpy
from publishing_double import publishing_double

WKT = rasterio.crs.CRS.from_epsg(32633).to_wkt()


@pytest.mark.parametrize("dtype, pixel_type, new_dtype, new_type, nodata", [
    ("uint8", "U8", "uint16", "U16", 0), ("int8", "S8", "int16", "S16", -128),
    ("uint16", "U16", "uint32", "U32", 0), ("int16", "S16", "int32", "S32", -32768),
    ("uint32", "U32", "float64", "F64", 7), ("int32", "S32", "float64", "F64", -1),
    ("float32", "F32", "float64", "F64", -9999.0), ("float64", "F64", "float64", "F64", -9999.0),
])
def test_promotion_to_the_next_larger_type_with_its_largest_value_as_nodata(dtype, pixel_type, new_dtype,
                                                                           new_type, nodata):
    info = np.finfo(dtype) if np.dtype(dtype).kind == "f" else np.iinfo(dtype)
    values = np.array([[[nodata, 1, 2], [3, info.max, info.min]]], dtype=dtype)
    out, ptype, new_nodata = promote(values, pixel_type, nodata)
    largest = np.finfo(new_dtype).max if np.dtype(new_dtype).kind == "f" else np.iinfo(new_dtype).max
    assert ptype == new_type and out.dtype == np.dtype(new_dtype) and new_nodata == float(largest)
    assert out[0, 0, 0] == largest                                           # the old nodata cell
    keep = values != values.dtype.type(nodata)
    assert np.array_equal(out[keep], values[keep].astype(new_dtype))       # every other value exactly
    assert promoted_type(pixel_type) == new_type


def test_float_nan_is_nodata_and_float64_stays_float64():
    values = np.array([[[np.nan, 1.5, -np.inf]]], "float64")
    out, ptype, nodata = promote(values, "F64", None)
    assert ptype == "F64" and nodata == np.finfo("float64").max
    assert out[0, 0, 0] == nodata and out[0, 0, 1] == 1.5 and out[0, 0, 2] == -np.inf
    with pytest.raises(ValueError, match="pixel type"):
        promote(values, "C64", None)


def test_rows_without_a_spatial_reference_are_skipped_and_counted():
    good = raster_value(np.zeros((1, 2, 2), "uint8"), None, WKT, Affine(1, 0, 0, 0, -1, 0))
    no_crs = raster_value(np.zeros((1, 2, 2), "uint8"), None, None, Affine(1, 0, 0, 0, -1, 0))
    bad_crs = good[:5] + ("not a crs",) + good[6:]
    no_transform = good[:6] + (None,) + good[7:]
    rows = [{"r": good}, {"r": no_crs}, {"r": None}, {"r": bad_crs}, {"r": no_transform}, {"r": good}]
    rasters = ReferencedRasters("r", has_spatial_reference)
    kept = list(rasters(iter(rows)))
    assert len(kept) == 2 and rasters.kept == 2 and rasters.skipped == 4


def test_one_pixel_type_and_band_count_per_service():
    assert check_uniform([("U16", 3), ("U16", 3)]) == ("U16", 3)
    with pytest.raises(ValueError, match="F64 x 1 band"):
        check_uniform([("U16", 3), ("F64", 1)])


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"])
def test_raster_struct_is_band_sequential_little_endian(dtype):
    values = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    raster = dict(zip(("width", "height", "bands", "pixel_type", "nodata", "crs", "transform", "data"),
                      raster_value(values, 0, WKT, Affine(10, 0, 500000, 0, -10, 5001000)), strict=True))
    assert (raster["width"], raster["height"], raster["bands"]) == (4, 3, 2)
    assert raster["data"] == values.astype(np.dtype(dtype).newbyteorder("<")).tobytes()
    assert raster["transform"] == [500000, 10, 0, 5001000, 0, -10]
    assert np.array_equal(to_numpy(raster), values)
    with to_dataset(raster) as ds:
        assert ds.count == 2 and ds.crs.to_epsg() == 32633 and ds.bounds == (500000, 5000970, 500040, 5001000)
        assert np.array_equal(ds.read(), values)


def test_commit_logs_skipped_rows_and_refuses_an_empty_service(caplog):
    pytest.importorskip("pyspark")
    pytest.importorskip("pyarrow")
    from pyspark.sql.types import ArrayType, BinaryType, DoubleType, IntegerType, StringType, StructField, StructType

    from ogc_gateway.spark.datasource import ImageServiceWriter, Uploaded, raster_column

    raster = StructType([StructField(n, t) for n, t in (
        ("width", IntegerType()), ("height", IntegerType()), ("bands", IntegerType()), ("pixel_type", StringType()),
        ("nodata", DoubleType()), ("crs", StringType()), ("transform", ArrayType(DoubleType())),
        ("data", BinaryType()))])
    schema = StructType([StructField("tile_col", IntegerType()), StructField("raster", raster)])
    assert raster_column(schema, None) == "raster"
    with pytest.raises(ValueError, match="not a raster column"):
        raster_column(schema, "tile_col")
    app, state = publishing_double()
    with serving(app) as url:
        options = {"url": f"{url}/arcgis", "token": "publisher-token", "serviceName": "s"}
        writer = ImageServiceWriter(options, schema, overwrite=False)
        state["uploads"]["i1"] = {"name": "a.tif", "data": b"", "description": ""}
        with caplog.at_level(logging.WARNING, logger="ogc_gateway.spark"):
            writer.commit([Uploaded(["i1"], [("U16", 1)], skipped=2), Uploaded([], [], skipped=1), None])
        assert "3 row(s) without a spatial reference skipped" in caplog.text
        assert state["services"]["s"]["items"] == ["i1"] and writer.job_id
        with pytest.raises(ValueError, match="none of the 2 row"):
            ImageServiceWriter(dict(options, serviceName="t"), schema, False).commit([Uploaded([], [], 2)])
        with pytest.raises(ValueError, match="the frame has no rasters"):
            ImageServiceWriter(dict(options, serviceName="t"), schema, False).commit([])
        state["uploads"].update({"i2": {}, "i3": {}})
        with pytest.raises(ValueError, match="pixel type and band count"):
            ImageServiceWriter(dict(options, serviceName="u"), schema, False).commit(
                [Uploaded(["i2"], [("U16", 1)]), Uploaded(["i3"], [("F64", 1)])])
        assert {"i2", "i3"} <= set(state["deleted_uploads"]) and "u" not in state["services"]
        with pytest.raises(ValueError, match="exists"):
            ImageServiceWriter(options, schema, overwrite=False)
        with pytest.raises(ValueError, match="serviceName"):
            ImageServiceWriter({"url": f"{url}/arcgis", "token": "x"}, schema, False)
