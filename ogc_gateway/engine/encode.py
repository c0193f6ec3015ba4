"""Raster -> response bytes: the output formats, and `encode`, which hands a raster to the encoder
of its format: engine/pictures.py for 8-bit pictures (Pillow or simplejpeg, never GDAL: the hot
path of map tiles), engine/rawvalues.py for raw values (GeoTIFF, LERC2, LERC1, BIP/BSQ).

The names faces and tests import from here (Encoded, MAP_FORMATS, encode_rgba ...) stay importable.
"""

from __future__ import annotations

from collections.abc import Mapping

from ogc_gateway.engine import rawvalues
from ogc_gateway.engine.encoded import OCTET, Encoded
from ogc_gateway.engine.pictures import MAP_FORMATS, PNG_COMPRESS_LEVEL, _png, encode_picture, encode_rgba
from ogc_gateway.engine.requests import Raster

__all__ = ["FORMATS", "MAP_FORMATS", "OCTET", "PICTURE_FORMATS", "PNG_COMPRESS_LEVEL", "RAW_FORMATS", "Encoded",
           "_png", "encode", "encode_rgba"]

PICTURE_FORMATS = frozenset({"jpgpng", "png", "png8", "png24", "png32", "jpg", "bmp", "gif"})
RAW_FORMATS = frozenset({"tiff", "lerc", "bip", "bsq"})
FORMATS = PICTURE_FORMATS | RAW_FORMATS


def encode(raster: Raster, fmt: str, *, quality: int = 75, compression: str = "none",
           tolerance: float | None = None, lerc_version: int = 2,
           tiff_options: Mapping[str, object] | None = None) -> Encoded:
    """Encode `raster` as `fmt` (lower-case, already validated). `tiff_options` are GDAL GeoTIFF
    creation options (rasterio names: compress, predictor, tiled ...) that replace the writer's own
    choices, for a face whose protocol lets the client choose them (WCS 2.0's GEOTIFF:*)."""
    if fmt in PICTURE_FORMATS:
        return encode_picture(raster, fmt, quality)
    if fmt == "tiff":
        return Encoded(rawvalues.geotiff(raster, compression, quality, tiff_options), "image/tiff", "tif")
    if fmt == "lerc":
        return Encoded(rawvalues.encode_lerc(raster, tolerance, lerc_version), OCTET, "lerc")
    if fmt in ("bip", "bsq"):
        return Encoded(rawvalues.interleaved(raster, fmt), OCTET, fmt)
    raise ValueError(f"unknown output format {fmt!r}")
