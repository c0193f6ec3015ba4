"""PostgreSQL with PostGIS for the tests: the database of OGC_GATEWAY_TEST_PG (a postgresql:// URL the
tests may create schemas in; `.ci/run` sets it), else a private cluster started here from Debian's
binaries (/usr/lib/postgresql/15/bin, as the postgres user when run as root: postgres refuses root),
on a free port of 127.0.0.1, removed at the end. Tests that need it are skipped only when neither
exists; `.ci/run` installs postgresql-15-postgis-3, so CI always runs them.

`stores` is the parametrisation of the catalog tests that are about the store: each test runs on
SQLite and on PostGIS. `open_catalog(path, svc)` opens the catalog a test names by its SQLite path;
on PostGIS the path picks the schema, so a test that reopens the same path gets the same catalog
and every test starts from an empty one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from ogc_gateway.engine.catalog import Catalog, items_ddl

PG_BIN = Path("/usr/lib/postgresql/15/bin")
ENV = "OGC_GATEWAY_TEST_PG"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A throw-away PostgreSQL cluster (trust authentication, 127.0.0.1 only)."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="ogc-gateway-pg-"))
        self.port = _free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.dir, "postgres")
        data = self.dir / "data"
        self.run(PG_BIN / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
        self.run(PG_BIN / "pg_ctl", "-D", data, "-l", self.dir / "log", "-w", "-o",
                 f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        self.run(PG_BIN / "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "gateway")
        self.run(PG_BIN / "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "gateway",
                 "-qc", "CREATE EXTENSION postgis")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/gateway"

    def run(self, *args) -> None:
        subprocess.run([*self.as_user, *map(str, args)], check=True, capture_output=True, cwd=self.dir)

    def stop(self) -> None:
        subprocess.run([*self.as_user, str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate",
                        "-w", "stop"], capture_output=True, cwd=self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url():
    """The URL of a PostGIS database the tests may create schemas in."""
    if os.environ.get(ENV):
        yield os.environ[ENV]
        return
    if not (PG_BIN / "postgres").exists():
        pytest.skip(f"no PostgreSQL: set {ENV} or install postgresql-15-postgis-3 (.ci/run does)")
    cluster = Cluster()
    try:
        yield cluster.url
    finally:
        cluster.stop()


class Stores:
    """Opens catalogs in the store of the running parameter."""

    def __init__(self, kind: str, url: str | None):
        self.kind, self.url = kind, url

    def open(self, path: Path, svc) -> Catalog:
        if self.url is None:
            return Catalog(path, svc)
        from ogc_gateway.engine.catalog.postgis import PostgisStore

        schema = f"{svc.name}_{hashlib.blake2b(str(path).encode(), digest_size=5).hexdigest()}"
        fresh = not Path(f"{path}.pg").exists()
        if fresh:                 # a new test path: an empty schema (a rerun may have left one)
            PostgisStore.drop(self.url, schema)
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(f"{path}.pg").touch()
        return Catalog(path, svc, PostgisStore(self.url, schema, items_ddl([], PostgisStore.types, True)))


@pytest.fixture(params=["sqlite", "postgis"])
def stores(request) -> Stores:
    """Each catalog test on SQLite, then on PostGIS."""
    if request.param == "sqlite":
        return Stores("sqlite", None)
    return Stores("postgis", request.getfixturevalue("pg_url"))


@pytest.fixture(params=["sqlite", "postgis"], scope="module")
def module_stores(request) -> Stores:
    if request.param == "sqlite":
        return Stores("sqlite", None)
    return Stores("postgis", request.getfixturevalue("pg_url"))
