"""The pixel grid of a read and its split into exportImage blocks.

A read is one grid (CRS, north-up transform, width, height); blocks are windows of it no larger than
the service's maxImageWidth/Height, and each block's bbox is computed from the grid's own transform,
so neighbouring blocks share their edges exactly and the stitched array is the grid, cell for cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import calculate_default_transform, transform_bounds
from rasterio.windows import Window


@dataclass(frozen=True)
class ReadGrid:
    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return self.window_bounds(Window(0, 0, self.width, self.height))

    def window_bounds(self, w: Window) -> tuple[float, float, float, float]:
        t = self.transform        # each edge from its own index, so neighbours share it bit for bit
        return (t.c + w.col_off * t.a, t.f + (w.row_off + w.height) * t.e,
                t.c + (w.col_off + w.width) * t.a, t.f + w.row_off * t.e)

    def window_transform(self, w: Window) -> Affine:
        t = self.transform
        return Affine(t.a, 0.0, t.c + w.col_off * t.a, 0.0, t.e, t.f + w.row_off * t.e)

    def windows(self, block_width: int, block_height: int) -> list[Window]:
        """Row-major windows of at most block_width x block_height covering the grid."""
        return [Window(c, r, min(block_width, self.width - c), min(block_height, self.height - r))
                for r in range(0, self.height, block_height) for c in range(0, self.width, block_width)]


def crs_from_sr(sr: dict | int | str | CRS | None) -> CRS | None:
    """An ArcGIS spatialReference (JSON, wkid) or a user's CRS (EPSG code, 'EPSG:n', WKT) as a CRS."""
    if sr is None or sr == "":
        return None
    if isinstance(sr, CRS):
        return sr
    if isinstance(sr, dict):
        for key in ("latestWkid", "wkid"):
            if sr.get(key):
                try:
                    return CRS.from_epsg(int(sr[key]))
                except Exception:   # noqa: BLE001 - an Esri-only wkid; the WKT below may still say
                    pass
        if sr.get("wkt"):
            return CRS.from_wkt(sr["wkt"])
        raise ValueError(f"cannot understand the spatial reference {sr}")
    if isinstance(sr, int) or (isinstance(sr, str) and sr.strip().isdigit()):
        return CRS.from_epsg(int(sr))
    return CRS.from_user_input(sr)


def sr_param(crs: CRS) -> str:
    """A CRS as an ArcGIS sr parameter: its EPSG code when it has one, else `{"wkt": …}`."""
    epsg = crs.to_epsg()
    if epsg:
        return str(epsg)
    import json
    return json.dumps({"wkt": crs.to_wkt()}, separators=(",", ":"))


def plan_grid(service_crs: CRS, pixel_size: tuple[float, float], extent, extent_crs: CRS | None = None,
              target_crs: CRS | None = None, cell_size: float | tuple[float, float] | None = None,
              size: tuple[int, int] | None = None) -> ReadGrid:
    """The grid of a read: `extent` (in `extent_crs`, default the target's) projected to the target
    CRS; its size from `size`, else `cell_size` (target units), else the service's own pixel size
    (carried over to the target CRS as GDAL's warper would choose it)."""
    target = target_crs or service_crs
    xmin, ymin, xmax, ymax = map(float, extent)
    if not (xmax > xmin and ymax > ymin):
        raise ValueError(f"extent {extent}: xmax must exceed xmin and ymax ymin")
    if extent_crs is not None and extent_crs != target:
        xmin, ymin, xmax, ymax = transform_bounds(extent_crs, target, xmin, ymin, xmax, ymax, densify_pts=21)
    if size is not None:
        width, height = int(size[0]), int(size[1])
        if width < 1 or height < 1:
            raise ValueError(f"size {size}: width and height must be positive")
        return ReadGrid(target, Affine((xmax - xmin) / width, 0, xmin, 0, -(ymax - ymin) / height, ymax),
                        width, height)
    if cell_size is not None:
        rx, ry = (cell_size, cell_size) if isinstance(cell_size, (int, float)) else cell_size
    elif target == service_crs:
        rx, ry = pixel_size
    else:
        sxmin, symin, sxmax, symax = transform_bounds(target, service_crs, xmin, ymin, xmax, ymax, densify_pts=21)
        native_w = max(1, round((sxmax - sxmin) / pixel_size[0]))
        native_h = max(1, round((symax - symin) / pixel_size[1]))
        t, _, _ = calculate_default_transform(service_crs, target, native_w, native_h, sxmin, symin, sxmax, symax)
        rx = ry = min(abs(t.a), abs(t.e))
    rx, ry = float(rx), float(ry)
    if rx <= 0 or ry <= 0:
        raise ValueError("the cell size must be positive")
    width = max(1, math.ceil((xmax - xmin) / rx - 1e-6))
    height = max(1, math.ceil((ymax - ymin) / ry - 1e-6))
    return ReadGrid(target, Affine(rx, 0, xmin, 0, -ry, ymax), width, height)
