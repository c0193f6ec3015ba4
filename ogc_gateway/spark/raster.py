"""The `raster` struct of a row (no pyspark import): encode a tile, decode it to numpy or rasterio.

raster struct<width int, height int, bands int, pixel_type string (ArcGIS names), nodata double,
crs string (WKT), transform array<double> (GDAL geotransform), data binary (values, band after band,
little-endian, uncompressed)>
"""

from __future__ import annotations

import numpy as np
from affine import Affine
from rasterio.io import MemoryFile

from ..client.service import DTYPE_PIXEL_TYPES, PIXEL_TYPES

RASTER_DDL = ("struct<width:int,height:int,bands:int,pixel_type:string,nodata:double,crs:string,"
              "transform:array<double>,data:binary>")
SCHEMA_DDL = (f"raster {RASTER_DDL}, tile_col int, tile_row int, "
              "extent struct<xmin:double,ymin:double,xmax:double,ymax:double>")
RASTER_FIELDS = ("width", "height", "bands", "pixel_type", "nodata", "crs", "transform", "data")


def raster_value(data: np.ndarray, nodata, crs_wkt: str | None, transform: Affine) -> tuple:
    """A (bands, rows, cols) array as the struct's tuple, in field order."""
    bands, height, width = data.shape
    little = np.ascontiguousarray(data.astype(data.dtype.newbyteorder("<"), copy=False))
    return (int(width), int(height), int(bands), DTYPE_PIXEL_TYPES[data.dtype.name],
            None if nodata is None else float(nodata), crs_wkt or None, list(transform.to_gdal()),
            little.tobytes())


def _fields(raster) -> dict:
    if raster is None:
        raise ValueError("the raster is null")
    if isinstance(raster, dict):
        return raster
    if hasattr(raster, "asDict"):
        return raster.asDict()
    return dict(zip(RASTER_FIELDS, raster, strict=True))


def to_numpy(raster) -> np.ndarray:
    """A row's raster as a (bands, rows, cols) array of its pixel type."""
    r = _fields(raster)
    dtype = np.dtype(PIXEL_TYPES[r["pixel_type"]]).newbyteorder("<")
    values = np.frombuffer(r["data"], dtype=dtype).reshape(r["bands"], r["height"], r["width"])
    return values.astype(values.dtype.newbyteorder("="), copy=False)


def to_dataset(raster):
    """A row's raster as an open rasterio dataset (in memory; close it when done)."""
    r = _fields(raster)
    values = to_numpy(r)
    memfile = MemoryFile()
    with memfile.open(driver="GTiff", width=r["width"], height=r["height"], count=r["bands"],
                      dtype=values.dtype, crs=r.get("crs") or None,
                      transform=Affine.from_gdal(*r["transform"]), nodata=r.get("nodata")) as dst:
        dst.write(values)
    ds = memfile.open()
    ds._ogc_gateway_memfile = memfile        # the memory file lives as long as the dataset
    return ds


def has_spatial_reference(raster) -> bool:
    """True when a raster carries a CRS GDAL understands and a geotransform."""
    if raster is None:
        return False
    r = _fields(raster)
    if not r.get("crs") or not r.get("transform") or len(r["transform"]) != 6:
        return False
    from rasterio.crs import CRS

    try:
        CRS.from_user_input(r["crs"])
    except Exception:  # noqa: BLE001 - rasterio raises CRSError and friends
        return False
    return True
