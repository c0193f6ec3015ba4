"""The SQLite catalog's generation check: kept per thread while `PRAGMA data_version` says nobody else
committed, read again after any commit — by another process, another connection, or this very connection."""

from __future__ import annotations

import subprocess
import sys
import threading

from ogc_gateway.engine.catalog.sqlite import SqliteStore

DDL = "CREATE TABLE IF NOT EXISTS items (OBJECTID INTEGER PRIMARY KEY)"


def _set(store: SqliteStore, value: str) -> None:
    with store.write() as con:
        store.set_meta(con, "generation", value)


def _truth(path) -> str:
    """The committed value, read by a connection of its own."""
    import sqlite3

    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
    finally:
        con.close()


def test_a_commit_by_another_connection_is_seen_at_the_next_look(tmp_path):
    path = tmp_path / "c.sqlite"
    reader, writer = SqliteStore(path, DDL), SqliteStore(path, DDL)
    assert reader.generation() is None
    _set(writer, "1")
    assert reader.generation() == "1" == _truth(path)
    assert reader.generation() == "1"           # unchanged: the kept value
    _set(writer, "2")
    assert reader.generation() == "2" == _truth(path)


def test_this_connections_own_commit_is_seen(tmp_path):
    """data_version does not move for a connection's own commits: write() must forget the kept value."""
    store = SqliteStore(tmp_path / "c.sqlite", DDL)
    _set(store, "5")
    assert store.generation() == "5"
    _set(store, "6")
    assert store.generation() == "6" == _truth(tmp_path / "c.sqlite")


def test_a_rolled_back_write_leaves_the_generation(tmp_path):
    store = SqliteStore(tmp_path / "c.sqlite", DDL)
    _set(store, "7")
    assert store.generation() == "7"
    try:
        with store.write() as con:
            store.set_meta(con, "generation", "8")
            assert store.generation() == "8"      # inside the transaction, its own uncommitted value
            raise RuntimeError("abandon")
    except RuntimeError:
        pass
    assert store.generation() == "7" == _truth(tmp_path / "c.sqlite")


def test_another_threads_commit_on_the_same_store_is_seen(tmp_path):
    store = SqliteStore(tmp_path / "c.sqlite", DDL)
    _set(store, "1")
    assert store.generation() == "1"
    worker = threading.Thread(target=_set, args=(store, "2"))   # its own thread's connection
    worker.start()
    worker.join()
    assert store.generation() == "2"


def test_a_commit_by_another_process_is_seen(tmp_path):
    path = tmp_path / "c.sqlite"
    store = SqliteStore(path, DDL)
    _set(store, "10")
    assert store.generation() == "10"
    code = ("import sqlite3, sys; con = sqlite3.connect(sys.argv[1], isolation_level=None); "
            "con.execute(\"UPDATE meta SET value = '11' WHERE key = 'generation'\")")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    assert store.generation() == "11"
