"""Raster -> response bytes: the output formats, and `encode`, which hands a raster to the encoder
of its format: engine/pictures.py for 8-bit pictures (Pillow or simplejpeg, never GDAL: the hot
path of map tiles), engine/rawvalues.py for raw values (GeoTIFF, LERC2, LERC1, BIP/BSQ).

The names faces and tests import from here (Encoded, MAP_FORMATS, encode_rgba ...) stay importable.
"""

from __future__ import annotations

from collections.abc import Mapping

from ogc_gateway.engine import rawvalues
from ogc_gateway.engine.encoded import OCTET, Encoded
from ogc_gateway.engine.names import Compression, OutputFormat
from ogc_gateway.engine.pictures import MAP_FORMATS, PNG_COMPRESS_LEVEL, _png, encode_picture, encode_rgba
from ogc_gateway.engine.requests import Raster

__all__ = ["FORMATS", "MAP_FORMATS", "OCTET", "PICTURE_FORMATS", "PNG_COMPRESS_LEVEL", "RAW_FORMATS", "Encoded",
           "_png", "encode", "encode_rgba"]

PICTURE_FORMATS = frozenset(f for f in OutputFormat if f.picture)
RAW_FORMATS = frozenset(f for f in OutputFormat if not f.picture)
FORMATS = frozenset(OutputFormat)


def encode(raster: Raster, fmt: OutputFormat | str, *, quality: int = 75,
           compression: Compression | str = Compression.NONE, tolerance: float | None = None,
           lerc_version: int = 2, tiff_options: Mapping[str, object] | None = None) -> Encoded:
    """Encode `raster` as `fmt` (an OutputFormat or its value, already validated by the face).
    `tiff_options` are GDAL GeoTIFF creation options (rasterio names: compress, predictor, tiled ...)
    that replace the writer's own choices, for a face whose protocol lets the client choose them
    (WCS 2.0's GEOTIFF:*)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown output format {fmt!r}")
    fmt, compression = OutputFormat(fmt), Compression(compression)
    if fmt.picture:
        return encode_picture(raster, fmt, quality)
    if fmt is OutputFormat.TIFF:
        return Encoded(rawvalues.geotiff(raster, compression, quality, tiff_options), "image/tiff", "tif")
    if fmt is OutputFormat.LERC:
        return Encoded(rawvalues.encode_lerc(raster, tolerance, lerc_version), OCTET, "lerc")
    return Encoded(rawvalues.interleaved(raster, fmt), OCTET, fmt.value)
