"""Each stretch type against its definition (Stretch's docstring, README), written out here with
numpy on the fixture's own values."""

from __future__ import annotations

import numpy as np
import pytest

from synth_functions import export_tiff, function_client, terrain_masked


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return function_client(tmp_path_factory, "st")[1], terrain_masked()


def stretch(client, **args):
    data, profile = export_tiff(client, "terrain", {"rasterFunction": "Stretch", "rasterFunctionArguments": args})
    return data[0], profile["dtype"]


def u8(unit: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(unit, 0, 1) * 255)


def test_minimum_maximum_from_explicit_statistics(fx):
    client, dem = fx
    out, dtype = stretch(client, StretchType=5, Statistics=[[260, 420, 0, 0]])
    assert dtype == "uint8"
    assert np.array_equal(out.data[~dem.mask], u8((dem.data - 260) / 160)[~dem.mask])
    assert np.array_equal(out.mask, dem.mask)


def test_minimum_maximum_from_the_service_statistics(fx):
    client, dem = fx
    out, _ = stretch(client, StretchType="MinimumMaximum")
    lo, hi = dem.min(), dem.max()                    # the file is small: its statistics are exact
    assert np.array_equal(out.data[~dem.mask], u8((dem.data - lo) / (hi - lo))[~dem.mask])


def test_dra_uses_the_requests_own_pixels(fx):
    client, dem = fx
    rows, cols = slice(10, 40), slice(20, 70)
    w, s, e, n = 500000 + 200, 5000000 - 400, 500000 + 700, 5000000 - 100
    data, _ = export_tiff(client, "terrain", {"rasterFunction": "Stretch",
                                              "rasterFunctionArguments": {"StretchType": 5, "DRA": True}},
                          bbox=(w, s, e, n), size=(30, 50))
    part = dem[rows, cols]
    assert np.array_equal(data[0].data, u8((part.data - part.min()) / (part.max() - part.min())))


def test_standard_deviation(fx):
    client, dem = fx
    out, _ = stretch(client, StretchType=3, NumberOfStandardDeviations=1.5, Statistics=[[0, 1000, 330, 40]])
    lo, hi = 330 - 1.5 * 40, 330 + 1.5 * 40
    assert np.array_equal(out.data[~dem.mask], u8((dem.data - lo) / (hi - lo))[~dem.mask])


def _inverse_cdf(values: np.ndarray, share: float) -> float:
    """The smallest value with at least `share` of the values at or below it."""
    s = np.sort(values)
    return s[max(0, int(np.ceil(share * s.size)) - 1)]


def test_percent_clip_with_dra(fx):
    client, dem = fx
    out, _ = stretch(client, StretchType=6, MinPercent=2, MaxPercent=5, DRA=True)
    values = dem.compressed()
    lo, hi = _inverse_cdf(values, 0.02), _inverse_cdf(values, 0.95)
    assert np.array_equal(out.data[~dem.mask], u8((dem.data - lo) / (hi - lo))[~dem.mask])


def test_histogram_equalization_with_dra(fx):
    client, dem = fx
    out, _ = stretch(client, StretchType=4, DRA=True)
    values = np.sort(dem.compressed())
    share = np.searchsorted(values, dem.data, side="right") / values.size
    assert np.array_equal(out.data[~dem.mask], u8(share)[~dem.mask])
    counts = np.bincount(out.compressed(), minlength=256)
    assert np.median(counts[counts > 0]) < 2 * values.size / 256       # equalised: levels evenly used


def test_sigmoid(fx):
    client, dem = fx
    out, _ = stretch(client, StretchType=9, SigmoidStrengthLevel=3, Statistics=[[0, 1, 330, 40]])
    expected = 1 / (1 + np.exp(-3 * (dem.data - 330) / 40))
    assert np.array_equal(out.data[~dem.mask], u8(expected)[~dem.mask])


def test_gamma_and_an_output_range_beyond_8_bits(fx):
    client, dem = fx
    out, dtype = stretch(client, StretchType=5, Statistics=[[260, 420, 0, 0]], UseGamma=True, Gamma=[2.0],
                         Min=-100, Max=900)
    assert dtype == "float32"
    unit = np.clip((dem.data - 260) / 160, 0, 1) ** 0.5
    np.testing.assert_allclose(out.data[~dem.mask], (-100 + 1000 * unit)[~dem.mask], rtol=1e-5)


def test_computed_gamma_puts_the_mean_at_mid_range(fx):
    client, dem = fx
    out, _ = stretch(client, StretchType=5, Statistics=[[200, 500, 250, 30]], UseGamma=True, ComputeGamma=True)
    unit = (250 - 200) / 300
    gamma = np.log(unit) / np.log(0.5)
    expected = np.clip((dem.data - 200) / 300, 0, 1) ** (1 / gamma)
    assert np.abs(out.data[~dem.mask] - 255 * expected[~dem.mask]).max() <= 0.5 + 1e-6


def test_none_leaves_values(fx):
    client, dem = fx
    out, dtype = stretch(client, StretchType=0)
    assert dtype == "float32" and np.array_equal(out.data[~dem.mask], dem.data[~dem.mask].astype("float32"))


def test_stretch_of_a_processed_input_uses_its_statistics_so_tiles_agree(fx):
    """Without DRA, Stretch over a Slope uses the slope's statistics over the whole service, not a
    request's pixels: two halves rendered apart equal one render of both."""
    client, _ = fx
    rule = {"rasterFunction": "Stretch",
            "rasterFunctionArguments": {"StretchType": 5, "Raster": {"rasterFunction": "Slope"}}}
    whole = export_tiff(client, "terrain", rule, bbox=(500100, 4999300, 500900, 4999900), size=(60, 80))[0][0]
    left = export_tiff(client, "terrain", rule, bbox=(500100, 4999300, 500500, 4999900), size=(60, 40))[0][0]
    right = export_tiff(client, "terrain", rule, bbox=(500500, 4999300, 500900, 4999900), size=(60, 40))[0][0]
    assert np.array_equal(np.hstack([left.data, right.data]), whole.data)
    assert left.data.max() < 255 or right.data.max() < 255    # neither half was stretched to its own range
