"""WMTS 1.0.0 (/ogc/wmts and /arcgis/rest/services/{name}/ImageServer/WMTS) against the analytic truth
of tests/synth.py: capabilities (schema-valid against the corrected official schema, tile matrix numbers
computed here), tiles (pixels computed here from the fixture functions through pyproj), the time
dimension, feature info, the OWS exceptions and status codes of the WMTS test suite, and the clients
that read it: OWSLib (KVP and the RESTful templates) and GDAL's WMTS driver (through rasterio), whose
pixels must equal a WMS GetMap of the same area."""

from __future__ import annotations

import io
import json
import math
import random
import re

import numpy as np
import pytest
import rasterio
from lxml import etree
from PIL import Image
from pyproj import Transformer

from ogc_schemas import validate
from synth import dem_value, mosaic_value, ts_value
from test_wms import DEM_MAX, DEM_MIN, TS_MAX, TS_MIN, dem_source, no_proxy, stretch  # noqa: F401

WMTS = "/ogc/wmts"
DEM_WMTS = "/arcgis/rest/services/dem/ImageServer/WMTS"
NS = {"wmts": "http://www.opengis.net/wmts/1.0", "ows": "http://www.opengis.net/ows/1.1",
      "xlink": "http://www.w3.org/1999/xlink"}
WORLD = math.pi * 6378137.0
TO_MERC = Transformer.from_crs(32633, 3857, always_xy=True)
TO_UTM = Transformer.from_crs(3857, 32633, always_xy=True)
TS_TIMES = [f"2024-{m:02d}-01T00:00:00Z" for m in range(1, 13)]
MOSAIC_TIMES = ["2024-01-15T10:30:00Z", "2024-03-15T10:30:00Z", "2024-05-15T10:30:00Z", "2024-07-15T10:30:00Z"]


# --- truth ------------------------------------------------------------------------------------------

def merc_tile(z, row, col):
    """The Web Mercator box of a tile, from the set's definition (OGC 17-083r2), computed here."""
    span = 2 * WORLD / 2 ** z
    x0, y1 = -WORLD + col * span, WORLD - row * span
    return x0, y1 - span, x0 + span, y1


def merc_range(box_utm, z):
    """(row0, row1, col0, col1) of the level-z tiles under a UTM 33N box."""
    xs, ys = TO_MERC.transform([box_utm[0], box_utm[2], box_utm[0], box_utm[2]],
                               [box_utm[1], box_utm[1], box_utm[3], box_utm[3]])
    span = 2 * WORLD / 2 ** z
    return (math.floor((WORLD - max(ys)) / span), math.floor((WORLD - min(ys)) / span),
            math.floor((min(xs) + WORLD) / span), math.floor((max(xs) + WORLD) / span))


DEM_BOX = (500000.0, 5000100.0, 501900.0, 5002000.0)
Z = 14                                           # the DEM's native level: 9.55 m of Web Mercator
ROW0, ROW1, COL0, COL1 = merc_range(DEM_BOX, Z)


def dem_tile_truth(z, row, col):
    """(grey levels, nodata mask, ambiguous mask) of a 256 x 256 DEM tile: each pixel centre taken to
    UTM by pyproj, the value of the source pixel holding it (nearest), stretched by the service's
    statistics (engine/render.py's rule, computed here)."""
    values, nodata, edge = dem_source(*merc_pixels(z, row, col))
    return stretch(values, DEM_MIN, DEM_MAX), nodata, edge


def picture(resp, mode="RGBA"):
    assert resp.status_code == 200, resp.data[:400]
    assert resp.content_type.startswith("image/"), (resp.content_type, resp.data[:400])
    return np.asarray(Image.open(io.BytesIO(resp.data)).convert(mode))


def get_tile(client, path=WMTS, **params):
    query = dict(SERVICE="WMTS", REQUEST="GetTile", VERSION="1.0.0", LAYER="dem", STYLE="default",
                 FORMAT="image/png", TILEMATRIXSET="WebMercatorQuad", TILEMATRIX=str(Z), TILEROW=str(ROW0),
                 TILECOL=str(COL0))
    query.update({k: v for k, v in params.items() if v is not None})
    for key in [k for k, v in params.items() if v is None]:
        query.pop(key, None)
    return client.get(path, query_string=query)


