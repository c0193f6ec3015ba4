"""Colormap, Remap, Mask, Clip, band selection, Local/Arithmetic/Con/SetNull, Convolution, focal
Statistics and Resample against explicit tables and brute-force definitions written here."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from shapely.geometry import Point, Polygon

from ogc_gateway.app import create_app
from synth_functions import (
    BANDS_HOLE,
    CLASSES_ORIGIN,
    CLASSES_RES,
    CLASSES_SIZE,
    EXTENTS,
    bands_array,
    classes_array,
    export_tiff,
    function_client,
    function_config,
    make_all,
    rest_error,
    terrain_masked,
)


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return function_client(tmp_path_factory, "val")[1], terrain_masked()


CLASSES = classes_array()
CLASS_HOLE = CLASSES == 255
B = bands_array().astype(float)
B_HOLE = np.zeros(B.shape[1:], bool)
B_HOLE[BANDS_HOLE] = True


def run(client, service, function, **args):
    data, profile = export_tiff(client, service, {"rasterFunction": function, "rasterFunctionArguments": args})
    return data, profile["dtype"]


def error_message(client, service, rule) -> str:
    import json
    resp = client.get(f"/arcgis/rest/services/{service}/ImageServer/exportImage",
                      query_string={"f": "image", "format": "tiff", "size": "8,8", "renderingRule": json.dumps(rule)})
    error = rest_error(resp)
    assert error["code"] == 400
    return error["message"]


# --- colormaps --------------------------------------------------------------------------------------

TABLE = {0: (0, 0, 0), 1: (255, 0, 0), 2: (0, 255, 0), 3: (0, 0, 255), 4: (255, 255, 0), 5: (0, 255, 255),
         6: (255, 0, 255), 8: (128, 128, 128), 9: (255, 255, 255)}      # no entry for 7


def test_explicit_colormap_is_its_table(fx):
    client, _ = fx
    data, dtype = run(client, "classes", "Colormap", Colormap=[[v, *rgb] for v, rgb in TABLE.items()])
    assert dtype == "uint8" and data.shape[0] == 3
    for value, rgb in TABLE.items():
        cells = CLASSES == value
        for band in range(3):
            assert np.all(data[band].data[cells] == rgb[band])
    assert np.array_equal(data.mask[0], CLASS_HOLE | (CLASSES == 7))      # unlisted values: nodata


def test_named_gray_colormap_and_algorithmic_ramp_on_8_bit_values(fx):
    client, _ = fx
    gray, _ = run(client, "classes", "Colormap", ColormapName="gray")
    assert all(np.array_equal(gray[b].data[~CLASS_HOLE], CLASSES[~CLASS_HOLE]) for b in range(3))
    ramp = {"type": "algorithmic", "fromColor": [0, 0, 255, 255], "toColor": [255, 0, 0, 255],
            "algorithm": "esriCIELabAlgorithm"}
    data, _ = run(client, "classes", "Colormap", colorRamp=ramp)
    t = CLASSES.astype(float) / 255
    assert np.array_equal(data[0].data[~CLASS_HOLE], np.rint(255 * t)[~CLASS_HOLE])
    assert np.array_equal(data[2].data[~CLASS_HOLE], np.rint(255 * (1 - t))[~CLASS_HOLE])


def test_ramp_over_a_float_band_spans_its_statistics(fx):
    client, dem = fx
    parts = {"type": "multipart", "colorRamps": [
        {"type": "algorithmic", "fromColor": [0, 0, 0], "toColor": [100, 0, 0]},
        {"type": "algorithmic", "fromColor": [100, 0, 0], "toColor": [100, 200, 0]}]}
    data, _ = run(client, "terrain", "Colormap", ColorRamp=parts)
    t = (dem.data - dem.min()) / (dem.max() - dem.min())
    red = np.interp(t, [0, 0.5, 0.5, 1], [0, 100, 100, 100])
    green = np.interp(t, [0, 0.5, 0.5, 1], [0, 0, 0, 200])
    ok = ~dem.mask
    assert np.array_equal(data[0].data[ok], np.rint(red)[ok]) and np.array_equal(data[1].data[ok], np.rint(green)[ok])


def test_random_colormap_gives_one_colour_per_value(fx):
    client, _ = fx
    data, _ = run(client, "classes", "Colormap", ColormapName="Random")
    colours = {v: {tuple(data[:, r, c].data) for r, c in zip(*np.nonzero(CLASSES == v))} for v in range(10)}
    assert all(len(c) == 1 for c in colours.values())
    assert len({next(iter(c)) for c in colours.values()}) == 10


def test_colormap_to_rgb_of_a_paletted_band(tmp_path):
    palette = {0: (0, 0, 0, 255), 1: (200, 10, 10, 255), 2: (10, 200, 10, 255), 3: (10, 10, 200, 255)}
    values = (np.arange(64).reshape(8, 8) % 4).astype("uint8")
    (tmp_path / "pal").mkdir()
    with rasterio.open(tmp_path / "pal" / "pal.tif", "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8",
                       crs="EPSG:32633", transform=rasterio.Affine(10, 0, 500000, 0, -10, 5000080)) as ds:
        ds.write(values, 1)
        ds.write_colormap(1, palette)
    config = function_config(make_all(tmp_path), tmp_path / "cache", extra={"pal": tmp_path / "pal"})
    client = create_app(config).test_client()
    data, profile = export_tiff(client, "pal", {"rasterFunction": "ColormapToRGB"}, bbox=(500000, 5000000, 500080, 5000080),
                                size=(8, 8))
    assert profile["dtype"] == "uint8" and data.shape[0] == 3
    for band in range(3):
        assert np.array_equal(data[band].data, np.vectorize(lambda v: palette[v][band])(values))  # noqa: B023  (used at once)


def test_colormap_to_rgb(fx):
    client, _ = fx
    inner = {"rasterFunction": "Colormap", "rasterFunctionArguments": {"ColormapName": "Gray"}}
    data, dtype = run(client, "classes", "ColormapToRGB", Raster=inner)
    assert dtype == "uint8" and np.array_equal(data[1].data[~CLASS_HOLE], CLASSES[~CLASS_HOLE])
    assert "colour table" in error_message(client, "classes", {"rasterFunction": "ColormapToRGB"})


# --- remap, mask, clip ------------------------------------------------------------------------------

def test_remap_ranges_nodata_ranges_and_unmatched(fx):
    client, _ = fx
    data, dtype = run(client, "classes", "Remap", InputRanges=[0, 3, 3, 6, 6, 9], OutputValues=[10, 20, 30],
                      NoDataRanges=[5, 5])
    assert dtype == "uint8"
    expected = np.select([CLASSES < 3, CLASSES < 6, CLASSES < 9], [10, 20, 30], CLASSES.astype(int))
    hole = CLASS_HOLE | (CLASSES == 5)
    assert np.array_equal(data[0].data[~hole], expected[~hole]) and np.array_equal(data[0].mask, hole)
    strict, _ = run(client, "classes", "Remap", InputRanges=[0, 3], OutputValues=[1.5], AllowUnmatched=False)
    assert np.array_equal(strict[0].mask, CLASS_HOLE | (CLASSES >= 3))
    assert np.all(strict[0].data[CLASSES < 3] == 1.5)


def test_mask_values_and_ranges_any_or_all(fx):
    client, _ = fx
    blue, green = B[0], B[1]
    any_, _ = run(client, "bands", "Mask", NoDataValues=["100 101", ""], IncludedRanges=[0, 10000, 0, 300])
    hit = np.isin(blue, [100, 101]) | (green > 300)
    assert np.array_equal(any_.mask[0], B_HOLE | hit) and np.array_equal(any_.mask[3], any_.mask[0])
    all_, _ = run(client, "bands", "Mask", NoDataValues=["100 101", ""], IncludedRanges=[0, 10000, 0, 300],
                  NoDataInterpretation="esriNoDataMatchAll")
    assert np.array_equal(all_.mask[0], B_HOLE | (np.isin(blue, [100, 101]) & (green > 300)))
    assert np.array_equal(all_[2].data[~all_.mask[2]], B[2][~all_.mask[2]])


def _centres():
    rows, cols = CLASSES_SIZE
    xs = CLASSES_ORIGIN[0] + (np.arange(cols) + 0.5) * CLASSES_RES
    ys = CLASSES_ORIGIN[1] - (np.arange(rows) + 0.5) * CLASSES_RES
    return xs, ys


def test_clip_inside_outside_and_extent(fx):
    client, _ = fx
    w, s, e, n = EXTENTS["classes"]
    ring = [[w + 100, s + 100], [w + 900, s + 300], [w + 600, n - 150], [w + 100, s + 100]]
    polygon = Polygon(ring)
    xs, ys = _centres()
    inside = np.array([[polygon.contains(Point(x, y)) for x in xs] for y in ys])
    geometry = {"rings": [ring]}
    keep, _ = run(client, "classes", "Clip", ClippingGeometry=geometry, ClipType=1)
    assert np.array_equal(keep[0].mask, CLASS_HOLE | ~inside)
    cut, _ = run(client, "classes", "Clip", ClippingGeometry=geometry, ClipType="ClippingInside",
                 Extent={"xmin": w, "ymin": s, "xmax": w + 700, "ymax": n})
    assert np.array_equal(cut[0].mask, CLASS_HOLE | inside | (xs > w + 700)[None, :])
    assert np.array_equal(cut[0].data[~cut.mask[0]], CLASSES[~cut.mask[0]])


def test_clip_geometry_in_another_spatial_reference(fx):
    client, _ = fx
    from pyproj import Transformer
    w, s, e, n = EXTENTS["classes"]
    lon0, lat0 = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True).transform(w + 300, s + 300)
    lon1, lat1 = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True).transform(e - 300, n - 300)
    box = {"xmin": lon0, "ymin": lat0, "xmax": lon1, "ymax": lat1, "spatialReference": {"wkid": 4326}}
    data, _ = run(client, "classes", "Clip", ClippingGeometry=box)
    kept = ~data.mask[0]
    xs, ys = _centres()
    assert kept.sum() > 100
    assert xs[kept.any(axis=0)].min() > w + 250 and xs[kept.any(axis=0)].max() < e - 250


# --- bands --------------------------------------------------------------------------------------------

def test_extract_band_by_ids_names_and_wavelengths(fx):
    client, _ = fx
    by_id, dtype = run(client, "bands", "ExtractBand", BandIDs=[3, 0])
    assert dtype == "uint16" and np.array_equal(by_id.data[:, ~B_HOLE], B[[3, 0]][:, ~B_HOLE])
    by_name, _ = run(client, "bands", "ExtractBand", BandNames=["NIR", "red"])
    assert np.array_equal(by_name.data[:, ~B_HOLE], B[[3, 2]][:, ~B_HOLE])
    by_wavelength, _ = run(client, "bands", "ExtractBand", BandWavelengths=[560, 0.48])
    assert np.array_equal(by_wavelength.data[:, ~B_HOLE], B[[1, 0]][:, ~B_HOLE])
    best, _ = run(client, "bands", "ExtractBand", BandIDs=[2, 9], MissingBandAction=0)
    assert best.shape[0] == 1
    assert "band 9 does not exist" in error_message(client, "bands", {"rasterFunction": "ExtractBand",
                                                                      "rasterFunctionArguments": {"BandIDs": [9]}})


def test_composite_band_and_grayscale(fx):
    client, _ = fx
    nir = {"rasterFunction": "ExtractBand", "rasterFunctionArguments": {"BandIDs": [3]}}
    data, dtype = run(client, "bands", "CompositeBand", Rasters=[nir, "$$"])
    assert data.shape[0] == 5 and dtype == "uint16"
    assert np.array_equal(data.data[:, ~B_HOLE], np.concatenate([B[3:4], B])[:, ~B_HOLE])
    gray, dtype = run(client, "bands", "Grayscale", ConversionParameters=[1, 2, 1, 0])
    assert dtype == "uint16"
    assert np.array_equal(gray[0].data[~B_HOLE], np.rint((B[0] + 2 * B[1] + B[2]) / 4)[~B_HOLE])


# --- local maths ------------------------------------------------------------------------------------

def test_arithmetic_with_a_scalar_and_a_raster(fx):
    client, _ = fx
    data, dtype = run(client, "classes", "Arithmetic", Raster2=2.5, Operation=3)
    assert dtype == "float32" and np.array_equal(data[0].data[~CLASS_HOLE], (CLASSES * 2.5)[~CLASS_HOLE])
    ratio, _ = run(client, "classes", "Arithmetic", Raster2="$$", Operation="Divide")
    assert np.array_equal(ratio[0].mask, CLASS_HOLE | (CLASSES == 0))          # 0 / 0: nodata
    mod, _ = run(client, "classes", "Arithmetic", Raster2=4, Operation=6)
    assert np.array_equal(mod[0].data[~CLASS_HOLE], (CLASSES % 4)[~CLASS_HOLE])


def band(i):
    return {"rasterFunction": "ExtractBand", "rasterFunctionArguments": {"BandIDs": [i]}}


def test_local_operations_over_rasters_and_constants(fx):
    client, _ = fx
    ok = ~B_HOLE
    for op, rasters, truth in [
        (1, [band(0), 5], B[0] + 5), (23, [band(3), band(0)], B[3] / B[0]), (28, [band(2), 400], B[2] > 400),
        (39, [band(0), band(1), band(2)], B[:3].max(axis=0)), (40, [band(0), band(1)], (B[0] + B[1]) / 2),
        (47, [band(0), band(2), 1000], 1000 - B[0]), (55, [band(0), band(1), 7], B[0] + B[1] + 7),
        (44, [band(3), 7], np.fmod(B[3], 7)), (10, [band(0)], B[0]), (53, [band(0)], B[0] ** 2),
        (11, [band(1), 6], B[1].astype(int) & 6), (17, [band(0), 0], 0 * B[0]),
    ]:
        data, _ = run(client, "bands", "Local", Rasters=rasters, Operation=op)
        np.testing.assert_allclose(data[0].data[ok], np.asarray(truth, float)[ok], rtol=1e-6, err_msg=str(op))


def test_is_null_con_set_null_and_statistics_ignoring_nodata(fx):
    client, _ = fx
    isnull, _ = run(client, "classes", "Local", Rasters=["$$"], Operation=31)
    assert not isnull.mask.any() and np.array_equal(isnull[0].data, CLASS_HOLE.astype("float32"))
    small = {"rasterFunction": "Local", "rasterFunctionArguments": {"Rasters": ["$$", 5], "Operation": "LessThan"}}
    con, _ = run(client, "classes", "Con", Rasters=[small, 100, "$$"])
    assert np.array_equal(con[0].data[~CLASS_HOLE], np.where(CLASSES < 5, 100, CLASSES)[~CLASS_HOLE])
    setnull, _ = run(client, "classes", "SetNull", Rasters=[small, "$$"])
    assert np.array_equal(setnull[0].mask, CLASS_HOLE | (CLASSES < 5))
    gappy = {"rasterFunction": "SetNull", "rasterFunctionArguments": {"Rasters": [small, "$$"]}}
    mean, _ = run(client, "classes", "Local", Rasters=[gappy, 1], Operation="Mean")
    ignoring, _ = run(client, "classes", "Local", Rasters=[gappy, 1], Operation=68)
    assert np.array_equal(mean[0].mask, setnull[0].mask)
    assert np.array_equal(ignoring[0].data[CLASSES < 5], np.ones((CLASSES < 5).sum()))
    assert np.array_equal(ignoring[0].mask, np.zeros_like(CLASS_HOLE))       # the constant is always there


def test_majority_variety_pick_and_percentile(fx):
    client, _ = fx
    ok = ~B_HOLE
    x, y = band(0), band(1)
    majority, _ = run(client, "bands", "Local", Rasters=[x, y, x], Operation=38)
    assert np.array_equal(majority[0].data[ok], B[0][ok])
    variety, _ = run(client, "bands", "Local", Rasters=[x, y, x, 100], Operation=58)
    assert np.array_equal(variety[0].data[ok], np.where(B[0] == 100, 2, 3)[ok])
    pick, _ = run(client, "bands", "Local", Rasters=[2, x, y], Operation=84)
    assert np.array_equal(pick[0].data[ok], B[1][ok])
    pct, _ = run(client, "bands", "Local", Rasters=[x, y, band(2), band(3)], Operation=93, PercentileValue=50,
                 PercentileInterpolationType=2)
    np.testing.assert_allclose(pct[0].data[ok], np.percentile(B, 50, axis=0)[ok], rtol=1e-6)


# --- neighbourhoods -----------------------------------------------------------------------------------

def correlate(z: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Interior cells only: sum of kernel x window, the kernel's first row to the north."""
    kr, kc = kernel.shape[0] // 2, kernel.shape[1] // 2
    out = np.zeros((z.shape[0] - 2 * kr, z.shape[1] - 2 * kc))
    for u in range(kernel.shape[0]):
        for v in range(kernel.shape[1]):
            out += kernel[u, v] * z[u:u + out.shape[0], v:v + out.shape[1]]
    return out


