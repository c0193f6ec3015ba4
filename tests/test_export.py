"""exportImage against analytic truth: values, mosaic order, time, formats, through the REST face."""

from __future__ import annotations

import io
import json

import lerc
import numpy as np
import pytest
from PIL import Image
from rasterio.io import MemoryFile
from rasterio.warp import transform as transform_points

from synth import DEM_NODATA, dem_value, mosaic_value

EXPORT = "/arcgis/rest/services/{}/ImageServer/exportImage"
DEM_BBOX = "500000,5000100,501900,5002000"       # the DEM's union, 190 x 190 cells of 10 m
NW_BBOX = "500000,5001500,500600,5002000"        # scenes 1 and 2 only, 30 x 25 cells of 20 m


def get(client, service, **params):
    return client.get(EXPORT.format(service), query_string=params)


def tiff(resp):
    assert resp.content_type == "image/tiff", resp.data[:300]
    with MemoryFile(resp.data) as mem, mem.open() as ds:
        return ds.read(masked=True), ds.transform, ds.crs, ds.nodata


def oid(app, name):
    items = app.extensions["ogc_gateway"].services["mosaic"].catalog.items()
    return next(i.oid for i in items if i.name == name)


def cell_centres(bounds, width, height):
    x0, y0, x1, y1 = bounds
    xs = x0 + (np.arange(width) + 0.5) * (x1 - x0) / width
    ys = y1 - (np.arange(height) + 0.5) * (y1 - y0) / height
    return np.meshgrid(xs, ys)


# --- values -----------------------------------------------------------------------------------------

def test_float32_tiff_at_native_resolution_equals_truth(client):
    data, transform, crs, nodata = tiff(get(client, "dem", bbox=DEM_BBOX, size="190,190", format="tiff",
                                            interpolation="RSP_NearestNeighbor", f="image"))
    assert crs.to_epsg() == 32633 and nodata == DEM_NODATA
    assert tuple(transform)[:6] == (10.0, 0.0, 500000.0, 0.0, -10.0, 5002000.0)
    xs, ys = cell_centres((500000, 5000100, 501900, 5002000), 190, 190)
    truth = dem_value(xs, ys)
    hole = (xs > 500100) & (xs < 500200) & (ys > 5001800) & (ys < 5001900)
    assert data.dtype == np.float32
    assert np.array_equal(data.mask[0], hole)
    assert np.array_equal(data.data[0][~hole], truth[~hole])


def test_reprojected_bilinear_export_follows_the_plane(client):
    """A plane stays a plane under bilinear resampling: Web Mercator output vs truth at each centre.
    (Output cells finer than the source: GDAL widens its kernel when downsampling.)"""
    xs, ys = transform_points("EPSG:32633", "EPSG:3857", [500500, 501500], [5000500, 5001500])
    bbox = f"{xs[0]},{ys[0]},{xs[1]},{ys[1]}"
    data, transform, crs, _ = tiff(get(client, "dem", bbox=bbox, bboxSR=102100, imageSR=3857,
                                       size="128,128", format="tiff", interpolation="RSP_BilinearInterpolation",
                                       adjustAspectRatio="false", f="image"))
    assert crs.to_epsg() == 3857
    mx, my = cell_centres((xs[0], ys[0], xs[1], ys[1]), 128, 128)
    ux, uy = transform_points("EPSG:3857", "EPSG:32633", mx.ravel(), my.ravel())
    truth = dem_value(np.array(ux), np.array(uy)).reshape(128, 128)
    assert not data.mask.any()
    assert np.abs(data.data[0] - truth).max() < 0.05


def test_lerc_export_decodes_to_the_truth(client):
    resp = get(client, "dem", bbox=DEM_BBOX, size="190,190", format="lerc", lercVersion=2,
               compressionTolerance=0, interpolation="RSP_NearestNeighbor", f="image")
    assert resp.content_type == "application/octet-stream"
    rc, values, valid = lerc.decode(resp.data)
    assert rc == 0
    xs, ys = cell_centres((500000, 5000100, 501900, 5002000), 190, 190)
    hole = (xs > 500100) & (xs < 500200) & (ys > 5001800) & (ys < 5001900)
    assert np.array_equal(valid.astype(bool), ~hole)
    assert np.array_equal(values[~hole], dem_value(xs, ys)[~hole])


# --- mosaic rules ---------------------------------------------------------------------------------

def winner_grid(rule=None, **extra):
    params = dict(bbox=NW_BBOX, size="30,25", format="tiff", f="image", interpolation="nearest")
    if rule is not None:
        params["mosaicRule"] = json.dumps(rule)
    params.update(extra)
    return params


