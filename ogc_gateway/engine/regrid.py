"""A grid or a point taken into another CRS, for the faces that need one without doing raster work
themselves: the WCS versions describe a coverage whose CRS has no EPSG code in EPSG:4326, and
derive a default resolution in an output CRS, from GDAL's suggested warp of the native grid; the
REST face takes a mosaic rule's viewpoint into the service's CRS."""

from __future__ import annotations

from rasterio.crs import CRS
from rasterio.warp import calculate_default_transform, transform

from .errors import InvalidParameter
from .requests import Grid


def default_grid(grid: Grid, crs: CRS) -> Grid:
    """`grid` warped into `crs` as GDAL suggests (gdalwarp's default): about the same number of
    pixels over the reprojected extent, north up."""
    affine, width, height = calculate_default_transform(grid.crs, crs, grid.width, grid.height, *grid.bounds)
    x0, y1 = affine.c, affine.f
    return Grid(crs, (x0, y1 + affine.e * height, x0 + affine.a * width, y1), width, height)


def default_resolution(grid: Grid, crs: CRS) -> tuple[float, float]:
    """The (x, y) cell size of `default_grid(grid, crs)`, both positive."""
    affine, _, _ = calculate_default_transform(grid.crs, crs, grid.width, grid.height, *grid.bounds)
    return abs(affine.a), abs(affine.e)


def reproject_point(x: float, y: float, src: CRS, dst: CRS, name: str, what: str = "the point"
                    ) -> tuple[float, float]:
    """(x, y) in `src` taken into `dst`; a pair with no coordinate operation between them is an
    InvalidParameter of `name` saying that `what` cannot be transformed."""
    if src == dst:
        return x, y
    try:
        xs, ys = transform(src, dst, [x], [y])
    except Exception as exc:  # noqa: BLE001 -- rasterio/PROJ: no coordinate operation between the two
        raise InvalidParameter(name, f"{what} cannot be transformed ({exc})") from exc
    return xs[0], ys[0]