def test_user_and_predefined_convolution_kernels(fx):
    client, dem = fx
    kernel = np.array([[0, 1, 2, 1, 0], [1, -1, 3, 0, 1], [0, 2, 1, 1, 0]], float)      # 3 rows, 5 columns
    data, dtype = run(client, "terrain", "Convolution", Type=-1, Rows=3, Columns=5, Kernel=kernel.ravel().tolist())
    assert dtype == "float32"
    truth = correlate(dem.data, kernel)
    inner = (slice(1, -1), slice(2, -2))
    full = ~np.array([[dem.mask[r - 1:r + 2, c - 2:c + 3].any() for c in range(2, dem.shape[1] - 2)]
                      for r in range(1, dem.shape[0] - 1)])
    np.testing.assert_allclose(data[0].data[inner][full], truth[full], rtol=1e-5)
    assert np.array_equal(data[0].mask, dem.mask)                   # nodata only where the centre is
    sobel, _ = run(client, "terrain", "Convolution", Type="SobelHorizontal")
    full3 = ~np.array([[dem.mask[r - 1:r + 2, c - 1:c + 2].any() for c in range(1, dem.shape[1] - 1)]
                       for r in range(1, dem.shape[0] - 1)])
    truth3 = correlate(dem.data, np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], float))
    np.testing.assert_allclose(sobel[0].data[1:-1, 1:-1][full3], truth3[full3], rtol=1e-5, atol=1e-3)


