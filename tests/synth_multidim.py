"""Multidimensional fixtures whose every pixel names its variable, time, depth and column:
`md_value(variable, month, depth, lon)`.

Two layouts of the same cube (variables temp and salt, months 2024-01/02/03, depths 0, 10, 50 m, a
1-degree EPSG:4326 grid over lon 0..20, lat 40..50):

- `make_ocean`: one GeoTIFF per slice and half of the area (so two items make each slice), with a
  catalog CSV naming each file's variable, date and depth - dimensions from catalog attributes;
- `make_cube`: one NetCDF file per variable written by GDAL's netCDF driver, with time and depth as
  NetCDF dimensions (GDAL reads them back as bands tagged NETCDF_DIM_time / NETCDF_DIM_depth and
  NETCDF_VARNAME) - dimensions from band metadata.
"""

from __future__ import annotations

import calendar
import csv
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.shutil import copy as gdal_copy

VARIABLES = {"temp": 1, "salt": 2}               # variable name -> code in the values
MONTHS = (1, 2, 3)                               # of 2024
DEPTHS = (0, 10, 50)                             # metres
WEST, NORTH, WIDTH, HEIGHT = 0, 50, 20, 10       # 1-degree pixels
CRS = "EPSG:4326"


def md_value(variable: str, month: int, depth: float, lon):
    """The value of a slice at a pixel-centre longitude: 100000 variable + 10000 month + 10 depth +
    the pixel's column (0..19)."""
    col = np.floor(np.asarray(lon, "f8") - WEST)
    return (100000 * VARIABLES[variable] + 10000 * month + 10 * depth + col).astype("float32")


def epoch_ms(month: int, day: int = 1) -> int:
    return int(datetime(2024, month, day, tzinfo=UTC).timestamp() * 1000)


def _grid(variable: str, month: int, depth: float, col0: int, width: int) -> np.ndarray:
    lons = WEST + col0 + np.arange(width) + 0.5
    return np.repeat(md_value(variable, month, depth, lons)[None, :], HEIGHT, axis=0)


def make_ocean(folder: Path) -> Path:
    """GeoTIFFs `{var}_{month}_{depth}_{w|e}.tif` (10 x 10 px each) and `catalog.csv` with the
    columns variable, date (ISO date) and depth (metres)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for variable in VARIABLES:
        for month in MONTHS:
            for depth in DEPTHS:
                for half, col0 in (("w", 0), ("e", 10)):
                    name = f"{variable}_{month}_{depth}_{half}.tif"
                    with rasterio.open(folder / name, "w", driver="GTiff", width=10, height=HEIGHT, count=1,
                                       dtype="float32", crs=CRS, nodata=-9999.0,
                                       transform=Affine(1, 0, WEST + col0, 0, -1, NORTH)) as ds:
                        ds.write(_grid(variable, month, depth, col0, 10), 1)
                    rows.append([name, variable, f"2024-{month:02d}-01", depth])
    path = folder / "catalog.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "variable", "date", "depth"])
        w.writerows(rows)
    return path


CUBE_TIME_UNITS = "days since 2024-01-01"
CUBE_UNITS = {"temp": "degC", "salt": "psu"}
CUBE_LONG_NAMES = {"temp": "Sea water temperature", "salt": "Sea water salinity"}


def cube_days(month: int) -> int:
    """The NetCDF time value (days since 2024-01-01) of the first of a 2024 month."""
    return sum(calendar.monthrange(2024, m)[1] for m in range(1, month))


def make_cube(folder: Path) -> list[Path]:
    """`{var}.nc` per variable: float32 (time, depth, lat, lon) written through GDAL's netCDF driver
    from a GeoTIFF whose metadata declares the extra dimensions (NETCDF_DIM_EXTRA and friends)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for variable in VARIABLES:
        src = folder / f"{variable}.src.tif"
        slices = [(m, d) for m in MONTHS for d in DEPTHS]           # depth varies fastest, as GDAL reads
        with rasterio.open(src, "w", driver="GTiff", width=WIDTH, height=HEIGHT, count=len(slices),
                           dtype="float32", crs=CRS, transform=Affine(1, 0, WEST, 0, -1, NORTH)) as ds:
            ds.update_tags(NETCDF_DIM_EXTRA="{time,depth}",
                           NETCDF_DIM_time_DEF=f"{{{len(MONTHS)},6}}",
                           NETCDF_DIM_time_VALUES="{" + ",".join(str(cube_days(m)) for m in MONTHS) + "}",
                           NETCDF_DIM_depth_DEF=f"{{{len(DEPTHS)},6}}",
                           NETCDF_DIM_depth_VALUES="{" + ",".join(str(d) for d in DEPTHS) + "}",
                           NETCDF_VARNAME=variable,
                           **{"time#units": CUBE_TIME_UNITS, "time#standard_name": "time",
                              "depth#units": "m", "depth#long_name": "Depth below the surface",
                              f"{variable}#long_name": CUBE_LONG_NAMES[variable]})
            for band, (month, depth) in enumerate(slices, start=1):
                ds.write(_grid(variable, month, depth, 0, WIDTH), band)
                ds.update_tags(band, NETCDF_VARNAME=variable, NETCDF_DIM_time=str(cube_days(month)),
                               NETCDF_DIM_depth=str(depth), units=CUBE_UNITS[variable])
        path = folder / f"{variable}.nc"
        gdal_copy(str(src), str(path), driver="netCDF")
        src.unlink()
        paths.append(path)
    return paths
