"""Batch work on a Spark cluster: `ogc-gateway seed --spark [MASTER]` and `catalog sync --spark`.

Spark only distributes; the work is the engine's own. Seeding sends the seed plan's metatile blocks
as tasks: each partition opens the services once (as a seeding worker process does) and fills its
blocks into the shared tile cache with `engine.tiles.fill_block`, so the tiles are byte for byte
those of a local run. Catalog sync sends the files to (re-)read: executors read their headers,
statistics and outlines with `rasterinfo.read_raster`, the driver stores them in one transaction.

Executors run the driver's own interpreter (`spark.pyspark.python`), and must see the same files
and the same cache folder (one machine, or a shared file system / object store).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from ..config import Config
from ..engine import TileSetLimits

DEFAULT_MASTER = "local[*]"


@contextmanager
def session(master: str | None, app_name: str) -> Iterator:
    """The active SparkSession (a notebook's, left running), else one on `master` whose Python
    workers run this interpreter, stopped at the end."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    spark = (SparkSession.builder.master(master or DEFAULT_MASTER).appName(app_name)
             .config("spark.pyspark.python", sys.executable)
             .config("spark.pyspark.driver.python", sys.executable)
             .config("spark.ui.enabled", "false")
             .getOrCreate())
    try:
        yield spark
    finally:
        spark.stop()


def seed(config: Config, plan, found: TileSetLimits, master: str | None,
         progress: Callable[[int, str], None]) -> dict[str, int]:
    """Fill every block of `plan` as Spark tasks; `progress(tiles, outcome)` as results arrive."""
    from .. import seed as seeding

    jobs = [(plan, level, block, time) for time in plan.times for level, block in seeding.blocks(plan, found)]
    counts = {"rendered": 0, "cached": 0, "empty": 0}
    if not jobs:
        return counts
    with session(master, f"ogc-gateway seed {plan.service}") as spark:
        sc = spark.sparkContext
        slices = min(len(jobs), max(1, sc.defaultParallelism) * 4)
        for tiles, outcome in sc.parallelize(jobs, slices).mapPartitions(_seed_partition(config)).toLocalIterator():
            counts[outcome] += tiles
            progress(tiles, outcome)
    return counts


def _seed_partition(config: Config) -> Callable[[Iterable], Iterator[tuple[int, str]]]:
    def fill(jobs: Iterable) -> Iterator[tuple[int, str]]:
        from .. import seed as seeding

        seeding.open_worker(config)
        for job in jobs:
            yield seeding.fill(job)
    return fill


def reader(master: str | None, app_name: str) -> Callable[[list[str]], list[tuple[str, dict | str]]]:
    """A `Catalog.sync` reader that reads the files' headers on Spark executors."""
    def read(paths: list[str]) -> list[tuple[str, dict | str]]:
        from ..engine import read_files

        if not paths:
            return []
        with session(master, app_name) as spark:
            sc = spark.sparkContext
            slices = min(len(paths), max(1, sc.defaultParallelism) * 4)
            return sc.parallelize(paths, slices).mapPartitions(lambda part: iter(read_files(list(part)))).collect()
    return read
