"""Analytic fixtures for mosaic methods and operators: overlapping items whose every pixel names its
item, a tilted scene with a nodata collar beside a neighbour, and the geometry truths tests compute
from (which items cover a point, each item's centre, distance to its edges).

Everything is in EPSG:32633 on a 10 m grid whose cell edges fall on round coordinates, so a request
on that grid samples each item exactly at its own pixel centres.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

CRS = "EPSG:32633"
RES = 10.0
NODATA = 0


@dataclass(frozen=True)
class Box:
    """One item: a rectangle of constant value `value` (its name), with a nodata `hole` box."""

    name: str
    west: float
    south: float
    east: float
    north: float
    value: int
    acquired: str
    cloud: float
    priority: int
    off_nadir: float
    hole: tuple[float, float, float, float] | None = None

    @property
    def centre(self) -> tuple[float, float]:
        return (self.west + self.east) / 2, (self.south + self.north) / 2

    def covers(self, x, y):
        """Where the item has data (inside, not in its hole)."""
        inside = (x > self.west) & (x < self.east) & (y > self.south) & (y < self.north)
        if self.hole is not None:
            hx0, hy0, hx1, hy1 = self.hole
            inside &= ~((x > hx0) & (x < hx1) & (y > hy0) & (y < hy1))
        return inside

    def edge_distance(self, x, y):
        """Distance from inside points to the item's nearest edge (its outline, holes aside)."""
        return np.minimum.reduce([x - self.west, self.east - x, y - self.south, self.north - y])


# Three overlapping items (OBJECTIDs 1, 2, 3 by sorted path). A and B overlap in x 500600..501000;
# C overlaps both from the north. B has a nodata hole inside its overlap with A.
BOXES = (
    Box("a", 500000, 5000000, 501000, 5001000, 100, "2024-01-10", 0.5, 3, 12.0),
    Box("b", 500600, 5000000, 501600, 5001000, 200, "2024-03-10", 0.1, 1, -4.0,
        hole=(500850, 5000100, 500950, 5000200)),
    Box("c", 500300, 5000600, 501300, 5001600, 300, "2024-05-10", 0.3, 2, 8.0),
)
EXTENT = (500000.0, 5000000.0, 501600.0, 5001600.0)


def write_box(folder: Path, box: Box) -> Path:
    width, height = round((box.east - box.west) / RES), round((box.north - box.south) / RES)
    data = np.full((height, width), box.value, "uint16")
    if box.hole is not None:
        hx0, hy0, hx1, hy1 = box.hole
        c0, c1 = round((hx0 - box.west) / RES), round((hx1 - box.west) / RES)
        r0, r1 = round((box.north - hy1) / RES), round((box.north - hy0) / RES)
        data[r0:r1, c0:c1] = NODATA
    path = Path(folder) / f"{box.name}.tif"
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1, dtype="uint16",
                       crs=CRS, nodata=NODATA, transform=Affine(RES, 0, box.west, 0, -RES, box.north)) as ds:
        ds.write(data, 1)
    return path


def make_overlaps(folder: Path, boxes=BOXES) -> list[Path]:
    """The items as GeoTIFFs plus `catalog.csv` (acquired, cloud, priority, off_nadir)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [write_box(folder, b) for b in boxes]
    with open(folder / "catalog.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "acquired", "cloud", "priority", "off_nadir"])
        for b in boxes:
            w.writerow([f"{b.name}.tif", b.acquired, b.cloud, b.priority, b.off_nadir])
    return paths


def pixel_centres(bbox, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) arrays of pixel-centre coordinates of a north-up grid."""
    x0, y0, x1, y1 = bbox
    xs = x0 + (np.arange(width) + 0.5) * (x1 - x0) / width
    ys = y1 - (np.arange(height) + 0.5) * (y1 - y0) / height
    return np.meshgrid(xs, ys)


# --- a tilted scene: a square rotated 30 degrees inside a north-up grid with a nodata collar --------

TILT_CENTRE = (502500.0, 5000500.0)
TILT_HALF = 300.0                 # half side of the rotated square of data
TILT_ANGLE = math.radians(30)
TILT_VALUE, NEIGHBOUR_VALUE = 700, 800
# The neighbour fills the east part of the tilted grid's box, where the collar is.
NEIGHBOUR = (502600.0, 5000000.0, 503400.0, 5001000.0)


def in_tilted_square(x, y):
    """Whether points lie in the rotated square of data."""
    dx, dy = np.asarray(x) - TILT_CENTRE[0], np.asarray(y) - TILT_CENTRE[1]
    u = dx * math.cos(TILT_ANGLE) + dy * math.sin(TILT_ANGLE)
    v = -dx * math.sin(TILT_ANGLE) + dy * math.cos(TILT_ANGLE)
    return (np.abs(u) < TILT_HALF) & (np.abs(v) < TILT_HALF)


def tilted_square_ring() -> list[tuple[float, float]]:
    c, s = math.cos(TILT_ANGLE), math.sin(TILT_ANGLE)
    corners = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
    return [(TILT_CENTRE[0] + TILT_HALF * (u * c - v * s), TILT_CENTRE[1] + TILT_HALF * (u * s + v * c))
            for u, v in corners]


def make_tilted(folder: Path) -> tuple[Path, Path]:
    """`tilted.tif` (a 100x100 grid centred on TILT_CENTRE, data only in the rotated square) and
    `neighbour.tif` (constant, covering NEIGHBOUR), with `catalog.csv` ranking the tilted scene
    first by priority."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    west, north = TILT_CENTRE[0] - 500, TILT_CENTRE[1] + 500
    xs, ys = pixel_centres((west, north - 1000, west + 1000, north), 100, 100)
    data = np.where(in_tilted_square(xs, ys), TILT_VALUE, NODATA).astype("uint16")
    tilted = folder / "tilted.tif"
    with rasterio.open(tilted, "w", driver="GTiff", width=100, height=100, count=1, dtype="uint16", crs=CRS,
                       nodata=NODATA, transform=Affine(RES, 0, west, 0, -RES, north)) as ds:
        ds.write(data, 1)
    x0, y0, x1, y1 = NEIGHBOUR
    width, height = round((x1 - x0) / RES), round((y1 - y0) / RES)
    neighbour = folder / "neighbour.tif"
    with rasterio.open(neighbour, "w", driver="GTiff", width=width, height=height, count=1, dtype="uint16",
                       crs=CRS, nodata=NODATA, transform=Affine(RES, 0, x0, 0, -RES, y1)) as ds:
        ds.write(np.full((height, width), NEIGHBOUR_VALUE, "uint16"), 1)
    with open(folder / "catalog.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "priority"])
        w.writerow(["tilted.tif", 1])
        w.writerow(["neighbour.tif", 2])
    return tilted, neighbour
