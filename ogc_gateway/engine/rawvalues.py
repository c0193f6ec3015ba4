"""Raw values with the processed pixel type kept: GeoTIFF (rasterio, or engine/tiff.py's direct
writer for the plain case), LERC2 (the `lerc` package), LERC1 (engine/lerc1.py) and BIP/BSQ with
a validity bit mask. The one GeoTIFF writer of the server: the REST export and every WCS version
write through `geotiff`."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import rasterio
from rasterio.io import MemoryFile

from ogc_gateway.engine import tiff
from ogc_gateway.engine.errors import InvalidParameter
from ogc_gateway.engine.lerc1 import encode_lerc1
from ogc_gateway.engine.names import Compression
from ogc_gateway.engine.requests import Raster


def usable_nodata(raster: Raster) -> float | int | None:
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


def filled(raster: Raster) -> np.ndarray:
    """(bands, rows, cols) values with masked pixels set to nodata (or 0)."""
    nodata = usable_nodata(raster)
    return raster.data.filled(0 if nodata is None else nodata)


def geotiff(raster: Raster, compression: Compression | str = Compression.NONE, quality: int = 75,
            options: Mapping[str, object] | None = None) -> bytes:
    """The GeoTIFF of a raster, georeferenced, with band descriptions and GDAL_NODATA (or an
    internal mask where no usable nodata value marks the invalid pixels). `options`, when given,
    are the GDAL creation options (rasterio names; None values left out) chosen by the client
    instead of `compression` and the writer's own tiling; `tiled` alone means 256 x 256 blocks."""
    compression = Compression(compression)
    data = raster.data
    bands, rows, cols = data.shape
    dtype = data.dtype
    profile: dict[str, object] = {   # rasterio creation options: names to mixed values
        "driver": "GTiff", "width": cols, "height": rows, "count": bands, "dtype": dtype.name,
        "crs": raster.grid.crs, "transform": raster.grid.transform,
    }
    nbits = None
    if options:
        profile.update((key, value) for key, value in options.items() if value is not None)
        if profile.get("tiled"):
            profile.setdefault("blockxsize", 256)
            profile.setdefault("blockysize", 256)
    elif compression is Compression.JPEG:
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
    if not options:
        nbits = {"U1": 1, "U2": 2, "U4": 4}.get(raster.pixel_type)
        if nbits and compression is not Compression.JPEG:
            profile["nbits"] = nbits
        if rows >= 512 and cols >= 512:
            profile.update(tiled=True, blockxsize=256, blockysize=256)

    nodata = usable_nodata(raster)
    valid = raster.valid
    needs_mask = nodata is None and not valid.all()
    if nodata is not None:
        profile["nodata"] = nodata
    values = filled(raster)
    if not options and compression is Compression.NONE and not nbits and not needs_mask and bands == 1:
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
        written: bytes = memfile.read()     # rasterio is untyped
        return written


def encode_lerc(raster: Raster, tolerance: float | None, lerc_version: int) -> bytes:
    """A LERC blob; tolerance is the max error per pixel (None/0 = lossless)."""
    values = filled(raster)
    max_z_error = max(float(tolerance or 0.0), 0.0)
    if values.dtype.kind in "iu":
        max_z_error = max(max_z_error, 0.5)   # integers stay exact at 0.5 and compress better
    valid = raster.valid
    if lerc_version == 1:
        return encode_lerc1(values, valid, max_z_error)
    import lerc  # late: only LERC requests pay for loading the shared library

    has_mask = not bool(valid.all())
    array = values[0] if values.shape[0] == 1 else values
    result = lerc.encode(np.ascontiguousarray(array), 1, has_mask, valid if has_mask else None,
                         max_z_error, 1)
    if result[0] != 0:
        raise RuntimeError(f"lerc.encode failed with code {result[0]}")
    return bytes(result[2].raw[:result[1]])


def interleaved(raster: Raster, fmt: str) -> bytes:
    """Raw little-endian values (bip: pixel-interleaved, bsq: band after band) + 1-bit valid mask."""
    values = filled(raster)
    values = values.astype(values.dtype.newbyteorder("<"), copy=False)
    if fmt == "bip":
        values = np.moveaxis(values, 0, -1)
    mask_bits = np.packbits(raster.valid.ravel())   # MSB first, padding only at the very end
    return np.ascontiguousarray(values).tobytes() + mask_bits.tobytes()

