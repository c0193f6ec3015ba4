"""Encoders: decode every output again and compare pixel values, masks and georeferencing."""

from __future__ import annotations

import io
import zipfile

import lerc
import numpy as np
import pytest
from lxml import etree
from PIL import Image
from rasterio.crs import CRS
from rasterio.io import MemoryFile

from ogc_gateway.engine.encode import FORMATS, PICTURE_FORMATS, RAW_FORMATS, Encoded, encode
from ogc_gateway.engine.errors import InvalidParameter
from ogc_gateway.engine.requests import Grid, Raster
from ogc_gateway.rest.kmz import kmz

GRID = Grid(CRS.from_epsg(32633), (500000, 5000000, 500640, 5000480), 64, 48)
ROWS, COLS = 48, 64
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


def square_mask(bands: int) -> np.ndarray:
    """A masked 8x8 square at rows 10..17, cols 20..27, the same in every band."""
    mask = np.zeros((bands, ROWS, COLS), bool)
    mask[:, 10:18, 20:28] = True
    return mask


def rgb_gradient() -> np.ndarray:
    rows, cols = np.mgrid[0:ROWS, 0:COLS]
    return np.stack([cols * 4, rows * 5, (rows + cols) % 256]).astype(np.uint8)


def rgb_raster(masked: bool = False) -> Raster:
    data = rgb_gradient()
    mask = square_mask(3) if masked else np.zeros(data.shape, bool)
    return Raster(np.ma.MaskedArray(data, mask), GRID, ("r", "g", "b"), "U8")


def grey_raster(masked: bool = False) -> Raster:
    data = rgb_gradient()[:1]
    mask = square_mask(1) if masked else np.zeros(data.shape, bool)
    return Raster(np.ma.MaskedArray(data, mask), GRID, ("grey",), "U8")


def few_colours(masked: bool = False) -> Raster:
    """Four flat colours: a palette can hold them exactly."""
    data = np.zeros((3, ROWS, COLS), np.uint8)
    data[:, :24, :32] = np.array([10, 20, 30])[:, None, None]
    data[:, :24, 32:] = np.array([200, 100, 50])[:, None, None]
    data[:, 24:, :32] = np.array([0, 255, 0])[:, None, None]
    data[:, 24:, 32:] = np.array([255, 255, 255])[:, None, None]
    mask = square_mask(3) if masked else np.zeros(data.shape, bool)
    return Raster(np.ma.MaskedArray(data, mask), GRID, ("r", "g", "b"), "U8")


def float_raster(nodata: float | None = -9999.0) -> Raster:
    rows, cols = np.mgrid[0:ROWS, 0:COLS]
    data = (rows * 1.25 - cols * 0.37 + 1000.5).astype(np.float32)[None]
    return Raster(np.ma.MaskedArray(data, square_mask(1)), GRID, ("elevation",), "F32", nodata=nodata)


def uint16_raster(nodata: float | None = 0) -> Raster:
    data = (np.arange(4 * ROWS * COLS, dtype=np.uint32) * 7 % 65000 + 1).astype(np.uint16)
    data = data.reshape(4, ROWS, COLS)
    return Raster(np.ma.MaskedArray(data, square_mask(4)), GRID, ("b", "g", "r", "nir"), "U16",
                  nodata=nodata)


def int8_raster() -> Raster:
    data = (np.arange(ROWS * COLS) % 256 - 128).astype(np.int8).reshape(1, ROWS, COLS)
    return Raster(np.ma.MaskedArray(data, square_mask(1)), GRID, ("band",), "S8", nodata=None)


def decode(encoded: Encoded) -> Image.Image:
    image = Image.open(io.BytesIO(encoded.data))
    image.load()
    return image


def inside_mask() -> np.ndarray:
    return square_mask(1)[0]


def test_format_sets():
    assert FORMATS == PICTURE_FORMATS | RAW_FORMATS
    assert not PICTURE_FORMATS & RAW_FORMATS


# ------------------------------------------------------------------------------------------------
# Pictures

