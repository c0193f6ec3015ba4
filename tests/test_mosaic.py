"""Mosaic methods and operators through exportImage, against truths computed here from the fixture
geometry of tests/synth_mosaic.py: which items cover each pixel centre, their centres, dates,
priorities and off-nadir angles, and each pixel's distance to an item's edge or to a seam."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pyproj import Transformer
from rasterio.io import MemoryFile
from shapely.geometry import Polygon

import synth_mosaic as sm
from ogc_gateway.app import create_app
from ogc_gateway.config import Config, Limits, ServerConfig, ServiceConfig
from ogc_gateway.engine.errors import ConfigError

EXPORT = "/arcgis/rest/services/{}/ImageServer/exportImage"
A, B, C = sm.BOXES
BY_OID = {1: A, 2: B, 3: C}                      # OBJECTIDs follow the sorted file names
VIEW = sm.EXTENT                                 # 160 x 160 cells of 10 m
SIZE = (160, 160)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("mosaic-data")
    sm.make_overlaps(root / "overlaps")
    sm.make_tilted(root / "tilted")
    return root


def service(name: str, folder, **kw) -> ServiceConfig:
    limits = kw.pop("limits", Limits())
    return ServiceConfig(name=name, sources=(str(folder / "*.tif"),), catalog=folder / "catalog.csv",
                         default_resampling="nearest", limits=limits, **kw)


@pytest.fixture(scope="module")
def client(folders, tmp_path_factory):
    ov, tilt = folders / "overlaps", folders / "tilted"
    services = {
        "ov": service("ov", ov, nadir_field="off_nadir"),
        "plain": service("plain", ov),
        "feathered": service("feathered", ov, seamline_blend_width=10),
        "tilt": service("tilt", tilt),
        "tilt1": service("tilt1", tilt, limits=Limits(max_mosaic_image_count=1)),
    }
    config = Config(server=ServerConfig(cache_dir=tmp_path_factory.mktemp("cache")), services=services)
    return create_app(config).test_client()


def export(client, svc="ov", rule=None, bbox=VIEW, size=SIZE, **params):
    query = {"bbox": ",".join(map(str, bbox)), "size": "%d,%d" % size, "format": "tiff", "f": "image",
             "pixelType": "U16", **params}
    if rule is not None:
        query["mosaicRule"] = rule if isinstance(rule, str) else json.dumps(rule)
    resp = client.get(EXPORT.format(svc), query_string=query)
    assert resp.content_type == "image/tiff", resp.data[:400]
    with MemoryFile(resp.data) as mem, mem.open() as ds:
        return ds.read(1, masked=True)


def centres(bbox=VIEW, size=SIZE):
    return sm.pixel_centres(bbox, *size)


def first_of(order, bbox=VIEW, size=SIZE):
    """Truth of MT_FIRST: each pixel the value of the first item in `order` with data there."""
    xs, ys = centres(bbox, size)
    out = np.zeros(xs.shape, int)
    for box in reversed(order):
        out = np.where(box.covers(xs, ys), box.value, out)
    return out


def same(image, truth):
    assert np.array_equal(image.filled(0), truth), np.argwhere(image.filled(0) != truth)[:5]


# --- methods ---------------------------------------------------------------------------------------

def distance_order(point, boxes=sm.BOXES):
    return sorted(boxes, key=lambda b: (np.hypot(b.centre[0] - point[0], b.centre[1] - point[1]), b.name))


def test_none_is_objectid_order_or_the_sort_field(client):
    same(export(client, rule={"mosaicMethod": "esriMosaicNone"}), first_of([A, B, C]))
    same(export(client, rule={"mosaicMethod": "esriMosaicNone", "ascending": False}), first_of([C, B, A]))
    by_priority = sorted(sm.BOXES, key=lambda b: b.priority)
    same(export(client, rule={"mosaicMethod": "esriMosaicNone", "sortField": "priority"}), first_of(by_priority))


def test_northwest_is_nearest_the_extent_corner(client):
    corner = (sm.EXTENT[0], sm.EXTENT[3])
    assert [b.name for b in distance_order(corner)] == ["c", "a", "b"]
    same(export(client, rule={"mosaicMethod": "esriMosaicNorthwest"}), first_of(distance_order(corner)))


@pytest.mark.parametrize("view", [(500100, 5000000, 501300, 5000800), (500400, 5000700, 501600, 5001500)])
def test_center_is_nearest_the_view_centre(client, view):
    size = (120, 80)
    middle = ((view[0] + view[2]) / 2, (view[1] + view[3]) / 2)
    image = export(client, rule={"mosaicMethod": "esriMosaicCenter"}, bbox=view, size=size)
    same(image, first_of(distance_order(middle), view, size))


def test_nadir_uses_the_off_nadir_field_else_the_centre(client):
    by_angle = sorted(sm.BOXES, key=lambda b: abs(b.off_nadir))
    assert [b.name for b in by_angle] == ["b", "c", "a"]
    same(export(client, rule={"mosaicMethod": "esriMosaicNadir"}), first_of(by_angle))
    view, size = (500100, 5000000, 501300, 5000800), (120, 80)
    middle = (500700, 5000400)
    same(export(client, "plain", rule={"mosaicMethod": "Nadir"}, bbox=view, size=size),
         first_of(distance_order(middle), view, size))


def test_viewpoint_in_another_spatial_reference(client):
    lon, lat = Transformer.from_crs(sm.CRS, "EPSG:4326", always_xy=True).transform(501500, 5001500)
    rule = {"mosaicMethod": "esriMosaicViewpoint", "viewpoint": {"x": lon, "y": lat, "spatialReference": {"wkid": 4326}}}
    order = distance_order((501500, 5001500))
    assert [b.name for b in order] == ["c", "b", "a"]
    same(export(client, rule=rule), first_of(order))


@pytest.mark.parametrize("rule, order", [
    ({"sortField": "acquired", "sortValue": "2024/03/01"}, "bac"),          # 9, 50, 70 days away
    ({"sortField": "acquired", "sortValue": "2024/03/01", "ascending": False}, "cab"),
    ({"sortField": "ACQUIRED", "sortValue": "2024-05-01T00:00:00"}, "cba"),
    ({"sortField": "cloud"}, "bca"),                                       # |cloud - 0|
    ({"sortField": "cloud", "sortValue": 0.32}, "cab"),                  # 0.02, 0.18, 0.22 away
    ({"sortField": "priority", "ascending": False}, "acb"),
])
def test_attribute_orders_by_distance_from_the_sort_value(client, rule, order):
    image = export(client, rule={"mosaicMethod": "esriMosaicAttribute", **rule})
    same(image, first_of([{"a": A, "b": B, "c": C}[k] for k in order]))


def test_lock_raster_shows_only_the_locked_items(client):
    same(export(client, rule={"mosaicMethod": "esriMosaicLockRaster", "lockRasterIds": [3]}), first_of([C]))
    same(export(client, rule={"mosaicMethod": "esriMosaicLockRaster", "lockRasterIds": [2, 1]}), first_of([B, A]))


def test_lock_raster_takes_names_and_an_empty_list_is_the_default_order(client):
    """Make Image Server Layer: lock_rasterid is 'the raster ID or raster name'; left blank, the
    system default (issue 14)."""
    lock = {"mosaicMethod": "esriMosaicLockRaster"}
    same(export(client, rule={**lock, "lockRasterIds": ["c"]}), first_of([C]))
    same(export(client, rule={**lock, "lockRasterIds": "b;1"}), first_of([B, A]))
    same(export(client, rule={**lock, "lockRasterIds": []}), export(client))
    missing = client.get(EXPORT.format("ov"), query_string={
        "bbox": ",".join(map(str, VIEW)), "f": "image", "mosaicRule": json.dumps({**lock, "lockRasterIds": ["zz"]})})
    assert "no raster named 'zz'" in missing.get_json()["error"]["details"][0]


def test_where_and_fids_restrict_any_method(client):
    corner = (sm.EXTENT[0], sm.EXTENT[3])
    same(export(client, rule={"mosaicMethod": "esriMosaicNorthwest", "fids": [1, 2]}),
         first_of([b for b in distance_order(corner) if b is not C]))
    same(export(client, rule={"mosaicMethod": "esriMosaicNone", "where": "priority >= 2"}), first_of([A, C]))
    same(export(client, rule={"where": "cloud < 0.2", "fids": [1, 2, 3]}), first_of([B]))


@pytest.mark.parametrize("rule", [
    {"mosaicMethod": "NORTH_WEST"}, {"mosaicMethod": "northwest"}, {"mosaicMethod": "esriMosaicNorthWest"},
    {"MosaicMethod": "NorthWest", "MosaicOperation": "first"}, {"mosaicMethod": "NorthWest", "mosaicOperator": "First"},
])
def test_spelling_variants_mean_the_same_rule(client, rule):
    corner = (sm.EXTENT[0], sm.EXTENT[3])
    same(export(client, rule=rule), first_of(distance_order(corner)))


@pytest.mark.parametrize("rule", [
    {"mosaicMethod": "LOCK_RASTER", "lockRasterIds": "3"}, {"mosaicMethod": "lockraster", "LockRasterIds": "3;"},
    {"mosaicMethod": "esriMosaicLockRaster", "lockRasterIds": 3},
])
def test_lock_raster_ids_as_clients_send_them(client, rule):
    same(export(client, rule=rule), first_of([C]))


def test_closest_to_center_and_by_attribute_tool_names(client):
    view, size = (500100, 5000000, 501300, 5000800), (120, 80)
    same(export(client, rule={"mosaicMethod": "CLOSEST_TO_CENTER"}, bbox=view, size=size),
         first_of(distance_order((500700, 5000400)), view, size))
    same(export(client, rule={"mosaicMethod": "BY_ATTRIBUTE", "sortField": "priority"}), first_of([B, C, A]))


# --- operators ---------------------------------------------------------------------------------------

def stack():
    """(values, valid) per item at every pixel of VIEW."""
    xs, ys = centres()
    values = np.stack([np.full(xs.shape, b.value, float) for b in sm.BOXES])
    valid = np.stack([b.covers(xs, ys) for b in sm.BOXES])
    return values, valid


@pytest.mark.parametrize("operation, reduce", [
    ("MT_MIN", lambda v, ok: np.where(ok, v, np.inf).min(axis=0)),
    ("MT_MAX", lambda v, ok: np.where(ok, v, -np.inf).max(axis=0)),
    ("MT_SUM", lambda v, ok: np.where(ok, v, 0).sum(axis=0)),
    ("MT_MEAN", lambda v, ok: np.where(ok, v, 0).sum(axis=0) / np.maximum(ok.sum(axis=0), 1)),
])
def test_reducing_operators_over_the_valid_items(client, operation, reduce):
    values, valid = stack()
    truth = np.where(valid.any(axis=0), np.rint(reduce(values, valid)), 0).astype(int)
    image = export(client, rule={"mosaicMethod": "esriMosaicNone", "mosaicOperation": operation})
    same(image, truth)
    # B's nodata hole takes no part: there A (and C) alone decide
    xs, ys = centres()
    hole = (xs > 500850) & (xs < 500950) & (ys > 5000100) & (ys < 5000200)
    assert hole.any() and (image.filled(0)[hole] == A.value).all()


def test_first_and_last(client):
    same(export(client, rule={"mosaicMethod": "esriMosaicNone", "mosaicOperation": "MT_FIRST"}), first_of([A, B, C]))
    same(export(client, rule={"mosaicMethod": "esriMosaicNone", "mosaicOperation": "MT_LAST"}), first_of([C, B, A]))


def test_blend_weighs_each_item_by_its_distance_to_its_own_edge(client):
    xs, ys = centres()
    values, valid = stack()
    distance = np.stack([np.where(ok, b.edge_distance(xs, ys), 0) for b, ok in zip(sm.BOXES, valid)])
    with np.errstate(invalid="ignore"):
        truth = (values * distance).sum(axis=0) / distance.sum(axis=0)
    image = export(client, rule={"mosaicOperation": "MT_BLEND"}).filled(0).astype(float)
    covered = valid.any(axis=0)
    assert np.array_equal(image > 0, covered)
    assert np.abs(image[covered] - truth[covered]).max() <= 0.5 + 1e-9
    # along y = 5000305 (A and B only) the overlap x 500600..501000 runs from A into B
    row = int((VIEW[3] - 5000305) // 10)
    overlap = image[row, 60:100]
    assert overlap[0] < overlap[-1] and np.all(np.diff(overlap) >= 0)
    assert overlap[0] < 150 < overlap[-1]


# --- seamlines ---------------------------------------------------------------------------------------

def seam_owner(xs, ys):
    """The item whose seamline holds each pixel: the covering item (footprint) with the nearest
    centre, the lower OBJECTID on a tie; and where two candidates are within 1 m of a tie."""
    best = np.full(xs.shape, -1)
    dist = np.full(xs.shape, np.inf)
    second = np.full(xs.shape, np.inf)
    for k, b in enumerate(sm.BOXES):
        inside = (xs > b.west) & (xs < b.east) & (ys > b.south) & (ys < b.north)
        d = np.hypot(xs - b.centre[0], ys - b.centre[1])
        closer = inside & (d < dist)
        second = np.where(closer, dist, np.where(inside, np.minimum(second, d), second))
        best, dist = np.where(closer, k, best), np.where(closer, d, dist)
    with np.errstate(invalid="ignore"):
        return best, second - dist < 1.0


def test_seamlines_cut_between_the_nearest_centres(client):
    xs, ys = centres()
    owner, tie = seam_owner(xs, ys)
    image = export(client, rule={"mosaicMethod": "esriMosaicSeamline"}).filled(0)
    values = np.array([b.value for b in sm.BOXES])
    truth = np.where(owner >= 0, values[owner], 0)
    # where the owner has no data (B's hole) the first item with data in Northwest order stands in
    corner = (sm.EXTENT[0], sm.EXTENT[3])
    hole = (owner >= 0) & ~np.choose(np.maximum(owner, 0), [b.covers(xs, ys) for b in sm.BOXES])
    assert hole.any()
    truth = np.where(hole, first_of(distance_order(corner)), truth)
    assert np.array_equal(image[~tie], truth[~tie])


def test_seamline_ground_of_a_left_out_item_falls_back(client):
    """C is left out by the rule's where clause: its seamline ground shows the first item with data
    in Northwest order (A, then B); the rest keeps the seamlines."""
    xs, ys = centres()
    owner, tie = seam_owner(xs, ys)
    image = export(client, rule={"mosaicMethod": "esriMosaicSeamline", "where": "Name <> 'c'"}).filled(0)
    values = np.array([b.value for b in sm.BOXES])
    truth = np.where(owner >= 0, values[np.maximum(owner, 0)], 0)
    truth = np.where(owner == 2, first_of([A, B]), truth)
    truth = np.where((owner == 1) & ~B.covers(xs, ys), first_of([A, B]), truth)      # B's hole
    assert (owner == 2).any()
    assert np.array_equal(image[~tie], truth[~tie])


def test_seamline_feathering_ramps_across_the_seam(client):
    """Blend width 10 cells = 100 m: along y = 5000305 (clear of B's hole), A's weight falls from 1 to 0 over x
    500750..500850, centred on the seam x = 500800 (the bisector of A's and B's centres)."""
    row = int((VIEW[3] - 5000305) // 10)
    image = export(client, "feathered", rule={"mosaicMethod": "esriMosaicSeamline"}).filled(0)[row]
    xs = VIEW[0] + (np.arange(SIZE[0]) + 0.5) * 10
    w_a = np.clip(0.5 + (500800 - xs) / 100, 0, 1)
    truth = np.where(xs < 501000, w_a * A.value + (1 - w_a) * B.value, B.value)
    truth = np.where(xs < 500600, A.value, truth)
    assert np.abs(image - truth).max() <= 0.5 + 1e-9
    assert image[np.searchsorted(xs, 500745)] == A.value and image[np.searchsorted(xs, 500855)] == B.value
    assert image[np.searchsorted(xs, 500795)] == round(0.55 * A.value + 0.45 * B.value)


def test_seamline_refuses_mt_last(client):
    resp = client.get(EXPORT.format("ov"), query_string={
        "bbox": ",".join(map(str, VIEW)), "f": "image", "format": "tiff",
        "mosaicRule": json.dumps({"mosaicMethod": "esriMosaicSeamline", "mosaicOperation": "MT_LAST"})})
    assert resp.get_json()["error"]["code"] == 400 and "MT_LAST" in resp.get_json()["error"]["message"]


# --- footprints from data -------------------------------------------------------------------------------

TILT_VIEW = (502000, 5000000, 503400, 5001000)


def tilt_truth(bbox=TILT_VIEW, size=(140, 100)):
    xs, ys = centres(bbox, size)
    x0, y0, x1, y1 = sm.NEIGHBOUR
    neighbour = (xs > x0) & (xs < x1) & (ys > y0) & (ys < y1)
    return np.where(sm.in_tilted_square(xs, ys), sm.TILT_VALUE, np.where(neighbour, sm.NEIGHBOUR_VALUE, 0))


def test_the_footprint_is_the_valid_data_outline(client):
    body = client.get("/arcgis/rest/services/tilt/ImageServer/query",
                      query_string={"where": "Name = 'tilted'", "f": "json"}).get_json()
    ring = body["features"][0]["geometry"]["rings"][0]
    footprint, square = Polygon(ring), Polygon(sm.tilted_square_ring())
    assert footprint.contains(square)                          # never cuts valid data off
    assert footprint.area < square.buffer(40, join_style="mitre").area < 0.6e6   # the box is 1e6 m2
    assert body["features"][0]["attributes"]["Shape_Area"] == pytest.approx(footprint.area, rel=1e-6)


def test_the_collar_does_not_cover_the_neighbour(client):
    rule = {"mosaicMethod": "esriMosaicAttribute", "sortField": "priority"}    # the tilted scene on top
    same(export(client, "tilt", rule=rule, bbox=TILT_VIEW, size=(140, 100)), tilt_truth())


def test_a_view_of_the_collar_reads_the_neighbour_not_the_tilted_scene(client):
    """With one item read per request, a view inside the tilted grid's box but outside its data
    selects the neighbour: selection and ordering use the real footprint."""
    view = (502920, 5000050, 503000, 5000150)
    assert not sm.in_tilted_square(*centres(view, (8, 10))).any()
    rule = {"mosaicMethod": "esriMosaicAttribute", "sortField": "priority"}
    same(export(client, "tilt1", rule=rule, bbox=view, size=(8, 10)), np.full((10, 8), sm.NEIGHBOUR_VALUE))
    body = client.get("/arcgis/rest/services/tilt/ImageServer/identify", query_string={
        "geometry": "502950,5000100", "mosaicRule": json.dumps(rule), "f": "json"}).get_json()
    assert [f["attributes"]["Name"] for f in body["catalogItems"]["features"]] == ["neighbour"]
    assert float(body["value"]) == sm.NEIGHBOUR_VALUE


def test_max_mosaic_image_count_reads_the_first_items_in_mosaic_order(client):
    """Both items meet the view; one is read: the first by priority (the tilted scene), so the
    neighbour's part of the view stays empty where the tilted scene has no data."""
    rule = {"mosaicMethod": "esriMosaicAttribute", "sortField": "priority"}
    truth = tilt_truth()
    only_tilted = np.where(truth == sm.TILT_VALUE, truth, 0)
    same(export(client, "tilt1", rule=rule, bbox=TILT_VIEW, size=(140, 100)), only_tilted)
    rule["ascending"] = False
    only_neighbour = np.where(truth == sm.NEIGHBOUR_VALUE, truth, 0)
    x0, y0, x1, y1 = sm.NEIGHBOUR
    xs, ys = centres(TILT_VIEW, (140, 100))
    only_neighbour = np.where((xs > x0) & (xs < x1) & (ys > y0) & (ys < y1), sm.NEIGHBOUR_VALUE, 0)
    same(export(client, "tilt1", rule=rule, bbox=TILT_VIEW, size=(140, 100)), only_neighbour)


def test_nadir_field_must_be_a_numeric_attribute(folders, tmp_path):
    config = Config(server=ServerConfig(cache_dir=tmp_path),
                    services={"x": service("x", folders / "overlaps", nadir_field="acquired")})
    with pytest.raises(ConfigError, match="services.x.nadir_field: no numeric attribute 'acquired'; numeric "
                                          "fields: .*cloud, priority, off_nadir"):
        create_app(config)


def test_blend_fed_without_a_weight_says_so_and_keeps_its_state():
    """mypy (issue 20) found Blend.feed taking weight=None into np.where: numpy then failed deep inside
    with None * bool after the edge values were already reset. A Blend is always fed weights by the
    export; without one it now refuses up front, its sums untouched."""
    from ogc_gateway.engine.mosaic import Blend

    op = Blend((1, 2, 2), np.uint8)
    data = np.ma.MaskedArray(np.array([[[10, 20], [30, 40]]], np.uint8), mask=False)
    full = np.ones((2, 2), bool)
    op.feed(data, full, slice(0, 2), slice(0, 2), np.full((2, 2), 0.5))
    before = op.sums.values.copy(), op.sums.weights.copy()
    with pytest.raises(TypeError, match="weight per cell"):
        op.feed(data, full, slice(0, 2), slice(0, 2))
    assert (op.sums.values == before[0]).all() and (op.sums.weights == before[1]).all()
    assert op.result().tolist() == [[[10, 20], [30, 40]]]
