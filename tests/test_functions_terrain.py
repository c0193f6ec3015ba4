"""Hillshade, Slope, Aspect, Curvature and ShadedRelief against independent truth: gdaldem (GDAL's
own implementation, run on the same GeoTIFF the service serves), textbook formulas written here,
and, for a geographic DEM, metres per degree from pyproj's geodesic.

Edge convention: gdaldem without -compute_edges writes nodata on the image border and next to
nodata; the server gives such cells a value (a nodata neighbour takes the centre's value, ArcGIS's
rule), and with RemoveEdgeEffect writes nodata exactly where gdaldem does. Interior cells, whose
3x3 window is all data, are compared value for value.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import rasterio
from pyproj import Geod, Transformer

from synth_functions import EXTENTS, GEO_ORIGIN, GEO_RES, GEO_SIZE, PLATEAU, export_tiff, function_client

pytestmark = pytest.mark.slow                    # gdaldem subprocesses as the reference


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    root, client = function_client(tmp_path_factory, "terrain")
    return root, client


def gdaldem(root, tmp_path, mode: str, *args: str, src: str = "terrain/dem.tif") -> np.ma.MaskedArray:
    out = tmp_path / f"{mode}.tif"
    subprocess.run(["gdaldem", mode, str(root / src), str(out), "-q", *args], check=True)
    with rasterio.open(out) as ds:
        return ds.read(1, masked=True)


def full_windows(valid: np.ndarray) -> np.ndarray:
    """Cells whose whole 3x3 window lies inside the image and holds data."""
    out = np.zeros_like(valid)
    inner = np.ones((valid.shape[0] - 2, valid.shape[1] - 2), bool)
    for r in range(3):
        for c in range(3):
            inner &= valid[r:r + valid.shape[0] - 2, c:c + valid.shape[1] - 2]
    out[1:-1, 1:-1] = inner
    return out


def dem_valid(root) -> np.ndarray:
    with rasterio.open(root / "terrain" / "dem.tif") as ds:
        return ~ds.read(1, masked=True).mask


@pytest.mark.parametrize("azimuth, altitude, z", [(315, 45, 1), (120, 30, 2.5), (0, 70, 0.7)])
def test_hillshade_matches_gdaldem(fx, tmp_path, azimuth, altitude, z):
    root, client = fx
    rule = {"rasterFunction": "Hillshade",
            "rasterFunctionArguments": {"Azimuth": azimuth, "Altitude": altitude, "ZFactor": z}}
    ours = export_tiff(client, "terrain", rule)[0][0]
    gd = gdaldem(root, tmp_path, "hillshade", "-az", str(azimuth), "-alt", str(altitude), "-z", str(z))
    interior = ~np.ma.getmaskarray(gd)
    assert interior.sum() > 10000
    # gdaldem writes 1 + 254 * cos(angle) (0 is its nodata); ArcGIS and this server 255 * cos(angle)
    expected = (gd.data.astype(float) - 1) * 255 / 254
    assert np.abs(ours.data[interior] - expected[interior]).max() <= 1.01
    assert not ours.mask[interior].any()
    # the edge convention: values on the border and around the hole too, nodata only in the hole
    assert ours.mask.sum() == (~dem_valid(root)).sum()


def test_multidirectional_hillshade_matches_gdaldem(fx, tmp_path):
    root, client = fx
    rule = {"rasterFunction": "Hillshade", "rasterFunctionArguments": {"HillshadeType": 1, "Altitude": 50}}
    ours = export_tiff(client, "terrain", rule)[0][0]
    gd = gdaldem(root, tmp_path, "hillshade", "-multidirectional", "-alt", "50")
    interior = ~np.ma.getmaskarray(gd)
    expected = (gd.data.astype(float) - 1) * 255 / 254
    assert np.abs(ours.data[interior] - expected[interior]).max() <= 1.01


def test_remove_edge_effect_leaves_nodata_where_gdaldem_does(fx, tmp_path):
    root, client = fx
    rule = {"rasterFunction": "Hillshade", "rasterFunctionArguments": {"RemoveEdgeEffect": True}}
    ours = export_tiff(client, "terrain", rule)[0][0]
    gd = gdaldem(root, tmp_path, "hillshade")
    assert np.array_equal(ours.mask, np.ma.getmaskarray(gd))
    assert np.array_equal(~ours.mask, full_windows(dem_valid(root)))


@pytest.mark.parametrize("slope_type, flags", [(1, []), ("PercentRise", ["-p"])])
def test_slope_matches_gdaldem(fx, tmp_path, slope_type, flags):
    root, client = fx
    rule = {"rasterFunction": "Slope", "rasterFunctionArguments": {"SlopeType": slope_type, "ZFactor": 1.7}}
    data, profile = export_tiff(client, "terrain", rule)
    assert profile["dtype"] == "float32"
    gd = gdaldem(root, tmp_path, "slope", "-s", repr(1 / 1.7), *flags)     # gdaldem's slope divides by -s
    interior = ~np.ma.getmaskarray(gd)
    np.testing.assert_allclose(data[0].data[interior], gd.data[interior], rtol=2e-5, atol=1e-3)
    assert data[0].data.max() > (60 if flags else 30)        # the terrain is steep enough to tell


def test_scaled_slope_adds_the_pixel_size_term_to_the_z_factor(fx, tmp_path):
    """SlopeType 3: z = ZFactor + cell size ** PSPower * PSZFactor (10 m cells here)."""
    root, client = fx
    rule = {"rasterFunction": "Slope",
            "rasterFunctionArguments": {"SlopeType": 3, "ZFactor": 1, "PSPower": 0.664, "PSZFactor": 0.024}}
    ours = export_tiff(client, "terrain", rule)[0][0]
    z = 1 + 10 ** 0.664 * 0.024
    gd = gdaldem(root, tmp_path, "slope", "-s", repr(1 / z))
    interior = ~np.ma.getmaskarray(gd)
    np.testing.assert_allclose(ours.data[interior], gd.data[interior], rtol=2e-5, atol=1e-3)


def test_aspect_matches_gdaldem_and_flat_is_minus_one(fx, tmp_path):
    root, client = fx
    ours = export_tiff(client, "terrain", {"rasterFunction": "Aspect"})[0][0]
    gd = gdaldem(root, tmp_path, "aspect")
    interior = ~np.ma.getmaskarray(gd)
    diff = np.abs(ours.data[interior] - gd.data[interior]) % 360
    assert np.minimum(diff, 360 - diff).max() < 0.01       # float32 rounding on the gentlest slopes
    # gdaldem leaves flat cells nodata (without -zero_for_flat); ArcGIS writes -1 there
    flat = full_windows(dem_valid(root)) & np.ma.getmaskarray(gd)
    assert flat[PLATEAU].sum() > 100
    assert np.all(ours.data[flat] == -1)


def _windows(z: np.ndarray):
    rows, cols = z.shape[0] - 2, z.shape[1] - 2
    return [z[r:r + rows, c:c + cols] for r in range(3) for c in range(3)]


@pytest.mark.parametrize("kind", [0, 1, 2])
def test_curvature_is_zevenbergen_and_thorne(fx, kind):
    """Standard = -2(D + E) 100; profile = -2(DG^2 + EH^2 + FGH)/(G^2 + H^2) 100;
    planform = 2(DH^2 + EG^2 - FGH)/(G^2 + H^2) 100, from the 9 cells Z1..Z9 (row by row from
    the north-west) and the cell size L."""
    root, client = fx
    ours = export_tiff(client, "terrain", {"rasterFunction": "Curvature",
                                            "rasterFunctionArguments": {"Type": kind, "ZFactor": 2}})[0][0]
    with rasterio.open(root / "terrain" / "dem.tif") as ds:
        z = ds.read(1).astype(float) * 2
    z1, z2, z3, z4, z5, z6, z7, z8, z9 = _windows(z)
    L = 10.0
    D, E = ((z4 + z6) / 2 - z5) / L ** 2, ((z2 + z8) / 2 - z5) / L ** 2
    F, G, H = (-z1 + z3 + z7 - z9) / (4 * L ** 2), (-z4 + z6) / (2 * L), (z2 - z8) / (2 * L)
    with np.errstate(all="ignore"):
        truth = {0: -2 * (D + E) * 100,
                 1: -2 * (D * G ** 2 + E * H ** 2 + F * G * H) / (G ** 2 + H ** 2) * 100,
                 2: 2 * (D * H ** 2 + E * G ** 2 - F * G * H) / (G ** 2 + H ** 2) * 100}[kind]
    interior = full_windows(dem_valid(root))[1:-1, 1:-1] & np.isfinite(truth)
    np.testing.assert_allclose(ours.data[1:-1, 1:-1][interior], truth[interior], rtol=1e-4, atol=1e-5)
    assert np.abs(truth[interior]).max() > 0.1


def test_shaded_relief_is_interpolated_colours_times_hillshade(fx, tmp_path):
    root, client = fx
    table = [[200, 0, 128, 0], [350, 255, 255, 0], [450, 160, 80, 40]]
    rule = {"rasterFunction": "ShadedRelief",
            "rasterFunctionArguments": {"Colormap": table, "Azimuth": 315, "Altitude": 45}}
    data, profile = export_tiff(client, "terrain", rule)
    assert data.shape[0] == 3 and profile["dtype"] == "uint8"
    shade = gdaldem(root, tmp_path, "hillshade")
    with rasterio.open(root / "terrain" / "dem.tif") as ds:
        z = ds.read(1).astype(float)
    interior = ~np.ma.getmaskarray(shade)
    values = [row[0] for row in table]
    for band in range(3):
        colour = np.interp(z, values, [row[1 + band] for row in table])
        expected = colour * (shade.data.astype(float) - 1) / 254
        assert np.abs(data[band].data[interior] - expected[interior]).max() <= 1.51


# --- a geographic DEM: metres per degree at each row's latitude -------------------------------------

GEOD = Geod(ellps="WGS84")


def _metres_per_degree(lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    step = 1e-4
    along = np.array([GEOD.inv(10.0, la, 10.0 + step, la)[2] for la in lat]) / step
    across = np.array([GEOD.inv(10.0, la - step / 2, 10.0, la + step / 2)[2] for la in lat]) / step
    return along, across


def _plane_slope(lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slope (degrees) and aspect of z = 500 + 3000 (lat - 60) + 1000 (lon - 10) at latitudes."""
    along, across = _metres_per_degree(lat)
    gx, gy = 1000 / along, 3000 / across
    return np.degrees(np.arctan(np.hypot(gx, gy))), np.degrees(np.arctan2(-gx, -gy)) % 360