def test_png_opaque_is_rgb():
    out = encode(rgb_raster(), "png")
    assert (out.content_type, out.extension) == ("image/png", "png")
    image = decode(out)
    assert image.mode == "RGB" and image.size == (COLS, ROWS)
    np.testing.assert_array_equal(np.asarray(image), np.moveaxis(rgb_gradient(), 0, -1))


def test_png_masked_is_rgba():
    image = decode(encode(rgb_raster(masked=True), "png"))
    assert image.mode == "RGBA"
    pixels = np.asarray(image)
    inside = inside_mask()
    assert (pixels[..., 3][inside] == 0).all() and (pixels[..., 3][~inside] == 255).all()
    np.testing.assert_array_equal(pixels[..., :3][~inside], np.moveaxis(rgb_gradient(), 0, -1)[~inside])


def test_png_grey():
    assert decode(encode(grey_raster(), "png")).mode == "L"
    image = decode(encode(grey_raster(masked=True), "png"))
    assert image.mode == "LA"
    pixels = np.asarray(image)
    assert (pixels[..., 1][inside_mask()] == 0).all()
    np.testing.assert_array_equal(pixels[..., 0][~inside_mask()], rgb_gradient()[0][~inside_mask()])


def test_png24_never_has_alpha():
    image = decode(encode(rgb_raster(masked=True), "png24"))
    assert image.mode == "RGB"
    pixels = np.asarray(image)
    assert (pixels[inside_mask()] == 0).all()
    np.testing.assert_array_equal(pixels[~inside_mask()], np.moveaxis(rgb_gradient(), 0, -1)[~inside_mask()])
    assert decode(encode(grey_raster(masked=True), "png24")).mode == "RGB"      # 24-bit even for one band (issue 14)


@pytest.mark.parametrize("make", [rgb_raster, grey_raster])
def test_png32_always_rgba(make):
    image = decode(encode(make(), "png32"))
    assert image.mode == "RGBA"
    assert (np.asarray(image)[..., 3] == 255).all()
    image = decode(encode(make(masked=True), "png32"))
    pixels = np.asarray(image)
    assert (pixels[..., 3][inside_mask()] == 0).all() and (pixels[..., 3][~inside_mask()] == 255).all()
    expected = np.moveaxis(make().data.data, 0, -1)
    np.testing.assert_array_equal(pixels[..., :3][~inside_mask()],
                                  np.broadcast_to(expected, (ROWS, COLS, 3))[~inside_mask()])


def test_png8_exact_palette_with_transparency():
    raster = few_colours(masked=True)
    image = decode(encode(raster, "png8"))
    assert image.mode == "P"
    rgba = np.asarray(image.convert("RGBA"))
    inside = inside_mask()
    assert (rgba[..., 3][inside] == 0).all() and (rgba[..., 3][~inside] == 255).all()
    np.testing.assert_array_equal(rgba[..., :3][~inside], np.moveaxis(raster.data.data, 0, -1)[~inside])


def test_png8_opaque_has_no_transparency():
    image = decode(encode(few_colours(), "png8"))
    assert image.mode == "P" and "transparency" not in image.info
    np.testing.assert_array_equal(np.asarray(image.convert("RGB")), np.moveaxis(few_colours().data.data, 0, -1))


def test_png8_gradient_is_close():
    image = decode(encode(rgb_raster(), "png8"))
    assert image.mode == "P"
    error = np.abs(np.asarray(image.convert("RGB")).astype(int) - np.moveaxis(rgb_gradient(), 0, -1))
    assert error.mean() < 12


def test_png8_grey_is_exact():
    image = decode(encode(grey_raster(masked=True), "png8"))
    assert image.mode == "P"
    rgba = np.asarray(image.convert("RGBA"))
    inside = inside_mask()
    assert (rgba[..., 3][inside] == 0).all() and (rgba[..., 3][~inside] == 255).all()
    np.testing.assert_array_equal(rgba[..., 0][~inside], rgb_gradient()[0][~inside])


