"""Config loading: a valid file builds typed objects; a bad one reports every problem, one per line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from ogc_gateway.config import (
    DEFAULT_OGC_CRS,
    SERVER_KEYS,
    SERVICE_KEYS,
    Attribution,
    Contact,
    Limits,
    MetadataUrl,
    ServerConfig,
    ServiceConfig,
    config_for_folder,
    config_problems,
    load_config,
    ncname,
)
from ogc_gateway.engine.errors import ConfigError


def write_tif(path: Path, crs: str = "EPSG:32633") -> Path:
    """A tiny real GeoTIFF: the loader globs files, so tests need them on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8",
                       crs=crs, transform=Affine(10, 0, 500000, 0, -10, 5000000)) as dst:
        dst.write(np.arange(64, dtype="uint8").reshape(1, 8, 8))
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def test_valid_config_round_trip(tmp_path):
    write_tif(tmp_path / "data" / "terrain" / "a.tif")
    write_tif(tmp_path / "data" / "terrain" / "b.tif")
    (tmp_path / "data" / "terrain" / "catalog.csv").write_text("path,acquired\na.tif,2024-01-01\n")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "contrast.json").write_text(
        '{"rasterFunction": "Stretch", "rasterFunctionArguments": {"StretchType": 6}}')
    config_file = tmp_path / "conf" / "gateway.yaml"
    config_file.parent.mkdir()
    config_file.write_text("""
server:
  title: My imagery
  public_url: https://maps.example.org/gis/
  max_image_width: 4000
  max_record_count: 50
services:
  terrain:
    title: Terrain
    sources: ../data/terrain/*.tif
    catalog: ../data/terrain/catalog.csv
    crs: EPSG:32633
    time_field: acquired
    default_mosaic_method: northwest
    default_band_ids: [0]
    default_resampling: RSP_CubicConvolution
    tile_scheme: NATIVE
    max_image_width: 2000
    raster_functions:
      - Stretch
      - {name: Contrast, function: Stretch, arguments: {StretchType: 6}}
      - ../templates/contrast.json
  second:
    sources: [../data/terrain/a.tif, ../data/terrain/b.tif]
""")
    config = load_config(config_file)

    assert config.path == config_file.resolve()
    assert config.server.cache_dir == config_file.parent.resolve() / ".ogc-gateway-cache"
    assert config.server.public_url == "https://maps.example.org/gis"
    assert config.server.limits == Limits(max_image_width=4000, max_record_count=50)
    assert list(config.services) == ["terrain", "second"]

    terrain = config.services["terrain"]
    assert terrain.sources == (str(tmp_path.resolve() / "data" / "terrain" / "*.tif"),)
    assert terrain.catalog == tmp_path.resolve() / "data" / "terrain" / "catalog.csv"
    assert terrain.default_mosaic_method == "esriMosaicNorthwest"
    assert terrain.default_resampling == "cubic"
    assert terrain.tile_scheme == "native"
    assert terrain.default_band_ids == (0,)
    # Per-service limits override the server's, which override the defaults.
    assert terrain.limits == Limits(max_image_width=2000, max_record_count=50)
    assert [(t.name, t.function, t.arguments) for t in terrain.raster_functions] == [
        ("Stretch", "Stretch", {}),
        ("Contrast", "Stretch", {"StretchType": 6}),
        ("contrast", "Stretch", {"StretchType": 6}),
    ]

    second = config.services["second"]
    assert len(second.sources) == 2
    assert second.title == "" and second.default_resampling == "bilinear"
    assert second.tile_scheme == "WebMercatorQuad" and second.default_mosaic_method is None
    assert second.limits == config.server.limits