def test_slope_and_aspect_on_a_geographic_crs_use_metres(fx):
    _, client = fx
    slope = export_tiff(client, "geo", {"rasterFunction": "Slope"})[0][0]
    aspect = export_tiff(client, "geo", {"rasterFunction": "Aspect"})[0][0]
    lat = GEO_ORIGIN[1] - (np.arange(GEO_SIZE[0]) + 0.5) * GEO_RES
    want_slope, want_aspect = _plane_slope(lat)
    inner = (slice(1, -1), slice(1, -1))
    np.testing.assert_allclose(slope.data[inner], np.broadcast_to(want_slope[1:-1, None], slope.data[inner].shape),
                               rtol=1e-4)
    np.testing.assert_allclose(aspect.data[inner], np.broadcast_to(want_aspect[1:-1, None], aspect.data[inner].shape),
                               atol=1e-3)
    # a degree of longitude is half a degree of latitude at 60 N: with one length for both (111 km)
    # the slope would be atan(hypot(1000, 3000) / 111 km) = 1.63 degrees
    assert 1.8 < slope.data[inner].mean() < 1.9


def test_slope_in_web_mercator_is_ground_slope(fx):
    """Mercator cells are 1 / cos(lat) times their ground size; the slope of a reprojected
    plane must still be the plane's."""
    _, client = fx
    w, s, e, n = EXTENTS["geo"]
    to_3857 = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    x0, y0 = to_3857.transform(w + 0.03, s + 0.02)
    x1, y1 = to_3857.transform(e - 0.03, n - 0.02)
    rows, cols = 40, 60
    slope = export_tiff(client, "geo", {"rasterFunction": "Slope"}, bbox=(x0, y0, x1, y1), size=(rows, cols),
                        bboxSR=3857, imageSR=3857, adjustAspectRatio="false",
                        interpolation="RSP_BilinearInterpolation")[0][0]
    ys = y1 - (np.arange(rows) + 0.5) * (y1 - y0) / rows
    _, lat = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True).transform(np.full(rows, x0), ys)
    want, _ = _plane_slope(lat)
    np.testing.assert_allclose(slope.data[1:-1, 1:-1], np.broadcast_to(want[1:-1, None], (rows - 2, cols - 2)),
                               rtol=2e-3)
