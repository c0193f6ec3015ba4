"""Histograms and statistics of a region (computeHistograms, computeStatisticsHistograms) and of the
whole service (the `histograms` and `statistics` resources).

A region is read through the export path on a grid aligned with the service's native pixels, so
at the native pixel size every source pixel is counted once; pixels whose centre lies outside
the polygon are left out.
"""

from __future__ import annotations

import math

import numpy as np
from rasterio.features import geometry_mask
from shapely.geometry.base import BaseGeometry

from .errors import InvalidParameter, TooLarge
from .export import export
from .histograms import Histogram, histogram
from .histograms import service_histograms as service_histograms  # this module's API too
from .names import Resampling
from .requests import ExportRequest, Grid, MosaicRule, Raster, RenderingRule, TimeWindow
from .service import ImageService


def band_statistics(values: np.ndarray) -> dict[str, float | int | None]:
    values = values[np.isfinite(values)].astype("f8")
    if values.size == 0:
        return {"min": None, "max": None, "mean": None, "standardDeviation": None, "median": None,
                "count": 0, "skipX": 1, "skipY": 1}
    return {"min": float(values.min()), "max": float(values.max()), "mean": float(values.mean()),
            "standardDeviation": float(values.std()), "median": float(np.median(values)),
            "count": int(values.size), "skipX": 1, "skipY": 1}


def region(service: ImageService, geometry: BaseGeometry, *, mosaic_rule: MosaicRule | None = None,
           rendering_rule: RenderingRule | None = None, pixel_size: float | None = None,
           time: TimeWindow | None = None) -> Raster:
    """The processed pixels of a polygon or envelope (service CRS), masked outside it."""
    info = service.info
    size = pixel_size or info.cell_size[0]
    if not size > 0:
        raise InvalidParameter("pixel_size", "must be positive")
    ox, oy = info.extent[0], info.extent[3]             # snap to the service's pixel grid
    xmin, ymin, xmax, ymax = geometry.bounds
    x0 = ox + math.floor((xmin - ox) / size + 1e-9) * size
    x1 = ox + math.ceil((xmax - ox) / size - 1e-9) * size
    y1 = oy - math.floor((oy - ymax) / size + 1e-9) * size
    y0 = oy - math.ceil((oy - ymin) / size - 1e-9) * size
    width, height = max(1, round((x1 - x0) / size)), max(1, round((y1 - y0) / size))
    limits = info.limits
    if width > limits.max_image_width or height > limits.max_image_height:
        raise TooLarge("pixel_size", f"the region is {width}x{height} pixels at pixel size {size:g}; the "
                                    f"limit is {limits.max_image_width}x{limits.max_image_height} "
                                    "(ask with a larger pixelSize)")
    grid = Grid(info.crs, (x0, y0, x0 + width * size, y1), width, height)
    raster = export(service, ExportRequest(grid=grid, mosaic_rule=mosaic_rule, rendering_rule=rendering_rule,
                                           time=time, resampling=Resampling.NEAREST))
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        outside = geometry_mask([geometry], out_shape=(height, width), transform=grid.transform)
        data = raster.data
        raster = Raster(np.ma.MaskedArray(data.data, mask=np.ma.getmaskarray(data) | outside[np.newaxis]),
                        raster.grid, raster.band_names, raster.pixel_type, raster.nodata)
    return raster


def raster_histograms(raster: Raster) -> list[Histogram]:
    return [histogram(band.compressed(), raster.pixel_type) for band in raster.data]


def raster_statistics(raster: Raster) -> list[dict[str, float | int | None]]:
    return [band_statistics(band.compressed()) for band in raster.data]
