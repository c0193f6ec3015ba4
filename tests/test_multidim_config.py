"""Declaring a multidimensional service: the YAML keys (variable_field, variables, dimensions) are
validated strictly with messages that say what to write, and the catalog-dependent problems (an
attribute that does not exist or holds text, a band without the metadata item) stop the service
from opening with every problem listed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from ogc_gateway.config import (
    Config,
    DimensionConfig,
    ServerConfig,
    ServiceConfig,
    VariableConfig,
    config_problems,
    load_config,
)
from ogc_gateway.engine.errors import ConfigError
from ogc_gateway.engine.service import open_services


@pytest.fixture()
def folder(tmp_path) -> Path:
    (tmp_path / "a.tif").write_bytes(b"")        # config validation only looks for a matching file
    return tmp_path


def problems(folder: Path, **service) -> list[str]:
    return config_problems({"services": {"s": {"sources": "a.tif", **service}}}, folder / "gateway.yaml")


def test_a_valid_declaration_has_no_problem(folder):
    assert problems(folder, time_field="date", variable_field="variable",
                    variables={"temp": {"unit": "degC", "description": "Temperature"}, "salt": None},
                    dimensions={"StdZ": {"field": "depth", "unit": "m"}, "level": "pressure"}) == []
    assert problems(folder, variables={"temp": {}}, dimensions={"stdtime": {"band_metadata": "NETCDF_DIM_time"},
                                                                "StdZ": {"band_metadata": "NETCDF_DIM_depth"}}) == []


@pytest.mark.parametrize("service, says", [
    ({"dimension": {"StdZ": "depth"}}, "services.s.dimension: unknown key (did you mean 'dimensions'?)"),
    ({"dimensions": {"StdZ": {"feild": "depth"}}, "variables": {"t": None}},
     "services.s.dimensions.StdZ.feild: unknown key (did you mean 'field'?)"),
    ({"time_field": "date", "variables": {"t": None}, "dimensions": {"StdTime": {"field": "date"}}},
     "services.s.dimensions.StdTime.field: StdTime is the service's time: set time_field"),
    ({"time_field": "date", "variables": {"t": None}, "dimensions": {"StdTime": {"band_metadata": "x"}}},
     "StdTime comes from time_field or from band metadata, not both"),
    ({"variables": {"t": None}, "dimensions": {"StdTime": None}}, "StdTime needs time_field"),
    ({"time_field": "date", "variables": {"t": None}, "dimensions": {"StdTime": {"unit": "s"}}}, "drop unit"),
    ({"variables": {"t": None}, "dimensions": {"elevation": "height"}}, "how WMS and WCS call"),
    ({"variables": {"t": None}, "dimensions": {"sea level": "height"}}, "a dimension name is a letter"),
    ({"variables": {"t": None}, "dimensions": {"depth": {"unit": "m"}}}, "give field (a catalog attribute) or"),
    ({"variables": {"t": None}, "dimensions": {"depth": {"field": "d", "band_metadata": "x"}}}, "one of them"),
    ({"variables": {"t": None}, "dimensions": {"StdZ": "d", "stdz": "e"}}, "appears twice"),
    ({"variables": {"t": None}, "dimensions": {"StdZ": 5}}, "must be an attribute name or a mapping"),
    ({"variables": {"t": None}, "dimensions": []}, "must be a mapping of dimension name"),
    ({"variables": {"a,b": None}, "dimensions": {"StdZ": "d"}}, "without commas"),
    ({"variables": ["t"], "dimensions": {"StdZ": "d"}}, "must be a mapping of variable name"),
    ({"variables": {"t": None}}, "a multidimensional service needs a dimension"),
    ({"dimensions": {"StdZ": "depth"}}, "services.s.variable_field: name each item's variable"),
    ({"variables": {"a": None, "b": None}, "dimensions": {"StdZ": "depth"}}, "name each item's variable"),
])
def test_every_mistake_is_named(folder, service, says):
    found = problems(folder, **service)
    assert any(says in p for p in found), found


def test_the_yaml_keys_build_the_config(folder):
    (folder / "gateway.yaml").write_text(
        "services:\n  s:\n    sources: a.tif\n    time_field: date\n    variable_field: var\n"
        "    variables:\n      temp: {unit: degC}\n"
        "    dimensions:\n      stdz: {field: depth, unit: m, description: Depth}\n      level: pressure\n")
    svc = load_config(folder / "gateway.yaml").services["s"]
    assert svc.multidimensional and svc.variable_field == "var"
    assert svc.variables == (VariableConfig("temp", unit="degC"),)
    assert svc.dimensions == (DimensionConfig("StdZ", field="depth", unit="m", description="Depth"),
                              DimensionConfig("level", field="pressure"))


# --- problems found when the service opens ------------------------------------------------------------

def _open(tmp_path: Path, **service) -> list[str]:
    config = Config(server=ServerConfig(cache_dir=tmp_path / "cache"),
                    services={"s": ServiceConfig(name="s", sources=(str(tmp_path / "data" / "*.tif"),),
                                                 **service)})
    with pytest.raises(ConfigError) as failed:
        open_services(config)
    return failed.value.problems


def _write(path: Path, bands: int = 1, band_tags: dict | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=bands, dtype="uint8",
                       crs="EPSG:4326", transform=Affine(1, 0, 0, 0, -1, 4)) as ds:
        for b in range(1, bands + 1):
            ds.write(np.full((4, 4), b, "uint8"), b)
            ds.update_tags(b, **(band_tags or {}))


def test_an_attribute_that_is_missing_or_holds_text_is_named(tmp_path):
    _write(tmp_path / "data" / "x.tif")
    (tmp_path / "data" / "catalog.csv").write_text("path,depth,var\nx.tif,deep,temp\n")
    found = _open(tmp_path, catalog=tmp_path / "data" / "catalog.csv", variable_field="nope",
                  dimensions=(DimensionConfig("StdZ", field="depth"), DimensionConfig("level", field="lvl")))
    assert "services.s.dimensions.StdZ.field: 'depth' holds text; a dimension's values are numbers or dates" in found
    assert any(p.startswith("services.s.dimensions.level.field: no attribute 'lvl'; attributes: depth, var")
               for p in found), found
    assert any(p.startswith("services.s.variable_field: no attribute 'nope'") for p in found), found


def test_bands_without_the_metadata_item_are_named(tmp_path):
    _write(tmp_path / "data" / "x.tif", bands=2, band_tags={"depth": "5"})
    found = _open(tmp_path, variables=(VariableConfig("v"),),
                  dimensions=(DimensionConfig("StdZ", band_metadata="NETCDF_DIM_depth"),))
    assert found[0].startswith("services.s.dimensions.StdZ.band_metadata: ")
    assert found[0].endswith("x.tif band 1 has no metadata item 'NETCDF_DIM_depth'") and len(found) == 2


def test_band_values_that_are_not_numbers_or_times_are_named(tmp_path):
    _write(tmp_path / "data" / "x.tif", bands=1, band_tags={"depth": "deep", "when": "soon"})
    found = _open(tmp_path, variables=(VariableConfig("v"),),
                  dimensions=(DimensionConfig("StdTime", band_metadata="when"),
                              DimensionConfig("StdZ", band_metadata="depth")))
    assert any("'soon' is not a time" in p for p in found) and any("'deep' is not a number" in p for p in found)


def test_bands_without_a_variable_need_one_named(tmp_path):
    _write(tmp_path / "data" / "x.tif", bands=2, band_tags={"depth": "5"})
    found = _open(tmp_path, dimensions=(DimensionConfig("StdZ", band_metadata="depth"),))
    assert any("has no NETCDF_VARNAME; name the service's one variable in `variables`" in p for p in found)


def test_items_without_bands_or_a_variable_need_one_named(tmp_path):
    """Found by mypy (issue 20): with no band metadata the message read `band.band` of None and the
    service failed with an AttributeError instead of naming the problem."""
    _write(tmp_path / "data" / "x.tif")
    (tmp_path / "data" / "catalog.csv").write_text("path,depth\nx.tif,5\n")
    found = _open(tmp_path, catalog=tmp_path / "data" / "catalog.csv",
                  dimensions=(DimensionConfig("StdZ", field="depth"),))
    assert any(p.startswith("services.s.variables: ") and "x.tif has no variable; name the service's one "
               "variable in `variables`" in p for p in found), found


def test_band_slices_of_a_geotiff_with_iso_times(tmp_path):
    """Any multi-band source works when its bands carry the values (here ISO times and depths)."""
    path = tmp_path / "data" / "x.tif"
    _write(path, bands=2)
    with rasterio.open(path, "r+") as ds:
        ds.update_tags(1, when="2024-05-01", depth="0")
        ds.update_tags(2, when="2024-06-01", depth="0")
    config = Config(server=ServerConfig(cache_dir=tmp_path / "cache"),
                    services={"s": ServiceConfig(name="s", sources=(str(tmp_path / "data" / "*.tif"),),
                                                 variables=(VariableConfig("v"),),
                                                 dimensions=(DimensionConfig("StdTime", band_metadata="when"),
                                                             DimensionConfig("StdZ", band_metadata="depth")))})
    md = open_services(config)["s"].info.multidimensional
    assert md.times() == [1714521600000, 1717200000000] and md.dimension("stdz").values == (0.0,)
    assert [s.values for s in md.slices] == [(("StdTime", 1714521600000), ("StdZ", 0.0)),
                                             (("StdTime", 1717200000000), ("StdZ", 0.0))]


def test_a_variable_no_item_has_is_named(tmp_path):
    _write(tmp_path / "data" / "x.tif")
    (tmp_path / "data" / "catalog.csv").write_text("path,depth,var\nx.tif,5,temp\n")
    found = _open(tmp_path, catalog=tmp_path / "data" / "catalog.csv", variable_field="var",
                  variables=(VariableConfig("tmp"),), dimensions=(DimensionConfig("StdZ", field="depth"),))
    assert found == ["services.s.variables.tmp: no item (or band) is of this variable; the variables found: temp"]