def test_png8_grey_using_all_levels():
    data = (np.arange(ROWS * COLS) % 256).astype(np.uint8).reshape(1, ROWS, COLS)
    mask = np.zeros_like(data, bool)
    mask[0, 0, 0] = True
    data[0, 0, 0] = 77
    data[0, 1, :] = np.arange(COLS) + 192   # keep every level present among the valid pixels
    raster = Raster(np.ma.MaskedArray(data, mask), GRID, ("g",), "U8")
    rgba = np.asarray(decode(encode(raster, "png8")).convert("RGBA"))
    assert rgba[0, 0, 3] == 0 and (rgba[..., 3].ravel()[1:] == 255).all()
    assert np.abs(rgba[..., 0].astype(int) - data[0])[~mask[0]].max() <= 1


def test_jpg_rgb_and_grey():
    out = encode(rgb_raster(), "jpg", quality=95)
    assert out.data.startswith(JPEG_MAGIC) and (out.content_type, out.extension) == ("image/jpeg", "jpg")
    image = decode(out)
    assert image.mode == "RGB" and image.size == (COLS, ROWS)
    error = np.abs(np.asarray(image).astype(int) - np.moveaxis(rgb_gradient(), 0, -1))
    assert error.mean() < 3
    image = decode(encode(grey_raster(), "jpg", quality=95))
    assert image.mode == "L"
    assert np.abs(np.asarray(image).astype(int) - rgb_gradient()[0]).mean() < 3


def test_jpg_quality_changes_size():
    low = encode(rgb_raster(), "jpg", quality=10).data
    high = encode(rgb_raster(), "jpg", quality=95).data
    assert len(low) < len(high)


def test_jpg_masked_pixels_are_black():
    pixels = np.asarray(decode(encode(rgb_raster(masked=True), "jpg", quality=95))).astype(int)
    assert pixels[12:16, 22:26].max() < 20   # centre of the square, away from ringing at its edges


def test_jpgpng_picks_by_transparency():
    out = encode(rgb_raster(), "jpgpng")
    assert out.data.startswith(JPEG_MAGIC) and out.content_type == "image/jpeg" and out.extension == "jpg"
    out = encode(rgb_raster(masked=True), "jpgpng")
    assert out.data.startswith(PNG_MAGIC) and out.content_type == "image/png" and out.extension == "png"
    assert out == encode(rgb_raster(masked=True), "png32")
    assert decode(out).mode == "RGBA"


def test_bmp():
    out = encode(rgb_raster(masked=True), "bmp")
    assert out.data.startswith(b"BM") and (out.content_type, out.extension) == ("image/bmp", "bmp")
    pixels = np.asarray(decode(out).convert("RGB"))
    expected = np.moveaxis(rgb_gradient(), 0, -1).copy()
    expected[inside_mask()] = 0
    np.testing.assert_array_equal(pixels, expected)
    grey = np.asarray(decode(encode(grey_raster(), "bmp")).convert("L"))
    np.testing.assert_array_equal(grey, rgb_gradient()[0])


def test_gif_with_transparency():
    raster = few_colours(masked=True)
    out = encode(raster, "gif")
    assert out.data.startswith(b"GIF8") and (out.content_type, out.extension) == ("image/gif", "gif")
    rgba = np.asarray(decode(out).convert("RGBA"))
    inside = inside_mask()
    assert (rgba[..., 3][inside] == 0).all() and (rgba[..., 3][~inside] == 255).all()
    np.testing.assert_array_equal(rgba[..., :3][~inside], np.moveaxis(raster.data.data, 0, -1)[~inside])
    opaque = decode(encode(few_colours(), "gif"))
    assert "transparency" not in opaque.info
    np.testing.assert_array_equal(np.asarray(opaque.convert("RGB")), np.moveaxis(few_colours().data.data, 0, -1))


@pytest.mark.parametrize("fmt", sorted(PICTURE_FORMATS))
@pytest.mark.parametrize("make", [rgb_raster, grey_raster])
def test_pictures_leave_the_raster_alone(make, fmt):
    raster = make(masked=True)
    before = raster.data.data.copy()
    encode(raster, fmt)
    np.testing.assert_array_equal(raster.data.data, before)


