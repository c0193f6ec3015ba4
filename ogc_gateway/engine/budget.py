"""Budgets a request must fit before any pixel is read: output size and band count (issue 15).

Why here and not in each face: every face (REST, WMS, WCS 1.0/1.1/2.0, WMTS) builds an ExportRequest and
the engine checks it once, so a limit can never be forgotten by one protocol. The figures are plain
arithmetic on the request and the rendering rule's signature; nothing is read.
"""

from __future__ import annotations

import numpy as np

from .errors import TooLarge
from .requests import PIXEL_TYPES
from .settings import Limits


def bytes_per_value(pixel_type: str | None) -> int:
    """Bytes one value of an ArcGIS pixel type takes in memory (U1..U4 live in a byte)."""
    return np.dtype(PIXEL_TYPES.get((pixel_type or "F64").upper(), "float64")).itemsize


def check_band_count(limits: Limits, count: int, name: str = "bands") -> None:
    """No request may ask for more than `max_output_bands` bands (10,000 bandIds made a 328 MB TIFF)."""
    if count > limits.max_output_bands:
        raise TooLarge(name, f"{count} bands asked for; at most {limits.max_output_bands} bands per "
                             f"request (max_output_bands)")


def check_output_size(limits: Limits, width: int, height: int, bands: int, pixel_types: tuple[str | None, ...],
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


# ---- time: cost estimated before any work -----------------------------------------------------------

#: Work units per second on one core, on the fast side, so that only requests that cannot fit are
#: refused up front (the deadline stops the rest): a unit is one value of one window of a kernel.
_UNITS_PER_SECOND = 3e8
#: Sorting reducers (median, majority, minority) cost this much more per window value than a sum.
_SORTING_FACTOR = 10
_SORTING_STATISTICS = (5, 6, 7)


def rule_units(rule: object, pixels: int, bands: int) -> float:
    """Work units of a rendering rule over `pixels` output cells of `bands` bands: every function
    costs pixels x bands x its kernel area (1 for a per-cell function); a function's raster inputs
    (nested rules) add their own."""
    from .functions.registry import FUNCTIONS
    from .requests import RenderingRule

    if not isinstance(rule, RenderingRule):
        return 0.0
    fn = FUNCTIONS.get(rule.function.lower())
    reach = fn.reach(rule) if fn is not None and hasattr(fn, "reach") else 1
    units = float(pixels) * bands * (2 * reach + 1) ** 2
    if rule.function.lower() == "statistics" and rule.arguments.get("Type") in _SORTING_STATISTICS:
        units *= _SORTING_FACTOR
    for value in rule.arguments.values():
        items = value if isinstance(value, (list, tuple)) else (value,)
        units += sum(rule_units(v, pixels, bands) for v in items)
    return units


def rule_seconds(rule: object, width: int, height: int, bands: int) -> float:
    """Estimated seconds of a rendering rule's functions over a grid (on the fast side)."""
    return rule_units(rule, width * height, bands) / _UNITS_PER_SECOND


def check_time(limits: Limits, rule: object, width: int, height: int, bands: int) -> None:
    """Refuse, before any read, a rendering rule whose estimated cost exceeds max_request_seconds."""
    seconds = rule_seconds(rule, width, height, bands)
    if seconds > limits.max_request_seconds:
        raise TooLarge("rendering", f"the rendering rule over {width} x {height} pixels would take about "
                                        f"{seconds:.0f} s; the time budget is {limits.max_request_seconds} s "
                                        f"(max_request_seconds): ask for fewer pixels or a smaller kernel")