def test_every_problem_is_reported(tmp_path):
    write_tif(tmp_path / "terrain" / "a.tif")
    config_file = tmp_path / "gateway.yaml"
    config_file.write_text("""
server:
  max_image_width: big
  proxy_headers: maybe
  titel: x
services:
  terrain:
    sourcs: terrain/*.tif
  9bad:
    sources: terrain/*.tif
  lonely:
    sources: nowhere/*.tif
    catalog: nowhere/catalog.csv
    crs: EPSG:999999
    end_time_field: date_end
    default_mosaic_method: sideways
    default_band_ids: [0, -1]
    tile_scheme: mercator
    raster_functions:
      - Bogus
      - {name: A, function: Stretch}
      - {name: A, function: Stretch}
      - missing.json
""")
    assert problems_of(config_file) == [
        "gateway.yaml: server.titel: unknown key (did you mean 'title'?)",
        "gateway.yaml: server.proxy_headers: must be true or false, not 'maybe'",
        "gateway.yaml: server.max_image_width: must be a positive integer, not 'big'",
        "gateway.yaml: services.terrain.sourcs: unknown key (did you mean 'sources'?)",
        "gateway.yaml: services.terrain.sources: required: a glob or a list of globs of raster files",
        "gateway.yaml: services.9bad: service name must start with a letter or '_' and hold only "
        "letters, digits, '_', '-', '.'",
        "gateway.yaml: services.lonely.end_time_field: needs time_field (the start of the extent)",
        "gateway.yaml: services.lonely.sources: 'nowhere/*.tif' matches no file",
        "gateway.yaml: services.lonely.catalog: no such file: 'nowhere/catalog.csv'",
        "gateway.yaml: services.lonely.crs: not a CRS (try 'EPSG:4326' or a WKT string): "
        "'EPSG:999999'",
        "gateway.yaml: services.lonely.default_mosaic_method: unknown mosaic method 'sideways' "
        "(esriMosaicNorthwest, esriMosaicCenter, esriMosaicNadir, esriMosaicAttribute, "
        "esriMosaicLockRaster, ...)",
        "gateway.yaml: services.lonely.default_band_ids: must be a non-empty list of band indexes "
        "(0, 1, ...), not [0, -1]",
        "gateway.yaml: services.lonely.tile_scheme: must be WebMercatorQuad or native, not 'mercator'",
        "gateway.yaml: services.lonely.raster_functions[0]: unknown raster function 'Bogus'",
        "gateway.yaml: services.lonely.raster_functions[2].name: duplicate template name 'A'",
        "gateway.yaml: services.lonely.raster_functions[3]: no such file: 'missing.json'",
    ]


def test_ogc_metadata_keys_build_dataclasses(tmp_path):
    write_tif(tmp_path / "terrain" / "a.tif")
    config_file = tmp_path / "gateway.yaml"
    config_file.write_text("""
server:
  title: My imagery
  abstract: Imagery of the region
  keywords: [imagery, elevation, 2024]
  contact:
    person: Ann Smith
    organization: Example Survey
    position: Data manager
    email: gis@example.org
    phone: "+1 555 0100"
    fax: "+1 555 0101"
    address: 1 Main Street
    city: Springfield
    state_or_province: Oregon
    postcode: "97477"
    country: USA
  fees: free of charge
  access_constraints: CC-BY-4.0
  ogc_crs: [epsg:4326, EPSG:3857, Epsg:25833]
services:
  terrain:
    sources: terrain/*.tif
    keywords: [DEM]
    ogc_crs: [EPSG:32633]
    attribution:
      title: Example Survey
      url: https://survey.example.org/
      logo_url: https://survey.example.org/logo.jpg
      logo_format: image/jpeg
      logo_width: 100
      logo_height: 40
    metadata_urls:
      - {type: ISO19115:2003, url: "https://survey.example.org/csw?id=terrain"}
      - {type: FGDC, format: text/plain, url: "http://survey.example.org/terrain.txt"}
    min_scale_denominator: 1000
    max_scale_denominator: 2.5e6
  plain:
    sources: terrain/*.tif
    attribution: {url: "http://example.org"}
""")
    config = load_config(config_file)

    server = config.server
    assert server.abstract == "Imagery of the region"
    assert server.keywords == ("imagery", "elevation", "2024")
    assert server.contact == Contact(
        person="Ann Smith", organization="Example Survey", position="Data manager",
        email="gis@example.org", phone="+1 555 0100", fax="+1 555 0101", address="1 Main Street",
        city="Springfield", state_or_province="Oregon", postcode="97477", country="USA")
    assert server.fees == "free of charge" and server.access_constraints == "CC-BY-4.0"
    assert server.ogc_crs == ("EPSG:4326", "EPSG:3857", "EPSG:25833")

    terrain = config.services["terrain"]
    assert terrain.keywords == ("DEM",)
    assert terrain.ogc_crs == ("EPSG:32633",)            # replaces the server's list
    assert terrain.attribution == Attribution(
        title="Example Survey", url="https://survey.example.org/",
        logo_url="https://survey.example.org/logo.jpg", logo_format="image/jpeg", logo_width=100,
        logo_height=40)
    assert terrain.metadata_urls == (
        MetadataUrl(type="ISO19115:2003", url="https://survey.example.org/csw?id=terrain",
                    format="text/xml"),
        MetadataUrl(type="FGDC", url="http://survey.example.org/terrain.txt", format="text/plain"),
    )
    assert terrain.min_scale_denominator == 1000.0 and terrain.max_scale_denominator == 2.5e6
    assert isinstance(terrain.min_scale_denominator, float)

    plain = config.services["plain"]
    assert plain.keywords == () and plain.metadata_urls == ()
    assert plain.ogc_crs == server.ogc_crs                # inherits the server's list
    assert plain.attribution == Attribution(title="", url="http://example.org", logo_url=None,
                                            logo_format="image/png")
    assert plain.min_scale_denominator is None and plain.max_scale_denominator is None