def test_picture_rejects_non_8bit():
    with pytest.raises(ValueError):
        encode(float_raster(), "png")
    with pytest.raises(ValueError):
        encode(Raster(np.ma.zeros((2, 4, 4), np.uint8), GRID, ("a", "b"), "U8"), "png")


# ------------------------------------------------------------------------------------------------
# GeoTIFF

def read_tiff(data: bytes):
    with MemoryFile(data) as memfile, memfile.open() as ds:
        return {
            "profile": ds.profile, "values": ds.read(), "masked": ds.read(masked=True),
            "tags": ds.tags(ns="IMAGE_STRUCTURE"), "band_tags": ds.tags(1, ns="IMAGE_STRUCTURE"),
            "descriptions": ds.descriptions, "mask_flags": ds.mask_flag_enums,
        }


def test_tiff_float_with_nodata():
    raster = float_raster()
    out = encode(raster, "tiff")
    assert (out.content_type, out.extension) == ("image/tiff", "tif")
    tif = read_tiff(out.data)
    profile = tif["profile"]
    assert profile["dtype"] == "float32" and profile["nodata"] == -9999.0
    assert profile["crs"] == CRS.from_epsg(32633)
    assert profile["transform"] == GRID.transform
    assert (profile["width"], profile["height"], profile["count"]) == (COLS, ROWS, 1)
    assert profile.get("compress") is None
    np.testing.assert_array_equal(tif["values"], raster.data.filled(-9999.0))
    np.testing.assert_array_equal(tif["masked"].mask, raster.data.mask)
    assert tif["descriptions"] == ("elevation",)


def test_tiff_uint16_four_bands_lz77():
    raster = uint16_raster()
    tif = read_tiff(encode(raster, "tiff", compression="lz77").data)
    assert tif["profile"]["compress"] == "deflate"
    assert tif["tags"].get("PREDICTOR") == "2"
    assert tif["profile"]["dtype"] == "uint16" and tif["profile"]["nodata"] == 0
    np.testing.assert_array_equal(tif["values"], raster.data.filled(0))
    assert tif["descriptions"] == ("b", "g", "r", "nir")
    np.testing.assert_array_equal(tif["masked"].mask, raster.data.mask)


def test_tiff_float_lz77_uses_float_predictor():
    tif = read_tiff(encode(float_raster(), "tiff", compression="lz77").data)
    assert tif["profile"]["compress"] == "deflate" and tif["tags"].get("PREDICTOR") == "3"
    np.testing.assert_array_equal(tif["values"], float_raster().data.filled(-9999.0))


def test_tiff_without_nodata_writes_internal_mask():
    raster = int8_raster()
    out = encode(raster, "tiff")
    tif = read_tiff(out.data)
    assert tif["profile"]["dtype"] == "int8" and tif["profile"]["nodata"] is None
    assert tif["mask_flags"][0] == [rasterio_mask_flag("per_dataset")]
    np.testing.assert_array_equal(tif["masked"].mask, raster.data.mask)
    np.testing.assert_array_equal(tif["masked"].compressed(), raster.data.compressed())


def rasterio_mask_flag(name: str):
    from rasterio.enums import MaskFlags
    return MaskFlags[name]


def test_tiff_no_mask_when_everything_is_valid():
    raster = Raster(np.ma.MaskedArray(rgb_gradient()), GRID, ("r", "g", "b"), "U8")
    tif = read_tiff(encode(raster, "tiff").data)
    assert tif["mask_flags"][0] == [rasterio_mask_flag("all_valid")]
    np.testing.assert_array_equal(tif["values"], rgb_gradient())


def test_tiff_jpeg_compression():
    tif = read_tiff(encode(rgb_raster(), "tiff", compression="jpeg", quality=90).data)
    assert tif["profile"]["compress"] == "jpeg"
    assert np.abs(tif["values"].astype(int) - rgb_gradient()).mean() < 4


@pytest.mark.parametrize("make", [float_raster, uint16_raster, int8_raster])
def test_tiff_jpeg_needs_8bit(make):
    with pytest.raises(InvalidParameter) as info:
        encode(make(), "tiff", compression="jpeg")
    assert info.value.name == "compression"


