"""Invalid rendering rules of every kind are 400 errors naming the function and the argument, through
exportImage, the root resource's ?renderingRule= and identify; a sweep of malformed arguments over
every function's every argument, and random rules, never get a server error."""

from __future__ import annotations

import json
import random

import pytest

from ogc_gateway.engine.functions import FUNCTIONS
from synth_functions import EXPORT, ROOT, function_client, rest_error


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    return function_client(tmp_path_factory, "err")[1]


def r(function, **args):
    return {"rasterFunction": function, "rasterFunctionArguments": args}


def nested(depth):
    rule = {"rasterFunction": "None"}
    for _ in range(depth):
        rule = r("Identity", Raster=rule)
    return rule


CASES = [
    ("{bad json", "not valid JSON"),
    ("[1]", "must be a JSON object"),
    ({"rasterFunction": "Teleport"}, "unknown raster function 'Teleport'"),
    ({"rasterFunction": 5}, "rasterFunction must be a function or template name"),
    ({"rasterFunction": "Slope", "rasterFunctionArguments": [1]}, "rasterFunctionArguments must be a JSON object"),
    ({"rasterFunction": "Slope", "outputPixelType": "U64"}, "Slope: outputPixelType 'U64'"),
    ({"rasterFunction": "Hillshade", "variableName": "Rasters"}, "Hillshade: variableName 'Rasters'"),
    (r("Hillshade", Azimut=3), "Hillshade: Azimut: unknown argument (did you mean Azimuth?)"),
    (r("Hillshade", Azimuth="x"), "Hillshade: Azimuth must be a number"),
    (r("Hillshade", Azimuth=400), "Hillshade: Azimuth must be a number >= 0 and <= 360"),
    (r("Hillshade", Altitude=True), "Hillshade: Altitude must be a number"),
    (r("Hillshade", HillshadeType=5), "Hillshade: HillshadeType must be one of 0 (Traditional)"),
    (r("Hillshade", Raster="$abc"), "Hillshade: Raster must be a raster"),
    (r("Hillshade", Raster=5), "Hillshade: Raster must be a raster"),
    (r("Hillshade", Raster={"url": "https://example.org/ImageServer"}), "another service"),
    (r("Stretch", Raster=r("Slope", SlopeType=7)), "Slope: SlopeType must be one of"),
    (nested(20), "nested deeper than 16"),
    (r("Stretch", StretchType=7), "Stretch: StretchType must be one of"),
    (r("Stretch", StretchType=5, Statistics="x"), "Stretch: Statistics must be"),
    (r("Stretch", StretchType=5, Statistics=[[5, 1, 0, 0]]), "min must not exceed max"),
    (r("Stretch", Min=3, Max=3), "Stretch: Min and Max must differ"),
    (r("Stretch", UseGamma=True, Gamma=[-1]), "Stretch: Gamma item 0"),
    (r("Stretch", MinPercent=60, MaxPercent=50), "MinPercent + MaxPercent"),
    (r("Colormap"), "Colormap: give exactly one of Colormap, ColormapName or ColorRamp"),
    (r("Colormap", Colormap=[[1, 300, 0, 0]]), "Colormap: Colormap entry 0: a colour"),
    (r("Colormap", Colormap=[[1.5, 3, 0, 0]]), "the value must be an integer"),
    (r("Colormap", ColorRamp="Nope"), "unknown colour ramp 'Nope'"),
    (r("Colormap", ColorRamp={"type": "multipart", "colorRamps": "x"}), "multipart"),
    (r("Colormap", ColormapName="Rainbowz"), "unknown colormap 'Rainbowz'"),
    (r("Remap", InputRanges=[1], OutputValues=[2]), "Remap: InputRanges must hold pairs"),
    (r("Remap", InputRanges=[1, 2, 3, 4], OutputValues=[2]), "OutputValues gives 1 values for 2"),
    (r("Clip"), "Clip: give ClippingGeometry"),
    (r("Clip", ClippingGeometry={"x": 1, "y": 2}), "Clip: ClippingGeometry must be a polygon or an envelope"),
    (r("Clip", ClippingGeometry={"rings": "x"}), "ClippingGeometry is not polygon or envelope JSON"),
    (r("Clip", ClippingGeometry="{nope"), "ClippingGeometry must be polygon or envelope JSON"),
    (r("Mask", NoDataValues=["a b"]), "Mask: NoDataValues band 0"),
    (r("ExtractBand", BandIDs=[-1]), "ExtractBand: BandIDs item 0"),
    (r("ExtractBand", BandIDs=[7]), "ExtractBand: BandIDs band 7 does not exist"),
    (r("ExtractBand", BandNames=["Ultraviolet"]), "matches no band"),
    (r("Convolution"), "Convolution: Kernel is required"),
    (r("Convolution", Kernel=[1] * 8), "Kernel holds 8 weights"),
    (r("Convolution", Kernel=[1] * 8, Columns=4, Rows=2), "Columns must be odd"),
    (r("Convolution", Columns=99, Kernel=[1]), "Columns must be an integer >= 1 and <= 25"),
    (r("Statistics", KernelRows=4), "Statistics: KernelRows must be odd"),
    (r("Statistics", Type="Mode"), "Statistics: Type must be one of"),
    (r("Local", Operation=999), "Local: Operation must be one of"),
    (r("Local", Rasters=["$$"], Operation=1), "Plus takes 2 inputs, not 1"),
    (r("Local", Rasters=[]), "Local: Rasters must list 1 to 32"),
    (r("Local", Rasters=["$$", r("ExtractBand", BandIDs=[0, 1])], Operation=1), "mixes inputs of 2, 4 bands"),
    (r("Local", Rasters=["$$", 1], Operation=93, PercentileValue=150), "PercentileValue"),
    (r("Arithmetic", Operation=1), "Arithmetic: Raster2 is required"),
    (r("Arithmetic", Raster2="x"), "Raster2 must be a raster"),
    (r("NDVI", VisibleBandID=9), "NDVI: VisibleBandID band 9 matches no band"),
    (r("NDVI", InfraredBandWavelength=10000), "InfraredBandWavelength"),
    (r("BandArithmetic", BandIndexes="B1 + B9"), "band 9"),
    (r("Resample", ResamplingType=7), "Resample: ResamplingType 7 (Average) is not supported"),
    (r("Resample", OutputCellsize={"x": -1}), "OutputCellsize must be"),
    (r("Grayscale", ConversionParameters=[1, 2]), "gives 2 weights; the input has 4 bands"),
    (r("CompositeBand", Rasters=[5]), "CompositeBand: Rasters item 0"),
    (r("Con", Rasters=["$$"]), "Con: Rasters must list 2 to 3"),
    (r("ColormapToRGB", Raster=r("ExtractBand", BandIDs=[0])), "has no colour table"),
    ({"rasterFunctionDefinition": 5}, "must be a JSON object"),
    ({"rasterFunctionDefinition": "{x"}, "rasterFunctionDefinition is not valid JSON"),
    ({"rasterFunctionDefinition": {"type": "RasterFunctionTemplate"}}, "needs \"function\""),
    ({"rasterFunctionDefinition": {"function": {"type": "SlopeFunction"}, "arguments": {"ZFactor": "x"}}},
     "Slope: ZFactor must be a number"),
    ({"rasterFunctionDefinition": {"function": {"type": "SlopeFunction"}}, "rasterFunctionArguments": {"Zed": 1}},
     "no argument or variable 'Zed'"),
]


