"""Validity from a nodata value, computed in numpy from pixels already read.

GDAL's nodata mask (`read_masks`) reads the window a second time and compares each pixel (a sixth
of a WCS item read); when a band's only mask is its nodata value, the same comparison on the
values in hand gives the same mask for a fraction of the cost. The comparison is GDAL's
(gcore/gdalnodatamaskband.cpp, ARE_REAL_EQUAL): NaN nodata masks NaN; a float nodata masks
values within 2 float32 epsilons (relative) of it, for float64 bands too; an integer nodata
(truncated, as a C cast does) masks equal values, and one outside the band's type masks nothing.
Anything else (alpha bands, internal masks, complex types) is left to GDAL.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from rasterio.enums import MaskFlags

Bools = npt.NDArray[np.bool_]

_NODATA_ONLY = [MaskFlags.nodata]
_EPSILON = float(np.finfo(np.float32).eps)


def nodata_validity(src: Any, bands: list[int], data: np.ndarray) -> Bools | None:
    """(len(bands), rows, cols) bool validity of `data` (those bands of `src`, a rasterio dataset,
    read), or None when some band's mask is more than a nodata value."""
    flags, nodatas = src.mask_flag_enums, src.nodatavals
    if any(flags[b - 1] != _NODATA_ONLY or nodatas[b - 1] is None for b in bands):
        return None
    out = np.empty(data.shape, bool)
    for i, b in enumerate(bands):
        valid = _valid(data[i], nodatas[b - 1])
        if valid is None:
            return None
        out[i] = valid
    return out


def _valid(values: np.ndarray, nodata: float) -> Bools | None:
    kind = values.dtype.kind
    valid: Bools
    if kind == "f":
        nd = values.dtype.type(nodata)             # GDAL compares in the band's own type
        if math.isnan(nd):
            valid = ~np.isnan(values)
            return valid
        if math.isinf(nd):
            valid = values != nd
            return valid
        # GDAL: |v - nd| < 2 eps |v + nd| (float32's eps for both types), so |v - nd| < 4 eps |nd| / (1 - 2 eps):
        # two comparisons find the candidates (a generous band), the exact test runs on those few
        band = 8 * _EPSILON * abs(float(nd))
        with np.errstate(over="ignore", invalid="ignore"):         # a nodata near the type's limit
            near = (values >= nd - band) & (values <= nd + band)
            if near.any():
                v = values[near]
                near[near] = (v == nd) | (np.abs(v - nd) < _EPSILON * np.abs(v + nd) * 2)
        valid = ~near
        return valid
    if kind in "iu":
        info = np.iinfo(values.dtype)
        if not info.min <= nodata <= info.max:
            return np.ones(values.shape, bool)
        valid = values != values.dtype.type(int(nodata))          # truncated, as GDAL's cast
        return valid
    return None
