"""Overviews for source files that lack them (`ogc-gateway catalog overviews`): without them a
zoomed-out request reads every full-resolution pixel of an item (and soon meets
max_source_pixels); with them it reads a level near its own scale.

Overviews are written into the GeoTIFF itself, as `gdaladdo` does by default: the server opens
files without listing their folder (GDAL_DISABLE_READDIR_ON_OPEN, engine/read.py), so an external
`.ovr` beside a file would go unseen.
"""

from __future__ import annotations

import rasterio
from rasterio.enums import Resampling

MIN_SIZE = 256          # levels are added until the long side is at most this many pixels
RESAMPLING = {"nearest": Resampling.nearest, "average": Resampling.average,
              "bilinear": Resampling.bilinear, "cubic": Resampling.cubic, "mode": Resampling.mode}


def factors(width: int, height: int, min_size: int = MIN_SIZE) -> list[int]:
    """Decimation factors 2, 4, 8 ... until the long side fits in `min_size` (none if it does)."""
    out, factor = [], 2
    while max(width, height) / (factor // 2) > min_size:
        out.append(factor)
        factor *= 2
    return out


def needs_overviews(width: int, height: int, overviews: list[int]) -> bool:
    return not overviews and bool(factors(width, height))


def build(path: str, resampling: str = "average") -> list[int]:
    """Write internal overviews into a GeoTIFF; the factors built. ValueError for another format
    (which cannot hold internal overviews)."""
    with rasterio.open(path) as ds:
        if ds.driver != "GTiff":
            raise ValueError(f"a {ds.driver} file cannot hold internal overviews (convert it to GeoTIFF/COG)")
        levels = factors(ds.width, ds.height)
    if levels:
        with rasterio.open(path, "r+") as ds:
            ds.build_overviews(levels, RESAMPLING[resampling])
    return levels
