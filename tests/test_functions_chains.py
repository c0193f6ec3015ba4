"""Rules as a whole: chains equal the composition of single rules (each step served from the file
the previous one exported), tiles equal the same region of one larger render (no seams, also for
nested neighbourhood functions and the default 8-bit stretch), the root JSON's answer to
?renderingRule=, templates (YAML, JSON files, RFT files, overrides, variables, inline
rasterFunctionDefinition) as rasterFunctionInfos and WMS styles with legends."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from lxml import etree
from PIL import Image

from ogc_gateway.app import create_app
from ogc_gateway.config import load_config
from ogc_gateway.engine.errors import ConfigError
from synth_functions import (
    BANDS_HOLE,
    EXPORT,
    EXTENTS,
    ROOT,
    TERRAIN_ORIGIN,
    TERRAIN_RES,
    bands_array,
    export_tiff,
    function_config,
    make_all,
    rest_error,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_all(tmp_path_factory.mktemp("chain-data"))


@pytest.fixture(scope="module")
def client(data, tmp_path_factory):
    return create_app(function_config(data, tmp_path_factory.mktemp("chain-cache"))).test_client()


def rule(function, **args):
    return {"rasterFunction": function, "rasterFunctionArguments": args}


def export_to_file(client, service: str, rendering_rule, folder: Path) -> Path:
    """A rule's output over the terrain fixture's extent, native grid, written as the GeoTIFF it
    is served as."""
    w, s, e, n = EXTENTS["terrain"]
    resp = client.get(EXPORT.format(service), query_string={
        "f": "image", "format": "tiff", "bbox": f"{w},{s},{e},{n}", "interpolation": "RSP_NearestNeighbor",
        "size": "120,100", "renderingRule": json.dumps(rendering_rule)})
    assert resp.content_type == "image/tiff"
    folder.mkdir(parents=True)
    (folder / "step.tif").write_bytes(resp.data)
    return folder


def served(data, tmp_path, **steps):
    """A client that also serves each exported step as a service of its own."""
    return create_app(function_config(data, tmp_path / "cache", extra=steps)).test_client()


def same(a: np.ma.MaskedArray, b: np.ma.MaskedArray) -> None:
    assert a.shape == b.shape
    assert np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b))
    assert np.array_equal(a.data[~np.ma.getmaskarray(a)], b.data[~np.ma.getmaskarray(b)])


def test_a_chain_equals_its_single_rules_one_after_another(client, data, tmp_path):
    slope = rule("Slope", ZFactor=2)
    remap = {"InputRanges": [0, 10, 10, 30, 30, 90], "OutputValues": [1, 2, 3]}
    colors = {"Colormap": [[1, 0, 128, 0], [2, 255, 255, 0], [3, 255, 0, 0]]}
    chained = export_tiff(client, "terrain", rule("Colormap", **colors, Raster=rule("Remap", **remap, Raster=slope)))[0]
    step1 = export_to_file(client, "terrain", slope, tmp_path / "s1")
    c1 = served(data, tmp_path / "c1", s1=step1)
    step2 = export_to_file(c1, "s1", rule("Remap", **remap), tmp_path / "s2")
    c2 = served(data, tmp_path / "c2", s2=step2)
    composed = export_tiff(c2, "s2", rule("Colormap", **colors), bbox=EXTENTS["terrain"], size=(100, 120))[0]
    same(chained, composed)
    assert len({tuple(px) for px in chained.data[:, ~chained.mask[0]].T}) == 3     # all three classes occur


def test_nested_neighbourhood_functions_equal_their_composition(client, data, tmp_path):
    """Hillshade over a 5x5 smoothing: the hillshade's padded input is the smoothing's padded
    output (pads add up), so the chain equals smoothing, exported, then hillshaded."""
    smooth = rule("Convolution", Type="Smoothing5x5")
    chained = export_tiff(client, "terrain", rule("Hillshade", Raster=smooth))[0]
    step = export_to_file(client, "terrain", smooth, tmp_path / "sm")
    composed = export_tiff(served(data, tmp_path / "c", sm=step), "sm", rule("Hillshade"), bbox=EXTENTS["terrain"],
                           size=(100, 120))[0]
    same(chained, composed)


SEAM_RULES = [rule("Hillshade", Raster=rule("Convolution", Type=12), Azimuth=200),
              rule("Slope"), rule("Curvature", Type=1),
              rule("Statistics", KernelRows=5, KernelColumns=3, Type="Median"),
              rule("Stretch", StretchType=4, Raster=rule("Aspect"))]


@pytest.mark.parametrize("rendering_rule", SEAM_RULES, ids=lambda r: r["rasterFunction"])
@pytest.mark.parametrize("cells", [(20, 10, 90, 110), (0, 0, 100, 120)], ids=["inside", "whole"])
def test_tiles_equal_the_same_region_of_one_larger_render(client, rendering_rule, cells):
    """Four tiles rendered apart equal the quarters of one render, cell for cell (the 'whole' case
    puts every tile edge on the data's edge too)."""
    r0, c0, r1, c1 = cells
    west, north = TERRAIN_ORIGIN

    def render(ra, ca, rb, cb):
        box = (west + ca * TERRAIN_RES, north - rb * TERRAIN_RES, west + cb * TERRAIN_RES, north - ra * TERRAIN_RES)
        return export_tiff(client, "terrain", rendering_rule, bbox=box, size=(rb - ra, cb - ca))[0]

    big = render(r0, c0, r1, c1)
    rm, cm = (r0 + r1) // 2 + 3, (c0 + c1) // 2 - 5
    for ra, rb in ((r0, rm), (rm, r1)):
        for ca, cb in ((c0, cm), (cm, c1)):
            same(render(ra, ca, rb, cb), big[:, ra - r0:rb - r0, ca - c0:cb - c0])


def test_default_8_bit_rendering_of_a_rule_stretches_tiles_alike(client):
    """A float output in PNG is stretched from the rule's processed statistics, not each request's."""
    def png(box, size):
        resp = client.get(EXPORT.format("terrain"), query_string={
            "f": "image", "format": "png", "bbox": ",".join(map(str, box)), "size": f"{size[1]},{size[0]}",
            "renderingRule": json.dumps(rule("Slope"))})
        return np.asarray(Image.open(io.BytesIO(resp.data)).convert("RGBA"))
    big = png((500100, 4999200, 501100, 4999800), (60, 100))
    left = png((500100, 4999200, 500600, 4999800), (60, 50))
    right = png((500600, 4999200, 501100, 4999800), (60, 50))
    assert np.array_equal(np.hstack([left, right]), big)


def test_identify_with_a_neighbourhood_rule_sees_neighbours(client):
    """identify reads one cell; Slope still gets its 3x3 window."""
    slope = export_tiff(client, "terrain", rule("Slope"))[0][0]
    for row, col in ((30, 50), (60, 90)):
        x = TERRAIN_ORIGIN[0] + (col + 0.5) * TERRAIN_RES
        y = TERRAIN_ORIGIN[1] - (row + 0.5) * TERRAIN_RES
        body = client.get(ROOT.format("terrain") + "/identify", query_string={
            "f": "json", "geometry": f"{x},{y}", "renderingRule": json.dumps(rule("Slope"))}).get_json()
        assert float(body["value"]) == pytest.approx(float(slope.data[row, col]), rel=1e-6)


def test_outputs_of_items_and_pixel_types(client):
    ndvi = rule("NDVI", ScientificOutput=True)
    same(export_tiff(client, "bands", ndvi)[0], export_tiff(client, "bands", ndvi | {"rasterFunctionArguments": {
        "Raster": "$1", "ScientificOutput": True}})[0])
    error = rest_error(client.get(EXPORT.format("bands"), query_string={
        "f": "image", "format": "tiff", "renderingRule": json.dumps(rule("NDVI", Raster="$999"))}))
    assert error["code"] == 400 and "$999 does not exist" in error["message"]
    slope = export_tiff(client, "terrain", rule("Slope"))[0][0]
    cast, profile = export_tiff(client, "terrain", rule("Slope") | {"outputPixelType": "U8"})
    assert profile["dtype"] == "uint8"
    assert np.array_equal(cast[0].data[~slope.mask], slope.data[~slope.mask].astype("uint8"))


# --- the root JSON ----------------------------------------------------------------------------------

def root(client, service, rendering_rule):
    return client.get(ROOT.format(service), query_string={"f": "json", "renderingRule": json.dumps(rendering_rule)})


def test_root_json_describes_the_processed_output(client):
    body = root(client, "bands", rule("BandArithmetic", BandIndexes="B1 * 2 + 1")).get_json()
    assert (body["bandCount"], body["pixelType"], body["bandNames"]) == (1, "F32", ["BandArithmetic"])
    assert body["minValues"] == [201] and body["maxValues"] == [2 * 179 + 1]     # blue = 100 + column
    b = bands_array().astype(float)
    ok = np.ones(b.shape[1:], bool)
    ok[BANDS_HOLE] = False
    ndvi = ((b[3] - b[2]) / (b[3] + b[2]))[ok]
    body = root(client, "bands", rule("NDVI", ScientificOutput=True)).get_json()
    assert body["minValues"][0] == pytest.approx(ndvi.min(), rel=1e-6)
    assert body["maxValues"][0] == pytest.approx(ndvi.max(), rel=1e-6)
    assert body["serviceDataType"] == "esriImageServiceDataTypeElevation" or body["bandCount"] == 1
    body = root(client, "bands", rule("ExtractBand", BandIDs=[3, 1])).get_json()
    assert body["bandNames"] == ["NearInfrared", "Green"] and body["pixelType"] == "U16"
    assert body["noDataValue"] == 0
    slope = root(client, "terrain", rule("Slope")).get_json()
    assert slope["noDataValue"] == export_tiff(client, "terrain", rule("Slope"))[1]["nodata"] == np.finfo("float32").min
    body = root(client, "terrain", rule("Hillshade")).get_json()
    assert (body["bandCount"], body["pixelType"], body["bandNames"]) == (1, "U8", ["Hillshade"])
    assert 0 <= body["minValues"][0] < body["maxValues"][0] <= 255 and len(body["stdvValues"]) == 1
    assert "noDataValue" not in body                       # 8-bit results mark nodata with a mask
    body = root(client, "terrain", rule("Colormap", ColorRamp="Slope", Raster=rule("Slope"))).get_json()
    assert (body["bandCount"], body["pixelType"], body["serviceDataType"]) == (3, "U8", "esriImageServiceDataTypeRGB")
    composite = root(client, "bands", rule("CompositeBand", Rasters=["$$", rule("NDVI")])).get_json()
    assert composite["bandCount"] == 5 and composite["pixelType"] == "U16"
    raw = root(client, "bands", {"rasterFunction": None}).get_json()
    assert raw["bandCount"] == 4 and raw["bandNames"] == ["Blue", "Green", "Red", "NearInfrared"]


# --- templates ----------------------------------------------------------------------------------------

SLOPE_CLASSES = {
    "name": "Slope classes",
    "rasterFunction": "Colormap",
    "rasterFunctionArguments": {
        "Colormap": [[1, 0, 128, 0], [2, 255, 255, 0], [3, 255, 0, 0]],
        "Raster": {"rasterFunction": "Remap",
                   "rasterFunctionArguments": {"InputRanges": [0, 10, 10, 30, 30, 90], "OutputValues": [1, 2, 3],
                                               "Raster": {"rasterFunction": "Slope"}}}}}
NDVI_RFT = {
    "type": "RasterFunctionTemplate", "name": "NDVI colorized",
    "function": {"type": "ColormapFunction", "pixelType": "UNKNOWN", "name": "Colormap"},
    "arguments": {
        "type": "ColormapFunctionArguments",
        "Raster": {"type": "RasterFunctionTemplate",
                   "function": {"type": "NDVIFunction", "pixelType": "UNKNOWN", "name": "NDVI"},
                   "arguments": {"type": "NDVIFunctionArguments",
                                 "Raster": {"type": "RasterFunctionVariable", "name": "Raster", "isDataset": True},
                                 "VisibleBandID": {"type": "RasterFunctionVariable", "name": "RedBand", "value": 2},
                                 "InfraredBandID": {"type": "RasterFunctionVariable", "name": "InfraredBandID",
                                                    "value": 3}}},
        "ColormapName": {"type": "RasterFunctionVariable", "name": "ColormapName", "value": "NDVI"}},
    "functionType": 0}
PAIR_RFT = {
    "type": "RasterFunctionTemplate", "name": "Pair",
    "function": {"type": "CompositeBandFunction", "pixelType": "UNKNOWN"},
    "arguments": {"type": "CompositeBandFunctionArguments",
                  "Rasters": {"type": "ArgumentArray", "elements": [
                      {"type": "RasterFunctionVariable", "name": "Raster1", "isDataset": True},
                      {"type": "RasterFunctionTemplate", "function": {"type": "ExtractBandFunction"},
                       "arguments": {"type": "ExtractBandFunctionArguments", "BandIDs": [0],
                                     "Raster": {"type": "RasterFunctionVariable", "name": "Raster2",
                                                "isDataset": True}}}]}}}

CONFIG = """
server:
  cache_dir: cache
services:
  terrain:
    sources: data/terrain/*.tif
    default_resampling: nearest
    raster_functions:
      - {name: Hillshade NW, function: Hillshade, description: Lit from the north-west,
         arguments: {Azimuth: 315, Altitude: 45}}
      - {name: Tinted, function: Colormap, arguments: {ColorRamp: "Elevation #1"}}
      - {name: Steepness, function: Stretch, arguments: {StretchType: 5, Raster: {rasterFunction: Slope}}}
      - templates/slope_classes.json
  bands:
    sources: data/bands/*.tif
    default_resampling: nearest
    default_band_ids: [2, 1, 0]
    raster_functions:
      - templates/ndvi_colorized.json
      - templates/pair.json
"""


@pytest.fixture(scope="module")
def templated(data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("templated")
    (folder / "data").symlink_to(data)
    (folder / "templates").mkdir()
    for name, doc in (("slope_classes.json", SLOPE_CLASSES), ("ndvi_colorized.json", NDVI_RFT), ("pair.json", PAIR_RFT)):
        (folder / "templates" / name).write_text(json.dumps(doc))
    (folder / "gateway.yaml").write_text(CONFIG)
    return create_app(load_config(folder / "gateway.yaml")).test_client()


def test_templates_are_listed_none_first(templated):
    infos = templated.get(ROOT.format("terrain") + "/rasterFunctionInfos", query_string={"f": "json"}).get_json()
    names = [i["name"] for i in infos["rasterFunctionInfos"]]
    assert names == ["None", "Hillshade NW", "Tinted", "Steepness", "Slope classes"]
    body = templated.get(ROOT.format("bands"), query_string={"f": "json"}).get_json()
    assert [i["name"] for i in body["rasterFunctionInfos"]] == ["None", "NDVI colorized", "Pair"]


@pytest.mark.parametrize("service, template, equivalent", [
    ("terrain", {"rasterFunction": "Hillshade NW"}, rule("Hillshade", Azimuth=315, Altitude=45)),
    ("terrain", {"rasterFunction": "Hillshade NW", "rasterFunctionArguments": {"Azimuth": 90}},
     rule("Hillshade", Azimuth=90, Altitude=45)),
    ("terrain", {"rasterFunction": "Slope classes"}, {k: v for k, v in SLOPE_CLASSES.items() if k != "name"}),
    ("terrain", {"rasterFunction": "Slope classes", "rasterFunctionArguments": {"ZFactor": 3}},
     rule("Colormap", Colormap=SLOPE_CLASSES["rasterFunctionArguments"]["Colormap"],
          Raster=rule("Remap", InputRanges=[0, 10, 10, 30, 30, 90], OutputValues=[1, 2, 3],
                      Raster=rule("Slope", ZFactor=3)))),
    ("bands", {"rasterFunction": "NDVI colorized"}, rule("Colormap", ColormapName="NDVI", Raster=rule("NDVI"))),
    ("bands", {"rasterFunction": "NDVI colorized", "rasterFunctionArguments": {"RedBand": 0, "ColormapName": "Gray"}},
     rule("Colormap", ColormapName="Gray", Raster=rule("NDVI", VisibleBandID=0))),
    ("bands", {"rasterFunctionDefinition": NDVI_RFT, "rasterFunctionArguments": {"InfraredBandID": 1}},
     rule("Colormap", ColormapName="NDVI", Raster=rule("NDVI", InfraredBandID=1))),
    ("bands", {"rasterFunction": "Pair", "rasterFunctionArguments": {"Raster2": "$1"}},
     rule("CompositeBand", Rasters=["$$", rule("ExtractBand", BandIDs=[0], Raster="$1")])),
])
def test_a_template_equals_the_rule_it_stands_for(templated, service, template, equivalent):
    same(export_tiff(templated, service, template)[0], export_tiff(templated, service, equivalent)[0])


def test_bad_template_arguments_are_400s(templated):
    for template, words in [
        ({"rasterFunction": "Hillshade NW", "rasterFunctionArguments": {"Sun": 3}}, "no argument or variable 'Sun'"),
        ({"rasterFunction": "Hillshade NW", "rasterFunctionArguments": {"Azimuth": "east"}}, "Hillshade: Azimuth"),
        ({"rasterFunction": "NDVI colorized", "rasterFunctionArguments": {"RedBand": 9}}, "VisibleBandID"),
    ]:
        error = rest_error(templated.get(EXPORT.format(template.get("service", "terrain" if "NDVI" not in
                                                                       template["rasterFunction"] else "bands")),
                                         query_string={"f": "image", "renderingRule": json.dumps(template)}))
        assert error["code"] == 400 and words in error["message"], error


def test_template_styles_and_their_legends(templated):
    caps = templated.get("/arcgis/services/terrain/ImageServer/WMSServer",
                         query_string={"SERVICE": "WMS", "REQUEST": "GetCapabilities", "VERSION": "1.3.0"})
    styles = etree.fromstring(caps.data).findall(".//{http://www.opengis.net/wms}Style/{http://www.opengis.net/wms}Name")
    assert [s.text for s in styles] == ["default", "Hillshade NW", "Tinted", "Steepness", "Slope classes"]

    def legend(style):
        resp = templated.get("/arcgis/services/terrain/ImageServer/WMSServer", query_string={
            "SERVICE": "WMS", "REQUEST": "GetLegendGraphic", "VERSION": "1.3.0", "LAYER": "terrain",
            "STYLE": style, "FORMAT": "image/png", "WIDTH": 20, "HEIGHT": 100})
        return np.asarray(Image.open(io.BytesIO(resp.data)).convert("RGB"))[:, :20].astype(int)
    tinted, grey = legend("Tinted"), legend("Steepness")
    assert (np.abs(tinted[:, :, 0] - tinted[:, :, 1]) > 40).any()           # a colour ramp
    assert (grey[:, :, 0] == grey[:, :, 1]).all() and grey[0, 0, 0] > 200 > 50 > grey[-1, 0, 0]   # white to black
    classes = legend("Slope classes")
    assert {tuple(c) for c in classes[5::22, 5]} >= {(0, 128, 0), (255, 255, 0), (255, 0, 0)}


def test_rest_legend_of_a_colormap_lists_its_values(templated):
    body = templated.get(ROOT.format("terrain") + "/legend", query_string={
        "f": "json", "renderingRule": json.dumps({"rasterFunction": "Slope classes"})}).get_json()
    layer = body["layers"][0]
    assert layer["legendType"] == "Unique Values" and [e["label"] for e in layer["legend"]] == ["1", "2", "3"]
    import base64
    colours = [Image.open(io.BytesIO(base64.b64decode(e["imageData"]))).convert("RGB").getpixel((10, 10))
               for e in layer["legend"]]
    assert colours == [(0, 128, 0), (255, 255, 0), (255, 0, 0)]
    body = templated.get(ROOT.format("terrain") + "/legend", query_string={
        "f": "json", "renderingRule": json.dumps({"rasterFunction": "Steepness"})}).get_json()
    assert [e["label"] for e in body["layers"][0]["legend"]] == ["High : 255", "Low : 0"]


def test_wms_style_getmap_is_the_templates_export(templated):
    w, s, e, n = EXTENTS["terrain"]
    wms = templated.get("/arcgis/services/terrain/ImageServer/WMSServer", query_string={
        "SERVICE": "WMS", "REQUEST": "GetMap", "VERSION": "1.3.0", "LAYERS": "terrain", "STYLES": "Steepness",
        "CRS": "EPSG:32633", "BBOX": f"{w},{s},{e},{n}", "WIDTH": 120, "HEIGHT": 100, "FORMAT": "image/png",
        "TRANSPARENT": "TRUE"})
    rest = templated.get(EXPORT.format("terrain"), query_string={
        "f": "image", "format": "png32", "bbox": f"{w},{s},{e},{n}", "size": "120,100",
        "renderingRule": json.dumps({"rasterFunction": "Steepness"})})
    a = np.asarray(Image.open(io.BytesIO(wms.data)).convert("RGBA"))
    b = np.asarray(Image.open(io.BytesIO(rest.data)).convert("RGBA"))
    assert np.array_equal(a, b) and len(np.unique(a[..., 0])) > 100


def test_config_reports_bad_templates_by_function_and_argument(data, tmp_path):
    (tmp_path / "data").symlink_to(data)
    (tmp_path / "bad_rft.json").write_text(json.dumps({"type": "RasterFunctionTemplate",
                                                       "function": {"type": "TeleportFunction"}}))
    (tmp_path / "gateway.yaml").write_text("""
services:
  terrain:
    sources: data/terrain/*.tif
    raster_functions:
      - {name: A, function: Hillshade, arguments: {Azimuth: north}}
      - {name: B, function: Stretch, arguments: {Raster: {rasterFunction: Slope, rasterFunctionArguments: {SlopeTyp: 2}}}}
      - bad_rft.json
""")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "gateway.yaml")
    problems = caught.value.problems
    assert "raster_functions[0]: Hillshade: Azimuth must be a number" in problems[0]
    assert "raster_functions[1]: Slope: SlopeTyp: unknown argument (did you mean SlopeType?)" in problems[1]
    assert "raster_functions[2] (bad_rft.json): unknown raster function 'Teleport'" in problems[2]