def test_tiff_nbits_for_u1():
    data = (np.arange(ROWS * COLS) % 2).astype(np.uint8).reshape(1, ROWS, COLS)
    raster = Raster(np.ma.MaskedArray(data), GRID, ("bit",), "U1")
    tif = read_tiff(encode(raster, "tiff").data)
    assert tif["band_tags"].get("NBITS") == "1"
    np.testing.assert_array_equal(tif["values"], data)


def test_tiff_tiles_large_rasters_only():
    small = read_tiff(encode(float_raster(), "tiff").data)
    assert not small["profile"]["tiled"]
    grid = Grid(CRS.from_epsg(32633), (500000, 5000000, 505120, 5005120), 512, 512)
    big = Raster(np.ma.MaskedArray(np.ones((1, 512, 512), np.float32)), grid, ("b",), "F32")
    profile = read_tiff(encode(big, "tiff").data)["profile"]
    assert profile["tiled"] and (profile["blockxsize"], profile["blockysize"]) == (256, 256)


def test_tiff_unrepresentable_nodata_falls_back_to_mask():
    raster = uint16_raster(nodata=-9999)
    tif = read_tiff(encode(raster, "tiff").data)
    assert tif["profile"]["nodata"] is None
    np.testing.assert_array_equal(tif["masked"].mask, raster.data.mask)


# ------------------------------------------------------------------------------------------------
# LERC

def lerc_info(blob: bytes) -> tuple:
    info = lerc.getLercBlobInfo(blob)
    assert info[0] == 0
    return info


@pytest.mark.parametrize("tolerance", [None, 0.0])
def test_lerc_float_lossless(tolerance):
    raster = float_raster()
    out = encode(raster, "lerc", tolerance=tolerance)
    assert (out.content_type, out.extension) == ("application/octet-stream", "lerc")
    assert out.data.startswith(b"Lerc2 ")
    rc, data, valid = lerc.decode(out.data)
    assert rc == 0 and data.shape == (ROWS, COLS) and data.dtype == np.float32
    np.testing.assert_array_equal(valid, ~inside_mask())
    np.testing.assert_array_equal(data[valid], raster.data.data[0][valid])
    info = lerc_info(out.data)
    assert (info[4], info[5], info[6]) == (COLS, ROWS, 1)


def test_lerc_float_within_tolerance():
    raster = float_raster()
    rc, data, valid = lerc.decode(encode(raster, "lerc", tolerance=0.1).data)
    assert rc == 0
    assert np.abs(data[valid] - raster.data.data[0][valid]).max() <= 0.1 + 1e-6
    np.testing.assert_array_equal(valid, ~inside_mask())


def test_lerc_uint16_bands():
    raster = uint16_raster()
    out = encode(raster, "lerc", tolerance=0.01)   # raised to 0.5 for integers: still exact
    info = lerc_info(out.data)
    assert info[6] == 4 and info[12] == 0.5
    rc, data, valid = lerc.decode(out.data)
    assert rc == 0 and data.shape == (4, ROWS, COLS) and data.dtype == np.uint16
    np.testing.assert_array_equal(valid, ~inside_mask())
    for band in range(4):
        np.testing.assert_array_equal(data[band][valid], raster.data.data[band][valid])


def test_lerc_without_mask():
    raster = Raster(np.ma.MaskedArray(rgb_gradient()), GRID, ("r", "g", "b"), "U8")
    rc, data, valid = lerc.decode(encode(raster, "lerc").data)
    assert rc == 0
    np.testing.assert_array_equal(data, rgb_gradient())
    assert valid is None or np.all(valid)


def test_lerc_int8():
    raster = int8_raster()
    rc, data, valid = lerc.decode(encode(raster, "lerc").data)
    assert rc == 0 and data.dtype == np.int8
    np.testing.assert_array_equal(data[valid], raster.data.data[0][valid])