def _params(rule) -> dict:
    return {"renderingRule": rule if isinstance(rule, str) else json.dumps(rule)}


@pytest.mark.parametrize("rule, words", CASES, ids=[str(i) for i in range(len(CASES))])
def test_a_bad_rule_is_a_400_naming_what_is_wrong(client, rule, words):
    faces = [
        client.get(EXPORT.format("bands"), query_string={"f": "image", "format": "png", "size": "8,8"} | _params(rule)),
        client.get(ROOT.format("bands"), query_string={"f": "json"} | _params(rule)),
        client.get(ROOT.format("bands") + "/identify", query_string={"f": "json", "geometry": "600100,5099900"}
                   | _params(rule)),
        client.get(ROOT.format("bands") + "/computeHistograms", query_string={
            "f": "json", "geometry": "600000,5098800,601600,5100000", "geometryType": "esriGeometryEnvelope"}
            | _params(rule)),
    ]
    for resp in faces:
        error = rest_error(resp)
        assert error["code"] == 400, error
        assert words in error["message"] and "renderingRule" in error["message"], error


BAD = ["x", -1e300, [], {}, True, "$$", [[1, 2]], {"rasterFunction": "Nope"},
       {"rasterFunction": "Slope", "rasterFunctionArguments": {"ZFactor": "x"}}, "9" * 300, -1]


def _never_a_server_error(client, rule) -> None:
    resp = client.get(EXPORT.format("bands"), query_string={"f": "image", "format": "tiff", "size": "8,8",
                                                            "renderingRule": json.dumps(rule)})
    assert resp.status_code < 500, rule
    if resp.content_type.startswith("application/json"):
        assert resp.get_json()["error"]["code"] == 400, (rule, resp.get_json())
    else:
        assert resp.content_type == "image/tiff", rule


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_sweep_of_malformed_arguments(client, name):
    fn = FUNCTIONS[name]
    for arg in fn.args:
        for value in BAD:
            _never_a_server_error(client, r(fn.name, **{arg.name: value}))


def test_random_rules_never_get_a_server_error(client):
    rng = random.Random(8)
    values = BAD + [0, 1, 2, 3, 5, 9, 0.5, 45, "1 2", "B1 / B2", [0, 1], [1, 2, 3, 4], ["0"],
                    [[0, 1, 2, 3]], "Gray", "Elevation #1", {"xmin": 0, "ymin": 0, "xmax": 1, "ymax": 1}]
    names = sorted(FUNCTIONS)

    def random_rule(depth: int):
        fn = FUNCTIONS[rng.choice(names)]
        args = {}
        for arg in rng.sample(fn.args, k=min(len(fn.args), rng.randint(0, 3))):
            args[arg.name] = random_rule(depth + 1) if arg.kind.raster and depth < 3 and rng.random() < 0.5 \
                else rng.choice(values)
        return r(fn.name, **args)

    for _ in range(150):
        _never_a_server_error(client, random_rule(0))