def test_ogc_metadata_defaults(tmp_path):
    write_tif(tmp_path / "terrain" / "a.tif")
    config_file = tmp_path / "gateway.yaml"
    config_file.write_text("services:\n  terrain:\n    sources: terrain/*.tif\n")
    config = load_config(config_file)
    server, terrain = config.server, config.services["terrain"]
    assert (server.abstract, server.keywords, server.contact) == ("", (), None)
    assert (server.fees, server.access_constraints) == ("none", "none")
    assert server.ogc_crs == DEFAULT_OGC_CRS == ("EPSG:4326", "EPSG:3857")
    assert terrain.ogc_crs == DEFAULT_OGC_CRS
    assert (terrain.keywords, terrain.attribution, terrain.metadata_urls) == ((), None, ())
    assert (terrain.min_scale_denominator, terrain.max_scale_denominator) == (None, None)
    # Built directly (as tests/conftest.py does), the new fields have the same defaults.
    assert ServerConfig(cache_dir=tmp_path).ogc_crs == DEFAULT_OGC_CRS
    assert ServiceConfig(name="x", sources=()).attribution is None
    for key in ("abstract", "keywords", "contact", "fees", "access_constraints", "ogc_crs"):
        assert key in SERVER_KEYS
    for key in ("keywords", "ogc_crs", "attribution", "metadata_urls", "min_scale_denominator",
                "max_scale_denominator"):
        assert key in SERVICE_KEYS