def mrf_read(blob: bytes) -> np.ndarray:
    """GDAL's MRF driver opens a raw LERC1 blob (as QGIS does); LERC1 has no type, so say Float32."""
    with MemoryFile(blob) as memfile, memfile.open(DATATYPE="Float32") as ds:
        assert ds.driver == "MRF"
        return ds.read(1)


@pytest.mark.parametrize("tolerance", [None, 0.01, 0.25])
def test_lerc1_float(tolerance):
    raster = float_raster()
    out = encode(raster, "lerc", tolerance=tolerance, lerc_version=1)
    assert out.data.startswith(b"CntZImage ") and out.extension == "lerc"
    assert lerc_info(out.data)[1] == 0          # codec version 0 = LERC1
    rc, data, valid = lerc.decode(out.data)
    assert rc == 0
    np.testing.assert_array_equal(valid, ~inside_mask())
    limit = (tolerance or 0) * 1.001 + 1e-4
    assert np.abs(data[valid] - raster.data.data[0][valid]).max() <= limit
    via_gdal = mrf_read(out.data)
    assert np.abs(via_gdal[valid] - raster.data.data[0][valid]).max() <= limit


def test_lerc1_integers_multiband():
    raster = uint16_raster()
    out = encode(raster, "lerc", lerc_version=1)
    assert out.data.count(b"CntZImage ") == 4
    rc, data, valid = lerc.decode(out.data)
    assert rc == 0 and data.shape == (4, ROWS, COLS)
    np.testing.assert_array_equal(valid, ~inside_mask())
    for band in range(4):
        np.testing.assert_array_equal(data[band][valid], raster.data.data[band][valid])
    first = out.data[:out.data.index(b"CntZImage ", 10)]
    np.testing.assert_array_equal(mrf_read(first)[valid], raster.data.data[0][valid])


