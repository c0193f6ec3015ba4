"""The catalog resources: `query`, a raster item `{rasterId}` with its `info`, `keyProperties` and
thumbnail, and the root's `option=footprints` feature collection (digest §9, §15; reference
document 000 for footprints)."""

from __future__ import annotations

from shapely.geometry import Polygon, box

from ..engine import (
    BUILTIN_FIELDS,
    GEOMETRY,
    SPATIAL_RELATIONS,
    CatalogQuery,
    ImageService,
    InvalidParameter,
    Item,
    NotFound,
    QueryResult,
    crs_from_wkid,
    describe_item,
    sr_json,
    to_crs,
)
from ..engine import query_catalog as query
from .geometry import in_service_crs, parse_geometry, to_json
from .params import Params, numbers, parse_mosaic_rule, parse_sr_param, parse_time
from .root import data_type, envelope, field_json

_RELATIONS = {f"esrispatialrel{k.replace('-', '')}": k for k in SPATIAL_RELATIONS}
_RELATIONS |= {k.replace("-", ""): k for k in SPATIAL_RELATIONS}
_WGS84 = crs_from_wkid(4326)


def parse_pixel_size(p: Params) -> float | None:
    """pixelSize as 'x,y', a single number or point JSON; the x size is what selects."""
    value = p.json_or_text("pixelSize")
    if value is None:
        return None
    if isinstance(value, dict):
        size = value.get("x")
        if size is None or size == "NaN":
            return None
        size = numbers(str(size), "pixelSize", 1)[0]
    else:
        size = numbers(value if isinstance(value, str) else ",".join(map(str, value)), "pixelSize")[0]
    if not size > 0:
        raise InvalidParameter("pixelSize", "must be positive")
    return size


def out_fields(p: Params, service: ImageService, name: str = "outFields", default: str = "*") -> list:
    """The requested fields (OBJECTID always first), each in the service's own spelling."""
    raw = p.get(name, default)
    fields = [f for f in service.info.fields if f.type != GEOMETRY]
    by_name = {f.name.lower(): f for f in fields}
    wanted = [w.strip() for w in raw.split(",") if w.strip()]
    if "*" in wanted:
        return fields
    chosen = [by_name["objectid"]]
    for w in wanted:
        f = by_name.get(w.lower())
        if f is None:
            raise InvalidParameter(name, f"unknown field {w!r} (fields: {', '.join(x.name for x in fields)})")
        if f not in chosen:
            chosen.append(f)
    return chosen


def _order_by(p: Params) -> tuple[tuple[str, bool], ...]:
    raw = p.get("orderByFields")
    if raw is None:
        return ()
    out = []
    for part in raw.split(","):
        words = part.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
            raise InvalidParameter("orderByFields", f"{part.strip()!r}: expected 'Field [ASC|DESC]'")
        out.append((words[0], len(words) == 1 or words[1].upper() == "ASC"))
    return tuple(out)


def _nonnegative_int(p: Params, name: str) -> int | None:
    value = p.number(name, None, lo=0)
    if value is not None and not value.is_integer():
        raise InvalidParameter(name, "expected a whole number")
    return None if value is None else int(value)


def parse_query(p: Params, service: ImageService) -> CatalogQuery:
    info = service.info
    oids = None
    if p.get("objectIds") is not None:
        ids = numbers(p.get("objectIds"), "objectIds")
        if any(not v.is_integer() for v in ids):
            raise InvalidParameter("objectIds", "expected whole OBJECTIDs such as 3,7")
        oids = tuple(int(v) for v in ids)
    parsed = parse_geometry(p, info.crs)
    relation = p.enum("spatialRel", _RELATIONS, "intersects")
    return CatalogQuery(
        where=p.get("where"), oids=oids,
        geometry=in_service_crs(parsed, info.crs) if parsed else None, spatial_rel=relation,
        time=parse_time(p), pixel_size=parse_pixel_size(p),
        mosaic_rule=parse_mosaic_rule(p, info.default_rule, info.crs, service.templates),
        order_by=_order_by(p), offset=_nonnegative_int(p, "resultOffset") or 0,
        count=_nonnegative_int(p, "resultRecordCount"))


def attributes(item: Item, fields) -> dict:
    return {f.name: item.attributes.get(f.name) for f in fields}


def footprint_json(service: ImageService, rings: dict, item: Item, out_crs) -> dict | None:
    ring = rings.get(item.oid)
    if ring is None:
        return None
    geom = to_crs(Polygon(ring), service.info.crs, out_crs, name="outSR")
    return to_json(geom)


def run_query(p: Params, service: ImageService) -> dict:
    """The query response: ids, a count, an extent, or features with the fields list."""
    q = parse_query(p, service)
    ids_only, count_only = p.bool("returnIdsOnly", False), p.bool("returnCountOnly", False)
    extent_only = p.bool("returnExtentOnly", False)
    fields = out_fields(p, service)
    out_crs = parse_sr_param(p, "outSR", service.info.crs)
    result: QueryResult = query(service, q)
    if ids_only:
        return {"objectIdFieldName": "OBJECTID", "objectIds": list(result.matched)}
    if count_only or extent_only:
        body: dict = {"count": len(result.matched)} if count_only else {}
        if extent_only:
            body["extent"] = _extent(service, result.matched, out_crs)
        return body
    geometry = p.bool("returnGeometry", True)
    rings = service.catalog.footprints([i.oid for i in result.page]) if geometry else {}
    features = []
    for item in result.page:
        feature: dict = {"attributes": attributes(item, fields)}
        if geometry:
            feature["geometry"] = footprint_json(service, rings, item, out_crs)
        features.append(feature)
    body = {"objectIdFieldName": "OBJECTID", "globalIdFieldName": "",
            "geometryType": "esriGeometryPolygon", "spatialReference": sr_json(out_crs),
            "fields": [field_json(f) for f in fields], "features": features}
    if result.exceeded:
        body["exceededTransferLimit"] = True
    return body


