"""Tile matrix sets against their definitions, computed here: the OGC well-known scale sets from the
Earth's radius and 0.28 mm pixels (OGC 07-057r7 annex E, OGC 17-083r2), the native set of a service
from its extent and cell size, and the tiles a service covers from pyproj's transform of its corners."""

from __future__ import annotations

import math

import pytest
from pyproj import Transformer
from rasterio.crs import CRS

from ogc_gateway.engine.errors import InvalidParameter
from ogc_gateway.engine.tms import limits, native, standard

R = 6378137.0
WORLD = math.pi * R                                   # half the Web Mercator world, metres
METRES_PER_DEGREE = 2 * math.pi * R / 360


def test_web_mercator_quad_matches_the_google_maps_compatible_scale_set():
    tms = standard("WebMercatorQuad")
    assert tms.well_known_scale_set == "urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible"
    assert tms.crs_urn == "urn:ogc:def:crs:EPSG::3857" and not tms.inverted
    assert len(tms.matrices) == 25
    for z, m in enumerate(tms.matrices):
        assert m.identifier == str(z)
        cell = 2 * WORLD / 256 / 2 ** z
        assert m.cell_size == pytest.approx(cell, rel=1e-12)
        assert m.scale_denominator == pytest.approx(cell / 0.00028, rel=1e-12)
        assert (m.matrix_width, m.matrix_height, m.tile_width) == (2 ** z, 2 ** z, 256)
        assert m.origin == pytest.approx((-WORLD, WORLD), rel=1e-12)
    # the digest's table, written with repr of the exact value (no hand rounding)
    assert repr(tms.matrices[0].scale_denominator) == "559082264.0287178"
    assert repr(tms.matrices[1].scale_denominator) == "279541132.0143589"


def test_world_crs84_quad_levels():
    tms = standard("WorldCRS84Quad")
    assert tms.crs_urn == "urn:ogc:def:crs:OGC:1.3:CRS84" and not tms.inverted
    assert tms.well_known_scale_set == "urn:ogc:def:wkss:OGC:1.0:GoogleCRS84Quad"
    for n, m in enumerate(tms.matrices):
        deg = 0.703125 / 2 ** n
        assert m.cell_size == pytest.approx(deg, rel=1e-12)
        assert m.scale_denominator == pytest.approx(deg * METRES_PER_DEGREE / 0.00028, rel=1e-12)
        assert (m.matrix_width, m.matrix_height) == (2 ** (n + 1), 2 ** n)
        assert m.origin == (-180, 90)
    assert repr(tms.matrices[0].scale_denominator) == "279541132.0143589"


def test_a_registry_set_in_a_northing_easting_crs_keeps_x_y_internally():
    tms = standard("EuropeanETRS89_LAEAQuad")
    assert tms.inverted and tms.crs_urn == "urn:ogc:def:crs:EPSG::3035"
    # the registry writes the corner as (northing 5500000, easting 2000000)
    assert tms.matrices[0].origin == (2000000.0, 5500000.0)


def test_unknown_and_variable_width_sets_are_refused():
    with pytest.raises(InvalidParameter, match="unknown tile matrix set"):
        standard("NoSuchQuad")
    with pytest.raises(InvalidParameter, match="variable matrix widths"):
        standard("CDB1GlobalGrid")


def test_native_set_doubles_the_cell_from_the_finest_level_until_one_tile_covers_the_extent():
    crs = CRS.from_epsg(32633)
    extent = (400000.0, 5169760.0, 430240.0, 5200000.0)            # 1008 x 1008 cells of 30 m
    tms = native("elevation", crs, extent, 30.0)
    assert tms.identifier == "elevation-native" and tms.crs_urn == "urn:ogc:def:crs:EPSG::32633"
    cells = [m.cell_size for m in tms.matrices]
    # 1008 px: 4 tiles a side at 30 m, 2 at 60 m, and at 120 m its 252 px fit in one tile of 256
    assert cells == [120.0, 60.0, 30.0]
    assert [m.identifier for m in tms.matrices] == ["0", "1", "2"]
    assert [(m.matrix_width, m.matrix_height) for m in tms.matrices] == [(1, 1), (2, 2), (4, 4)]
    assert all(m.origin == (400000.0, 5200000.0) for m in tms.matrices)
    assert tms.matrices[-1].scale_denominator == pytest.approx(30.0 / 0.00028)


def test_native_set_of_a_geographic_service_is_in_latitude_longitude_order_and_degrees():
    tms = native("ts", CRS.from_epsg(4326), (-180.0, -90.0, 180.0, 90.0), 1.0)
    assert tms.inverted and tms.crs_urn == "urn:ogc:def:crs:EPSG::4326"
    assert tms.matrices[-1].scale_denominator == pytest.approx(METRES_PER_DEGREE / 0.00028)


def test_limits_are_the_tiles_under_the_service_extent():
    crs = CRS.from_epsg(32633)
    extent = (500000.0, 5000100.0, 501900.0, 5002000.0)             # the tests' DEM, 10 m
    found = limits(standard("WebMercatorQuad"), crs, extent, 10.0)
    to_merc = Transformer.from_crs(32633, 3857, always_xy=True)
    xs, ys = to_merc.transform([extent[0], extent[2], extent[0], extent[2]],
                               [extent[1], extent[1], extent[3], extent[3]])
    for z in (0, 5, 10, 14, 18):
        span = 2 * WORLD / 2 ** z
        cols = (math.floor((min(xs) + WORLD) / span), math.floor((max(xs) + WORLD) / span))
        rows = (math.floor((WORLD - max(ys)) / span), math.floor((WORLD - min(ys)) / span))
        assert found.ranges[z] == (rows[0], rows[1], cols[0], cols[1]), z
    # 10 m in UTM at 45 N is ~14 m of Web Mercator: level 14 (9.55 m) is the first as fine
    assert found.native_level == 14
    assert found.contains(14, *found.ranges[14][::2]) and not found.contains(14, 0, 0)


def test_a_service_outside_a_set_has_no_limits_there():
    crs = CRS.from_epsg(32733)                                       # UTM 33S
    assert limits(standard("EuropeanETRS89_LAEAQuad"), crs, (500000.0, 6000000.0, 510000.0, 6010000.0),
                  10.0) is None