def test_ogc_metadata_problems(tmp_path):
    write_tif(tmp_path / "terrain" / "a.tif")
    config_file = tmp_path / "gateway.yaml"
    config_file.write_text("""
server:
  keywords: imagery
  contact: {organisation: Example, email: [a, b]}
  fees: [1]
  ogc_crs: [EPSG:4326, "CRS:84", foo, EPSG:999999, 3857, epsg:4326]
  abstrct: x
services:
  terrain:
    sources: terrain/*.tif
    keywords: [ok, {bad: 1}, ""]
    ogc_crs: EPSG:4326
    attribution: {logo_url: "ftp://example.org/logo.png", logo_width: 0}
    metadata_urls:
      - {type: FGDC, format: xml, url: "www.example.org/md.xml"}
      - {type: "", url: "https://example.org/md.xml", schema: x}
      - https://example.org/md.xml
    min_scale_denominator: 5000
    max_scale_denominator: 5000
  negative:
    sources: terrain/*.tif
    min_scale_denominator: -1
    max_scale_denominator: big
    attribtion: {title: x}
    attribution: {title: Survey, url: "survey.example.org", logo_format: image/png}
  wrong_shapes:
    sources: terrain/*.tif
    attribution: Example Survey
    metadata_urls: {type: FGDC}
    ogc_crs: [EPSG:4326, EPSG:4326]
""")
    assert problems_of(config_file) == [
        "gateway.yaml: server.abstrct: unknown key (did you mean 'abstract'?)",
        "gateway.yaml: server.keywords: must be a list of non-empty strings, not 'imagery'",
        "gateway.yaml: server.contact.organisation: unknown key (did you mean 'organization'?)",
        "gateway.yaml: server.contact.email: must be a string, not ['a', 'b']",
        "gateway.yaml: server.fees: must be a string, not [1]",
        "gateway.yaml: server.ogc_crs[1]: 'CRS:84' is not of the form 'EPSG:<code>' "
        "(CRS:84 is added by the WMS 1.3.0 face itself)",
        "gateway.yaml: server.ogc_crs[2]: 'foo' is not of the form 'EPSG:<code>'",
        "gateway.yaml: server.ogc_crs[3]: 'EPSG:999999' is not a CRS known to PROJ",
        "gateway.yaml: server.ogc_crs[4]: must be a string 'EPSG:<code>' (e.g. 'EPSG:3857'), "
        "not 3857",
        "gateway.yaml: server.ogc_crs[5]: duplicate CRS 'EPSG:4326'",
        "gateway.yaml: services.terrain.keywords: must be a list of non-empty strings, "
        "not ['ok', {'bad': 1}, '']",
        "gateway.yaml: services.terrain.ogc_crs: must be a list of CRS identifiers such as "
        "'EPSG:4326', not 'EPSG:4326'",
        "gateway.yaml: services.terrain.attribution: needs at least 'title' or 'url'",
        "gateway.yaml: services.terrain.attribution.logo_url: must be an http:// or https:// URL, "
        "not 'ftp://example.org/logo.png'",
        "gateway.yaml: services.terrain.attribution.logo_width: must be a positive integer, not 0",
        "gateway.yaml: services.terrain.metadata_urls[0].url: must be an http:// or https:// URL, "
        "not 'www.example.org/md.xml'",
        "gateway.yaml: services.terrain.metadata_urls[0].format: must be a MIME type such as "
        "'text/xml', not 'xml'",
        "gateway.yaml: services.terrain.metadata_urls[1].schema: unknown key",
        "gateway.yaml: services.terrain.metadata_urls[1].type: required: ISO19115:2003, FGDC, "
        "TC211, ISO19139 or another non-empty name",
        "gateway.yaml: services.terrain.metadata_urls[2]: must be a mapping {type, format, url}, "
        "not 'https://example.org/md.xml'",
        "gateway.yaml: services.terrain.min_scale_denominator: must be less than "
        "max_scale_denominator (5000), not 5000",
        "gateway.yaml: services.negative.attribtion: unknown key (did you mean 'attribution'?)",
        "gateway.yaml: services.negative.attribution.url: must be an http:// or https:// URL, "
        "not 'survey.example.org'",
        "gateway.yaml: services.negative.attribution.logo_format: needs logo_url",
        "gateway.yaml: services.negative.min_scale_denominator: must be a positive number, not -1",
        "gateway.yaml: services.negative.max_scale_denominator: must be a positive number, "
        "not 'big'",
        "gateway.yaml: services.wrong_shapes.ogc_crs[1]: duplicate CRS 'EPSG:4326'",
        "gateway.yaml: services.wrong_shapes.attribution: must be a mapping with 'title' and/or "
        "'url', not 'Example Survey'",
        "gateway.yaml: services.wrong_shapes.metadata_urls: must be a list of mappings "
        "{type, format, url}, not {'type': 'FGDC'}",
    ]


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    config_file = tmp_path / "gateway.yaml"
    config_file.write_text("services:\n  terrain:\n    sources: [a.tif\n")
    [problem] = problems_of(config_file)
    assert problem.startswith("gateway.yaml: line 4, column 1: YAML syntax error: ")


def test_duplicate_keys_and_missing_services(tmp_path):
    config_file = tmp_path / "gateway.yaml"
    config_file.write_text("server:\n  title: a\n  title: b\n")
    assert problems_of(config_file) == ["gateway.yaml: line 3, column 3: duplicate key 'title'"]
    assert config_problems({"server": {}, "extra": 1}, tmp_path / "gateway.yaml") == [
        "gateway.yaml: extra: unknown key",
        "gateway.yaml: services: at least one service is required",
    ]


def test_missing_file_is_a_problem_not_a_traceback(tmp_path):
    [problem] = problems_of(tmp_path / "absent.yaml")
    assert problem.endswith("absent.yaml: no such configuration file")


def test_ncname():
    assert ncname("my data") == "my_data"
    assert ncname("2020") == "_2020"
    assert ncname("ok-name.v2") == "ok-name.v2"
    assert ncname("café") == "caf_"