def scene_of(data):
    """Which scene each pixel came from (values identify the item through band 0)."""
    return np.where(data.mask[0], 0, (data.data[0].astype(int) - 10) // 1000)


def overlap_region():
    xs, ys = cell_centres((500000, 5001500, 500600, 5002000), 30, 25)
    return (xs > 500400) & (ys < 5001800)        # scene 2's corner over scene 1


@pytest.mark.parametrize("rule, top", [
    ({"mosaicMethod": "esriMosaicNorthwest"}, 1),
    ({"mosaicMethod": "esriMosaicAttribute", "sortField": "priority", "ascending": True}, 2),
    ({"mosaicMethod": "esriMosaicAttribute", "sortField": "PRIORITY", "ascending": False}, 1),
    ({"mosaicMethod": "esriMosaicAttribute", "sortField": "acquired", "sortValue": "2024/01/01"}, 1),
    ({"mosaicMethod": "esriMosaicAttribute", "sortField": "acquired", "sortValue": "2024/04/01"}, 2),
    ({"mosaicMethod": "NorthWest", "mosaicOperation": "MT_LAST"}, 2),
    ({"mosaicMethod": "esriMosaicNone", "mosaicOperation": "MT_MAX"}, 2),
    ({"mosaicMethod": "esriMosaicCenter"}, 1),      # scene 1's centre is nearer the view's
    (None, 2),                                       # time-enabled default: newest on top
])
def test_mosaic_methods_put_the_expected_item_on_top(client, rule, top):
    data, *_ = tiff(get(client, "mosaic", **winner_grid(rule)))
    scenes = scene_of(data)
    overlap = overlap_region()
    assert (scenes[overlap] == top).all()
    assert (scenes[~overlap] == 1).all()
    for b in range(4):
        assert set(np.unique(data.data[b][overlap])) == {mosaic_value(top, b)}


def test_lock_raster_shows_only_that_item(client, app):
    rule = {"mosaicMethod": "esriMosaicLockRaster", "lockRasterIds": [oid(app, "scene_2")]}
    data, *_ = tiff(get(client, "mosaic", **winner_grid(rule)))
    overlap = overlap_region()
    assert (scene_of(data)[overlap] == 2).all()
    assert data.mask[0][~overlap].all()


def test_item_in_another_crs_is_warped_in(client, app):
    rule = {"mosaicMethod": "esriMosaicLockRaster", "lockRasterIds": [oid(app, "scene_4")]}
    data, *_ = tiff(get(client, "mosaic", bbox="500700,5001000,501300,5001400", size="30,20",
                        format="tiff", f="image", mosaicRule=json.dumps(rule)))
    assert not data.mask.any()
    for b in range(4):
        assert (data.data[b] == mosaic_value(4, b)).all()


@pytest.mark.parametrize("window, scenes", [
    ("1709251200000,1711843200000", {2}),            # March 2024
    ("null,1706745600000", {1}),                     # up to 1 Feb 2024
    ("1704067200000,null", {1, 2}),                  # from 1 Jan 2024 on
    ("1735689600000", set()),                        # an instant in 2025: nothing
])
def test_time_window_selects_items(client, window, scenes):
    data, *_ = tiff(get(client, "mosaic", **winner_grid(time=window)))
    assert set(np.unique(scene_of(data))) - {0} == scenes


def test_time_series_month_by_time(client):
    # 15 March 2024: only the March file, whose value is 300 + latitude at each cell centre
    data, *_ = tiff(get(client, "ts", bbox="-10,40,10,50", size="20,10", format="tiff", f="image",
                        time="1710460800000"))
    xs, ys = cell_centres((-10, 40, 10, 50), 20, 10)
    assert np.array_equal(data.data[0], (300 + ys).astype(np.float32))


# --- request options ------------------------------------------------------------------------------

def test_band_ids_pixel_type_and_nodata(client):
    data, _, _, nodata = tiff(get(client, "mosaic", **winner_grid(
        {"mosaicMethod": "esriMosaicNorthwest"}, bandIds="3,0", pixelType="U8", noData="255")))
    assert data.dtype == np.uint8 and data.shape[0] == 2
    # every value (1040, 1010 ... 2040) is above 255: truncated to 255, which noData then masks
    assert data.mask.all() and nodata == 255


def test_nodata_match_all_versus_any(client):
    v = [mosaic_value(1, b) for b in range(4)]
    # default rule: scene 2 (newer) over the overlap, scene 1 elsewhere
    any_ = tiff(get(client, "mosaic", **winner_grid(noData=f"{v[0]},0,0,0",
                                                    noDataInterpretation="esriNoDataMatchAny")))[0]
    all_ = tiff(get(client, "mosaic", **winner_grid(noData=f"{v[0]},0,0,0")))[0]
    overlap = overlap_region()
    assert any_.mask[0][~overlap].all() and not any_.mask[0][overlap].any()
    assert not all_.mask[0].any()                     # MatchAll (a list's default): no pixel matches all


def test_adjust_aspect_ratio_and_json_descriptor(client):
    resp = get(client, "dem", bbox="500000,5000000,501000,5002000", size="100,100", format="png", f="json")
    body = resp.get_json()
    assert body["width"] == 100 and body["height"] == 100 and body["scale"] == 0
    ext = body["extent"]
    assert (ext["xmin"], ext["xmax"], ext["ymin"], ext["ymax"]) == (499500, 501500, 5000000, 5002000)
    assert ext["spatialReference"]["latestWkid"] == 32633
    href = body["href"]
    assert href.startswith("http://localhost/arcgis/rest/directories/arcgisoutput/dem/_ags_")
    out = client.get(href.replace("http://localhost", "") + "?token=abc")
    assert out.status_code == 200 and out.data[:4] == b"\x89PNG"


def test_expired_output_is_404(client, app):
    import os
    body = get(client, "dem", bbox=DEM_BBOX, size="10,10", format="jpg", f="json").get_json()
    name = body["href"].rsplit("/", 1)[1]
    path = app.extensions["ogc_gateway"].output_dir / "dem" / name
    os.utime(path, (1, 1))
    resp = client.get(body["href"].replace("http://localhost", ""))
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == 404
    assert client.get("/arcgis/rest/directories/arcgisoutput/dem/..%2Fx.png").status_code == 404


# --- formats --------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, mode, magic", [
    ("png32", "RGBA", b"\x89PNG"), ("png24", "RGB", b"\x89PNG"), ("png8", "P", b"\x89PNG"),
    ("png", "LA", b"\x89PNG"), ("jpg", "L", b"\xff\xd8"), ("jpgpng", "RGBA", b"\x89PNG"),
    ("bmp", "L", b"BM"), ("gif", "L", b"GIF8"),        # Pillow reads a grey-palette GIF as L
])
def test_picture_formats_of_the_dem(client, fmt, mode, magic):
    resp = get(client, "dem", bbox=DEM_BBOX, size="190,190", format=fmt, f="image", interpolation="nearest")
    assert resp.data.startswith(magic), resp.data[:200]
    img = Image.open(io.BytesIO(resp.data))
    assert img.size == (190, 190) and img.mode == mode
    grey = np.asarray(img.convert("L"), dtype=float)
    # the default stretch keeps the plane's direction: brighter to the east and to the north
    assert grey[150, 180] > grey[150, 100] > grey[150, 30]
    assert grey[100, 150] > grey[180, 150]
    if "A" in mode:
        alpha = np.asarray(img.getchannel("A"))
        assert alpha[15, 15] == 0 and alpha[100, 100] == 255   # the nodata hole is transparent


