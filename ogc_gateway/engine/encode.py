"""Raster -> response bytes, one function per output format.

Pictures (8-bit, already rendered by the engine) go through Pillow or simplejpeg, never GDAL: these
are the hot path of map tiles and GDAL's per-call overhead would dominate. Raw formats keep the
processed pixel values: GeoTIFF through rasterio, LERC2 through the `lerc` package, LERC1 and
BIP/BSQ by hand.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
import rasterio
import simplejpeg
from PIL import Image
from rasterio.io import MemoryFile

from ogc_gateway.engine import png, tiff
from ogc_gateway.engine.errors import InvalidParameter
from ogc_gateway.engine.names import Compression, OutputFormat
from ogc_gateway.engine.requests import Raster


@dataclass(frozen=True, slots=True)
class Encoded:
    """Encoded bytes plus what a face needs to send them."""

    data: bytes
    content_type: str
    extension: str          # without dot: "png", "jpg", "tif", "lerc", "bip", ...


PICTURE_FORMATS = frozenset(f for f in OutputFormat if f.picture)
RAW_FORMATS = frozenset(f for f in OutputFormat if not f.picture)
FORMATS = frozenset(OutputFormat)

# zlib level 2: PNG encoding dominates tile time, and higher levels buy little on imagery
# (engine/png.py writes 8-bit PNGs; palettes and the other formats go through Pillow).
PNG_COMPRESS_LEVEL = 2
OCTET = "application/octet-stream"


def encode(raster: Raster, fmt: OutputFormat | str, *, quality: int = 75,
           compression: Compression | str = Compression.NONE, tolerance: float | None = None,
           lerc_version: int = 2) -> Encoded:
    """Encode `raster` as `fmt` (an OutputFormat or its value, already validated by the face)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown output format {fmt!r}")
    fmt, compression = OutputFormat(fmt), Compression(compression)
    if fmt.picture:
        return _encode_picture(raster, fmt, quality)
    if fmt is OutputFormat.TIFF:
        return Encoded(_geotiff(raster, compression, quality), "image/tiff", "tif")
    if fmt is OutputFormat.LERC:
        return Encoded(_lerc(raster, tolerance, lerc_version), OCTET, "lerc")
    return Encoded(_interleaved(raster, fmt), OCTET, fmt.value)


# ---------------------------------------------------------------------------------------------
# Pictures

def _encode_picture(raster: Raster, fmt: OutputFormat, quality: int) -> Encoded:
    pixels, valid = _picture_pixels(raster)
    opaque = bool(valid.all())
    if fmt is OutputFormat.JPGPNG:
        fmt = OutputFormat.JPG if opaque else OutputFormat.PNG32
    if fmt is OutputFormat.JPG:
        return Encoded(_jpeg(pixels, quality), "image/jpeg", "jpg")
    if fmt is OutputFormat.PNG:
        return Encoded(_png(pixels if opaque else _alpha_added(pixels, valid)), "image/png", "png")
    if fmt is OutputFormat.PNG24:               # 24-bit RGB whatever the band count (one band is grey in RGB)
        rgb = pixels if pixels.ndim == 3 else np.repeat(pixels[..., np.newaxis], 3, axis=2)
        return Encoded(_png(np.ascontiguousarray(rgb)), "image/png", "png")
    if fmt is OutputFormat.PNG32:
        rgb = pixels if pixels.ndim == 3 else np.repeat(pixels[..., np.newaxis], 3, axis=2)
        return Encoded(_png(_alpha_added(rgb, valid)), "image/png", "png")
    if fmt is OutputFormat.PNG8:
        image, transparency = _palette(pixels, valid)
        options = {} if transparency is None else {"transparency": transparency}
        return Encoded(_save(image, "PNG", compress_level=PNG_COMPRESS_LEVEL, **options),
                       "image/png", "png")
    if fmt is OutputFormat.GIF:
        image, transparency = _palette(pixels, valid)
        options = {} if transparency is None else {"transparency": transparency}
        return Encoded(_save(image, "GIF", **options), "image/gif", "gif")
    if fmt is OutputFormat.BMP:
        return Encoded(_save(_fromarray(pixels), "BMP"), "image/bmp", "bmp")
    raise ValueError(f"unknown picture format {fmt!r}")