def test_config_for_folder(tmp_path):
    write_tif(tmp_path / "my data" / "a.tif")
    write_tif(tmp_path / "my_data" / "deep" / "b.TIF")
    write_tif(tmp_path / "2020" / "c.tif")
    (tmp_path / "2020" / "catalog.csv").write_text("path,year\nc.tif,2020\n")
    (tmp_path / "empty").mkdir()
    write_tif(tmp_path / ".hidden" / "d.tif")

    config, mapping = config_for_folder(tmp_path, tmp_path / "cache")

    assert mapping == {"2020": "_2020", "my data": "my_data", "my_data": "my_data_2"}
    assert list(config.services) == ["_2020", "my_data", "my_data_2"]
    assert config.services["_2020"].catalog == (tmp_path / "2020" / "catalog.csv").resolve()
    assert config.services["my_data_2"].sources == (
        str((tmp_path / "my_data").resolve() / "**" / "*.TIF"),)
    assert config.server.cache_dir == (tmp_path / "cache").resolve()


def test_config_for_folder_without_rasters(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError) as caught:
        config_for_folder(tmp_path, tmp_path / "cache")
    assert "no sub-folder holds rasters" in caught.value.problems[0]


def test_mosaic_keys(tmp_path):
    """nadir_field, seamlines (a GeoJSON file) and seamline_blend_width (cells, 0 or more)."""
    write_tif(tmp_path / "t" / "a.tif")
    (tmp_path / "t" / "seams.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    good = tmp_path / "good.yaml"
    good.write_text("services:\n  t:\n    sources: t/*.tif\n    nadir_field: OffNadir\n"
                    "    seamlines: t/seams.geojson\n    seamline_blend_width: 12.5\n")
    t = load_config(good).services["t"]
    assert (t.nadir_field, t.seamlines, t.seamline_blend_width) == (
        "OffNadir", (tmp_path / "t" / "seams.geojson").resolve(), 12.5)
    assert load_config(good).services["t"].limits == Limits()
    bad = tmp_path / "bad.yaml"
    bad.write_text("services:\n  t:\n    sources: t/*.tif\n    seamlines: t/none.geojson\n"
                   "    seamline_blend_width: -1\n    seamline_blend: 3\n")
    assert problems_of(bad) == [
        "bad.yaml: services.t.seamline_blend: unknown key (did you mean 'seamline_blend_width'?)",
        "bad.yaml: services.t.seamlines: no such file: 't/none.geojson'",
        "bad.yaml: services.t.seamline_blend_width: must be a number of cells, 0 or more, not -1",
    ]


def test_folder_keys_written_as_numbers_are_folder_names(tmp_path):
    """`data_dir: 2024` once raised TypeError from pathlib (a traceback, not a problem list); a
    number is a folder name, as it always was for cache_dir."""
    write_tif(tmp_path / "a" / "x.tif")
    config_file = tmp_path / "gateway.yaml"
    config_file.write_text("server:\n  data_dir: 2024\n  cache_dir: 7\nservices:\n  s:\n    sources: a/*.tif\n")
    config = load_config(config_file)
    assert config.server.data_dir == tmp_path.resolve() / "2024"
    assert config.server.cache_dir == tmp_path.resolve() / "7"
    config_file.write_text("server:\n  data_dir: [1]\nservices:\n  s:\n    sources: a/*.tif\n")
    assert problems_of(config_file) == ["gateway.yaml: server.data_dir: must be a string, not [1]"]


def test_a_crs_url_is_refused_without_fetching_it(tmp_path, monkeypatch):
    """GDAL downloads a CRS given as a URL; checking a config must stay offline and say what to write."""
    monkeypatch.setenv("GDAL_HTTP_TIMEOUT", "1")
    raw = {"services": {"s": {"sources": [str(tmp_path / "*.tif")], "crs": "http://example.org/crs/a"}}}
    problems = config_problems(raw, tmp_path / "gateway.yaml")
    assert any("a URL is not fetched" in p for p in problems), problems
    ok = {"services": {"s": {"sources": [str(tmp_path / "*.tif")],
                             "crs": "http://www.opengis.net/def/crs/EPSG/0/32633"}}}
    assert not [p for p in config_problems(ok, tmp_path / "gateway.yaml") if "services.s.crs" in p]