def focal_truth(values: np.ndarray, valid: np.ndarray, rows: int, cols: int, reduce) -> np.ndarray:
    kr, kc = rows // 2, cols // 2
    out = np.full(values.shape, np.nan)
    for r in range(values.shape[0]):
        for c in range(values.shape[1]):
            window = values[max(0, r - kr):r + kr + 1, max(0, c - kc):c + kc + 1]
            ok = valid[max(0, r - kr):r + kr + 1, max(0, c - kc):c + kc + 1]
            if ok.any():
                out[r, c] = reduce(window[ok])
    return out


def _majority(v):
    values, counts = np.unique(v, return_counts=True)
    return values[np.argmax(counts)]


@pytest.mark.parametrize("kind, reduce", [("Min", np.min), ("Max", np.max), ("Mean", np.mean),
                                          ("StandardDeviation", np.std), ("Median", np.median),
                                          ("Majority", _majority)])
def test_focal_statistics_use_the_neighbours_that_hold_data(fx, kind, reduce):
    client, _ = fx
    data, _ = run(client, "classes", "Statistics", KernelRows=3, KernelColumns=5, Type=kind)
    truth = focal_truth(CLASSES.astype(float), ~CLASS_HOLE, 3, 5, reduce)
    ok = ~CLASS_HOLE
    np.testing.assert_allclose(data[0].data[ok], truth[ok], rtol=1e-6, atol=1e-6)
    assert np.array_equal(data[0].mask, CLASS_HOLE)


