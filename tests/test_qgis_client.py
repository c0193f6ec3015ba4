"""QGIS's ArcGIS REST connection (the `arcgismapserver` provider of QGIS 3.22, Debian's python3-qgis)
draws image services in a UTM zone, in EPSG:4326 and in EPSG:3857, headless. The picture is
compared with the source file as rasterio reads it at the places QGIS drew.

QGIS runs in /usr/bin/python3 (where Debian installs it), in a subprocess, against a server this
test starts; the test is skipped only where that interpreter has no QGIS (.ci/run installs it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.crs import CRS
from rasterio.transform import Affine

from conftest import serving
from ogc_gateway.app import create_app
from ogc_gateway.config import Config, Limits, ServerConfig, ServiceConfig

SYSTEM_PYTHON = "/usr/bin/python3"
RENDER = Path(__file__).parent / "qgis_render.py"
CROP = Path(__file__).parent / "data" / "rgb_byte_crop.tif"


def _has_qgis() -> bool:
    try:
        return subprocess.run([SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True,
                              timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


pytestmark = [pytest.mark.qgis,    # QGIS (Debian's python3-qgis) in a subprocess; counts as slow
              pytest.mark.skipif(not _has_qgis(), reason="Debian's python3-qgis is not installed")]


def _pattern(path: Path, crs: int, transform: Affine, width: int, height: int) -> Path:
    """3 x uint8, smooth: red grows with the column, green with the row, blue constant."""
    rows, cols = np.mgrid[0:height, 0:width]
    data = np.stack([(cols * 255 // width), (rows * 255 // height), np.full_like(rows, 90)]).astype("uint8")
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=3, dtype="uint8",
                       crs=CRS.from_epsg(crs), transform=transform) as ds:
        ds.write(data)
    return path


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    root = tmp_path_factory.mktemp("qgis")
    for name in ("utm", "geographic", "mercator"):
        (root / name).mkdir()
    shutil.copy(CROP, root / "utm" / CROP.name)
    _pattern(root / "geographic" / "g.tif", 4326, Affine(0.01, 0, 10.0, 0, -0.01, 50.0), 300, 200)
    _pattern(root / "mercator" / "m.tif", 3857, Affine(50.0, 0, 1113194.9, 0, -50.0, 6446275.8), 300, 200)
    limits = Limits(max_image_width=4100, max_image_height=4100)
    config = Config(server=ServerConfig(cache_dir=root / "cache", limits=limits), services={
        name: ServiceConfig(name=name, sources=(str(root / name / "*.tif"),), default_resampling="nearest",
                            limits=limits) for name in ("utm", "geographic", "mercator")})
    with serving(create_app(config)) as url:
        yield root, url


def _qgis(url: str, crs: str, box, size, out: Path) -> dict:
    env = {"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin", "HOME": str(out.parent),
           "XDG_RUNTIME_DIR": str(out.parent), "NO_PROXY": "127.0.0.1,localhost"}
    done = subprocess.run([SYSTEM_PYTHON, str(RENDER), url, crs, ",".join(map(repr, box)),
                           f"{size[0]},{size[1]}", str(out)], capture_output=True, text=True, timeout=300,
                          env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, done.stdout + done.stderr
    return json.loads(lines[-1])


@pytest.mark.parametrize("name, crs, exact", [("utm", "EPSG:32618", True), ("geographic", "EPSG:4326", False),
                                              ("mercator", "EPSG:3857", False)])
def test_qgis_draws_the_service_where_its_data_is(services, tmp_path, name, crs, exact):
    root, url = services
    source = next((root / name).glob("*.tif"))
    with rasterio.open(source) as src:
        values, valid, bounds = src.read(), src.read_masks().min(axis=0) > 0, src.bounds
        size = (src.width, src.height)
        out = tmp_path / f"{name}.png"
        result = _qgis(f"{url}/arcgis/rest/services/{name}/ImageServer", crs, tuple(bounds), size, out)
        assert result["valid"] and result["crs"] == crs and not result["errors"], result
        picture = np.asarray(Image.open(out).convert("RGBA"))
        x0, y0, x1, y1 = result["extent"]
        h, w = picture.shape[:2]
        cols, rows = np.meshgrid((np.arange(w) + 0.5) * (x1 - x0) / w + x0, y1 - (np.arange(h) + 0.5) * (y1 - y0) / h)
        r, c = rasterio.transform.rowcol(src.transform, cols.ravel(), rows.ravel())
    r, c = np.asarray(r).reshape(h, w), np.asarray(c).reshape(h, w)
    inside = (r >= 0) & (r < size[1]) & (c >= 0) & (c < size[0])
    truth_valid = np.zeros((h, w), bool)
    truth_valid[inside] = valid[r[inside], c[inside]]
    drawn = picture[..., 3] > 0
    # Drawn where the file has data (a pixel's width of slack along the data's edges).
    assert (drawn == truth_valid).mean() > 0.97, (drawn.mean(), truth_valid.mean())
    both = drawn & truth_valid
    truth = np.zeros((h, w, 3), int)
    truth[inside] = np.moveaxis(values, 0, -1)[r[inside], c[inside]]
    diff = np.abs(picture[..., :3].astype(int) - truth)[both]
    if exact:
        assert (diff.max(axis=1) == 0).mean() > 0.95
    else:
        assert np.percentile(diff, 95) <= 3