def test_jpgpng_is_jpeg_without_transparent_pixels(client):
    resp = get(client, "dem", bbox="501000,5000200,501800,5001000", size="80,80", format="jpgpng", f="image")
    assert resp.content_type == "image/jpeg" and resp.data[:2] == b"\xff\xd8"


def test_rgb_picture_uses_default_band_ids(client):
    resp = get(client, "mosaic", bbox=NW_BBOX, size="30,25", format="png", f="image",
               mosaicRule=json.dumps({"mosaicMethod": "esriMosaicNorthwest"}))
    img = Image.open(io.BytesIO(resp.data))
    assert img.mode in ("RGB", "RGBA")


def test_kmz_holds_a_ground_overlay_in_wgs84(client):
    import zipfile

    from lxml import etree
    resp = get(client, "dem", bbox=DEM_BBOX, size="64,64", f="kmz")
    with zipfile.ZipFile(io.BytesIO(resp.data)) as z:
        kml = etree.fromstring(z.read("doc.kml"))
        ns = {"k": "http://www.opengis.net/kml/2.2"}
        west = float(kml.findtext(".//k:LatLonBox/k:west", namespaces=ns))
        north = float(kml.findtext(".//k:LatLonBox/k:north", namespaces=ns))
        assert 14.9 < west < 15.01 and 45.1 < north < 45.2
        href = kml.findtext(".//k:Icon/k:href", namespaces=ns)
        Image.open(io.BytesIO(z.read(href))).verify()


def test_bip_and_bsq_carry_values_then_a_mask(client):
    params = dict(bbox="500000,5001700,500300,5002000", size="30,30", interpolation="nearest", f="image")
    bsq = get(client, "dem", format="bsq", **params).data
    n = 30 * 30
    values = np.frombuffer(bsq[: n * 4], "<f4").reshape(30, 30)
    mask = np.unpackbits(np.frombuffer(bsq[n * 4:], np.uint8))[:n].reshape(30, 30).astype(bool)
    xs, ys = cell_centres((500000, 5001700, 500300, 5002000), 30, 30)
    hole = (xs > 500100) & (xs < 500200) & (ys > 5001800) & (ys < 5001900)
    assert np.array_equal(mask, ~hole)
    assert np.array_equal(values[~hole], dem_value(xs, ys)[~hole])
    assert get(client, "dem", format="bip", **params).data == bsq      # one band: same layout
