"""Real rasters through real clients (issue 14): a cut of rasterio's RGB.byte.tif (per-band nodata,
non-square pixels), a CRS written without an EPSG code, and a geostationary full disk. Values are
checked against rasterio reading the source file, never against the server's own output.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
import requests
from click.testing import CliRunner
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.io import MemoryFile
from rasterio.transform import Affine

from conftest import serving
from ogc_gateway.app import create_app
from ogc_gateway.config import Config, Limits, ServerConfig, ServiceConfig
from ogc_schemas import validate

CROP = Path(__file__).parent / "data" / "rgb_byte_crop.tif"

# rasterio's rgb1.tif carries this WKT: UTM 18N on a datum "based upon the WGS 84 ellipsoid", which
# pyproj matches to two EPSG codes at 60% - no EPSG code at all.
CUSTOM_WKT = (
    'PROJCS["UTM Zone 18, Northern Hemisphere",GEOGCS["Unknown datum based upon the WGS 84 ellipsoid",'
    'DATUM["Not_specified_based_on_WGS_84_spheroid",SPHEROID["WGS 84",6378137,298.257223563,'
    'AUTHORITY["EPSG","7030"]],AUTHORITY["EPSG","6030"]],PRIMEM["Greenwich",0],UNIT["degree",'
    '0.0174532925199433]],PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],'
    'PARAMETER["central_meridian",-75],PARAMETER["scale_factor",0.9996],PARAMETER["false_easting",500000],'
    'PARAMETER["false_northing",0],UNIT["metre",1],AXIS["Easting",EAST],AXIS["Northing",NORTH]]')
# The same zone written by hand on WGS 84 without any AUTHORITY: it is EPSG:32618.
HAND_UTM_WKT = (
    'PROJCS["my utm",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],'
    'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],'
    'PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",-75],PARAMETER["scale_factor",0.9996],'
    'PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1],'
    'AXIS["Easting",EAST],AXIS["Northing",NORTH]]')
GEOS = "+proj=geos +h=35786023 +lon_0=-75 +a=6378137 +rf=298.257222101 +sweep=x +units=m +no_defs"
DISK = 5434895.08164               # half the side of the GOES-16 full-disk grid, metres


def _utm_field(path: Path, wkt: str) -> Path:
    """200 x 150 uint16 pixels of 100 x 120 m over central Florida's latitudes, value 10*col + row."""
    rows, cols = np.mgrid[0:150, 0:200]
    with rasterio.open(path, "w", driver="GTiff", width=200, height=150, count=1, dtype="uint16",
                       crs=CRS.from_wkt(wkt), transform=Affine(100.0, 0, 400000.0, 0, -120.0, 3100000.0),
                       nodata=65535) as ds:
        ds.write((10 * cols + rows).astype("uint16"), 1)
    return path


def _geos_disk(path: Path) -> Path:
    """A full disk on the GOES-16 grid (coarser): value = 1 + |latitude| on the Earth, 0 off it."""
    n = 181
    res = 2 * DISK / n
    cc, rr = np.meshgrid(np.arange(n) + 0.5, np.arange(n) + 0.5)
    x, y = -DISK + cc * res, DISK - rr * res
    _, lat = Transformer.from_crs(GEOS, "EPSG:4326", always_xy=True).transform(x, y, errcheck=False)
    values = np.where(np.isfinite(lat), 1 + np.abs(np.nan_to_num(lat)), 0).astype("uint8")
    with rasterio.open(path, "w", driver="GTiff", width=n, height=n, count=1, dtype="uint8",
                       crs=CRS.from_proj4(GEOS), transform=Affine(res, 0, -DISK, 0, -res, DISK)) as ds:
        ds.write(values, 1)
    return path


def _west_of_zone(path: Path) -> Path:
    """UTM 18N (EPSG:32618) from x = 150 km: its western strip lies west of 78 W, outside the
    zone's area of use (78 W - 72 W). Value 100 everywhere, nodata 0."""
    with rasterio.open(path, "w", driver="GTiff", width=200, height=100, count=1, dtype="uint8",
                       crs=CRS.from_epsg(32618), transform=Affine(1000.0, 0, 150000.0, 0, -1000.0, 2900000.0),
                       nodata=0) as ds:
        ds.write(np.full((100, 200), 100, "uint8"), 1)
    return path


def _world(path: Path) -> Path:
    """A whole-world EPSG:4326 grid of 0.0027 degrees (~300 m) pixels, kept small by a sparse file:
    133333 x 66667 pixels of deflated zeros would be big, so 0.9-degree pixels and a note: the
    level test scales from the cell size, not the file size."""
    with rasterio.open(path, "w", driver="GTiff", width=400, height=200, count=1, dtype="uint8",
                       crs=CRS.from_epsg(4326), transform=Affine(0.9, 0, -180.0, 0, -0.9, 90.0)) as ds:
        ds.write(np.full((200, 400), 7, "uint8"), 1)
    return path


