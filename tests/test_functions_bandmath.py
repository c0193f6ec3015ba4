"""NDVI and BandArithmetic against their closed forms on analytic bands (blue = 100 + c,
green = 200 + 3r, red = 300 + 2c + r, nir = 2000 + 7r - 3c), and the expression grammar."""

from __future__ import annotations

import numpy as np
import pytest

from ogc_gateway.engine.functions.expression import compile_expression
from ogc_gateway.engine.functions.schema import ArgError
from synth_functions import BANDS_HOLE, bands_array, export_tiff, function_client, rest_error


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    return function_client(tmp_path_factory, "bm")[1]


B = bands_array().astype(float)
BLUE, GREEN, RED, NIR = B
HOLE = np.zeros(B.shape[1:], bool)
HOLE[BANDS_HOLE] = True


def ba(client, expression, method=0):
    rule = {"rasterFunction": "BandArithmetic", "rasterFunctionArguments": {"Method": method, "BandIndexes": expression}}
    data, profile = export_tiff(client, "bands", rule)
    assert profile["dtype"] == "float32"
    return data


def test_ndvi_default_is_u8_from_0_to_200(client):
    data, profile = export_tiff(client, "bands", {"rasterFunction": "NDVI"})      # VisibleBandID 2, InfraredBandID 3
    assert profile["dtype"] == "uint8" and data.shape[0] == 1
    ndvi = (NIR - RED) / (NIR + RED)
    assert np.array_equal(data[0].data[~HOLE], np.rint(ndvi * 100 + 100)[~HOLE])
    assert np.array_equal(data[0].mask, HOLE)


def test_ndvi_scientific_with_0_based_band_ids(client):
    rule = {"rasterFunction": "NDVI",
            "rasterFunctionArguments": {"VisibleBandID": 1, "InfraredBandID": 0, "Scientific": True}}
    data, profile = export_tiff(client, "bands", rule)
    assert profile["dtype"] == "float32"
    np.testing.assert_allclose(data[0].data[~HOLE], ((BLUE - GREEN) / (BLUE + GREEN))[~HOLE], rtol=1e-6)
    assert np.array_equal(data[0].mask, HOLE)


@pytest.mark.parametrize("args", [{"VisibleBandName": "red", "InfraredBandName": "NIR"},
                                  {"VisibleBandWavelength": 660, "InfraredBandWavelength": 0.85}])
def test_ndvi_bands_by_name_or_wavelength(client, args):
    data, _ = export_tiff(client, "bands", {"rasterFunction": "NDVI",
                                            "rasterFunctionArguments": args | {"ScientificOutput": True}})
    np.testing.assert_allclose(data[0].data[~HOLE], ((NIR - RED) / (NIR + RED))[~HOLE], rtol=1e-6)


@pytest.mark.parametrize("expression, truth", [
    ("(B4 - B3) / (B4 + B3)", lambda: (NIR - RED) / (NIR + RED)),
    ("(b3*0+b2-b1-500)/(b1+b2+500)", lambda: (GREEN - BLUE - 500) / (BLUE + GREEN + 500)),
    ("(B1 + B2) / 2(B3 * B4)", lambda: (BLUE + GREEN) / 2 * (RED * NIR)),       # implicit multiplication
    ("sqrt(B1) + B2 ^ 2 - abs(-B3) * -2", lambda: np.sqrt(BLUE) + GREEN ** 2 + 2 * RED),
    ("2 + 3 * 4 ^ 2 - -B1", lambda: 50 + BLUE),
    ("max(B1, B2) / min(B3, B4) + ln(B4) - log10(B1)", lambda: GREEN / RED + np.log(NIR) - np.log10(BLUE)),
])
def test_user_expressions_are_their_closed_form(client, expression, truth):
    data = ba(client, expression)
    np.testing.assert_allclose(data[0].data[~HOLE], truth()[~HOLE], rtol=2e-6)
    assert np.array_equal(data[0].mask, HOLE)


def test_a_division_by_zero_is_nodata(client):
    data = ba(client, "B1 / (B2 - B2)")
    assert data[0].mask.all()


def savi(nir, red, L):
    return (nir - red) / (nir + red + L) * (1 + L)


METHODS = [
    (1, "4 3", lambda: (NIR - RED) / (NIR + RED)),
    (2, "4 3 0.33", lambda: savi(NIR, RED, 0.33)),
    (2, "4 3", lambda: savi(NIR, RED, 0.5)),
    (3, "4 3 0.33 0.5 1.5", lambda: 0.33 * (NIR - 0.33 * RED - 0.5) / (0.5 * NIR + RED - 0.5 * 0.33 + 1.5 * (1 + 0.33 ** 2))),
    (4, "4 3", lambda: 0.5 * (2 * NIR + 1 - np.sqrt((2 * NIR + 1) ** 2 - 8 * (NIR - RED)))),
    (5, "4 3", lambda: (lambda eta: eta * (1 - 0.25 * eta) - (RED - 0.125) / (1 - RED))(
        (2 * (NIR ** 2 - RED ** 2) + 1.5 * NIR + 0.5 * RED) / (NIR + RED + 0.5))),
    (6, "4 3 0.3 0.5", lambda: (NIR - 0.3 * RED - 0.5) / np.sqrt(1 + 0.3 ** 2)),
    (7, "1 2 3 4 1 2", lambda: -0.2848 * BLUE - 0.2435 * GREEN - 0.5436 * RED + 0.7243 * NIR + 0.084 * BLUE
     - 1.18 * GREEN),
    (9, "3 2 1", lambda: (GREEN - RED) / (GREEN + RED - BLUE)),
    (10, "4 2", lambda: (NIR - GREEN) / (NIR + GREEN)),
    (11, "4 3", lambda: NIR / RED),
    (14, "4 3 2", lambda: 1.5 * (1.2 * (NIR - GREEN) - 2.5 * (RED - GREEN))
     / np.sqrt((2 * NIR + 1) ** 2 - (6 * NIR - 5 * np.sqrt(RED)) - 0.5)),
    (15, "4 3 2", lambda: 100 * (NIR - RED) - 10 * (NIR - GREEN)),
    (17, "4 2", lambda: NIR / GREEN - 1),
    (18, "2 4", lambda: (GREEN - NIR) / (GREEN + NIR)),
    (19, "4 3 1", lambda: 2.5 * (NIR - RED) / (NIR + 6 * RED - 7.5 * BLUE + 1)),
    (23, "2 4 3 0.3", lambda: (GREEN - 0.3 * NIR - 0.7 * RED) / (GREEN + 0.3 * NIR + 0.7 * RED)),
    (24, "3 4", lambda: 1 / ((0.1 - RED) ** 2 + (0.06 - NIR) ** 2)),
    (26, "3 4", lambda: (RED - NIR) / (RED + NIR)),
]