def capabilities(client, path=WMTS, **params):
    resp = client.get(path, query_string={"SERVICE": "WMTS", "REQUEST": "GetCapabilities", **params})
    assert resp.status_code == 200, resp.data[:500]
    assert resp.content_type == "application/xml"
    validate(resp.data)
    return etree.fromstring(resp.data)


def ows_exception(resp, code, locator=None, status=400):
    assert resp.status_code == status, (resp.status_code, resp.data[:400])
    validate(resp.data)
    root = etree.fromstring(resp.data)
    found = root.find("ows:Exception", NS)
    assert found.get("exceptionCode") == code, resp.data[:400]
    if locator is not None:
        assert (found.get("locator") or "").lower() == locator.lower()
    return found


# --- capabilities -----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [WMTS, DEM_WMTS, "/arcgis/rest/services/ts/ImageServer/WMTS"])
def test_capabilities_validate_and_list_layers_before_tile_matrix_sets(client, path):
    root = capabilities(client, path)
    contents = root.find("wmts:Contents", NS)
    tags = [etree.QName(child).localname for child in contents]
    assert tags == sorted(tags, key=lambda t: t != "Layer")          # every Layer, then every set
    layers = [layer.findtext("ows:Identifier", namespaces=NS) for layer in contents.findall("wmts:Layer", NS)]
    assert layers == (["dem", "mosaic", "ts"] if path == WMTS else [path.split("/")[4]])


def test_rest_capabilities_are_the_kvp_document(client):
    kvp = client.get(DEM_WMTS, query_string={"SERVICE": "WMTS", "REQUEST": "GetCapabilities"})
    rest = client.get(f"{DEM_WMTS}/1.0.0/WMTSCapabilities.xml")
    assert rest.status_code == 200 and rest.content_type == "application/xml"
    assert rest.data == kvp.data
    root = etree.fromstring(rest.data)
    href = root.find("wmts:ServiceMetadataURL", NS).get(f"{{{NS['xlink']}}}href")
    assert href == f"http://localhost{DEM_WMTS}/1.0.0/WMTSCapabilities.xml"


def test_web_mercator_quad_is_written_with_exact_numbers(client):
    root = capabilities(client)
    tms = next(t for t in root.find("wmts:Contents", NS).findall("wmts:TileMatrixSet", NS)
               if t.findtext("ows:Identifier", namespaces=NS) == "WebMercatorQuad")
    assert tms.findtext("ows:SupportedCRS", namespaces=NS) == "urn:ogc:def:crs:EPSG::3857"
    assert tms.findtext("wmts:WellKnownScaleSet", namespaces=NS) == "urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible"
    matrices = tms.findall("wmts:TileMatrix", NS)
    assert [m.findtext("ows:Identifier", namespaces=NS) for m in matrices] == [str(z) for z in range(25)]
    for z, m in enumerate(matrices):
        assert float(m.findtext("wmts:ScaleDenominator", namespaces=NS)) == pytest.approx(
            2 * WORLD / 256 / 2 ** z / 0.00028, rel=1e-15)
        corner = m.findtext("wmts:TopLeftCorner", namespaces=NS)
        assert re.fullmatch(r"\S+ \S+", corner)                      # one space: OWSLib splits on it
        assert [float(v) for v in corner.split(" ")] == pytest.approx([-WORLD, WORLD], rel=1e-15)
        assert (m.findtext("wmts:MatrixWidth", namespaces=NS), m.findtext("wmts:MatrixHeight", namespaces=NS)) \
            == (str(2 ** z), str(2 ** z))
    assert matrices[0].findtext("wmts:ScaleDenominator", namespaces=NS) == "559082264.0287178"


