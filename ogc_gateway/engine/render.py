"""The default rendering (DESIGN.md): how any raster becomes an 8-bit picture for PNG/JPEG/GIF/BMP.

Bands: the request's bandIds if given, else the service's default_band_ids (for its own values,
not a rule's output), else the first three (RGB) or the one (grey). Values that are not 8-bit are
stretched linearly to 0..255 from the raster's stretch hint (the service's statistics, a rule's
processed statistics) or, lacking one, its own pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import cast

import numpy as np
import numpy.typing as npt

from . import kernels
from .requests import Raster

Bools = npt.NDArray[np.bool_]
Pixels = npt.NDArray[np.uint8]     # 8-bit bands, or (rows, cols, 4) RGBA


def picture(raster: Raster, *, band_ids_given: bool, default_band_ids: tuple[int, ...] | None) -> Raster:
    n = raster.data.shape[0]
    if not band_ids_given and default_band_ids and not raster.processed and all(b < n for b in default_band_ids):
        idx = list(default_band_ids)
    else:
        idx = list(range(n))
    idx = idx[:3] if len(idx) >= 3 else idx[:1]
    data = raster.data[idx]
    stretch = [raster.stretch[i] for i in idx] if raster.stretch else None
    # numpy's stubs allow the scalar a reduction over no axis gives; over axis 0 of 3-D it is (rows, cols)
    mask = cast(Bools, np.ma.getmaskarray(data).any(axis=0))
    if data.dtype != np.uint8 or raster.pixel_type in ("U1", "U2", "U4"):
        pixels: npt.NDArray[np.generic] = _stretch(data, mask, stretch)
    else:
        pixels = data.data
    out = np.ma.MaskedArray(np.ascontiguousarray(pixels),
                            mask=np.broadcast_to(mask, (len(idx),) + mask.shape).copy())
    return replace(raster, data=out, band_names=tuple(raster.band_names[i] for i in idx),
                   pixel_type="U8", nodata=None, stretch=None)


def _stretch(data: np.ma.MaskedArray, mask: Bools, stretch: Sequence[tuple[float, float]] | None) -> Pixels:
    """Each band from [lo, hi] to 0..255, in float64 (rounded half to even); NaN is 0, and values
    beyond the range (infinities too) take its ends."""
    out = np.zeros(data.shape, np.uint8)
    for b in range(data.shape[0]):
        band = data.data[b]
        if stretch:
            lo, hi = stretch[b]
        else:
            values = band[~mask].astype(np.float64)
            values = values[np.isfinite(values)]
            lo, hi = (values.min(), values.max()) if values.size else (0.0, 1.0)
        span = (hi - lo) or 1.0
        kernels.stretch(np.ascontiguousarray(band), float(lo), 255.0 / span, out[b])
    return out


def rgba(picture_raster: Raster) -> Pixels:
    """A rendered picture (1 or 3 uint8 bands) as (rows, cols, 4) RGBA, nodata transparent."""
    data = np.ma.getdata(picture_raster.data)
    valid = picture_raster.valid
    out = np.empty(data.shape[1:] + (4,), np.uint8)
    for channel in range(3):
        band = data[0] if data.shape[0] == 1 else data[channel]
        np.multiply(band, valid, out=out[..., channel], casting="unsafe")    # transparent: 0
    np.multiply(valid, np.uint8(255), out=out[..., 3], casting="unsafe")
    return out


def composite(layers: list[Pixels]) -> Pixels:
    """RGBA layers drawn in order (the first at the bottom); pixels are fully opaque or fully
    transparent, so drawing is a choice per pixel."""
    out = layers[0].copy()
    for layer in layers[1:]:
        opaque = layer[..., 3] > 0
        out[opaque] = layer[opaque]
    return out


def flatten(image: Pixels, background: tuple[int, int, int]) -> Pixels:
    """RGBA on an opaque background colour (WMS TRANSPARENT=FALSE: nodata takes BGCOLOR)."""
    out = image.copy()
    clear = out[..., 3] == 0
    out[clear, :3] = background
    out[..., 3] = 255
    return out
