"""`seed --spark` (Spark local[2], in a separate process as a user runs it) writes exactly the tiles a
local seed writes: the same files, byte for byte."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_tiles import write_config

pytest.importorskip("pyspark")


def tiles(cache: Path) -> dict[str, bytes]:
    """Every cached tile by its path below the service, without the generation folder (each cache
    has its own catalog, so its own generation)."""
    found = {}
    for path in (cache / "tiles" / "dem").rglob("*"):
        if path.is_file() and not path.name.endswith(".lock"):
            parts = path.relative_to(cache / "tiles" / "dem").parts
            found["/".join(parts[1:])] = path.read_bytes()
    return found


def seed(config: Path, *extra: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-m", "ogc_gateway.cli", "seed", "dem", "--config", str(config),
                             "--levels", "10-16", *extra], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_spark_seed_gives_the_local_seeds_tiles(data_dir, tmp_path):
    local, distributed = tmp_path / "local", tmp_path / "spark"
    local.mkdir(), distributed.mkdir()
    seed(write_config(data_dir, local), "--workers", "1")
    out = seed(write_config(data_dir, distributed), "--spark", "local[2]")
    assert "0 already cached" in out
    expected, got = tiles(local / "cache"), tiles(distributed / "cache")
    assert len(expected) > 40 and got.keys() == expected.keys()
    assert all(got[k] == expected[k] for k in expected)
    again = seed(write_config(data_dir, distributed), "--spark", "local[2]")     # resumes: all cached
    assert "0 rendered" in again


def test_spark_catalog_sync_gives_the_local_syncs_catalog(data_dir, tmp_path):
    """`catalog sync --spark` reads the headers on executors; the catalog is the local sync's."""
    from ogc_gateway.config import load_config
    from ogc_gateway.engine.catalog import Catalog
    from ogc_gateway.engine.service import catalog_path

    def sync(folder: Path, *extra: str) -> Catalog:
        config = folder / "gateway.yaml"
        config.write_text(f"""
server:
  cache_dir: {folder / 'cache'}
services:
  mosaic:
    sources: {data_dir / 'mosaic' / '*.tif'}
    catalog: {data_dir / 'mosaic' / 'catalog.csv'}
    time_field: acquired
""")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        done = subprocess.run([sys.executable, "-m", "ogc_gateway.cli", "catalog", "sync", "--config", str(config),
                               *extra], capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        cfg = load_config(config)
        return Catalog(catalog_path(cfg, "mosaic"), cfg.services["mosaic"])

    local, distributed = tmp_path / "local", tmp_path / "spark"
    local.mkdir(), distributed.mkdir()
    a, b = sync(local), sync(distributed, "--spark", "local[2]")
    assert list(a.entries()) == list(b.entries()) and len(list(a.entries())) >= 4
    oids = [oid for oid, *_ in a.entries()]
    assert [a.record(o) for o in oids] == [b.record(o) for o in oids]
    assert a.footprints(oids) == b.footprints(oids)
    assert a.info().extent == b.info().extent and a.info().stats == b.info().stats