def test_focal_fill_nodata_only(fx):
    client, _ = fx
    data, _ = run(client, "classes", "Statistics", Rows=5, Columns=5, Type=2, FillNoDataOnly=True)
    truth = focal_truth(CLASSES.astype(float), ~CLASS_HOLE, 5, 5, np.max)
    assert np.array_equal(data[0].data[~CLASS_HOLE], CLASSES[~CLASS_HOLE])
    filled = CLASS_HOLE & np.isfinite(truth)
    assert filled.sum() == 12 and np.array_equal(data[0].data[filled], truth[filled])   # 2 cells into the 4x4 hole
    assert np.array_equal(data[0].mask, CLASS_HOLE & ~filled)


def test_resample_type_and_output_cell_size(fx):
    client, dem = fx
    w, s, e, n = EXTENTS["terrain"]
    # bilinear asked for, nearest forced by Resample: each output cell takes the cell under its centre
    data, _ = export_tiff(client, "terrain", {"rasterFunction": "Resample",
                                              "rasterFunctionArguments": {"ResamplingType": 0}},
                          bbox=(w, n - 330, w + 330, n), size=(22, 22), interpolation="RSP_BilinearInterpolation")
    idx = (np.arange(22) * 15 + 7.5) // 10
    assert np.array_equal(data[0].data, dem.data[np.ix_(idx.astype(int), idx.astype(int))].astype("float32"))
    coarse, _ = run(client, "terrain", "Resample", OutputCellsize={"x": 40, "y": 40})
    rows = 4 * (np.arange(dem.shape[0]) // 4) + 2
    cols = 4 * (np.arange(dem.shape[1]) // 4) + 2
    expected = dem[np.ix_(rows, cols)]
    ok = ~expected.mask
    assert np.array_equal(coarse[0].data[ok], expected.data[ok].astype("float32"))


def test_identity_geometric_and_none_pass_values_through(fx):
    client, dem = fx
    for function in ("Identity", "Geometric", "None"):
        data, _ = run(client, "terrain", function)
        assert np.array_equal(data[0].mask, dem.mask)
        assert np.array_equal(data[0].data[~dem.mask], dem.data[~dem.mask].astype("float32"))