def _float_nan(path: Path) -> Path:
    """float32 in EPSG:3857 with nodata NaN (and some NaN pixels)."""
    data = np.arange(64 * 64, dtype="float32").reshape(64, 64)
    data[:8, :8] = np.nan
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=1, dtype="float32",
                       crs=CRS.from_epsg(3857), transform=Affine(100.0, 0, 0.0, 0, -100.0, 6400.0),
                       nodata=float("nan")) as ds:
        ds.write(data, 1)
    return path


SERVICES = ("crop", "custom", "handutm", "goes", "west", "world", "floatnan")


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    for name in SERVICES:
        (root / name).mkdir()
    shutil.copy(CROP, root / "crop" / CROP.name)
    _utm_field(root / "custom" / "field.tif", CUSTOM_WKT)
    _utm_field(root / "handutm" / "field.tif", HAND_UTM_WKT)
    _geos_disk(root / "goes" / "disk.tif")
    _west_of_zone(root / "west" / "west.tif")
    _world(root / "world" / "world.tif")
    _float_nan(root / "floatnan" / "f.tif")
    limits = Limits(max_image_width=4100, max_image_height=4100)
    services = {name: ServiceConfig(name=name, sources=(str(root / name / "*.tif"),), default_resampling="nearest",
                                    limits=limits, allow_download=(name == "crop")) for name in SERVICES}
    config = Config(server=ServerConfig(cache_dir=root / "cache", limits=limits), services=services)
    app = create_app(config)
    with serving(app) as url:
        yield root, url


@pytest.fixture()
def clients(monkeypatch, tmp_path):
    """OWSLib and GDAL on the local socket: no proxy; GDAL's WCS driver needs PAM (see test_wcs10)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with rasterio.Env(GDAL_HTTP_TIMEOUT="60", GDAL_HTTP_MAX_RETRY="0", GDAL_PAM_ENABLED="YES"):
        yield tmp_path


def _source(root: Path):
    with rasterio.open(root / "crop" / CROP.name) as ds:
        return ds.read(), ds.read_masks() > 0, ds.transform, ds.width, ds.height, ds.bounds


# --- item 5 and 6: per-band nodata and the native grid ------------------------------------------------

def test_the_crop_has_per_band_nodata_pixels():
    """The case the file brings: pixels with 0 (nodata) in some bands and data in others."""
    with rasterio.open(CROP) as ds:
        zero = ds.read() == 0
    assert (zero.any(axis=0) & ~zero.all(axis=0)).sum() == 397


def test_rest_root_describes_the_native_grid(real):
    root, url = real
    _, _, transform, width, height, bounds = _source(root)
    info = requests.get(f"{url}/arcgis/rest/services/crop/ImageServer", params={"f": "json"}).json()
    assert (info["pixelSizeX"], info["pixelSizeY"]) == (transform.a, -transform.e)
    extent = info["extent"]
    assert [extent[k] for k in ("xmin", "ymin", "xmax", "ymax")] == pytest.approx(list(bounds), abs=1e-6)


def test_gdal_wcs_reads_the_file_bit_for_bit(real, clients):
    """GDAL's WCS 1.0.0 driver at the default (native) grid: the same grid and every stored value,
    band by band, with each band's own mask."""
    root, url = real
    values, masks, transform, width, height, _ = _source(root)
    wcs = f"WCS:{url}/arcgis/services/crop/ImageServer/WCSServer?version=1.0.0&coverage=crop"
    with rasterio.open(wcs, CACHE=str(clients / "cache")) as ds:
        assert (ds.width, ds.height, ds.count) == (width, height, 3)
        assert ds.crs.to_epsg() == 32618
        assert tuple(ds.transform)[:6] == pytest.approx(tuple(transform)[:6], abs=1e-6)
        got = ds.read()
    assert np.array_equal(got, values)


def test_owslib_wcs20_getcoverage_keeps_every_value(real, clients):
    from owslib.wcs import WebCoverageService
    root, url = real
    values, masks, transform, width, height, _ = _source(root)
    service = WebCoverageService(f"{url}/arcgis/services/crop/ImageServer/WCSServer?", version="2.0.1")
    grid = service["crop"].grid
    assert grid.highlimits == [str(width - 1), str(height - 1)]
    resp = service.getCoverage(identifier="crop", format="image/tiff")
    with MemoryFile(resp.read()) as mem, mem.open() as ds:
        assert tuple(ds.transform)[:6] == pytest.approx(tuple(transform)[:6], abs=1e-6)
        assert np.array_equal(ds.read(), values)
        assert np.array_equal(ds.read_masks() > 0, masks)


