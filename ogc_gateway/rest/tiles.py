"""The ImageServer tile resources: `tileInfo` in the root JSON, `tile/{level}/{row}/{col}` and
`tilemap/{level}/{row}/{col}/{width}/{height}` (digest §14), on the service's tile scheme
(WebMercatorQuad unless its config says `tile_scheme: native`), served from the shared tile cache.

A tile outside the scheme or without data is HTTP 404, as ArcGIS answers for a missing cached tile
(GDAL and QGIS take it for an empty tile); `blankTile=true` asks for an empty picture instead.
"""

from __future__ import annotations

from flask import Response

from ..engine import (
    ImageService,
    InvalidParameter,
    NotFound,
    TileRequest,
    TileSetLimits,
    TimeWindow,
    extent_in,
    get_tile,
    reproject_bounds,
    sr_json,
    tile_sets,
)
from ..engine import blank_tile as blank
from ..facecache import face_cached
from .params import Params, parse_time

FORMAT = "mixed"               # JPEG where a tile is full, PNG where it has empty pixels
DPI = 96
INCHES_PER_METRE = 39.37       # Esri's constant: its Web Mercator level 0 is 591657527.591555 with it
MAX_TILEMAP = 128              # tiles a side of one tilemap answer (what Cesium asks for)
MAX_TILEMAP_ITEMS = 2000       # beyond this many items, a tilemap marks the whole data range


def tile_info_json(service: ImageService) -> dict:
    """What the root JSON gains for tiled access (§14.1, §14.4)."""
    found = tile_sets(service).scheme
    tms = found.tms
    lods = [{"level": i, "resolution": m.cell_size, "scale": m.cell_size * tms.metres_per_unit * DPI * INCHES_PER_METRE}
            for i, m in enumerate(tms.matrices)]
    first = tms.matrices[0]
    return {
        "singleFusedMapCache": own_crs_tiles(service, found),
        "cacheType": "Map",
        "tileInfo": {"rows": first.tile_height, "cols": first.tile_width, "dpi": DPI, "format": "MIXED",
                     "compressionQuality": 75, "origin": {"x": first.origin[0], "y": first.origin[1]},
                     "spatialReference": sr_json(tms.crs), "lods": lods},
        "minLOD": 0, "maxLOD": found.native_level,
        "storageInfo": {"storageFormat": "esriMapCacheStorageModeExploded", "packetSize": 0},
    }


def own_crs_tiles(service: ImageService, found: TileSetLimits) -> bool:
    """Whether the tile cache is in the service's own CRS. When it is not (a UTM service tiled in
    Web Mercator), the root JSON says singleFusedMapCache false: QGIS's ArcGIS REST provider
    places fused-cache tiles in the service's spatialReference and would draw them blank or
    misplaced; it then draws through export instead. The tiles and tileInfo stay, for clients
    that read tileInfo's own spatialReference (GDAL, the ArcGIS JS SDK)."""
    return found.tms.crs == service.info.crs


def _scheme_request(service: ImageService, p: Params, level: int, row: int, col: int) -> TileRequest:
    """A tile of the service's scheme (get_tile refuses one outside it with NotFound)."""
    time = parse_time(p) or latest_time(service)
    return TileRequest(tile_set=tile_sets(service).scheme.tms.identifier, level=level, row=row, col=col,
                       time=time, format=FORMAT)


def latest_time(service: ImageService) -> TimeWindow | None:
    """A time-enabled service's tiles show its latest time unless `time` says otherwise (DESIGN.md)."""
    def compute():
        times = service.catalog.times()
        return TimeWindow(times[-1], times[-1]) if times and service.info.time_field else None
    return face_cached(service, "latest_time", compute)


def tile(service: ImageService, p: Params, level: int, row: int, col: int, *, metatile_size: int, store):
    """The stored tile (empty when the tile holds no data); NotFound outside the scheme."""
    return get_tile(service, _scheme_request(service, p, level, row, col), store, metatile_size=metatile_size)


def in_scheme(service: ImageService, level: int, row: int, col: int) -> bool:
    """Whether a tile exists in the service's tile scheme at all (with or without data)."""
    matrices = tile_sets(service).scheme.tms.matrices
    if not 0 <= level < len(matrices):
        return False
    m = matrices[level]
    return 0 <= row < m.matrix_height and 0 <= col < m.matrix_width


def blank_tile(service: ImageService) -> Response:
    m = tile_sets(service).scheme.tms.matrices[0]
    resp = Response(blank("png", m.tile_width, m.tile_height), content_type="image/png")
    resp.headers["blank-tile"] = "true"
    return resp


def content_type(data: bytes) -> str:
    return "image/jpeg" if data[:3] == b"\xff\xd8\xff" else "image/png"


def tilemap(service: ImageService, level: int, row: int, col: int, width: int, height: int) -> dict:
    """Which tiles of a window exist: 1 where a catalog item's footprint box meets the tile."""
    if not (1 <= width <= MAX_TILEMAP and 1 <= height <= MAX_TILEMAP) or row < 0 or col < 0:
        raise InvalidParameter("tilemap", f"width and height are 1..{MAX_TILEMAP}; row and col are not negative")
    found: TileSetLimits = tile_sets(service).scheme
    if not 0 <= level < len(found.ranges):
        raise NotFound("Tile level not found.", details=[f"level {level}"])
    tms = found.tms
    matrix = tms.matrices[level]
    data = [0] * (width * height)
    r0, r1, c0, c1 = found.ranges[level]
    window = matrix.bounds(row, col, height, width)
    try:
        box = reproject_bounds(window, tms.crs, service.info.crs)     # no clip to the CRS's area of use
        items = service.catalog.items(bbox=box)
    except InvalidParameter:
        items = []
    boxes = [found.extent] if len(items) > MAX_TILEMAP_ITEMS else []
    for item in items[:MAX_TILEMAP_ITEMS] if not boxes else []:
        try:
            boxes.append(extent_in(item.bounds, service.info.crs, tms.crs))
        except InvalidParameter:
            continue
    for b in boxes:
        covered = matrix.covering(b)
        if covered is None:
            continue
        br0, br1, bc0, bc1 = covered
        for r in range(max(br0, r0, row), min(br1, r1, row + height - 1) + 1):
            for c in range(max(bc0, c0, col), min(bc1, c1, col + width - 1) + 1):
                data[(r - row) * width + (c - col)] = 1
    return {"adjusted": False, "location": {"left": col, "top": row, "width": width, "height": height},
            "data": data}