def test_native_set_of_a_latitude_longitude_service_is_in_its_axis_order(client):
    root = capabilities(client)
    tms = next(t for t in root.find("wmts:Contents", NS).findall("wmts:TileMatrixSet", NS)
               if t.findtext("ows:Identifier", namespaces=NS) == "ts-native")
    assert tms.findtext("ows:SupportedCRS", namespaces=NS) == "urn:ogc:def:crs:EPSG::4326"
    matrices = tms.findall("wmts:TileMatrix", NS)
    assert [m.findtext("wmts:TopLeftCorner", namespaces=NS) for m in matrices] == ["90 -180"] * len(matrices)
    # coarse to fine; the finest is the data's 1 degree
    scales = [float(m.findtext("wmts:ScaleDenominator", namespaces=NS)) for m in matrices]
    assert scales == sorted(scales, reverse=True)
    assert scales[-1] == pytest.approx(2 * math.pi * 6378137 / 360 / 0.00028)


def test_layer_limits_are_the_tiles_under_the_data(client):
    root = capabilities(client, DEM_WMTS)
    link = next(x for x in root.iter(f"{{{NS['wmts']}}}TileMatrixSetLink")
                if x.findtext("wmts:TileMatrixSet", namespaces=NS) == "WebMercatorQuad")
    limits = {m.findtext("wmts:TileMatrix", namespaces=NS): tuple(int(m.findtext(f"wmts:{k}", namespaces=NS)) for k in
                                                                 ("MinTileRow", "MaxTileRow", "MinTileCol", "MaxTileCol"))
              for m in link.iter(f"{{{NS['wmts']}}}TileMatrixLimits")}
    # 10 m data: level 14 (9.55 m) is the first as fine; the limits end one level past it (issue 14)
    assert list(limits) == [str(z) for z in range(16)]
    for z in (0, 7, 14, 15):
        assert limits[str(z)] == merc_range(DEM_BOX, z)


def test_styles_formats_dimension_and_resource_templates(client):
    root = capabilities(client)
    layers = {x.findtext("ows:Identifier", namespaces=NS): x for x in root.iter(f"{{{NS['wmts']}}}Layer")}
    ts = layers["ts"]
    styles = ts.findall("wmts:Style", NS)
    assert styles[0].get("isDefault") == "true" and styles[0].findtext("ows:Identifier", namespaces=NS) == "default"
    legend = styles[0].find("wmts:LegendURL", NS)
    assert "REQUEST=GetLegendGraphic" in legend.get(f"{{{NS['xlink']}}}href") and int(legend.get("width")) > 0
    assert [f.text for f in ts.findall("wmts:Format", NS)] == ["image/png", "image/jpeg", "image/webp"]
    dim = ts.find("wmts:Dimension", NS)
    assert dim.findtext("ows:Identifier", namespaces=NS) == "Time"
    assert dim.findtext("wmts:Default", namespaces=NS) == TS_TIMES[-1]
    assert [v.text for v in dim.findall("wmts:Value", NS)] == TS_TIMES
    assert layers["dem"].find("wmts:Dimension", NS) is None
    for name, layer in layers.items():
        for res in layer.findall("wmts:ResourceURL", NS):
            variables = set(re.findall(r"\{(\w+)\}", res.get("template")))
            allowed = {"Style", "TileMatrixSet", "TileMatrix", "TileRow", "TileCol"} | (
                {"Time"} if name != "dem" else set()) | ({"I", "J"} if res.get("resourceType") == "FeatureInfo" else set())
            assert variables == allowed, res.get("template")
            assert f"/tile/1.0.0/{name}/" in res.get("template")           # the layer written literally
        tile_formats = [r.get("format") for r in layer.findall("wmts:ResourceURL", NS) if r.get("resourceType") == "tile"]
        assert tile_formats == ["image/png", "image/jpeg", "image/webp"]


