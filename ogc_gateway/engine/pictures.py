"""8-bit pictures (already rendered by the engine) as PNG, JPEG, GIF, BMP or WebP, through our PNG
writer, simplejpeg or Pillow, never GDAL: these are the hot path of map tiles, where GDAL's per-call
overhead would dominate."""

from __future__ import annotations

import io

import numpy as np
import simplejpeg
from PIL import Image

from ogc_gateway.engine import png
from ogc_gateway.engine.encoded import Encoded
from ogc_gateway.engine.requests import Raster

# zlib level 2: PNG encoding dominates tile time, and higher levels buy little on imagery
# (engine/png.py writes 8-bit PNGs; palettes and the other formats go through Pillow).
PNG_COMPRESS_LEVEL = 2


def encode_picture(raster: Raster, fmt: str, quality: int) -> Encoded:
    pixels, valid = _picture_pixels(raster)
    opaque = bool(valid.all())
    if fmt == "jpgpng":
        fmt = "jpg" if opaque else "png32"
    if fmt == "jpg":
        return Encoded(_jpeg(pixels, quality), "image/jpeg", "jpg")
    if fmt == "png":
        return Encoded(_png(pixels if opaque else _alpha_added(pixels, valid)), "image/png", "png")
    if fmt == "png24":               # 24-bit RGB whatever the band count (one band is grey in RGB)
        rgb = pixels if pixels.ndim == 3 else np.repeat(pixels[..., np.newaxis], 3, axis=2)
        return Encoded(_png(np.ascontiguousarray(rgb)), "image/png", "png")
    if fmt == "png32":
        rgb = pixels if pixels.ndim == 3 else np.repeat(pixels[..., np.newaxis], 3, axis=2)
        return Encoded(_png(_alpha_added(rgb, valid)), "image/png", "png")
    if fmt == "png8":
        image, transparency = _palette(pixels, valid)
        options = {} if transparency is None else {"transparency": transparency}
        return Encoded(_save(image, "PNG", compress_level=PNG_COMPRESS_LEVEL, **options),
                       "image/png", "png")
    if fmt == "gif":
        image, transparency = _palette(pixels, valid)
        options = {} if transparency is None else {"transparency": transparency}
        return Encoded(_save(image, "GIF", **options), "image/gif", "gif")
    if fmt == "bmp":
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


def grey_png(grey: np.ndarray, valid: np.ndarray) -> Encoded:
    """What encode_rgba(rgba(...), "png") writes for a one-band picture - grey (L) when every
    pixel is valid, else grey+alpha (LA) with 0 where transparent - without going through the RGBA
    image and back: a single-layer WMS GetMap of a one-band service (the usual DEM map)."""
    if valid.all():
        return Encoded(_png(grey), "image/png", "png")
    la = np.empty(grey.shape + (2,), np.uint8)
    np.multiply(grey, valid, out=la[..., 0], casting="unsafe")
    np.multiply(valid, np.uint8(255), out=la[..., 1], casting="unsafe")
    return Encoded(_png(la), "image/png", "png")


def _png_channels(image: np.ndarray, opaque: bool) -> np.ndarray:
    """The channels of an RGBA map picture a PNG needs: RGBA when some pixel is transparent, else
    RGB — or, when red, green and blue are equal everywhere (a one-band raster's default rendering),
    grey (L) or grey+alpha (LA): a third or half of the bytes to deflate for the same decoded pixels."""
    # Each pixel as one little-endian 32-bit word (R in the low byte): the test and the grey+alpha
    # copy are a few whole-array passes, where strided channel slices cost several times more.
    words = np.ascontiguousarray(image).view("<u4")[..., 0]
    grey = bool(((words & 0xFFFFFF) == (words & 0xFF) * 0x010101).all())
    if opaque:
        return image[..., 0] if grey else image[..., :3]
    if not grey:
        return image
    la = ((words >> 16) & 0xFF00) | (words & 0xFF)          # alpha in the high byte, grey in the low
    return la.astype("<u2").view(np.uint8).reshape(image.shape[0], image.shape[1], 2)


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
    encoded: bytes     # simplejpeg is untyped
    if pixels.ndim == 2:
        encoded = simplejpeg.encode_jpeg(pixels[..., np.newaxis], quality=quality, colorspace="GRAY",
                                         colorsubsampling="Gray")
    else:
        encoded = simplejpeg.encode_jpeg(pixels, quality=quality, colorspace="RGB")
    return encoded


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()

