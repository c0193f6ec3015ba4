"""`ogc-gateway seed`: render a service's tile pyramid into the tile cache ahead of time, or remove
levels of it.

The pyramid is walked in metatiles aligned exactly as the server aligns them, so seeding and serving
share blocks and locks: a running server and the seeder never render the same block twice. Blocks
whose tiles are all stored already are skipped (a second run resumes an interrupted one), blocks
without any catalog item are recorded as empty without rendering. Worker processes open their own
datasets after the fork.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass

from .config import Config
from .engine import TILE_FORMATS as FORMATS
from .engine import (
    ImageService,
    InvalidParameter,
    TileRequest,
    TileSetLimits,
    TimeWindow,
    crs_from_ogc,
    extent_in,
    fill_block,
    open_services,
    tile_sets,
    time_key,
)
from .engine import tile_block_size as block_size
from .engine import tile_generation as generation
from .ogc.common import OGCError, parse_instant
from .storage import tile_store


@dataclass(frozen=True)
class SeedPlan:
    """What one run covers: a service, a tile set, levels, an optional box, a style, format, times."""

    service: str
    tile_set: str
    levels: tuple[int, ...]
    bbox: tuple[float, float, float, float] | None      # in the tile set's CRS
    style: str
    format: str
    times: tuple[TimeWindow | None, ...]
    metatile: dict[int, int]                             # tiles a side of a metatile, per level


def parse_levels(text: str, found: TileSetLimits) -> tuple[int, ...]:
    """'0-12', '5', '3,5,7' or '10-' (to the finest level) as level indexes of the tile set."""
    count = len(found.tms.matrices)
    levels: set[int] = set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        lo, dash, hi = part.partition("-")
        try:
            first = int(lo)
            last = (int(hi) if hi.strip() else count - 1) if dash else first
        except ValueError:
            raise InvalidParameter("levels", f"{part!r} is not a level or a range such as 0-12") from None
        if not (0 <= first <= last < count):
            raise InvalidParameter("levels", f"{part!r}: {found.tms.identifier} has levels 0..{count - 1}")
        levels.update(range(first, last + 1))
    if not levels:
        raise InvalidParameter("levels", "no level given")
    return tuple(sorted(levels))


def default_levels(found: TileSetLimits) -> str:
    return f"0-{found.native_level}"


def parse_bbox(text: str, crs_code: str, found: TileSetLimits) -> tuple[float, float, float, float]:
    try:
        w, s, e, n = (float(v) for v in text.split(","))
    except ValueError:
        raise InvalidParameter("bbox", f"{text!r} is not W,S,E,N") from None
    if not (w < e and s < n):
        raise InvalidParameter("bbox", "W must be less than E and S less than N")
    return extent_in((w, s, e, n), crs_from_ogc(crs_code), found.tms.crs)


def parse_times(text: str | None, service: ImageService) -> tuple[TimeWindow | None, ...]:
    """'all' (every time of the service), ISO instants separated by commas, or none: the latest
    (the time WMTS and the tile resource show by default)."""
    times = service.catalog.times() if service.info.time_field else []
    if not times:
        return (None,)
    if text is None:
        return (TimeWindow(times[-1], times[-1]),)
    if text.strip().lower() == "all":
        return tuple(TimeWindow(t, t) for t in times)
    chosen = []
    for part in text.split(","):
        try:
            t = parse_instant(part, "time")
        except OGCError as exc:
            raise InvalidParameter("time", exc.message) from None
        if t not in times:
            raise InvalidParameter("time", f"{part.strip()!r} is not one of the service's times")
        chosen.append(TimeWindow(t, t))
    return tuple(chosen)


def blocks(plan: SeedPlan, found: TileSetLimits) -> Iterator[tuple[int, tuple[int, int, int, int]]]:
    """(level, (row0, col0, rows, cols)) of every metatile to fill, coarse levels first, aligned as
    the server aligns them (engine.tiles.metatile)."""
    for level in plan.levels:
        size = plan.metatile[level]
        r0, r1, c0, c1 = found.ranges[level]
        if plan.bbox is not None:
            covered = found.tms.matrices[level].covering(plan.bbox)
            if covered is None:
                continue
            r0, r1 = max(r0, covered[0]), min(r1, covered[1])
            c0, c1 = max(c0, covered[2]), min(c1, covered[3])
            if r0 > r1 or c0 > c1:
                continue
        for top in range(r0 - r0 % size, r1 + 1, size):
            for left in range(c0 - c0 % size, c1 + 1, size):
                row0, col0 = max(top, r0), max(left, c0)
                rows, cols = min(top + size - 1, r1) - row0 + 1, min(left + size - 1, c1) - col0 + 1
                yield level, (row0, col0, rows, cols)


def tile_count(plan: SeedPlan, found: TileSetLimits) -> int:
    return sum(b[2] * b[3] for _, b in blocks(plan, found)) * len(plan.times)


# --- worker processes -----------------------------------------------------------------------------

_worker: dict = {}


def open_worker(config: Config) -> None:
    """What a worker (a process of the pool, or a Spark partition) opens before its blocks: the
    services on their synced catalogs, and the tile cache."""
    _worker["services"] = open_services(config, sync=False)
    _worker["store"] = tile_store(config)


def _init_worker(config: Config) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)           # the parent decides when to stop
    open_worker(config)


def fill(job) -> tuple[int, str]:
    """Fill one metatile block of a plan: (tiles, outcome: rendered | cached | empty)."""
    plan, level, block, time = job
    service = _worker["services"][plan.service]
    found = tile_sets(service).sets[plan.tile_set]
    rule = _style_rule(service, plan.style)
    req = TileRequest(tile_set=plan.tile_set, level=level, row=block[0], col=block[1], style=plan.style,
                      rendering_rule=rule, time=time, format=plan.format)
    outcome = fill_block(service, req, found, block, _worker["store"], generation(service))
    return block[2] * block[3], outcome


def _style_rule(service: ImageService, style: str):
    if style == "default":
        return None
    from .engine import parse_rendering_rule

    return parse_rendering_rule({"rasterFunction": style}, service.templates)


def check_style(service: ImageService, style: str) -> str:
    if style != "default" and style.lower() not in service.templates:
        raise InvalidParameter("style", f"{service.info.name} has no style {style!r} (default, "
                                        f"{', '.join(t.name for t in service.info.templates) or 'no templates'})")
    return style if style == "default" else service.templates[style.lower()].name


def check_format(fmt: str) -> str:
    value = {"jpeg": "jpg", "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}.get(fmt.lower(), fmt.lower())
    if value not in FORMATS:
        raise InvalidParameter("format", f"{fmt!r}: tiles come as png, jpeg, webp (WMTS) or mixed (the "
                                         "ImageServer tile resource)")
    return value


def run(config: Config, plan: SeedPlan, found: TileSetLimits, workers: int, progress) -> dict[str, int]:
    """Fill every block of the plan with `workers` processes, calling `progress(tiles, outcome)` as
    blocks finish; returns the tile counts by outcome."""
    jobs = ((plan, level, block, time) for time in plan.times for level, block in blocks(plan, found))
    counts = {"rendered": 0, "cached": 0, "empty": 0}
    if workers <= 1:
        _init_worker(config)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        results = map(fill, jobs)
        for tiles, outcome in results:
            counts[outcome] += tiles
            progress(tiles, outcome)
        return counts
    context = multiprocessing.get_context("fork")
    pool = context.Pool(workers, initializer=_init_worker, initargs=(config,))
    try:
        for tiles, outcome in pool.imap_unordered(fill, jobs, chunksize=4):
            counts[outcome] += tiles
            progress(tiles, outcome)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    return counts


def prepare(config: Config, service_name: str, *, tms: str | None, levels: str | None, bbox: str | None,
            bbox_crs: str, style: str, fmt: str, time: str | None, metatile: int | None
            ) -> tuple[SeedPlan, TileSetLimits]:
    """The plan of a run, every option checked (InvalidParameter naming the option otherwise)."""
    service, found = _service_and_set(config, service_name, tms, sync=True)
    chosen = parse_levels(levels or default_levels(found), found)
    size = metatile or config.server.tile_metatile_size
    plan = SeedPlan(service=service_name, tile_set=found.tms.identifier, levels=chosen,
                    bbox=parse_bbox(bbox, bbox_crs, found) if bbox else None, style=check_style(service, style),
                    format=check_format(fmt), times=parse_times(time, service),
                    metatile={level: block_size(service, found, level, size) for level in chosen})
    return plan, found


def _service_and_set(config: Config, name: str, tms: str | None, *, sync: bool
                     ) -> tuple[ImageService, TileSetLimits]:
    """The service of a run and its tile set (the service's scheme unless `tms` names one)."""
    services = open_services(config, sync=sync)
    service = services.get(name)
    if service is None:
        raise InvalidParameter("service", f"no service {name!r} (services: {', '.join(services)})")
    sets = tile_sets(service)
    found = sets.scheme if tms is None else sets.sets.get(tms)
    if found is None:
        raise InvalidParameter("tms", f"{name} is not tiled in {tms!r} (tile matrix sets: {', '.join(sets.sets)})")
    return service, found


def clean(config: Config, service_name: str, *, tms: str | None, levels: str | None, style: str | None,
          fmt: str | None, time: str | None) -> int:
    """Remove cached levels (every style, format and time unless narrowed); returns folders removed."""
    service, found = _service_and_set(config, service_name, tms, sync=False)
    chosen = None
    if levels:
        chosen = {found.tms.matrices[i].identifier for i in parse_levels(levels, found)}
    time_keys = None
    if time is not None:
        time_keys = [time_key(service, t) for t in parse_times(time, service)]
    store = tile_store(config)
    removed = 0
    for key in time_keys or [None]:
        removed += store.clean(service_name, generation(service), found.tms.identifier,
                               check_style(service, style) if style else None, key,
                               check_format(fmt) if fmt else None, chosen)
    return removed


def default_workers() -> int:
    return max(1, (os.cpu_count() or 1))

