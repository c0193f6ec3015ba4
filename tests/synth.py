"""Analytic raster fixtures: every pixel's value is a known function of its position or identity, so
tests compare the server's answers with the truth instead of with the code's own output."""

from __future__ import annotations

import calendar
import csv
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio.enums import Resampling
from rasterio.warp import transform_bounds

# --- DEM: 4 overlapping float32 tiles of a tilted plane, with a nodata hole -------------------------

DEM_CRS = "EPSG:32633"
DEM_RES = 10.0
DEM_NODATA = -9999.0
DEM_SIZE = 100


def from_origin(west: float, north: float, xres: float, yres: float) -> Affine:
    """North-up geotransform (rasterio's helper warns under affine 3)."""
    return Affine(xres, 0.0, west, 0.0, -yres, north)


def dem_value(x, y):
    """The plane every DEM tile samples at pixel centres (float64 maths, float32 result)."""
    return np.float32((np.asarray(x, "f8") - 500000) * 0.5 + (np.asarray(y, "f8") - 5000000) * 0.25)


def _dem_tile(r: int, c: int) -> np.ndarray:
    left, top = 500000 + c * 900, 5002000 - r * 900
    cols = np.arange(DEM_SIZE)
    xs = left + (cols + 0.5) * DEM_RES
    ys = top - (cols + 0.5) * DEM_RES
    data = dem_value(xs[None, :], ys[:, None]).astype("float32")
    if (r, c) == (0, 0):
        data[10:20, 10:20] = DEM_NODATA       # x 500100..500200, y 5001800..5001900: no other tile there
    return data