MAP_FORMATS = {"png": "image/png", "png8": "image/png", "jpg": "image/jpeg", "gif": "image/gif",
               "webp": "image/webp"}


def encode_rgba(image: np.ndarray, fmt: str, quality: int = 85) -> Encoded:
    """A composed (rows, cols, 4) RGBA map picture (alpha 0 or 255) as a map format: PNG keeps
    alpha only where some pixel is transparent; JPEG drops it (the caller flattens first)."""
    valid = image[..., 3] > 0
    opaque = bool(valid.all())
    if fmt == "png":
        return Encoded(_png(_png_channels(image, opaque)), "image/png", "png")
    rgb = np.ascontiguousarray(image[..., :3])
    if fmt == "jpg":
        return Encoded(_jpeg(rgb, quality), "image/jpeg", "jpg")
    if fmt in ("png8", "gif"):
        picture, transparency = _palette(rgb, valid)
        options = {} if transparency is None else {"transparency": transparency}
        kind = "PNG" if fmt == "png8" else "GIF"
        extra = {"compress_level": PNG_COMPRESS_LEVEL} if kind == "PNG" else {}
        return Encoded(_save(picture, kind, **options, **extra), MAP_FORMATS[fmt], kind.lower())
    if fmt == "webp":
        picture = _fromarray(rgb) if opaque else _fromarray(np.ascontiguousarray(image))
        return Encoded(_save(picture, "WEBP", quality=quality, method=0), "image/webp", "webp")
    raise ValueError(f"unknown map format {fmt!r}")


def _png_channels(image: np.ndarray, opaque: bool) -> np.ndarray:
    """The channels of an RGBA map picture a PNG needs: RGBA when some pixel is transparent, else
    RGB — or grey (L) when red, green and blue are equal everywhere (a one-band raster's default
    rendering), a third of the bytes to deflate for the same decoded pixels."""
    if not opaque:
        return image
    grey = bool((image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all())
    return image[..., 0] if grey else image[..., :3]


def _picture_pixels(raster: Raster) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) grey or (rows, cols, 3) RGB uint8, C-contiguous, 0 where transparent; + valid."""
    data = raster.data
    if data.dtype != np.uint8 or data.shape[0] not in (1, 3):
        raise ValueError(f"pictures need uint8 with 1 or 3 bands, got {data.dtype} x {data.shape[0]}")
    valid = raster.valid
    values = np.ma.getdata(data)
    pixels = values[0] if values.shape[0] == 1 else np.moveaxis(values, 0, -1)
    if not valid.all():
        # Masked values are arbitrary; zero them so no garbage leaks into JPEG/PNG24/BMP.
        # np.where also makes a fresh array, so the caller's raster is never modified.
        pixels = np.where(valid if pixels.ndim == 2 else valid[..., np.newaxis], pixels, np.uint8(0))
    return np.ascontiguousarray(pixels), valid


def _fromarray(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(pixels)   # mode follows the shape: L, LA, RGB or RGBA


def _alpha_added(pixels: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Grey or RGB pixels with an alpha channel: 255 where valid, 0 elsewhere."""
    alpha = np.where(valid, np.uint8(255), np.uint8(0))
    channels = pixels[..., np.newaxis] if pixels.ndim == 2 else pixels
    return np.concatenate([channels, alpha[..., np.newaxis]], axis=2)


def _png(pixels: np.ndarray) -> bytes:
    return png.encode(np.ascontiguousarray(pixels), PNG_COMPRESS_LEVEL)