@pytest.mark.parametrize("interpretation", [None, "esriNoDataMatchAny", "esriNoDataMatchAll"])
def test_export_tiff_keeps_every_value(real, interpretation):
    """exportImage format=tiff over the file's own grid, with and without noData=0: a band's nodata
    never replaces the other bands' values, whatever noDataInterpretation says."""
    root, url = real
    values, masks, transform, width, height, bounds = _source(root)
    params = {"bbox": ",".join(map(repr, bounds)), "size": f"{width},{height}", "format": "tiff",
              "pixelType": "U8", "interpolation": "RSP_NearestNeighbor", "f": "image"}
    if interpretation:
        params.update(noData="0", noDataInterpretation=interpretation)
    resp = requests.get(f"{url}/arcgis/rest/services/crop/ImageServer/exportImage", params=params)
    with MemoryFile(resp.content) as mem, mem.open() as ds:
        assert np.array_equal(ds.read(), values)
        assert np.array_equal(ds.read_masks() > 0, masks)


def test_png_treats_a_pixel_with_a_nodata_band_as_nodata(real):
    """Pictures: a pixel shows only where every shown band holds data (as before)."""
    root, url = real
    values, masks, transform, width, height, bounds = _source(root)
    import io

    from PIL import Image
    resp = requests.get(f"{url}/arcgis/rest/services/crop/ImageServer/exportImage",
                        params={"bbox": ",".join(map(repr, bounds)), "size": f"{width},{height}",
                                "format": "png32", "interpolation": "RSP_NearestNeighbor", "f": "image"})
    alpha = np.asarray(Image.open(io.BytesIO(resp.content)))[..., 3]
    assert np.array_equal(alpha > 0, masks.all(axis=0))


# --- item 1: a CRS without an EPSG code ---------------------------------------------------------------

@pytest.mark.parametrize("version", ["1.0.0", "1.1.1", "2.0.1"])
def test_combined_wcs_capabilities_with_an_unnamed_crs(real, clients, version):
    from owslib.wcs import WebCoverageService
    _, url = real
    resp = requests.get(f"{url}/ogc/wcs", params={"SERVICE": "WCS", "REQUEST": "GetCapabilities", "VERSION": version})
    assert resp.status_code == 200, resp.text[:500]
    validate(resp.content)
    service = WebCoverageService(f"{url}/ogc/wcs?", version=version)
    assert set(service.contents) == set(SERVICES)


def test_unnamed_crs_is_described_and_served_in_epsg_4326(real, clients):
    """WCS 1.0.0: the envelope is in a CRS GDAL can name (no metres labelled as degrees), and the
    values delivered there are the file's (rasterio reads the source at the same places)."""
    root, url = real
    base = f"{url}/arcgis/services/custom/ImageServer/WCSServer"
    for version in ("1.0.0", "2.0.1"):
        for request in ("GetCapabilities", "DescribeCoverage"):
            resp = requests.get(base, params={"SERVICE": "WCS", "REQUEST": request, "VERSION": version,
                                              "COVERAGE": "custom", "COVERAGEID": "custom"})
            assert resp.status_code == 200, resp.text[:500]
            validate(resp.content)
    described = requests.get(base, params={"SERVICE": "WCS", "REQUEST": "DescribeCoverage", "VERSION": "1.0.0",
                                           "COVERAGE": "custom"}).text
    assert '<gml:Envelope srsName="EPSG:4326">' in described
    with rasterio.open(f"WCS:{base}?version=1.0.0&coverage=custom", CACHE=str(clients / "cache")) as ds:
        assert ds.crs.to_epsg() == 4326
        west, south, east, north = ds.bounds
        assert -77 < west < east < -75 and 27 < south < north < 29          # degrees, not metres
        got, transform = ds.read(1), ds.transform
    # Pixel centres well inside the data: the source value at the same place (nearest).
    rows, cols = np.mgrid[10:got.shape[0] - 10:7, 10:got.shape[1] - 10:7]
    lon, lat = transform * (cols + 0.5, rows + 0.5)
    with rasterio.open(root / "custom" / "field.tif") as src:
        xs, ys = Transformer.from_crs("EPSG:4326", src.crs.to_wkt(), always_xy=True).transform(lon, lat)
        truth = np.array([v[0] for v in src.sample(zip(xs.ravel(), ys.ravel()))]).reshape(rows.shape)
        inside = (xs > src.bounds.left + 300) & (xs < src.bounds.right - 300) & \
                 (ys > src.bounds.bottom + 300) & (ys < src.bounds.top - 300)
    near = np.abs(got[rows, cols].astype(int) - truth.astype(int))
    assert inside.sum() > 50
    assert (near[inside] <= 11).all()          # at most one source pixel away (10 per column, 1 per row)


def test_wms_and_wmts_offer_an_unnamed_crs_layer_in_named_crss(real):
    _, url = real
    caps = requests.get(f"{url}/ogc/wms", params={"SERVICE": "WMS", "REQUEST": "GetCapabilities",
                                                  "VERSION": "1.3.0"})
    assert caps.status_code == 200
    validate(caps.content)
    wmts = requests.get(f"{url}/ogc/wmts/1.0.0/WMTSCapabilities.xml")
    assert wmts.status_code == 200
    validate(wmts.content)