def make_dem(folder: Path) -> list[Path]:
    """Four 100x100 tiles `dem_r{r}_c{c}.tif`, neighbours overlapping by 10 px, with overviews [2]."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for r in range(2):
        for c in range(2):
            path = folder / f"dem_r{r}_c{c}.tif"
            profile = dict(driver="GTiff", width=DEM_SIZE, height=DEM_SIZE, count=1, dtype="float32",
                           crs=DEM_CRS, nodata=DEM_NODATA,
                           transform=from_origin(500000 + c * 900, 5002000 - r * 900, DEM_RES, DEM_RES),
                           tiled=True, blockxsize=64, blockysize=64)
            with rasterio.open(path, "w", **profile) as ds:
                ds.write(_dem_tile(r, c), 1)
                ds.build_overviews([2], Resampling.average)
            paths.append(path)
    return paths


# --- Mosaic: 4-band scenes whose every pixel names its scene and band --------------------------------

MOSAIC_CRS = "EPSG:32633"
MOSAIC_RES = 20.0
MOSAIC_DATES = {1: "2024-01-15", 2: "2024-03-15", 3: "2024-05-15", 4: "2024-07-15"}
MOSAIC_BANDS = ("Blue", "Green", "Red", "NearInfrared")
MOSAIC_NODATA = 0
SCENE4_UTM_BOX = (500600, 5000900, 501400, 5001500)


def mosaic_value(k, b):
    """Value of scene k (1-based), band b (0-based): identifies both."""
    return 1000 * k + 10 * (b + 1)


def _scene_grid(k: int) -> tuple[str, object, int, int]:
    """CRS, transform, width and height of scene k."""
    if k < 4:
        return (MOSAIC_CRS, from_origin(500000 + (k - 1) * 400, 5002000 - (k - 1) * 200,
                                        MOSAIC_RES, MOSAIC_RES), 60, 60)
    west, south, east, north = transform_bounds(MOSAIC_CRS, "EPSG:4326", *SCENE4_UTM_BOX)
    res = 0.0002
    width, height = round((east - west) / res), round((north - south) / res)
    return "EPSG:4326", from_origin(west, north, res, res), width, height


def write_scene(path: Path, k: int, count: int = 4) -> Path:
    """Scene k as a uint16 GeoTIFF with `count` bands (tests use count=3 for a misfit file)."""
    crs, transform, width, height = _scene_grid(k)
    profile = dict(driver="GTiff", width=width, height=height, count=count, dtype="uint16", crs=crs,
                   transform=transform, nodata=MOSAIC_NODATA)
    with rasterio.open(path, "w", **profile) as ds:
        for b in range(count):
            ds.write(np.full((height, width), mosaic_value(k, b), "uint16"), b + 1)
            ds.set_band_description(b + 1, MOSAIC_BANDS[b])
        ds.update_tags(ACQUISITION_DATE=MOSAIC_DATES[k])
    return path


def make_mosaic(folder: Path) -> list[Path]:
    """Scenes `scene_{k}.tif` (k 1..3 in UTM 33N, k 4 in EPSG:4326) and `catalog.csv`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [write_scene(folder / f"scene_{k}.tif", k) for k in range(1, 5)]
    with open(folder / "catalog.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "cloud_cover", "sensor", "acquired", "priority"])
        for k in range(1, 5):
            w.writerow([f"scene_{k}.tif", round(k * 0.1, 1), "S2A" if k % 2 else "L8",
                        MOSAIC_DATES[k] + "T10:30:00", 5 - k])
        w.writerow(["missing.tif", 0.9, "S2A", "2024-09-15T10:30:00", 0])
    return paths


def top_scene(xs, ys):
    """Which mosaic scene is on top at each point (0: none), newest first as the `mosaic` service's
    time-enabled default orders them; -1 within 40 m of scene 4's edges, whose EPSG:4326 grid is fuzzy."""
    top = np.zeros(np.shape(xs), int)
    for k in (1, 2, 3):
        west, north = 500000 + (k - 1) * 400, 5002000 - (k - 1) * 200
        top[(xs > west) & (xs < west + 1200) & (ys < north) & (ys > north - 1200)] = k
    x0, y0, x1, y1 = SCENE4_UTM_BOX
    top[(xs > x0) & (xs < x1) & (ys > y0) & (ys < y1)] = 4
    inner = (xs > x0 + 40) & (xs < x1 - 40) & (ys > y0 + 40) & (ys < y1 - 40)
    outer = (xs > x0 - 40) & (xs < x1 + 40) & (ys > y0 - 40) & (ys < y1 + 40)
    top[outer & ~inner] = -1
    return top


def geographic_bounds(box, crs=DEM_CRS):
    """lon/lat bounds of a box, from its densified edges transformed by pyproj here."""
    t = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    x0, y0, x1, y1 = box
    s = np.linspace(0, 1, 101)
    xs = np.concatenate([x0 + (x1 - x0) * s, np.full(101, x1), x0 + (x1 - x0) * s, np.full(101, x0)])
    ys = np.concatenate([np.full(101, y0), y0 + (y1 - y0) * s, np.full(101, y1), y0 + (y1 - y0) * s])
    lon, lat = t.transform(xs, ys)
    return float(min(lon)), float(min(lat)), float(max(lon)), float(max(lat))


# --- Time series: 12 global monthly grids whose value names month and latitude -----------------------

TS_CRS = "EPSG:4326"


def ts_value(month, lat):
    """Value of the month's grid at a pixel-centre latitude."""
    return np.float32(month * 100 + np.asarray(lat, "f8"))


def make_timeseries(folder: Path) -> list[Path]:
    """Files `t2024_{MM}.tif` (1-degree global grids) and `times.csv` (date, date_end)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lats = 90 - (np.arange(180) + 0.5)
    paths = []
    for month in range(1, 13):
        path = folder / f"t2024_{month:02d}.tif"
        data = np.repeat(ts_value(month, lats)[:, None], 360, axis=1).astype("float32")
        with rasterio.open(path, "w", driver="GTiff", width=360, height=180, count=1, dtype="float32",
                           crs=TS_CRS, transform=from_origin(-180, 90, 1.0, 1.0)) as ds:
            ds.write(data, 1)
        paths.append(path)
    with open(folder / "times.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "date", "date_end"])
        for month in range(1, 13):
            last = calendar.monthrange(2024, month)[1]
            w.writerow([f"t2024_{month:02d}.tif", f"2024-{month:02d}-01", f"2024-{month:02d}-{last:02d}"])
    return paths