def _palette(pixels: np.ndarray, valid: np.ndarray) -> tuple[Image.Image, int | None]:
    """A mode "P" image and its transparent index (None when every pixel is opaque)."""
    opaque = bool(valid.all())
    if pixels.ndim == 2:
        return _grey_palette(pixels, valid, opaque)
    rgb = pixels
    if not opaque and valid.any():
        # Give transparent pixels a colour already present so they don't use up a palette entry.
        rgb = rgb.copy()
        rgb[~valid] = rgb[valid][0]
    # Fast octree: ~40x faster than median cut on a 512x512 tile, for slightly coarser colours.
    image = _fromarray(rgb).quantize(256 if opaque else 255, method=Image.Quantize.FASTOCTREE,
                                     dither=Image.Dither.NONE)
    if opaque:
        return image, None
    indices = np.asarray(image).copy()
    indices[~valid] = 255
    palette = image.getpalette() or []
    palette = (palette + [0] * 768)[:768]          # make index 255 exist
    out = Image.fromarray(indices)
    out.putpalette(palette)
    return out, 255


def _grey_palette(grey: np.ndarray, valid: np.ndarray, opaque: bool) -> tuple[Image.Image, int | None]:
    """Grey values are their own palette indices; a grey level no valid pixel uses marks transparency."""
    transparency = None
    if not opaque:
        grey = grey.copy()
        counts = np.bincount(grey[valid], minlength=256)
        unused = np.flatnonzero(counts == 0)
        if unused.size:
            transparency = int(unused[-1])
        else:   # all 256 levels in use: give up one (255 -> 254) for transparency
            grey[grey == 255] = 254
            transparency = 255
        grey[~valid] = transparency
    out = Image.frombytes("P", (grey.shape[1], grey.shape[0]), np.ascontiguousarray(grey).tobytes())
    out.putpalette(_GREY_PALETTE)
    return out, transparency


_GREY_PALETTE = [v for i in range(256) for v in (i, i, i)]


def _jpeg(pixels: np.ndarray, quality: int) -> bytes:
    if pixels.ndim == 2:
        return simplejpeg.encode_jpeg(pixels[..., np.newaxis], quality=quality, colorspace="GRAY",
                                      colorsubsampling="Gray")
    return simplejpeg.encode_jpeg(pixels, quality=quality, colorspace="RGB")


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Raw values

def _usable_nodata(raster: Raster) -> float | int | None:
    """raster.nodata when the dtype can hold it exactly, else None (fall back to a mask)."""
    if raster.nodata is None:
        return None
    dtype = raster.data.dtype
    value = raster.nodata
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if not float(value).is_integer() or not info.min <= value <= info.max:
            return None
        return int(value)
    return value if np.isnan(value) or dtype.type(value) == value else None


def _filled(raster: Raster) -> np.ndarray:
    """(bands, rows, cols) values with masked pixels set to nodata (or 0)."""
    nodata = _usable_nodata(raster)
    return raster.data.filled(0 if nodata is None else nodata)


def _geotiff(raster: Raster, compression: Compression, quality: int) -> bytes:
    data = raster.data
    bands, rows, cols = data.shape
    dtype = data.dtype
    profile: dict = {
        "driver": "GTiff", "width": cols, "height": rows, "count": bands, "dtype": dtype.name,
        "crs": raster.grid.crs, "transform": raster.grid.transform,
    }
    if compression is Compression.JPEG:
        if dtype != np.uint8 or bands not in (1, 3):
            raise InvalidParameter("compression",
                                   "JPEG compression needs 8-bit data with 1 or 3 bands; use LZ77 or None")
        profile.update(compress="JPEG", jpeg_quality=int(quality))
        if bands == 3:
            profile["photometric"] = "YCBCR"   # chroma subsampling: much smaller, as GDAL advises
    elif compression is Compression.DEFLATE:
        profile.update(compress=compression.gdal, predictor=3 if dtype.kind == "f" else 2)
    elif compression is not Compression.NONE:
        profile.update(compress=compression.gdal)
    nbits = {"U1": 1, "U2": 2, "U4": 4}.get(raster.pixel_type)
    if nbits and compression is not Compression.JPEG:
        profile["nbits"] = nbits
    if rows >= 512 and cols >= 512:
        profile.update(tiled=True, blockxsize=256, blockysize=256)

    nodata = _usable_nodata(raster)
    valid = raster.valid
    needs_mask = nodata is None and not valid.all()
    if nodata is not None:
        profile["nodata"] = nodata
    values = _filled(raster)
    if compression is Compression.NONE and not nbits and not needs_mask and bands == 1:
        direct = tiff.geotiff(values, raster.grid.crs, raster.grid.transform, nodata,
                              raster.band_names[0] if raster.band_names else None, tiled="tiled" in profile)
        if direct is not None:
            return direct

    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), MemoryFile() as memfile:
        with memfile.open(**profile) as dst:
            dst.write(values)
            for i, name in enumerate(raster.band_names, start=1):
                dst.set_band_description(i, name)
            if needs_mask:
                dst.write_mask(np.where(valid, np.uint8(255), np.uint8(0)))
        return memfile.read()