def test_sections_update_sequence_and_versions(client):
    full = capabilities(client)
    sequence = int(full.get("updateSequence"))
    root = capabilities(client, SECTIONS="Contents")
    assert [etree.QName(c).localname for c in root] == ["Contents", "ServiceMetadataURL"]
    root = capabilities(client, SECTIONS="ServiceIdentification,Themes")
    assert [etree.QName(c).localname for c in root] == ["ServiceIdentification", "ServiceMetadataURL"]
    minimal = capabilities(client, UPDATESEQUENCE=str(sequence))
    assert len(minimal) == 0 and minimal.get("updateSequence") == str(sequence)
    assert len(capabilities(client, UPDATESEQUENCE=str(sequence - 1))) > 0
    ows_exception(client.get(WMTS, query_string={"SERVICE": "WMTS", "REQUEST": "GetCapabilities",
                                                 "UPDATESEQUENCE": str(sequence + 1)}),
                  "InvalidUpdateSequence", "updatesequence")
    ows_exception(client.get(WMTS, query_string={"SERVICE": "WMTS", "REQUEST": "GetCapabilities", "SECTIONS": "Bogus"}),
                  "InvalidParameterValue", "sections")
    ows_exception(client.get(WMTS, query_string={"SERVICE": "WMTS", "REQUEST": "GetCapabilities", "SECTIONS": ""}),
                  "MissingParameterValue", "sections")
    ows_exception(client.get(WMTS, query_string={"SERVICE": "WMTS", "REQUEST": "GetCapabilities",
                                                 "ACCEPTVERSIONS": "2.0.0"}), "VersionNegotiationFailed")
    assert len(capabilities(client, ACCEPTVERSIONS="2.0.0,1.0.0", ACCEPTFORMATS="bogus/type")) > 0
    mixed = client.get(WMTS, query_string={"service": "wmts", "Request": "getcapabilities"})
    assert mixed.status_code == 200 and mixed.data == client.get(
        WMTS, query_string={"SERVICE": "WMTS", "REQUEST": "GetCapabilities"}).data


def test_rest_resources_that_do_not_exist_and_unacceptable_media_types(client):
    assert client.get(f"{DEM_WMTS}/1.0.0/WMTSCapabilities.xml/Bogus").status_code == 404
    assert client.get("/arcgis/rest/services/nope/ImageServer/WMTS/1.0.0/WMTSCapabilities.xml").status_code == 404
    assert client.get(f"{DEM_WMTS}/1.0.0/WMTSCapabilities.xml", headers={"Accept": "image/png"}).status_code == 406
    assert client.get(f"{DEM_WMTS}/1.0.0/WMTSCapabilities.xml", headers={"Accept": "text/xml"}).status_code == 200
    for path in ("nolayer/default/WebMercatorQuad/14/0/0.png", "dem/nostyle/WebMercatorQuad/14/0/0.png",
                 "dem/default/NoSet/14/0/0.png", "dem/default/WebMercatorQuad/99/0/0.png",
                 f"dem/default/WebMercatorQuad/{Z}/0/0.png", f"dem/default/WebMercatorQuad/{Z}/{ROW0}/{COL0}.gif",
                 "dem/default/WebMercatorQuad/14/0", "ts/default/WebMercatorQuad/0/0/0.png"):
        assert client.get(f"{WMTS}/tile/1.0.0/{path}").status_code == 404, path


# --- tiles ------------------------------------------------------------------------------------------

def test_tile_pixels_are_the_dem_truth(client):
    for row in (ROW0, ROW1):
        for col in (COL0, COL1):
            rgba = picture(get_tile(client, TILEROW=str(row), TILECOL=str(col)))
            assert rgba.shape == (256, 256, 4)
            grey, nodata, edge = dem_tile_truth(Z, row, col)
            sure = ~edge
            assert np.array_equal(rgba[..., 3][sure] == 0, nodata[sure])
            data = sure & ~nodata
            assert data.sum() > 1000
            assert np.array_equal(rgba[..., 0][data], grey[data])
            assert np.array_equal(rgba[..., 0], rgba[..., 1])


def test_kvp_and_rest_give_the_same_tile_in_every_format(client):
    for mime, ext, pil in (("image/png", "png", "PNG"), ("image/jpeg", "jpg", "JPEG"), ("image/webp", "webp", "WEBP")):
        kvp = get_tile(client, FORMAT=mime)
        rest = client.get(f"{WMTS}/tile/1.0.0/dem/default/WebMercatorQuad/{Z}/{ROW0}/{COL0}.{ext}")
        assert kvp.status_code == rest.status_code == 200
        assert kvp.content_type == rest.content_type == mime
        assert kvp.data == rest.data
        picture_ = Image.open(io.BytesIO(kvp.data))
        assert picture_.format == pil and picture_.size == (256, 256)