def test_a_hand_written_utm_wkt_is_epsg_32618(real):
    _, url = real
    info = requests.get(f"{url}/arcgis/rest/services/handutm/ImageServer", params={"f": "json"}).json()
    assert info["spatialReference"]["wkid"] == 32618
    caps = requests.get(f"{url}/arcgis/services/handutm/ImageServer/WMSServer",
                        params={"SERVICE": "WMS", "REQUEST": "GetCapabilities", "VERSION": "1.3.0"}).text
    assert "<CRS>EPSG:32618</CRS>" in caps


def test_check_config_warns_about_an_unnamed_crs(real, tmp_path):
    from ogc_gateway.cli import cli
    root, _ = real
    config = tmp_path / "gateway.yaml"
    config.write_text(f"server:\n  cache_dir: {tmp_path / 'cache'}\nservices:\n  custom:\n"
                      f"    sources: {root / 'custom' / '*.tif'}\n")
    result = CliRunner().invoke(cli, ["check-config", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "warning: services.custom: its CRS ('UTM Zone 18, Northern Hemisphere') matches no EPSG code" \
        in result.output
    assert "PROJ" not in result.output and "ERROR" not in result.output


# --- item 2: a geostationary full disk ----------------------------------------------------------------

def _png_alpha(content: bytes) -> np.ndarray:
    import io

    from PIL import Image
    picture = np.asarray(Image.open(io.BytesIO(content)).convert("RGBA"))
    return picture[..., 3]


def test_geostationary_export_in_lon_lat(real):
    """exportImage with bboxSR=4326 over the disk is not blank (in the disk's CRS and in 4326), and
    its values are the file's: 1 + |latitude| at the pixel's place."""
    root, url = real
    base = f"{url}/arcgis/rest/services/goes/ImageServer/exportImage"
    for image_sr in (None, 4326):
        params = {"bbox": "-150,-70,0,70", "bboxSR": 4326, "size": "300,280", "format": "png", "f": "image"}
        if image_sr:
            params["imageSR"] = image_sr
        alpha = _png_alpha(requests.get(base, params=params).content)
        assert (alpha > 0).mean() > 0.5
    resp = requests.get(base, params={"bbox": "-120,-60,-30,60", "bboxSR": 4326, "imageSR": 4326,
                                      "size": "90,120", "format": "tiff", "pixelType": "U8",
                                      "interpolation": "RSP_NearestNeighbor", "f": "image"})
    with MemoryFile(resp.content) as mem, mem.open() as ds:
        got, transform = ds.read(1), ds.transform
    rows, cols = np.mgrid[0:120:5, 0:90:5]
    lon, lat = transform * (cols + 0.5, rows + 0.5)
    with rasterio.open(root / "goes" / "disk.tif") as src:
        xs, ys = Transformer.from_crs("EPSG:4326", GEOS, always_xy=True).transform(lon, lat)
        truth = np.array([v[0] for v in src.sample(zip(xs.ravel(), ys.ravel()))]).reshape(rows.shape)
    assert np.abs(got[rows, cols].astype(int) - truth.astype(int)).max() <= 3   # one source pixel away


def test_geostationary_capabilities_have_real_boxes(real):
    _, url = real
    caps = requests.get(f"{url}/arcgis/services/goes/ImageServer/WMSServer",
                        params={"SERVICE": "WMS", "REQUEST": "GetCapabilities", "VERSION": "1.3.0"})
    from lxml import etree
    doc = etree.fromstring(caps.content)
    ns = {"w": "http://www.opengis.net/wms"}
    box = doc.find(".//w:Layer/w:Layer/w:EX_GeographicBoundingBox", ns)
    if box is None:
        box = doc.find(".//w:Layer/w:EX_GeographicBoundingBox", ns)
    west, east, south, north = (float(box.find(f"w:{k}", ns).text) for k in
                                ("westBoundLongitude", "eastBoundLongitude", "southBoundLatitude",
                                 "northBoundLatitude"))
    assert west < -140 and east > -10 and south < -70 and north > 70
    wmts = requests.get(f"{url}/arcgis/rest/services/goes/ImageServer/WMTS/1.0.0/WMTSCapabilities.xml").text
    assert "<TileMatrixSetLink>" in wmts
    cov = requests.get(f"{url}/arcgis/services/goes/ImageServer/WCSServer",
                       params={"SERVICE": "WCS", "REQUEST": "GetCapabilities", "VERSION": "2.0.1"})
    assert cov.status_code == 200
    validate(cov.content)


@pytest.mark.parametrize("crs, bbox", [("EPSG:3857", "-16000000,-14000000,0,14000000"),
                                       ("CRS:84", "-150,-70,0,70")])
def test_geostationary_wms_getmap_elsewhere(real, crs, bbox):
    _, url = real
    resp = requests.get(f"{url}/arcgis/services/goes/ImageServer/WMSServer",
                        params={"SERVICE": "WMS", "REQUEST": "GetMap", "VERSION": "1.3.0", "LAYERS": "goes",
                                "STYLES": "", "CRS": crs, "BBOX": bbox, "WIDTH": 200, "HEIGHT": 200,
                                "FORMAT": "image/png", "TRANSPARENT": "TRUE"})
    assert resp.headers["Content-Type"] == "image/png"
    assert (_png_alpha(resp.content) > 0).mean() > 0.5


def test_geostationary_query_in_lon_lat(real):
    _, url = real
    found = requests.get(f"{url}/arcgis/rest/services/goes/ImageServer/query",
                         params={"where": "1=1", "outSR": 4326, "returnGeometry": "true", "f": "json"}).json()
    assert "error" not in found, found
    ring = np.array(found["features"][0]["geometry"]["rings"][0])
    assert np.isfinite(ring).all()
    assert ring[:, 0].min() < -140 and ring[:, 0].max() > -10 and ring[:, 1].min() < -70 and ring[:, 1].max() > 70


# --- item 3: data beyond the CRS's area of use ---------------------------------------------------------

@pytest.mark.parametrize("zoom", [6, 9, 12])
def test_wmts_tiles_west_of_the_utm_zone_have_data(real, zoom):
    """A point at 78.3 W (west of the zone, inside the data): its WMTS tile shows it at every level,
    as exportImage does."""
    import morecantile
    _, url = real
    lon, lat = -78.3, 25.7
    with rasterio.open(real[0] / "west" / "west.tif") as src:
        x, y = Transformer.from_crs("EPSG:4326", "EPSG:32618", always_xy=True).transform(lon, lat)
        assert src.index(x, y)[1] > 0 and next(src.sample([(x, y)]))[0] == 100      # data there
    tms = morecantile.tms.get("WebMercatorQuad")
    tile = tms.tile(lon, lat, zoom)
    resp = requests.get(f"{url}/arcgis/rest/services/west/ImageServer/WMTS/tile/1.0.0/west/default/"
                        f"WebMercatorQuad/{zoom}/{tile.y}/{tile.x}.png")
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "image/png"
    alpha = _png_alpha(resp.content)
    b = tms.xy_bounds(tile)
    px, py = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(lon, lat)
    col = int((px - b.left) / (b.right - b.left) * alpha.shape[1])
    row = int((b.top - py) / (b.top - b.bottom) * alpha.shape[0])
    assert alpha[row, col] == 255


# --- item 4: world-extent layers ----------------------------------------------------------------------

def test_world_layer_boxes_stay_inside_web_mercator(real):
    _, url = real
    caps = requests.get(f"{url}/arcgis/services/world/ImageServer/WMSServer",
                        params={"SERVICE": "WMS", "REQUEST": "GetCapabilities", "VERSION": "1.3.0"}).text
    from lxml import etree
    doc = etree.fromstring(caps.encode())
    ns = {"w": "http://www.opengis.net/wms"}
    box = next(b for b in doc.iterfind(".//w:BoundingBox", ns) if b.get("CRS") == "EPSG:3857")
    values = [float(box.get(k)) for k in ("minx", "miny", "maxx", "maxy")]
    assert all(abs(v) <= 20037508.3428 for v in values), values
    wmts = requests.get(f"{url}/arcgis/rest/services/world/ImageServer/WMTS/1.0.0/WMTSCapabilities.xml").content
    doc = etree.fromstring(wmts)
    ows = "{http://www.opengis.net/ows/1.1}"
    for bbox in doc.iter(f"{ows}BoundingBox"):
        if "3857" in (bbox.get("crs") or ""):
            corners = [float(v) for side in ("LowerCorner", "UpperCorner") for v in bbox.find(f"{ows}{side}").text.split()]
            assert all(abs(v) <= 20037508.3428 for v in corners), corners


def test_world_layer_levels_stop_near_the_native_resolution(real):
    """0.9-degree pixels are ~100 km at the equator: WebMercatorQuad level 0 (156 km) and level 1
    (78 km) reach it; the layer's limits end a little past it, not at level 24."""
    _, url = real
    wmts = requests.get(f"{url}/arcgis/rest/services/world/ImageServer/WMTS/1.0.0/WMTSCapabilities.xml").content
    from lxml import etree
    doc = etree.fromstring(wmts)
    ns = {"w": "http://www.opengis.net/wmts/1.0"}
    link = next(x for x in doc.iterfind(".//w:Layer/w:TileMatrixSetLink", ns)
                if x.findtext("w:TileMatrixSet", namespaces=ns) == "WebMercatorQuad")
    levels = [int(t.findtext("w:TileMatrix", namespaces=ns)) for t in link.iterfind(".//w:TileMatrixLimits", ns)]
    assert levels and max(levels) <= 3, levels


# --- item 8: GDAL's AGS driver as documented ----------------------------------------------------------

def _ags_xml(url: str, server_url: str, image_format: str, bounds, size) -> str:
    west, south, east, north = bounds
    return f"""<GDAL_WMS>
  <Service name="AGS">
    <ServerUrl>{server_url}</ServerUrl>
    <BBoxOrder>xyXY</BBoxOrder>
    <SRS>EPSG:32618</SRS>
    <ImageFormat>{image_format}</ImageFormat>
  </Service>
  <DataWindow>
    <UpperLeftX>{west!r}</UpperLeftX><UpperLeftY>{north!r}</UpperLeftY>
    <LowerRightX>{east!r}</LowerRightX><LowerRightY>{south!r}</LowerRightY>
    <SizeX>{size[0]}</SizeX><SizeY>{size[1]}</SizeY>
  </DataWindow>
  <BandsCount>3</BandsCount>
  <DataType>Byte</DataType>
  <DataValues NoData="0"/>
  <BlockSizeX>64</BlockSizeX>
  <BlockSizeY>64</BlockSizeY>
</GDAL_WMS>
"""


@pytest.mark.parametrize("suffix, image_format", [("", "image/png"), ("/exportImage?", "image/png"),
                                                  ("", "image/jpeg"), ("/exportImage?", "tiff")])
def test_gdal_ags_driver_with_mime_formats_and_the_service_url(real, clients, suffix, image_format):
    """GDAL's AGS mini-driver with ImageFormat as a MIME type, and ServerUrl the service URL (GDAL
    then calls .../ImageServer/export): the pixels are the file's (exact for PNG and TIFF; JPEG
    close), and the XML's nodata reaches GDAL."""
    root, url = real
    values, masks, transform, width, height, bounds = _source(root)
    xml = clients / "crop.xml"
    xml.write_text(_ags_xml(url, f"{url}/arcgis/rest/services/crop/ImageServer{suffix}", image_format, bounds,
                            (width, height)))
    with rasterio.open(xml) as ds:
        assert ds.nodata == 0
        got = ds.read()
    full = masks.all(axis=0)
    if image_format == "image/jpeg":
        assert np.abs(got[:, full].astype(int) - values[:, full].astype(int)).mean() < 10        # quality 75 on noisy Landsat
    else:
        assert np.array_equal(got[:, full], values[:, full])


# --- item 9: esri-leaflet's corner order ---------------------------------------------------------------

def test_esri_leaflet_image_map_layer_request(real):
    """esri-leaflet's imageMapLayer asks exportImage for bbox=xmin,ymax,xmax,ymin in Web Mercator
    (with f=image, format=jpgpng, transparent=true): the picture is the one of the ordered box."""
    root, url = real
    _, masks, _, _, _, bounds = _source(root)
    to_merc = Transformer.from_crs("EPSG:32618", "EPSG:3857", always_xy=True)
    x0, y0 = to_merc.transform(bounds[0], bounds[1])
    x1, y1 = to_merc.transform(bounds[2], bounds[3])
    base = f"{url}/arcgis/rest/services/crop/ImageServer/exportImage"
    common = {"size": "240,200", "dpi": 96, "format": "png32", "transparent": "true", "bboxSR": 3857,
              "imageSR": 3857, "f": "image"}
    leaflet = requests.get(base, params=common | {"bbox": f"{x0},{y1},{x1},{y0}"})
    ordered = requests.get(base, params=common | {"bbox": f"{x0},{y0},{x1},{y1}"})
    assert leaflet.headers["Content-Type"] == "image/png", leaflet.text[:300]
    assert leaflet.content == ordered.content
    assert (_png_alpha(leaflet.content) > 0).mean() > 0.5


def test_envelopes_with_corners_out_of_order_on_the_rest_face(real):
    root, url = real
    _, _, _, _, _, (w, s, e, n) = _source(root)
    envelope = json.dumps({"xmin": w, "ymin": n, "xmax": e, "ymax": s})
    found = requests.get(f"{url}/arcgis/rest/services/crop/ImageServer/query",
                         params={"geometry": envelope, "geometryType": "esriGeometryEnvelope",
                                 "f": "json"}).json()
    assert "error" not in found and len(found["features"]) == 1
    plain = requests.get(f"{url}/arcgis/rest/services/crop/ImageServer/query",
                         params={"geometry": f"{e},{n},{w},{s}", "geometryType": "esriGeometryEnvelope",
                                 "f": "json"}).json()
    assert "error" not in plain and len(plain["features"]) == 1


# --- item 10: blank tiles, NaN nodata, png24 ------------------------------------------------------------

def test_blank_tile_for_any_tile_of_the_scheme(real):
    """blankTile=true: an empty PNG for a tile of the scheme outside the data, a 404 without it, and a
    404 still for a tile outside the scheme."""
    _, url = real
    base = f"{url}/arcgis/rest/services/crop/ImageServer/tile"
    far = requests.get(f"{base}/10/5/5", params={"blankTile": "true"})       # the Arctic, far from Florida
    assert far.status_code == 200 and far.headers["Content-Type"] == "image/png"
    assert far.headers["blank-tile"] == "true" and not _png_alpha(far.content).any()
    assert requests.get(f"{base}/10/5/5").status_code == 404
    assert requests.get(f"{base}/3/8/0", params={"blankTile": "true"}).status_code == 404    # 8 x 8 tiles


def test_nan_nodata_is_a_number_in_the_root_json(real):
    _, url = real
    resp = requests.get(f"{url}/arcgis/rest/services/floatnan/ImageServer", params={"f": "json"})
    assert "NaN" not in resp.text
    info = json.loads(resp.text)
    assert info["noDataValue"] == info["noDataValues"][0] == float(np.finfo(np.float32).min)


def test_png24_of_one_band_is_24_bit_rgb(real):
    import io

    from PIL import Image
    _, url = real
    resp = requests.get(f"{url}/arcgis/rest/services/floatnan/ImageServer/exportImage",
                        params={"bbox": "0,0,6400,6400", "size": "64,64", "format": "png24", "f": "image"})
    picture = Image.open(io.BytesIO(resp.content))
    assert picture.mode == "RGB"
    rgb = np.asarray(picture)
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all() and rgb.max() > 200


# --- item 11: download, file, metadata, KMZ, itemRenderingRule ------------------------------------------

def test_download_and_file_give_the_source_file(real):
    root, url = real
    base = f"{url}/arcgis/rest/services/crop/ImageServer"
    listed = requests.get(f"{base}/download", params={"rasterIds": "1", "f": "json"}).json()
    (entry,) = listed["rasterFiles"]
    assert entry["rasterIds"] == [1] and entry["size"] == CROP.stat().st_size
    got = requests.get(f"{base}/file", params={"id": entry["id"], "rasterId": 1})
    assert got.status_code == 200 and got.content == CROP.read_bytes()
    with MemoryFile(got.content) as mem, mem.open() as ds:        # GDAL reads what was downloaded
        assert np.array_equal(ds.read(), _source(root)[0])
    by_where = requests.get(f"{base}/download", params={"where": "1=1", "f": "json"}).json()
    assert by_where == listed
    # an id that is not the item's own file, and a service that does not allow downloads
    wrong = requests.get(f"{base}/file", params={"id": "1/../../etc/passwd", "rasterId": 1}).json()
    assert wrong["error"]["code"] == 404
    refused = requests.get(f"{url}/arcgis/rest/services/world/ImageServer/download",
                           params={"rasterIds": "1", "f": "json"}).json()
    assert refused["error"]["code"] == 403
    assert requests.get(f"{url}/arcgis/rest/services/world/ImageServer/file",
                        params={"id": "1/world.tif", "rasterId": 1}).json()["error"]["code"] == 403


def test_metadata_of_the_service_and_of_an_item(real):
    from lxml import etree
    root, url = real
    base = f"{url}/arcgis/rest/services/crop/ImageServer"
    service = etree.fromstring(requests.get(f"{base}/info/metadata").content)
    assert service.findtext(".//refSysID") == "EPSG:32618" and service.findtext(".//bandCount") == "3"
    item = etree.fromstring(requests.get(f"{base}/1/info/metadata").content)
    assert item.findtext(".//fileName") == CROP.name
    assert int(item.findtext(".//transSize")) == CROP.stat().st_size
    assert item.findtext(".//noData") == "0.0" and item.findtext(".//resTitle") == CROP.stem
    with rasterio.open(CROP) as ds:
        lon = Transformer.from_crs(ds.crs.to_wkt(), "EPSG:4326", always_xy=True).transform(
            (ds.bounds.left + ds.bounds.right) / 2, (ds.bounds.bottom + ds.bounds.top) / 2)[0]
    assert float(item.findtext(".//westBL")) < lon < float(item.findtext(".//eastBL"))


def test_root_as_kmz_is_a_network_link_to_export(real):
    import zipfile

    from lxml import etree
    _, url = real
    resp = requests.get(f"{url}/arcgis/rest/services/crop/ImageServer", params={"f": "kmz"})
    assert resp.headers["Content-Type"] == "application/vnd.google-earth.kmz"
    with zipfile.ZipFile(io.BytesIO(resp.content)) as kmz:
        doc = etree.fromstring(kmz.read(kmz.namelist()[0]))
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    href = doc.findtext(".//k:NetworkLink/k:Link/k:href", namespaces=ns)
    fmt = doc.findtext(".//k:NetworkLink/k:Link/k:viewFormat", namespaces=ns)
    assert fmt == "bbox=[bboxWest],[bboxSouth],[bboxEast],[bboxNorth]"
    # what Google Earth fetches: the href with the view's box appended
    north = float(doc.findtext(".//k:LatLonAltBox/k:north", namespaces=ns))
    south = float(doc.findtext(".//k:LatLonAltBox/k:south", namespaces=ns))
    east = float(doc.findtext(".//k:LatLonAltBox/k:east", namespaces=ns))
    west = float(doc.findtext(".//k:LatLonAltBox/k:west", namespaces=ns))
    fetched = requests.get(f"{href}&bbox={west},{south},{east},{north}")
    assert fetched.headers["Content-Type"] == "application/vnd.google-earth.kmz"
    with zipfile.ZipFile(io.BytesIO(fetched.content)) as kmz:
        assert any(n.startswith("image.") for n in kmz.namelist())


def test_item_rendering_rule_processes_each_item(real):
    """mosaicRule.itemRenderingRule: ExtractBand of band 3 on each item, then the mosaic: the
    values are the file's third band, read at the native grid."""
    root, url = real
    values, masks, transform, width, height, bounds = _source(root)
    rule = {"mosaicMethod": "esriMosaicNorthwest",
            "itemRenderingRule": {"rasterFunction": "ExtractBand", "rasterFunctionArguments": {"BandIDs": [2]}}}
    resp = requests.get(f"{url}/arcgis/rest/services/crop/ImageServer/exportImage",
                        params={"bbox": ",".join(map(repr, bounds)), "size": f"{width},{height}", "format": "tiff",
                                "interpolation": "RSP_NearestNeighbor", "mosaicRule": json.dumps(rule), "f": "image"})
    assert resp.headers["Content-Type"] == "image/tiff", resp.text[:300]
    with MemoryFile(resp.content) as mem, mem.open() as ds:
        assert ds.count == 1
        got, got_mask = ds.read(1), ds.read_masks(1) > 0
    assert np.array_equal(got[got_mask], values[2][got_mask]) and np.array_equal(got_mask, masks[2])


def test_geostationary_root_extent_sent_back_is_the_same_crs(real):
    """A client sends the root's extent (with its spatialReference) back as a geometry: the WKT
    names the same CRS (Esri's WKT1 would drop the sweep axis), so the disk's own box is not
    "outside the area where the CRS is defined"."""
    _, url = real
    base = f"{url}/arcgis/rest/services/goes/ImageServer"
    extent = requests.get(base, params={"f": "json"}).json()["extent"]
    found = requests.get(f"{base}/computeHistograms", params={
        "geometry": json.dumps(extent), "geometryType": "esriGeometryEnvelope", "f": "json"}).json()
    assert "error" not in found, found
    assert sum(found["histograms"][0]["counts"]) > 0


def test_a_full_disk_next_to_files_in_another_crs(real, tmp_path):
    """Sync of a service whose CRS is not the disk's (its grid's corners lie off the Earth): the
    disk's footprint comes from its outline on the Earth, not a failure of the whole service."""
    root, _ = real
    limits = Limits(max_image_width=4100, max_image_height=4100)
    service = ServiceConfig(name="mixed", crs="EPSG:4326", limits=limits,
                            sources=(str(root / "goes" / "*.tif"), str(root / "west" / "*.tif")))
    app = create_app(Config(server=ServerConfig(cache_dir=tmp_path / "cache", limits=limits),
                            services={"mixed": service}))
    client = app.test_client()
    found = client.get("/arcgis/rest/services/mixed/ImageServer/query",
                       query_string={"where": "1=1", "returnGeometry": "true", "f": "json"}).get_json()
    rings = {f["attributes"]["Name"]: np.array(f["geometry"]["rings"][0]) for f in found["features"]}
    assert set(rings) == {"disk", "west"}
    disk = rings["disk"]
    assert disk[:, 0].min() < -140 and disk[:, 0].max() > -10 and disk[:, 1].min() < -70 and disk[:, 1].max() > 70


@pytest.mark.slow          # gdal_translate in a subprocess
def test_gdal_reads_the_tiles_from_the_root_json(real, clients):
    """GDAL's tiled reading of an ImageServer (its root JSON's tileInfo) keeps working for a UTM
    service whose root says singleFusedMapCache false: the Web Mercator tiles show the file."""
    root, url = real
    values, masks, transform, width, height, bounds = _source(root)
    to_merc = Transformer.from_crs("EPSG:32618", "EPSG:3857", always_xy=True)
    cx, cy = to_merc.transform((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)
    half = 3000.0                                              # a 6 km box at the scene's centre
    out = clients / "tiles.tif"
    # gdal-bin, as the README says (rasterio would hand an http URL to /vsicurl, not to the WMS driver)
    done = subprocess.run(["gdal_translate", "-q", "-projwin", repr(cx - half), repr(cy + half), repr(cx + half),
                           repr(cy - half), "-outsize", "20", "20", "-b", "1", "-b", "2", "-b", "3",
                           f"{url}/arcgis/rest/services/crop/ImageServer?f=json", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=clients,   # its ./gdalwmscache
                          env={**os.environ, "GDAL_DEFAULT_WMS_CACHE_PATH": str(clients / "wmscache")})
    assert done.returncode == 0, done.stderr
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 3857
        got = ds.read([1, 2, 3])
    xs = cx - half + (np.arange(20) + 0.5) * 2 * half / 20
    ys = cy + half - (np.arange(20) + 0.5) * 2 * half / 20
    gx, gy = np.meshgrid(xs, ys)
    ux, uy = Transformer.from_crs("EPSG:3857", "EPSG:32618", always_xy=True).transform(gx, gy)
    r, c = rasterio.transform.rowcol(transform, ux.ravel(), uy.ravel())
    truth = values[:, np.asarray(r), np.asarray(c)].reshape(3, 20, 20)
    assert np.median(np.abs(got.astype(int) - truth.astype(int))) <= 12     # JPEG tiles, resampled