@pytest.mark.parametrize("method, indexes, truth", METHODS)
def test_index_methods_are_their_closed_form(client, method, indexes, truth):
    data = ba(client, indexes, method)
    expected = truth()
    ok = ~HOLE & np.isfinite(expected)
    np.testing.assert_allclose(data[0].data[ok], expected[ok], rtol=2e-6)


def test_sultan_gives_three_bands_and_methods_by_name(client):
    data = ba(client, "1 2 3 4 1", "Sultan")        # Band1 Band3 Band4 Band5 Band6
    assert data.shape[0] == 3
    np.testing.assert_allclose(data[0].data[~HOLE], (NIR / BLUE * 100)[~HOLE], rtol=2e-6)
    np.testing.assert_allclose(data[1].data[~HOLE], (NIR / BLUE * 100)[~HOLE], rtol=2e-6)
    np.testing.assert_allclose(data[2].data[~HOLE], (GREEN / RED * (NIR / RED) * 100)[~HOLE], rtol=2e-6)


# --- the grammar ------------------------------------------------------------------------------------

def value(source: str, **bands) -> float:
    expr = compile_expression(source)
    return float(expr.evaluate({k.lower(): np.array(v, float) for k, v in bands.items()}))


def test_precedence_and_associativity():
    assert value("2 + 3 * 4") == 14
    assert value("(2 + 3) * 4") == 20
    assert value("2 ^ 3 ^ 2") == 512              # right-associative
    assert value("-2 ^ 2") == -4                  # the power binds tighter than the sign
    assert value("2 ^ -1") == 0.5
    assert value("10 - 4 - 3") == 3 and value("64 / 8 / 2") == 4
    assert value("3(1 + 1)") == 6 and value("(1 + 1)(2 + 1)") == 6
    assert value("b1 * B2 + 1.5e1 + .5", b1=2, b2=3) == 21.5
    assert value("pow(2, 10) + atan(0) + cos(0)") == 1025


@pytest.mark.parametrize("source, words", [
    ("", "empty"), ("B1 +", "end"), ("(B1 + 2", "')'"), ("B1 + 2)", "unexpected ')'"), ("B1 ** ", "end"),
    ("__import__('os')", "cannot read"), ("B1.real", "cannot read"), ("open(B1)", "unknown name 'open'"),
    ("B0 + 1", "from B1"), ("sqrt(B1, B2)", "1 argument"), ("max(B1)", "2 arguments"), ("B1 ; B2", "cannot read"),
    ("x + 1", "unknown name 'x'"), ("(" * 100 + "1" + ")" * 100, "nested"), ("-" * 200 + "1", "nested"),
    ("1" * 3000, "longer"), ("lambda: 1", "cannot read"), ("B1 if B2 else B3", "unexpected 'if'"),
])
def test_grammar_refuses_what_is_not_arithmetic(source, words):
    with pytest.raises(ArgError) as caught:
        compile_expression(source)
    assert words in str(caught.value)


def test_bad_expressions_and_band_references_are_400s(client):
    for rule, words in [
        ({"Method": 0, "BandIndexes": "B1 +* B2"}, "BandArithmetic: BandIndexes"),
        ({"Method": 0, "BandIndexes": "B9 - B1"}, "band 9"),
        ({"Method": 0, "BandIndexes": "3 * 4"}, "reads no band"),
        ({"Method": 1, "BandIndexes": "4"}, "NIR Red"),
        ({"Method": 1, "BandIndexes": "4 x"}, "band number"),
        ({"Method": 2, "BandIndexes": "4 3 a"}, "constant L"),
        ({"Method": 1, "BandIndexes": "4 3 1 2"}, "takes 2 band numbers"),
        ({"Method": 99, "BandIndexes": "1"}, "Method must be one of"),
        ({"Method": 1}, "BandIndexes is required"),
    ]:
        resp = client.get("/arcgis/rest/services/bands/ImageServer/exportImage",
                          query_string={"f": "image", "format": "tiff", "size": "8,8",
                                        "renderingRule": '{"rasterFunction": "BandArithmetic", '
                                                         f'"rasterFunctionArguments": {__import__("json").dumps(rule)}}}'})
        error = rest_error(resp)
        assert error["code"] == 400 and words in error["message"], (rule, error)
