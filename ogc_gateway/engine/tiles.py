"""Tiles of a service: which tile matrix sets it is offered in (and where its data lies in each),
and one tile from the cache or, on a miss, rendered with its metatile in one engine call.

A metatile (by default 4x4 tiles, aligned on multiples of that size so a tile always belongs to the
same one) is one export: tile edges inside it match exactly and its reads are amortised, and the
lock that serialises its rendering stops several workers from rendering it at once. Pictures use
the engine's default rendering, so WMTS, the ImageServer tiles, WMS and exportImage agree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from shapely.geometry import box

from .. import __version__
from . import observe
from .encode import encode_rgba
from .errors import InvalidParameter, NotFound
from .export import export
from .grid import reproject_bounds
from .query import mosaic_items
from .render import flatten, picture, rgba
from .requests import ExportRequest, Grid, TileRequest
from .service import ImageService
from .tilecache import StoredTile, TileKey, TileStore
from .timesnap import time_key
from .tms import STANDARD, TileMatrixSet, TileSetLimits, limits, native, standard

FORMATS = ("png", "jpg", "webp", "mixed")
MIME = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}
WHITE = (255, 255, 255)


@dataclass(frozen=True)
class TileSets:
    """The tile matrix sets a service is offered in, by identifier, each with where its data lies;
    `scheme` is the one the ImageServer tile resource uses."""

    sets: dict[str, TileSetLimits]
    scheme: TileSetLimits


def tile_sets(service: ImageService) -> TileSets:
    """Computed once per service (and again after a catalog change, with the service's memo)."""
    sets: TileSets = service.cached("tile_sets", lambda: _tile_sets(service))
    return sets


def _tile_sets(service: ImageService) -> TileSets:
    info = service.info
    wanted: list[TileMatrixSet] = [standard(i) for i in STANDARD]
    wanted.append(native(info.name, info.crs, info.extent, info.cell_size[0]))
    wanted += [standard(i) for i in service.config.tile_matrix_sets if i not in STANDARD]
    sets = {}
    for tms in wanted:
        found = limits(tms, info.crs, info.extent, info.cell_size[0])
        if found is not None:
            sets[tms.identifier] = found
    key = f"{info.name}-native" if service.config.tile_scheme == "native" else "WebMercatorQuad"
    if key not in sets:                  # data outside Web Mercator's area: its own grid, always there
        key = f"{info.name}-native"
    return TileSets(sets, sets[key])


def _fingerprint(service: ImageService) -> str:
    """What besides the catalog decides a service's pictures: its rendering configuration and the
    gateway's version. Part of the cache generation, so a changed template invalidates tiles."""
    cfg = service.config
    text = repr((__version__, cfg.raster_functions, cfg.default_band_ids, cfg.default_resampling,
                 cfg.default_mosaic_method, cfg.crs, cfg.time_field, cfg.end_time_field, cfg.nadir_field,
                 cfg.seamline_blend_width, cfg.dimensions, cfg.variables, cfg.variable_field))
    return hashlib.blake2b(text.encode(), digest_size=4).hexdigest()


def generation(service: ImageService) -> str:
    """The cache generation of a service: it changes whenever its catalog or configuration does.
    The catalog part is its content digest, not its change time, so instances that each keep a
    catalog of the same sources agree on it and share a tile cache (`server.cache_url`)."""
    stamp = service.catalog.content_stamp() or str(service.catalog.last_change())
    return f"{stamp}-{service.cached('fingerprint', lambda: _fingerprint(service))}"


def tile_limits(service: ImageService, req: TileRequest) -> TileSetLimits:
    """The tile set of a request, with the tile checked against it (NotFound when outside)."""
    found = tile_sets(service).sets.get(req.tile_set)
    if found is None:
        raise NotFound(f"Tile matrix set {req.tile_set!r} is not offered by this service.")
    if not found.contains(req.level, req.row, req.col):
        raise NotFound("Tile out of range.", details=[f"level {req.level}, row {req.row}, col {req.col}"],
                       ows_code="TileOutOfRange")
    return found


def block_size(service: ImageService, found: TileSetLimits, level: int, configured: int) -> int:
    """Tiles a side of a metatile: as configured, but within the service's image size limits (the
    seeder and the server use this one rule, so their blocks and locks coincide)."""
    matrix, limits = found.tms.matrices[level], service.info.limits
    return max(1, min(configured, limits.max_image_width // matrix.tile_width,
                      limits.max_image_height // matrix.tile_height))


def metatile(found: TileSetLimits, level: int, row: int, col: int, size: int) -> tuple[int, int, int, int]:
    """(row0, col0, rows, cols) of the aligned block of `size` x `size` tiles holding a tile,
    clipped to where the service has tiles on that level."""
    r0, r1, c0, c1 = found.ranges[level]
    top, left = max(r0, row - row % size), max(c0, col - col % size)
    bottom = min(r1, row - row % size + size - 1)
    right = min(c1, col - col % size + size - 1)
    return top, left, bottom - top + 1, right - left + 1


def get_tile(service: ImageService, req: TileRequest, store: TileStore, *, metatile_size: int = 4) -> StoredTile:
    """The tile from the store, or rendered (with its metatile) and stored first."""
    if req.format not in FORMATS:
        raise InvalidParameter("format", f"tiles come as {', '.join(FORMATS)}")
    found = tile_limits(service, req)
    gen = generation(service)
    store.forget_generations(service.info.name, gen)
    key = block_keys(service, req, found, (req.row, req.col, 1, 1), gen)[0]
    cached = store.get(key)
    if cached is not None:
        observe.report("tile_cache_hit")
        return cached
    observe.report("tile_cache_miss")
    size = block_size(service, found, req.level, metatile_size)
    fill_block(service, req, found, metatile(found, req.level, req.row, req.col, size), store, gen)
    stored = store.get(key)
    if stored is None:                    # removed by a clean-up in between: render just this tile
        data = render_block(service, req, found, (req.row, req.col, 1, 1), gen)[0][1]
        return StoredTile(data, 0.0, '"0-0"')
    return stored


def fill_block(service: ImageService, req: TileRequest, found: TileSetLimits, block: tuple[int, int, int, int],
               store: TileStore, gen: str) -> str:
    """Make sure every tile of a block is stored: "cached" if they all were, else "rendered" or
    "empty" (a block without data). The block's lock keeps other workers from rendering it too;
    whoever waited finds the tiles there."""
    keys = block_keys(service, req, found, block, gen)
    if all(store.exists(k) for k in keys):
        return "cached"
    with store.lock(keys[0], block):
        if all(store.exists(k) for k in keys):
            return "cached"
        tiles = render_block(service, req, found, block, gen)
        store.put(tiles)
    return "rendered" if any(data for _, data in tiles) else "empty"


def render_block(service: ImageService, req: TileRequest, found: TileSetLimits,
                 block: tuple[int, int, int, int], gen: str) -> list[tuple[TileKey, bytes]]:
    """Every tile of a block of the request's level, rendered in one export; b"" for tiles with
    no data (blocks without any item are not exported at all)."""
    row0, col0, rows, cols = block
    tms = found.tms
    matrix = tms.matrices[req.level]
    grid = matrix.grid(tms.crs, row0, col0, rows, cols)
    keys = block_keys(service, req, found, block, gen)
    if not has_data(service, req, grid):
        return [(k, b"") for k in keys]
    info = service.info
    raster = export(service, ExportRequest(grid=grid, rendering_rule=req.rendering_rule, time=req.time,
                                           resampling=info.resampling))
    image = rgba(picture(raster, band_ids_given=False, default_band_ids=info.default_band_ids))
    tw, th = matrix.tile_width, matrix.tile_height

    def part(k: TileKey) -> np.ndarray:
        r, c = k.row - row0, k.col - col0
        return np.ascontiguousarray(image[r * th:(r + 1) * th, c * tw:(c + 1) * tw])
    return [(k, encode_tile(part(k), req.format)) for k in keys]


def block_keys(service: ImageService, req: TileRequest, found: TileSetLimits, block: tuple[int, int, int, int],
               gen: str) -> list[TileKey]:
    """The cache keys of a block's tiles, row by row."""
    row0, col0, rows, cols = block
    level = found.tms.matrices[req.level].identifier
    when = time_key(service, req.time)       # snapped to the catalog's times (engine/timesnap.py)
    return [TileKey(service.info.name, gen, req.tile_set, req.style, when, req.format, level, row0 + r, col0 + c)
            for r in range(rows) for c in range(cols)]


def encode_tile(image: np.ndarray, fmt: str) -> bytes:
    """One RGBA tile as `fmt`; b"" when it holds no data. JPEG has no alpha: nodata turns white
    (WMS's default background); "mixed" is JPEG for a full tile, PNG where some pixel is empty."""
    alpha = image[..., 3]
    if not alpha.any():
        return b""
    if fmt == "mixed":
        fmt = "jpg" if alpha.all() else "png"
    if fmt == "jpg":
        image = flatten(image, WHITE)
    return encode_rgba(image, fmt).data


@lru_cache(maxsize=32)
def blank(fmt: str, width: int, height: int) -> bytes:
    """A tile without data: transparent (PNG, WebP) or white (JPEG)."""
    image = np.zeros((height, width, 4), np.uint8)
    if fmt == "jpg":
        image = flatten(image, WHITE)
    return encode_rgba(image, "png" if fmt == "mixed" else fmt).data


def has_data(service: ImageService, req: TileRequest, grid: Grid) -> bool:
    """Whether any catalog item (at the request's time) meets the grid: the cheap test that lets
    empty blocks skip the engine."""
    try:                     # not clipped to the service CRS's area of use: that is advice, and data
        x0, y0, x1, y1 = reproject_bounds(grid.bounds, grid.crs, service.info.crs)   # beyond it is data
    except InvalidParameter:
        return False                       # no part of the block exists in the service CRS
    items = mosaic_items(service, service.info.default_rule, area=box(x0, y0, x1, y1),
                         view_center=((x0 + x1) / 2, (y0 + y1) / 2), time=req.time)
    return next(items, None) is not None