def test_tiles_carry_validators_and_answer_conditional_requests(client):
    first = get_tile(client)
    assert first.headers["Cache-Control"] == "public, max-age=3600"
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert get_tile(client).headers["ETag"] == etag
    again = client.get(WMTS, query_string=dict(SERVICE="WMTS", REQUEST="GetTile", VERSION="1.0.0", LAYER="dem",
                                                STYLE="default", FORMAT="image/png", TILEMATRIXSET="WebMercatorQuad",
                                                TILEMATRIX=str(Z), TILEROW=str(ROW0), TILECOL=str(COL0)),
                       headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    since = get_tile(client)
    assert since.headers["Last-Modified"] == modified


def test_empty_tile_inside_the_limits_is_a_blank_picture_of_the_right_size(client):
    # the mosaic's south-west corner (x < 500400, y < 5000800) holds no scene
    z = 17
    rows_cols = merc_range((500000.0, 5000400.0, 500100.0, 5000500.0), z)
    resp = get_tile(client, LAYER="mosaic", TILEMATRIX=str(z), TILEROW=str(rows_cols[1]), TILECOL=str(rows_cols[2]))
    rgba = picture(resp)
    assert rgba.shape == (256, 256, 4) and not rgba[..., 3].any()
    jpeg = picture(get_tile(client, LAYER="mosaic", TILEMATRIX=str(z), TILEROW=str(rows_cols[1]),
                            TILECOL=str(rows_cols[2]), FORMAT="image/jpeg"), "RGB")
    assert (jpeg > 250).all()                                       # white, as WMS's default background


def test_time_dimension_selects_the_month(client):
    # WorldCRS84Quad level 0, tile (0, 0): lon -180..0, 0.703125 degrees a pixel
    lats = 90 - (np.arange(256) + 0.5) * 0.703125
    inside = np.abs(lats) < 90
    source_lat = 90 - (np.floor(90 - lats) + 0.5)
    edge = np.abs((90 - lats) - np.round(90 - lats)) < 0.2 * 1.0
    sure = inside & ~edge
    for time, month in ((None, 12), ("default", 12), ("current", 12), (TS_TIMES[2], 3), ("2024-07-01T00:00:00Z", 7)):
        rgba = picture(get_tile(client, LAYER="ts", TILEMATRIXSET="WorldCRS84Quad", TILEMATRIX="0", TILEROW="0",
                                TILECOL="0", TIME=time))
        truth = stretch(ts_value(month, source_lat), TS_MIN, TS_MAX)
        assert np.array_equal(rgba[sure, 100, 0], truth[sure]), time
        assert not rgba[~inside, 100, 3].any()
    rest = client.get(f"{WMTS}/tile/1.0.0/ts/default/{TS_TIMES[2]}/WorldCRS84Quad/0/0/0.png")
    assert rest.data == get_tile(client, LAYER="ts", TILEMATRIXSET="WorldCRS84Quad", TILEMATRIX="0", TILEROW="0",
                                 TILECOL="0", TIME=TS_TIMES[2]).data


def merc_pixels(z, row, col):
    """UTM 33N coordinates of the pixel centres of a Web Mercator tile (pyproj)."""
    x0, y0, x1, y1 = merc_tile(z, row, col)
    size = (x1 - x0) / 256
    xs, ys = np.meshgrid(x0 + (np.arange(256) + 0.5) * size, y1 - (np.arange(256) + 0.5) * size)
    return TO_UTM.transform(xs, ys)


def merc_index(z, x_utm, y_utm):
    """(row, col, j, i) of the level-z tile and pixel holding a UTM 33N point."""
    x, y = TO_MERC.transform(x_utm, y_utm)
    size = 2 * WORLD / 2 ** z / 256
    px, py = (x + WORLD) / size, (WORLD - y) / size
    return int(py // 256), int(px // 256), int(py % 256), int(px % 256)


def test_mosaic_time_shows_that_scene(client):
    z = 17
    row, col, _, _ = merc_index(z, 501000.0, 5001200.0)
    ux, uy = merc_pixels(z, row, col)
    # where all four scenes overlap, 40 m inside (scene 4's own grid is in degrees)
    overlap = (ux > 500840) & (ux < 501160) & (uy > 5000940) & (uy < 5001460)
    assert overlap.sum() > 10000
    for time, scene in ((None, 4), (MOSAIC_TIMES[0], 1), (MOSAIC_TIMES[1], 2), ("2024-05-15T10:30:00Z", 3)):
        rgba = picture(get_tile(client, LAYER="mosaic", TILEMATRIX=str(z), TILEROW=str(row), TILECOL=str(col),
                                TIME=time))
        # default_band_ids 2,1,0, each band stretched from scene 1's value to scene 4's
        grey = np.array([(mosaic_value(scene, b) - mosaic_value(1, b)) * 255 / (mosaic_value(4, b) - mosaic_value(1, b))
                         for b in (2, 1, 0)])
        assert (rgba[overlap][:, :3] == np.rint(grey)).all(), (time, np.unique(rgba[overlap][:, 0]))


def test_feature_info_is_the_dem_value_under_the_pixel(client):
    row, col, j, i = merc_index(Z, 501234.0, 5001111.0)
    ux, uy = merc_pixels(Z, row, col)
    cx = 500000 + 10 * (math.floor((ux[j, i] - 500000) / 10) + 0.5)
    cy = 5002000 - 10 * (math.floor((5002000 - uy[j, i]) / 10) + 0.5)
    query = dict(SERVICE="WMTS", REQUEST="GetFeatureInfo", VERSION="1.0.0", LAYER="dem", STYLE="default",
                 FORMAT="image/png", TILEMATRIXSET="WebMercatorQuad", TILEMATRIX=str(Z), TILEROW=str(row),
                 TILECOL=str(col), I=str(i), J=str(j), INFOFORMAT="application/json")
    kvp = client.get(WMTS, query_string=query)
    assert kvp.status_code == 200 and kvp.content_type == "application/json"
    props = kvp.get_json()["features"][0]["properties"]
    assert props["Band_1"] == pytest.approx(float(dem_value(cx, cy)))
    rest = client.get(f"{WMTS}/tile/1.0.0/dem/default/WebMercatorQuad/{Z}/{row}/{col}/{j}/{i}.json")
    assert rest.status_code == 200 and json.loads(rest.data) == kvp.get_json()
    html = client.get(f"{WMTS}/tile/1.0.0/dem/default/WebMercatorQuad/{Z}/{row}/{col}/{j}/{i}.html")
    assert html.status_code == 200 and html.content_type.startswith("text/html")


# --- exceptions -------------------------------------------------------------------------------------

TILE_QUERY = dict(SERVICE="WMTS", REQUEST="GetTile", VERSION="1.0.0", LAYER="dem", STYLE="default",
                  FORMAT="image/png", TILEMATRIXSET="WebMercatorQuad", TILEMATRIX=str(Z), TILEROW=str(ROW0),
                  TILECOL=str(COL0))


@pytest.mark.parametrize("missing", ["SERVICE", "REQUEST", "VERSION", "LAYER", "STYLE", "FORMAT", "TILEMATRIXSET",
                                     "TILEMATRIX", "TILEROW", "TILECOL"])
def test_each_missing_gettile_parameter(client, missing):
    query = {k: v for k, v in TILE_QUERY.items() if k != missing}
    ows_exception(client.get(WMTS, query_string=query), "MissingParameterValue", missing)


@pytest.mark.parametrize("changes,code,locator,status", [
    ({"SERVICE": "WMS"}, "InvalidParameterValue", "service", 400),
    ({"REQUEST": "GetMap"}, "InvalidParameterValue", "request", 400),
    ({"VERSION": "2.0.0"}, "InvalidParameterValue", "version", 400),
    ({"LAYER": "nope"}, "InvalidParameterValue", "layer", 400),
    ({"STYLE": "nope"}, "InvalidParameterValue", "style", 400),
    ({"FORMAT": "image/gif"}, "InvalidParameterValue", "format", 400),
    ({"TILEMATRIXSET": "NoSuchSet"}, "InvalidParameterValue", "tilematrixset", 400),
    ({"TILEMATRIX": "25"}, "InvalidParameterValue", "tilematrix", 400),
    ({"TILEROW": "x"}, "InvalidParameterValue", "TileRow", 400),
    ({"TILEROW": "-1"}, "TileOutOfRange", "TileRow", 400),
    ({"TILEROW": str(ROW1 + 1)}, "TileOutOfRange", "TileRow", 400),
    ({"TILECOL": str(2 ** Z)}, "TileOutOfRange", "TileCol", 400),
    ({"TILECOL": str(COL0 - 1)}, "TileOutOfRange", "TileCol", 400),
    ({"LAYER": "ts", "TILEMATRIXSET": "WorldCRS84Quad", "TILEMATRIX": "0", "TILEROW": "0", "TILECOL": "0",
      "TIME": "1999-01-01"}, "InvalidParameterValue", "time", 400),
    ({"LAYER": "ts", "TILEMATRIXSET": "WorldCRS84Quad", "TILEMATRIX": "0", "TILEROW": "0", "TILECOL": "0",
      "TIME": "garbage"}, "InvalidParameterValue", "time", 400),
])
def test_gettile_exceptions(client, changes, code, locator, status):
    ows_exception(client.get(WMTS, query_string={**TILE_QUERY, **changes}), code, locator, status)


@pytest.mark.parametrize("changes,code,locator", [
    ({"I": "256"}, "PointIJOutOfRange", "i"), ({"J": "-1"}, "PointIJOutOfRange", "j"),
    ({"I": "a"}, "PointIJOutOfRange", "i"), ({"INFOFORMAT": "image/png"}, "InvalidParameterValue", "infoformat"),
    ({"INFOFORMAT": None}, "MissingParameterValue", "infoformat"),
])
def test_getfeatureinfo_exceptions(client, changes, code, locator):
    query = {**TILE_QUERY, "REQUEST": "GetFeatureInfo", "I": "1", "J": "1", "INFOFORMAT": "text/plain", **changes}
    ows_exception(client.get(WMTS, query_string={k: v for k, v in query.items() if v is not None}), code, locator)


def test_unknown_service_path_is_404_with_a_report(client):
    ows_exception(client.get("/arcgis/rest/services/nope/ImageServer/WMTS",
                             query_string={"SERVICE": "WMTS", "REQUEST": "GetCapabilities"}),
                  "InvalidParameterValue", "service", 404)


# --- real clients -----------------------------------------------------------------------------------

def test_owslib_reads_the_capabilities_and_fetches_tiles_by_kvp_and_rest(live_url, no_proxy):
    from owslib.wmts import WebMapTileService
    wmts = WebMapTileService(live_url + WMTS)
    assert set(wmts.contents) == {"dem", "mosaic", "ts"}
    dem = wmts["dem"]
    assert {"WebMercatorQuad", "WorldCRS84Quad", "dem-native"} <= set(dem.tilematrixsetlinks)
    limits = dem.tilematrixsetlinks["WebMercatorQuad"].tilematrixlimits[str(Z)]
    assert (limits.mintilerow, limits.maxtilerow, limits.mintilecol, limits.maxtilecol) == (ROW0, ROW1, COL0, COL1)
    matrix = wmts.tilematrixsets["WebMercatorQuad"].tilematrix[str(Z)]
    assert matrix.scaledenominator == pytest.approx(2 * WORLD / 256 / 2 ** Z / 0.00028, rel=1e-15)
    assert matrix.topleftcorner == pytest.approx((-WORLD, WORLD), rel=1e-15)
    assert "default" in dem.styles and dem.formats == ["image/png", "image/jpeg", "image/webp"]
    assert not wmts.restonly
    kvp = wmts.gettile(layer="dem", tilematrixset="WebMercatorQuad", tilematrix=str(Z), row=ROW0, column=COL0,
                       format="image/png", style="default").read()
    grey, nodata, edge = dem_tile_truth(Z, ROW0, COL0)
    rgba = np.asarray(Image.open(io.BytesIO(kvp)).convert("RGBA"))
    sure = ~edge & ~nodata
    assert np.array_equal(rgba[..., 0][sure], grey[sure])
    import requests
    random.seed(7)                          # OWSLib picks one tile template at random, whatever the format
    seen = set()
    for _ in range(12):
        url = wmts.buildTileResource(layer="dem", tilematrixset="WebMercatorQuad", tilematrix=str(Z), row=ROW0,
                                     column=COL0, style="default")
        resp = requests.get(url, timeout=30)
        ext = url.rsplit(".", 1)[1]
        assert resp.status_code == 200 and resp.headers["Content-Type"] == \
            {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}[ext]
        if ext == "png":
            assert resp.content == kvp
        seen.add(ext)
    assert seen == {"png", "jpg", "webp"}
    # the time dimension through the template ({Time}) and through KVP
    ts = wmts["ts"]
    assert ts.dimensions["Time"]["default"] == TS_TIMES[-1] and ts.dimensions["Time"]["values"] == TS_TIMES
    url = wmts.buildTileResource(layer="ts", tilematrixset="WorldCRS84Quad", tilematrix="0", row=0, column=0,
                                 style="default", Time=TS_TIMES[2])
    mime = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}[url.rsplit(".", 1)[1]]
    by_template = requests.get(url, timeout=30)
    by_kvp = wmts.gettile(layer="ts", tilematrixset="WorldCRS84Quad", tilematrix="0", row=0, column=0,
                          format=mime, style="default", TIME=TS_TIMES[2]).read()
    assert by_template.status_code == 200 and by_template.content == by_kvp


def gdal_wmts(live_url, layer="dem", tms="WebMercatorQuad"):
    return f"WMTS:{live_url}{WMTS}/1.0.0/WMTSCapabilities.xml,layer={layer},tilematrixset={tms}"


def test_gdal_wmts_reads_the_same_pixels_as_a_wms_getmap_of_the_area(live_url, no_proxy, client):
    with rasterio.open(gdal_wmts(live_url), TILEMATRIX=str(Z)) as ds:
        assert ds.crs.to_epsg() == 3857 and ds.count == 4
        span = 2 * WORLD / 2 ** Z / 256
        assert ds.res == pytest.approx((span, span), rel=1e-12)
        data = ds.read()
        bounds = ds.bounds
        # the extent GDAL takes is the layer's Web Mercator box, on the level's pixel grid
        xs, ys = TO_MERC.transform([DEM_BOX[0], DEM_BOX[2]], [DEM_BOX[1], DEM_BOX[3]])
        assert bounds.left <= min(xs) + span and bounds.right >= max(xs) - span
    getmap = client.get("/ogc/wms", query_string=dict(
        SERVICE="WMS", VERSION="1.3.0", REQUEST="GetMap", LAYERS="dem", STYLES="", CRS="EPSG:3857",
        BBOX=f"{bounds.left!r},{bounds.bottom!r},{bounds.right!r},{bounds.top!r}", WIDTH=str(data.shape[2]),
        HEIGHT=str(data.shape[1]), FORMAT="image/png", TRANSPARENT="TRUE"))
    wms = picture(getmap)
    assert wms.shape[:2] == data.shape[1:]
    gdal = np.moveaxis(data, 0, -1)
    # the same pixels, but where a pixel centre lies on a source pixel's edge (float noise in the
    # box decides which neighbour nearest takes)
    xs = bounds.left + (np.arange(gdal.shape[1]) + 0.5) * span
    ys = bounds.top - (np.arange(gdal.shape[0]) + 0.5) * span
    _, _, edge = dem_source(*TO_UTM.transform(*np.meshgrid(xs, ys)))
    sure = ~edge
    assert np.array_equal((gdal[..., 3] > 0)[sure], (wms[..., 3] > 0)[sure])
    opaque = (wms[..., 3] > 0) & sure
    assert opaque.sum() > 10000
    assert np.array_equal(gdal[..., :3][opaque], wms[..., :3][opaque])


def test_gdal_wms_driver_reads_the_imageserver_tiles(live_url, no_proxy):
    # inside the DEM (GDAL takes a 404 for an error, not an empty tile)
    with rasterio.open(f"WMS:{live_url}/arcgis/rest/services/dem/ImageServer?f=json") as ds:
        assert ds.driver == "WMS" and ds.crs.to_epsg() == 3857
        x0, y0, x1, y1 = merc_tile(Z, ROW0, COL0)
        window = rasterio.windows.from_bounds(x0, y0, x1, y1, ds.transform)
        data = ds.read(window=window, out_shape=(ds.count, 256, 256))
    grey, nodata, edge = dem_tile_truth(Z, ROW0, COL0)
    sure = ~edge & ~nodata
    assert np.array_equal(data[0][sure], grey[sure])