@pytest.mark.parametrize("rows, cols", [(1, 33), (3, 70), (37, 5), (300, 260)])
def test_lerc1_odd_shapes_and_patterns(rows, cols):
    rng = np.random.default_rng(rows * cols)
    data = rng.integers(-3000, 3000, (1, rows, cols)).astype(np.int16)
    data[0, : rows // 2] = 5            # constant and zero tiles take their own short paths
    data[0, rows // 2:, : cols // 3] = 0
    mask = rng.random((1, rows, cols)) < 0.1
    mask[0, :, -cols // 4:] = True      # long runs exercise the mask RLE
    mask[0, 0, 0] = False
    grid = Grid(CRS.from_epsg(32633), (0, 0, cols, rows), cols, rows)
    raster = Raster(np.ma.MaskedArray(data, mask), grid, ("a",), "S16")
    blob = encode(raster, "lerc", lerc_version=1).data
    rc, decoded, valid = lerc.decode(blob)
    assert rc == 0
    valid = np.ones((rows, cols), bool) if valid is None else valid
    np.testing.assert_array_equal(valid, ~mask[0])
    np.testing.assert_array_equal(decoded.reshape(rows, cols)[valid], data[0][valid])
    np.testing.assert_array_equal(mrf_read(blob)[valid], data[0][valid])


def test_lerc1_single_pixel():
    # lerc.decode only: GDAL's MRF driver refuses blobs this small (under ~75 bytes).
    raster = Raster(np.ma.MaskedArray(np.array([[[1234.5]]], np.float32)), Grid(CRS.from_epsg(4326),
                    (0, 0, 1, 1), 1, 1), ("a",), "F32")
    rc, data, valid = lerc.decode(encode(raster, "lerc", lerc_version=1).data)
    assert rc == 0 and float(data.ravel()[0]) == 1234.5


def test_lerc1_all_valid_and_all_masked():
    full = Raster(np.ma.MaskedArray(rgb_gradient()[:1]), GRID, ("a",), "U8")
    rc, data, valid = lerc.decode(encode(full, "lerc", lerc_version=1).data)
    assert rc == 0 and (valid is None or valid.all())
    np.testing.assert_array_equal(data, rgb_gradient()[0])
    empty = Raster(np.ma.masked_all((1, ROWS, COLS), np.float32), GRID, ("a",), "F32")
    rc, data, valid = lerc.decode(encode(empty, "lerc", lerc_version=1).data)
    assert rc == 0 and not valid.any()


# ------------------------------------------------------------------------------------------------
# BIP / BSQ

def split_raw(data: bytes, dtype, bands: int) -> tuple[np.ndarray, np.ndarray]:
    size = ROWS * COLS * bands * np.dtype(dtype).itemsize
    values = np.frombuffer(data[:size], dtype=np.dtype(dtype).newbyteorder("<"))
    mask_bytes = np.frombuffer(data[size:], np.uint8)
    assert len(mask_bytes) == (ROWS * COLS + 7) // 8
    bits = [(byte >> (7 - i)) & 1 for byte in mask_bytes for i in range(8)][:ROWS * COLS]
    return values, np.array(bits, bool).reshape(ROWS, COLS)


def test_bsq_values_and_mask():
    raster = uint16_raster(nodata=0)
    out = encode(raster, "bsq")
    assert (out.content_type, out.extension) == ("application/octet-stream", "bsq")
    values, valid = split_raw(out.data, np.uint16, 4)
    np.testing.assert_array_equal(values.reshape(4, ROWS, COLS), raster.data.filled(0))
    np.testing.assert_array_equal(valid, ~inside_mask())


def test_bip_values_and_mask():
    raster = uint16_raster(nodata=7)
    out = encode(raster, "bip")
    assert out.extension == "bip"
    values, valid = split_raw(out.data, np.uint16, 4)
    np.testing.assert_array_equal(values.reshape(ROWS, COLS, 4), np.moveaxis(raster.data.filled(7), 0, -1))
    np.testing.assert_array_equal(valid, ~inside_mask())


def test_bip_float_without_nodata_fills_zero():
    raster = float_raster(nodata=None)
    values, valid = split_raw(encode(raster, "bip").data, np.float32, 1)
    expected = raster.data.data[0].copy()
    expected[inside_mask()] = 0
    np.testing.assert_array_equal(values.reshape(ROWS, COLS), expected)
    np.testing.assert_array_equal(valid, ~inside_mask())


def test_raw_mask_padding_only_at_end():
    grid = Grid(CRS.from_epsg(32633), (0, 0, 3, 3), 3, 3)
    mask = np.zeros((1, 3, 3), bool)
    mask[0, 1, 1] = True
    raster = Raster(np.ma.MaskedArray(np.arange(9, dtype=np.uint8).reshape(1, 3, 3), mask), grid, ("a",), "U8")
    data = encode(raster, "bsq").data
    assert data[:9] == bytes([0, 1, 2, 3, 0, 5, 6, 7, 8])
    assert data[9:] == bytes([0b11110111, 0b10000000])


# ------------------------------------------------------------------------------------------------
# KMZ

def test_kmz():
    image = encode(rgb_raster(masked=True), "png32")
    blob = kmz(image, (12.5, 45.25, 13.75, 46.0), "Ortho <2024> & more")
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        assert zf.namelist()[0] == "doc.kml"
        assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in zf.infolist())
        kml = etree.fromstring(zf.read("doc.kml"))
        png = zf.read("image.png")
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    box = kml.find(".//k:GroundOverlay/k:LatLonBox", ns)
    numbers = {child: float(box.find(f"k:{child}", ns).text) for child in ("north", "south", "east", "west")}
    assert numbers == {"north": 46.0, "south": 45.25, "east": 13.75, "west": 12.5}
    assert kml.find(".//k:GroundOverlay/k:Icon/k:href", ns).text == "image.png"
    assert kml.find(".//k:GroundOverlay/k:name", ns).text == "Ortho <2024> & more"
    assert png == image.data
    assert Image.open(io.BytesIO(png)).size == (COLS, ROWS)


def test_kmz_uses_image_extension():
    image = encode(rgb_raster(), "jpg")
    with zipfile.ZipFile(io.BytesIO(kmz(image, (0, 0, 1, 1), "x"))) as zf:
        assert "image.jpg" in zf.namelist()
        assert b"<href>image.jpg</href>" in zf.read("doc.kml")
