"""The writer's promotion policy (GeoAnalytics' reference document): a raster written to an image
service gets the next larger pixel type, and the largest value of that type becomes nodata; F64 stays
F64 with its largest value as nodata.

ArcGIS has no 64-bit integer pixel type, so U32 and S32 go to F64, which holds every 32-bit
integer exactly. Sub-byte types (U1, U2, U4) are stored in bytes and go to U16 like U8.
"""

from __future__ import annotations

import numpy as np

NEXT_PIXEL_TYPE = {"U1": "U16", "U2": "U16", "U4": "U16", "U8": "U16", "S8": "S16", "U16": "U32",
                   "S16": "S32", "U32": "F64", "S32": "F64", "F32": "F64", "F64": "F64"}
_DTYPES = {"U16": "uint16", "S16": "int16", "U32": "uint32", "S32": "int32", "F64": "float64"}


def promoted_type(pixel_type: str) -> str:
    try:
        return NEXT_PIXEL_TYPE[pixel_type.upper()]
    except KeyError:
        raise ValueError(f"pixel type {pixel_type!r} is not an ArcGIS pixel type "
                         f"({', '.join(NEXT_PIXEL_TYPE)})") from None


def largest_value(pixel_type: str) -> float:
    dtype = np.dtype(_DTYPES[pixel_type])
    return float(np.finfo(dtype).max if dtype.kind == "f" else np.iinfo(dtype).max)


def promote(values: np.ndarray, pixel_type: str, nodata: float | None) -> tuple[np.ndarray, str, float]:
    """(values in the promoted type with nodata cells set to its largest value, the new pixel type,
    the new nodata). Cells equal to `nodata` (and NaN cells) become nodata."""
    new_type = promoted_type(pixel_type)
    new_nodata = largest_value(new_type)
    out = values.astype(_DTYPES[new_type])
    missing = np.zeros(values.shape, bool)
    if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
        missing |= values == values.dtype.type(nodata) if values.dtype.kind != "f" else values == nodata
    if values.dtype.kind == "f":
        missing |= np.isnan(values)
    out[missing] = new_nodata
    return out, new_type, new_nodata


class ReferencedRasters:
    """Iterates the rasters of `field` that carry a spatial reference; counts the rows skipped."""

    def __init__(self, field: str, has_sr):
        self.field, self.has_sr, self.skipped, self.kept = field, has_sr, 0, 0

    def __call__(self, rows):
        for row in rows:
            raster = row[self.field]
            if self.has_sr(raster):
                self.kept += 1
                yield raster
            else:
                self.skipped += 1


def check_uniform(summaries: list[tuple[str, int]]) -> tuple[str, int]:
    """The one (pixel type, band count) of all written rasters; an error naming the mix otherwise."""
    kinds = sorted(set(summaries))
    if len(kinds) != 1:
        raise ValueError("an image service holds rasters of one pixel type and band count; the frame has "
                         + ", ".join(f"{t} x {b} band(s)" for t, b in kinds) + " after promotion")
    return kinds[0]
