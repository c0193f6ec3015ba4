"""Masks from an alpha band and from an internal (per-dataset) mask travel into the export."""

from __future__ import annotations

import numpy as np
import rasterio
from rasterio.io import MemoryFile

from ogc_gateway.app import create_app
from ogc_gateway.config import Config, ServerConfig, ServiceConfig
from synth import from_origin

TRANSFORM = from_origin(500000, 5000400, 10, 10)      # 40 x 40 cells of 10 m


def write(path, count, alpha=False, internal_mask=False):
    value = np.add.outer(np.arange(40), np.arange(40)).astype("uint8")   # row + col: known per pixel
    valid = np.ones((40, 40), bool)
    valid[:, :10] = False                                               # western quarter has no data
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(path, "w", driver="GTiff", width=40, height=40, count=count + alpha,
                           dtype="uint8", crs="EPSG:32633", transform=TRANSFORM,
                           photometric="RGB" if count == 3 else "MINISBLACK") as ds:
            for b in range(1, count + 1):
                ds.write(value, b)
            if alpha:
                ds.colorinterp = [*ds.colorinterp[:count], rasterio.enums.ColorInterp.alpha]
                ds.write(np.where(valid, 255, 0).astype("uint8"), count + 1)
            if internal_mask:
                ds.write_mask(np.where(valid, 255, 0).astype("uint8"))
    return value, valid


def export(tmp_path, sources, bands):
    config = Config(server=ServerConfig(cache_dir=tmp_path / "cache"),
                    services={"m": ServiceConfig(name="m", sources=(str(sources),), default_resampling="nearest")})
    client = create_app(config).test_client()
    root = client.get("/arcgis/rest/services/m/ImageServer?f=json").get_json()
    assert root["bandCount"] == bands
    resp = client.get("/arcgis/rest/services/m/ImageServer/exportImage", query_string={
        "bbox": "500000,5000000,500400,5000400", "size": "40,40", "format": "tiff", "f": "image"})
    with MemoryFile(resp.data) as mem, mem.open() as ds:
        return ds.read(masked=True)


def test_alpha_band_is_a_mask_not_a_band(tmp_path):
    value, valid = write(tmp_path / "rgba.tif", 3, alpha=True)
    data = export(tmp_path, tmp_path / "rgba.tif", 3)
    assert data.shape[0] == 3
    assert np.array_equal(data.mask[0], ~valid)
    assert np.array_equal(data.data[1][valid], value[valid])


def test_internal_mask_is_honoured(tmp_path):
    value, valid = write(tmp_path / "masked.tif", 1, internal_mask=True)
    data = export(tmp_path, tmp_path / "masked.tif", 1)
    assert np.array_equal(data.mask[0], ~valid)
    assert np.array_equal(data.data[0][valid], value[valid])