def _extent(service: ImageService, oids, out_crs) -> dict | None:
    rings = service.catalog.footprints(oids)
    if not rings:
        return None
    xs = [x for ring in rings.values() for x, _ in ring]
    ys = [y for ring in rings.values() for _, y in ring]
    bounds = to_crs(box(min(xs), min(ys), max(xs), max(ys)), service.info.crs, out_crs, name="outSR").bounds
    return envelope(bounds, out_crs)


# --- one raster item ------------------------------------------------------------------------------

def item_or_404(service: ImageService, raster_id: str) -> Item:
    try:
        oid = int(raster_id)
    except ValueError:
        raise InvalidParameter("operation", f"{raster_id!r} is not supported by this service "
                                            "(neither an operation nor a raster id)")
    item = service.catalog.item(oid)
    if item is None:
        raise NotFound(f"Raster {oid} does not exist.")
    return item


def item_json(service: ImageService, item: Item) -> dict:
    fields = [f for f in service.info.fields if f.type != GEOMETRY]
    rings = service.catalog.footprints([item.oid])
    return {"attributes": attributes(item, fields),
            "geometry": to_json(Polygon(rings[item.oid]), service.info.crs)}


def item_info(service: ImageService, item: Item) -> dict:
    """`{rasterId}/info`: the item's own grid, in its own CRS, with its statistics."""
    info = describe_item(service, item)
    levels = info.overview_levels
    return {
        "origin": {"x": info.origin[0], "y": info.origin[1]},
        "blockWidth": info.block_size[0], "blockHeight": info.block_size[1],
        "pixelSizeX": info.pixel_size[0], "pixelSizeY": info.pixel_size[1],
        "extent": envelope(info.bounds, info.crs),
        "bandCount": info.band_count, "pixelType": info.pixel_type,
        "firstPyramidLevel": 1 if levels else 0, "maxPyramidLevel": levels,
        "statistics": [[s.min, s.max, s.mean, s.stdv] for s in info.statistics],
    }


def key_properties(service: ImageService, item: Item | None = None) -> dict:
    """keyProperties of the service, or of one item (its attributes and file metadata added)."""
    info = service.info
    body: dict = {
        "DataType": {"esriImageServiceDataTypeElevation": "Elevation", "esriImageServiceDataTypeRGB": "Processed"}
        .get(data_type(info, info.band_count, info.pixel_type), "Generic"),
        "BandProperties": [{"BandName": n} for n in info.band_names],
    }
    if item is None:
        low, high, least, most = service.catalog.cell_size_range()
        body |= {"LowCellSize": low, "HighCellSize": high, "MinCellSize": least, "MaxCellSize": most}
        return body
    attrs = item.attributes
    body |= {"LowCellSize": attrs.get("LowPS"), "HighCellSize": attrs.get("HighPS"),
             "MinCellSize": attrs.get("MinPS"), "MaxCellSize": attrs.get("MaxPS")}
    rec = service.catalog.record(item.oid)
    body |= {k: v for k, v in (rec["tags"] or {}).items()}
    body |= {k: v for k, v in attrs.items() if k.lower() not in BUILTIN_FIELDS and v is not None}
    if info.time_field and item.time_start is not None:
        body["AcquisitionDate"] = item.time_start
    return body


# --- option=footprints ----------------------------------------------------------------------------

def footprints_collection(p: Params, service: ImageService) -> dict:
    """The footprints as a feature collection ArcGIS Online maps read (default outSR: WGS 84)."""
    out_crs = parse_sr_param(p, "outSR", _WGS84)
    fields = [f for f in service.info.fields if f.type != GEOMETRY]
    items = service.catalog.items()
    rings = service.catalog.footprints([i.oid for i in items])
    features = [{"attributes": attributes(i, fields), "geometry": footprint_json(service, rings, i, out_crs)}
                for i in items]
    xmin, ymin, xmax, ymax = to_crs(Polygon.from_bounds(*service.info.extent), service.info.crs, out_crs,
                                    name="outSR").bounds
    return {"layers": [{
        "layerDefinition": {
            "name": f"{service.info.name} footprints", "type": "Feature Layer",
            "geometryType": "esriGeometryPolygon", "objectIdField": "OBJECTID",
            "fields": [field_json(f) for f in fields],
            "extent": envelope((xmin, ymin, xmax, ymax), out_crs),
            "drawingInfo": {"renderer": {"type": "simple", "symbol": {
                "type": "esriSFS", "style": "esriSFSNull",
                "outline": {"type": "esriSLS", "style": "esriSLSSolid", "color": [0, 112, 255, 255],
                            "width": 1}}}},
        },
        "featureSet": {"geometryType": "esriGeometryPolygon", "spatialReference": sr_json(out_crs),
                       "features": features},
    }]}