def _lerc(raster: Raster, tolerance: float | None, lerc_version: int) -> bytes:
    """A LERC blob; tolerance is the max error per pixel (None/0 = lossless)."""
    values = _filled(raster)
    max_z_error = max(float(tolerance or 0.0), 0.0)
    if values.dtype.kind in "iu":
        max_z_error = max(max_z_error, 0.5)   # integers stay exact at 0.5 and compress better
    valid = raster.valid
    if lerc_version == 1:
        return _lerc1(values, valid, max_z_error)
    import lerc   # late: only LERC requests pay for loading the shared library

    has_mask = not bool(valid.all())
    array = values[0] if values.shape[0] == 1 else values
    result = lerc.encode(np.ascontiguousarray(array), 1, has_mask, valid if has_mask else None,
                         max_z_error, 1)
    if result[0] != 0:
        raise RuntimeError(f"lerc.encode failed with code {result[0]}")
    return bytes(result[2].raw[:result[1]])


def _interleaved(raster: Raster, fmt: OutputFormat) -> bytes:
    """Raw little-endian values (bip: pixel-interleaved, bsq: band after band) + 1-bit valid mask."""
    values = _filled(raster)
    values = values.astype(values.dtype.newbyteorder("<"), copy=False)
    if fmt is OutputFormat.BIP:
        values = np.moveaxis(values, 0, -1)
    mask_bits = np.packbits(raster.valid.ravel())   # MSB first, padding only at the very end
    return np.ascontiguousarray(values).tobytes() + mask_bits.tobytes()


# ---------------------------------------------------------------------------------------------
# LERC1 ("CntZImage"): no maintained library writes it, and ArcGIS 10.3/10.4-era clients ask for it.
# Written from the format description: a header, a validity mask ("count" part, RLE-packed bits)
# and a "z" part of tiles, each tile constant, bit-stuffed quantised offsets or raw float32.
# Multi-band = one blob per band; only the first carries the mask. Values are float32 by design.

_LERC1_TILE = 16


def _lerc1(values: np.ndarray, valid: np.ndarray, max_z_error: float) -> bytes:
    z_bands = values.astype(np.float32)
    valid = valid & np.isfinite(z_bands).all(axis=0)   # LERC1 has no way to carry NaN/inf
    return b"".join(_lerc1_band(z, valid, max_z_error, with_mask=(i == 0))
                    for i, z in enumerate(z_bands))


def _lerc1_band(z: np.ndarray, valid: np.ndarray, max_z_error: float, with_mask: bool) -> bytes:
    rows, cols = z.shape
    out = bytearray(b"CntZImage " + struct.pack("<iiiid", 11, 8, rows, cols, max_z_error))
    if with_mask:
        # 0x0 tiles means "count part is a bit mask"; 0 bytes with max 1 means "all valid".
        rle = b"" if valid.all() else _lerc1_rle(np.packbits(valid.ravel()).tobytes())
        out += struct.pack("<iiif", 0, 0, len(rle), 1.0) + rle
    # Tiles are rows // tiles_v by cols // tiles_h; a remainder forms extra, smaller tiles.
    tile_h = rows // max(1, rows // _LERC1_TILE)
    tile_w = cols // max(1, cols // _LERC1_TILE)
    tiles_v, tiles_h = rows // tile_h, cols // tile_w
    body = bytearray()
    for r0 in range(0, rows, tile_h):
        for c0 in range(0, cols, tile_w):
            tile = (slice(r0, r0 + tile_h), slice(c0, c0 + tile_w))
            body += _lerc1_tile(z[tile][valid[tile]], max_z_error)
    z_max = float(z[valid].max()) if valid.any() else 0.0
    out += struct.pack("<iiif", tiles_v, tiles_h, len(body), z_max) + body
    return bytes(out)


