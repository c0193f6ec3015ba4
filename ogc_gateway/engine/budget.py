"""Budgets a request must fit before any pixel is read: output size and band count (issue 15).

Why here and not in each face: every face (REST, WMS, WCS 1.0/1.1/2.0, WMTS) builds an ExportRequest and
the engine checks it once, so a limit can never be forgotten by one protocol. The figures are plain
arithmetic on the request and the rendering rule's signature; nothing is read.
"""

from __future__ import annotations

import numpy as np

from .errors import TooLarge
from .requests import PIXEL_TYPES


def bytes_per_value(pixel_type: str | None) -> int:
    """Bytes one value of an ArcGIS pixel type takes in memory (U1..U4 live in a byte)."""
    return np.dtype(PIXEL_TYPES.get((pixel_type or "F64").upper(), "float64")).itemsize


def check_band_count(limits, count: int, name: str = "bandIds") -> None:
    """No request may ask for more than `max_output_bands` bands (10,000 bandIds made a 328 MB TIFF)."""
    if count > limits.max_output_bands:
        raise TooLarge(name, f"{count} bands asked for; at most {limits.max_output_bands} bands per "
                             f"request (max_output_bands)")


def check_output_size(limits, width: int, height: int, bands: int, pixel_types: tuple[str | None, ...],
                      name: str = "size") -> None:
    """width x height x bands x bytes per value must fit `max_output_bytes`; the widest of the pixel
    types the raster passes through counts."""
    check_band_count(limits, bands, name if name != "size" else "bands")
    size = width * height * bands * max(bytes_per_value(t) for t in pixel_types if t) \
        if any(pixel_types) else width * height * bands * 8
    if size > limits.max_output_bytes:
        raise TooLarge(name, f"the answer would hold {width} x {height} pixels x {bands} bands = {size:,} "
                             f"bytes; the limit is {limits.max_output_bytes:,} bytes (max_output_bytes): "
                             f"ask for fewer pixels or bands")
