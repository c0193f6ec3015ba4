"""Analytic fixtures for the raster-function tests: every value a known function of position, so a
function's output is checked against a truth computed in the test (or by gdaldem on the same file).

  terrain/dem.tif   UTM 33N float32 DEM, 10 m: smooth hills, a flat plateau, a nodata hole
  geo/dem.tif       EPSG:4326 float32 plane at 60 N, z = 500 + 3000 (lat - 60) + 1000 (lon - 10)
  bands/bands.tif   4 bands uint16 (Blue, Green, Red, NearInfrared), each a formula of row and column,
                    nodata 0 in a block
  classes/classes.tif  uint8 class numbers 0..9 in 4x4 blocks, nodata 255 in a block
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from ogc_gateway.config import Config, Limits, ServerConfig, ServiceConfig

TERRAIN_CRS, TERRAIN_RES, TERRAIN_SIZE = "EPSG:32633", 10.0, (100, 120)      # rows, cols
TERRAIN_ORIGIN = (500000.0, 5000000.0)                                     # west, north
TERRAIN_NODATA = -9999.0
HOLE = (slice(40, 46), slice(70, 77))
PLATEAU = (slice(80, 96), slice(4, 22))

GEO_ORIGIN, GEO_RES, GEO_SIZE = (10.0, 60.1), 0.001, (100, 200)

BANDS_ORIGIN, BANDS_RES, BANDS_SIZE = (600000.0, 5100000.0), 20.0, (60, 80)
BAND_NAMES = ("Blue", "Green", "Red", "NearInfrared")
BANDS_HOLE = (slice(10, 14), slice(60, 66))

CLASSES_ORIGIN, CLASSES_RES, CLASSES_SIZE = (700000.0, 5200000.0), 30.0, (40, 48)
CLASSES_HOLE = (slice(0, 4), slice(0, 4))


def _write(path: Path, data: np.ndarray, crs: str, origin, res: float, nodata, descriptions=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    bands = data if data.ndim == 3 else data[np.newaxis]
    with rasterio.open(path, "w", driver="GTiff", width=bands.shape[2], height=bands.shape[1],
                       count=bands.shape[0], dtype=bands.dtype, crs=crs, nodata=nodata,
                       transform=Affine(res, 0, origin[0], 0, -res, origin[1])) as ds:
        ds.write(bands)
        if descriptions:
            ds.descriptions = descriptions
    return path


def terrain_z(rows, cols) -> np.ndarray:
    """Elevation (m) at cell centres: hills, a ridge and a slope; float32."""
    x = (np.asarray(cols, "f8") + 0.5) * TERRAIN_RES
    y = (np.asarray(rows, "f8") + 0.5) * TERRAIN_RES
    z = (300 + 60 * np.sin(x / 170.0) * np.cos(y / 130.0) + 0.08 * x - 0.05 * y
         + 90 * np.exp(-((x - 650) ** 2 + (y - 420) ** 2) / (2 * 140.0 ** 2)))
    return z.astype("float32")


def terrain_array() -> np.ndarray:
    rows, cols = np.mgrid[:TERRAIN_SIZE[0], :TERRAIN_SIZE[1]]
    z = terrain_z(rows, cols)
    z[PLATEAU] = 250.0
    z[HOLE] = TERRAIN_NODATA
    return z


def terrain_masked() -> np.ma.MaskedArray:
    """The DEM as float64 with its hole masked."""
    z = terrain_array().astype(float)
    return np.ma.MaskedArray(z, mask=z == TERRAIN_NODATA)


def bands_array() -> np.ndarray:
    r, c = np.mgrid[:BANDS_SIZE[0], :BANDS_SIZE[1]]
    data = np.stack([100 + c, 200 + 3 * r, 300 + 2 * c + r, 2000 + 7 * r - 3 * c]).astype("uint16")
    data[:, BANDS_HOLE[0], BANDS_HOLE[1]] = 0
    return data


def classes_array() -> np.ndarray:
    r, c = np.mgrid[:CLASSES_SIZE[0], :CLASSES_SIZE[1]]
    data = ((r // 4 + c // 4) % 10).astype("uint8")
    data[CLASSES_HOLE] = 255
    return data


def geo_z(rows, cols) -> np.ndarray:
    lon = GEO_ORIGIN[0] + (np.asarray(cols, "f8") + 0.5) * GEO_RES
    lat = GEO_ORIGIN[1] - (np.asarray(rows, "f8") + 0.5) * GEO_RES
    return (500 + 3000 * (lat - 60) + 1000 * (lon - 10)).astype("float32")


def make_all(root: Path) -> Path:
    _write(root / "terrain" / "dem.tif", terrain_array(), TERRAIN_CRS, TERRAIN_ORIGIN, TERRAIN_RES, TERRAIN_NODATA)
    rows, cols = np.mgrid[:GEO_SIZE[0], :GEO_SIZE[1]]
    _write(root / "geo" / "dem.tif", geo_z(rows, cols), "EPSG:4326", GEO_ORIGIN, GEO_RES, -9999.0)
    _write(root / "bands" / "bands.tif", bands_array(), "EPSG:32633", BANDS_ORIGIN, BANDS_RES, 0, BAND_NAMES)
    _write(root / "classes" / "classes.tif", classes_array(), "EPSG:32633", CLASSES_ORIGIN, CLASSES_RES, 255)
    return root


def extent(origin, res: float, size) -> tuple[float, float, float, float]:
    west, north = origin
    return west, north - size[0] * res, west + size[1] * res, north


EXTENTS = {"terrain": extent(TERRAIN_ORIGIN, TERRAIN_RES, TERRAIN_SIZE),
           "geo": extent(GEO_ORIGIN, GEO_RES, GEO_SIZE),
           "bands": extent(BANDS_ORIGIN, BANDS_RES, BANDS_SIZE),
           "classes": extent(CLASSES_ORIGIN, CLASSES_RES, CLASSES_SIZE)}
SIZES = {"terrain": TERRAIN_SIZE, "geo": GEO_SIZE, "bands": BANDS_SIZE, "classes": CLASSES_SIZE}


def function_client(tmp_path_factory, label: str):
    """(data folder, test client) of the four fixtures, in fresh folders named after `label`."""
    from ogc_gateway.app import create_app

    root = make_all(tmp_path_factory.mktemp(f"{label}-data"))
    return root, create_app(function_config(root, tmp_path_factory.mktemp(f"{label}-cache"))).test_client()


def function_config(root: Path, cache: Path, templates: dict | None = None, extra: dict | None = None) -> Config:
    """A Config serving the four fixtures (nearest resampling, so native requests return the
    files' own values); `templates` maps a service to its raster_functions."""
    limits = Limits(max_image_width=4100, max_image_height=4100)
    services = {name: ServiceConfig(name=name, sources=(str(root / name / "*.tif"),), default_resampling="nearest",
                                    limits=limits, raster_functions=tuple((templates or {}).get(name, ())))
                for name in ("terrain", "geo", "bands", "classes")}
    for name, folder in (extra or {}).items():
        services[name] = ServiceConfig(name=name, sources=(str(folder / "*.tif"),), default_resampling="nearest",
                                       limits=limits)
    return Config(server=ServerConfig(cache_dir=cache, limits=limits), services=services)


# --- requests ---------------------------------------------------------------------------------------

EXPORT = "/arcgis/rest/services/{}/ImageServer/exportImage"
ROOT = "/arcgis/rest/services/{}/ImageServer"


def export_tiff(client, service: str, rule=None, bbox=None, size=None, **params):
    """(masked (bands, rows, cols) array, profile) of an exportImage GeoTIFF; by default the
    service's whole extent at its native size with nearest-neighbour reads."""
    import json

    from rasterio.io import MemoryFile

    bbox = bbox or EXTENTS[service]
    rows, cols = size or SIZES[service]
    query = {"f": "image", "format": "tiff", "bbox": ",".join(repr(float(v)) for v in bbox),
             "size": f"{cols},{rows}", "interpolation": "RSP_NearestNeighbor"}
    if rule is not None:
        query["renderingRule"] = json.dumps(rule)
    query |= params
    resp = client.get(EXPORT.format(service), query_string=query)
    assert resp.content_type == "image/tiff", resp.data[:400]
    with MemoryFile(resp.data) as mf, mf.open() as ds:
        return ds.read(masked=True), ds.profile


def rest_error(resp) -> dict:
    """The ArcGIS error object of a REST answer (which must be one)."""
    assert resp.status_code < 500 and resp.content_type.startswith("application/json"), (resp.status_code, resp.data[:300])
    body = resp.get_json()
    assert "error" in body, body
    return body["error"]