def _lerc1_tile(z: np.ndarray, max_z_error: float) -> bytes:
    """One tile's valid values. Flag byte: 0 raw, 1 bit-stuffed, 2 all zero, 3 constant."""
    if z.size == 0:
        return b"\x02"
    z_min, z_max = float(z.min()), float(z.max())
    if z_min == z_max == 0.0:
        return b"\x02"
    if z_min == z_max:
        code, offset = _lerc1_offset(z_min)
        return bytes([3 | code << 6]) + offset
    if max_z_error > 0 and (z_max - z_min) / (2 * max_z_error) <= 2 ** 24:
        code, offset = _lerc1_offset(z_min)
        q = ((z.astype(np.float64) - z_min) / (2 * max_z_error) + 0.5).astype(np.uint32)
        if not q.any():
            return bytes([3 | code << 6]) + offset
        return bytes([1 | code << 6]) + offset + _lerc1_bitstuff(q)
    return b"\x00" + z.astype("<f4").tobytes()


def _lerc1_offset(value: float) -> tuple[int, bytes]:
    """The smallest exact encoding of a tile offset: (size code for bits 6-7, bytes)."""
    if value.is_integer() and -128 <= value <= 127:
        return 2, struct.pack("<b", int(value))
    if value.is_integer() and -32768 <= value <= 32767:
        return 1, struct.pack("<h", int(value))
    return 0, struct.pack("<f", value)


def _lerc1_bitstuff(q: np.ndarray) -> bytes:
    """Bits byte + element count + values packed MSB-first into little-endian uint32 words.

    The last word is cut to the bytes that hold data (its high bytes, written low byte first).
    """
    n = q.size
    nbits = int(q.max()).bit_length()
    code, count = (2, struct.pack("<B", n)) if n < 256 else \
        (1, struct.pack("<H", n)) if n < 65536 else (0, struct.pack("<I", n))
    shifts = np.arange(nbits - 1, -1, -1, dtype=np.uint32)
    bits = ((q[:, np.newaxis] >> shifts) & 1).astype(np.uint8).ravel()
    words = (bits.size + 31) // 32
    bits = np.concatenate([bits, np.zeros(words * 32 - bits.size, np.uint8)])
    data = np.packbits(bits).view(">u4").astype("<u4").tobytes()
    tail_bits = (n * nbits) % 32
    if tail_bits:
        unused = 4 - (tail_bits + 7) // 8
        data = data[:len(data) - 4] + data[len(data) - 4 + unused:]
    return struct.pack("<B", nbits | code << 6) + count + data


def _lerc1_rle(data: bytes) -> bytes:
    """Esri's byte RLE: int16 n>0 then n literal bytes; int16 -n then one byte repeated n times."""
    out = bytearray()
    literal = bytearray()

    def flush() -> None:
        for k in range(0, len(literal), 32767):
            chunk = literal[k:k + 32767]
            out.extend(struct.pack("<h", len(chunk)) + chunk)
        literal.clear()

    i = 0
    while i < len(data):
        j = i
        while j < len(data) and data[j] == data[i] and j - i < 32767:
            j += 1
        if j - i >= 5:      # shorter runs cost more as a repeat than as literals
            flush()
            out.extend(struct.pack("<hB", -(j - i), data[i]))
        else:
            literal.extend(data[i:j])
        i = j
    flush()
    out.extend(struct.pack("<h", -32768))   # end marker
    return bytes(out)
