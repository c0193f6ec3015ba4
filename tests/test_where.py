"""Where-clause compiler: each clause's compiled SQL is run against a small SQLite table and the rows
it selects are checked against a Python predicate written independently over the same rows; hostile
inputs must be refused without touching the table."""

from __future__ import annotations

import re
import sqlite3
from collections import namedtuple
from datetime import UTC, datetime

import pytest

from ogc_gateway.engine.catalog import DATE, DOUBLE, GEOMETRY, INTEGER, OID, STRING, Field
from ogc_gateway.engine.errors import InvalidParameter
from ogc_gateway.engine.where import MAX_DEPTH, MAX_IN_ITEMS, MAX_LENGTH, Where, compile_where

UTC = UTC


def ms(*args) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


Row = namedtuple("Row", "oid name cloud sensor acq prio")
ROWS = [
    Row(1, "Alpha", 5.0, "S2A", ms(2024, 1, 15), 1),
    Row(2, "bravo", 12.5, "S2B", ms(2024, 6, 1), 2),
    Row(3, "Charlie", 30.0, "L8", ms(2024, 6, 1, 10, 0, 0), 3),
    Row(4, "O'Brien", None, "L9", ms(2023, 12, 31, 23, 59, 59), None),
    Row(5, "delta_x", 75.0, None, None, 5),
    Row(6, "Echo%", 0.0, "s2a", ms(2024, 6, 15), 2),
    Row(7, "Foxtrot", 100.0, "L8", ms(2025, 1, 1), 10),
]
FIELDS = [Field("OBJECTID", OID, "OBJECTID"), Field("Shape", GEOMETRY, "Shape"),
          Field("Name", STRING, "Name"), Field("cloud_cover", DOUBLE, "Cloud cover"),
          Field("sensor", STRING, "Sensor"), Field("acquired", DATE, "Acquired"),
          Field("priority", INTEGER, "Priority")]
NOW = datetime(2024, 6, 15, 13, 30, tzinfo=UTC)        # CURRENT_DATE = 2024-06-15 00:00 UTC
ALL = {r.oid for r in ROWS}


@pytest.fixture
def db():
    con = sqlite3.connect(":memory:")
    con.execute('CREATE TABLE items ("OBJECTID" INTEGER PRIMARY KEY, "Name" TEXT, "cloud_cover" REAL, '
                '"sensor" TEXT, "acquired" INTEGER, "priority" INTEGER)')
    con.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?)", ROWS)
    con.commit()
    yield con
    con.close()


def select(con, where: Where) -> set[int]:
    return {oid for (oid,) in con.execute(f"SELECT i.OBJECTID FROM items AS i WHERE {where.sql}",
                                          where.params)}


def nn(*values) -> bool:
    return all(v is not None for v in values)


CASES = [
    ("1=1", lambda r: True),
    ("", lambda r: True),
    ("   ", lambda r: True),
    ("1 = 0", lambda r: False),
    ("'a' = 'a'", lambda r: True),
    ("OBJECTID = 3", lambda r: r.oid == 3),
    ("cloud_cover < 20", lambda r: nn(r.cloud) and r.cloud < 20),
    ("CLOUD_COVER<20", lambda r: nn(r.cloud) and r.cloud < 20),
    ('"cloud_cover" >= 30', lambda r: nn(r.cloud) and r.cloud >= 30),
    ('"Cloud_Cover" <= 30', lambda r: nn(r.cloud) and r.cloud <= 30),
    ("cloud_cover > -1", lambda r: nn(r.cloud)),
    ("cloud_cover >= 1.25e1", lambda r: nn(r.cloud) and r.cloud >= 12.5),
    ("cloud_cover < .5", lambda r: nn(r.cloud) and r.cloud < 0.5),
    ("priority = +10", lambda r: r.prio == 10),
    ("Name = 'Alpha'", lambda r: r.name == "Alpha"),
    ("name = 'O''Brien'", lambda r: r.name == "O'Brien"),
    ("Name <> 'Alpha'", lambda r: r.name != "Alpha"),
    ("Name != 'Alpha'", lambda r: r.name != "Alpha"),
    ("sensor = 's2a'", lambda r: r.sensor == "s2a"),
    ("priority > 2 AND cloud_cover < 80", lambda r: nn(r.prio, r.cloud) and r.prio > 2 and r.cloud < 80),
    ("priority = 1 OR priority = 10", lambda r: r.prio in (1, 10)),
    ("priority = 1 or priority = 2 and sensor = 'S2B'",
     lambda r: r.prio == 1 or (r.prio == 2 and r.sensor == "S2B")),
    ("(priority = 1 or priority = 2) and sensor = 'S2B'",
     lambda r: r.prio in (1, 2) and r.sensor == "S2B"),
    ("NOT priority = 2", lambda r: nn(r.prio) and r.prio != 2),
    ("NOT (priority = 2)", lambda r: nn(r.prio) and r.prio != 2),
    ("not not priority = 2", lambda r: r.prio == 2),
    ("objectid IN (1) AND NOT (sensor = 'L8' OR sensor IS NULL)", lambda r: r.oid == 1),
    ("sensor IN ('S2A', 'L8')", lambda r: r.sensor in ("S2A", "L8")),
    ("sensor NOT IN ('S2A', 'L8')", lambda r: nn(r.sensor) and r.sensor not in ("S2A", "L8")),
    ("priority in (1, 2, 3)", lambda r: r.prio in (1, 2, 3)),
    ("cloud_cover BETWEEN 5 AND 30", lambda r: nn(r.cloud) and 5 <= r.cloud <= 30),
    ("cloud_cover NOT BETWEEN 5 AND 30", lambda r: nn(r.cloud) and not 5 <= r.cloud <= 30),
    ("Sensor in ('L8') oR Priority Between 1 aNd 1", lambda r: r.sensor == "L8" or r.prio == 1),
    # LIKE follows SQLite: case-insensitive for ASCII letters
    ("Name LIKE 'c%'", lambda r: r.name.lower().startswith("c")),
    ("Name LIKE '%o'", lambda r: r.name.lower().endswith("o")),
    ("Name like '_r%'", lambda r: r.name[1:2].lower() == "r"),
    ("Name LIKE '%!%' ESCAPE '!'", lambda r: r.name.endswith("%")),
    ("Name LIKE 'delta!_%' ESCAPE '!'", lambda r: r.name.startswith("delta_")),
    ("Name NOT LIKE '%a%'", lambda r: "a" not in r.name.lower()),
    ("sensor IS NULL", lambda r: r.sensor is None),
    ("sensor is not null", lambda r: r.sensor is not None),
    ("cloud_cover IS NULL OR priority IS NULL", lambda r: r.cloud is None or r.prio is None),
    ("UPPER(sensor) = 'S2A'", lambda r: nn(r.sensor) and r.sensor.upper() == "S2A"),
    ("lower(Name) = 'bravo'", lambda r: r.name.lower() == "bravo"),
    ("upper(lower(Name)) IN ('ALPHA', 'ECHO%')", lambda r: r.name.upper() in ("ALPHA", "ECHO%")),
    ("acquired = DATE '2024-06-01'", lambda r: r.acq == ms(2024, 6, 1)),
    ("acquired >= TIMESTAMP '2024-06-01 10:00:00'", lambda r: nn(r.acq) and r.acq >= ms(2024, 6, 1, 10)),
    ("acquired > timestamp '2024-06-01 09:59:59.999'",
     lambda r: nn(r.acq) and r.acq > ms(2024, 6, 1, 9, 59, 59) + 999),
    ("acquired > '2024-06-01'", lambda r: nn(r.acq) and r.acq > ms(2024, 6, 1)),
    ("acquired < '2024/06/01'", lambda r: nn(r.acq) and r.acq < ms(2024, 6, 1)),
    ("acquired = '2024-06-01T10:00:00Z'", lambda r: r.acq == ms(2024, 6, 1, 10)),
    ("'2024-06-01 10:00:00' = acquired", lambda r: r.acq == ms(2024, 6, 1, 10)),
    ("acquired BETWEEN '2024-01-01' AND '2024-06-30'",
     lambda r: nn(r.acq) and ms(2024, 1, 1) <= r.acq <= ms(2024, 6, 30)),
    ("acquired IN ('2024-06-01', DATE '2025-01-01')", lambda r: r.acq in (ms(2024, 6, 1), ms(2025, 1, 1))),
    ("acquired >= CURRENT_DATE", lambda r: nn(r.acq) and r.acq >= ms(2024, 6, 15)),
    ("acquired < current_timestamp", lambda r: nn(r.acq) and r.acq < ms(2024, 6, 15, 13, 30)),
    ("acquired IS NULL OR acquired < DATE '2024-01-01'", lambda r: r.acq is None or r.acq < ms(2024, 1, 1)),
]

# what may appear in compiled SQL: fixed compiler tokens, quoted allow-listed columns and '?'
_SQL_TOKEN = re.compile(r'\s+|[(),]|<>|<=|>=|[=<>?]|i\."[A-Za-z_][A-Za-z0-9_]*"|'
                        r"\b(?:AND|OR|NOT|IN|BETWEEN|LIKE|ESCAPE|IS|NULL|UPPER|LOWER)\b|^1$")


@pytest.mark.parametrize("text, truth", CASES, ids=[c[0] or "blank" for c in CASES])
def test_where_selects_the_right_rows(db, text, truth):
    where = compile_where(text, FIELDS, now=NOW)
    assert select(db, where) == {r.oid for r in ROWS if truth(r)}
    assert _SQL_TOKEN.sub("", where.sql) == "", where.sql


def test_output_shape():
    assert compile_where("cloud_cover < 20", FIELDS) == Where('(i."cloud_cover" < ?)', (20,))
    assert compile_where("", FIELDS) == Where("1", ())
    assert compile_where("name like 'A%' escape '\\'", FIELDS, alias="t") == \
        Where('(t."Name" LIKE ? ESCAPE ?)', ("A%", "\\"))
    where = compile_where("Sensor IS NOT NULL AND priority NOT IN (1, 2)", FIELDS)
    assert where == Where('((i."sensor" IS NOT NULL) AND (i."priority" NOT IN (?, ?)))', (1, 2))


def test_literals_never_reach_the_sql(db):
    where = compile_where("Name = 'Robert''); DROP TABLE items;--'", FIELDS)
    assert "DROP" not in where.sql and "Robert" not in where.sql
    assert where.params == ("Robert'); DROP TABLE items;--",)
    assert select(db, where) == set()


def test_current_time_defaults_to_now():
    ms_now = datetime.now(UTC).timestamp() * 1000
    (value,) = compile_where("acquired < CURRENT_TIMESTAMP", FIELDS).params
    assert abs(value - ms_now) < 60_000
    (naive,) = compile_where("acquired < CURRENT_DATE", FIELDS, now=datetime(2024, 6, 15, 23, 59)).params
    assert naive == ms(2024, 6, 15)


@pytest.mark.parametrize("op", ["OR", "AND"])
def test_longest_chain_stays_within_sqlite_limits(db, op):
    sep = f" {op} "
    text = sep.join(["1=1"] * ((MAX_LENGTH + len(sep)) // (3 + len(sep))))    # most terms that fit
    assert len(text) <= MAX_LENGTH
    assert select(db, compile_where(text, FIELDS)) == ALL


@pytest.mark.parametrize("text, message", [
    ("foo = 1", "unknown field 'foo' at position 1 (fields: OBJECTID, Name, cloud_cover, sensor, "
                "acquired, priority)"),
    ("Name = 'a'; DROP TABLE items", "unexpected ';' at position 11"),
    ("SUBSTR(Name, 1, 1) = 'A'", "function 'SUBSTR' at position 1 is not allowed (allowed: UPPER, LOWER)"),
    ("Name = 'a' -- hi", "comments are not allowed"),
    ("Name = 'a' /* hi */", "comments are not allowed"),
    ("OBJECTID IN (SELECT OBJECTID FROM items)", "sub-queries are not allowed"),
    ("acquired > 'yesterday'", "is not a date for field 'acquired'"),
    ("Shape IS NULL", "field 'Shape'"),
    ("Name = 'abc", "unterminated string starting at position 8"),
    ("Name = 'a' OR", "unexpected end of where clause"),
    ("priority + 1 = 2", "arithmetic"),
    ("Name = NULL", "IS [NOT] NULL"),
    ("x" * (MAX_LENGTH + 1), "too long"),
    ("(" * (MAX_DEPTH + 1) + "1=1" + ")" * (MAX_DEPTH + 1), "nesting is too deep"),
    ("priority IN (" + ",".join(["1"] * (MAX_IN_ITEMS + 1)) + ")", "IN list is too long"),
    ("acquired = DATE '2024-13-01'", "invalid DATE literal"),
])
def test_error_messages(text, message):
    with pytest.raises(InvalidParameter) as info:
        compile_where(text, FIELDS, param="mosaicRule")
    assert message in info.value.why
    assert info.value.name == "mosaicRule"


HOSTILE = [
    "1=1; DROP TABLE items",
    "Name = 'a'; DELETE FROM items",
    "1=1 UNION SELECT name FROM sqlite_master",
    "Name = 'a' -- comment",
    "Name = 'a' /* comment */",
    "OBJECTID IN (SELECT OBJECTID FROM items)",
    "EXISTS (SELECT 1)",
    "(SELECT 1) = 1",
    "sqlite_version() = '3'",
    "load_extension('x') = 1",
    "CAST(priority AS TEXT) = '1'",
    "Name = char(65)",
    "foo = 1",
    "Name = \"Alpha\"",
    '"Name"" OR 1=1 --',
    '"Name"" = 1',
    "Name = 'abc",
    "Name = 'it''s",
    "`Name` = 'a'",
    "[Name] = 'a'",
    "Name = 'a' OR",
    "Name = 'a' garbage",
    "Name = 'a') OR (1=1",
    "Name = x'41'",
    "Name = X'41'",
    "Name = ?",
    "Name = ?1",
    "Name = :name",
    "Name = @name",
    "Name = $name",
    "* = 1",
    "priority * 2 = 4",
    "Name || 'x' = 'ax'",
    "priority = 0x10",
    "priority = 99999999999999999999",
    "priority = 1e999",
    "Shape IS NULL",
    "Name LIKE Name",
    "Name IN ()",
    "Name IN (Name)",
    "Name = 'a' ESCAPE",
    "Name",
    "NOT",
    "Name = 'a'\x00",
    "Name = 'a\x00'",
    "Name = 'a' OR " * 400 + "1=1",
    "(" * 60 + "1=1" + ")" * 60,
    "NOT " * 60 + "1=1",
    "UPPER(" * 60 + "Name" + ")" * 60 + " = 'A'",
    "Name = 'a' \\",
    "Name = 'a' #",
]


@pytest.mark.parametrize("text", HOSTILE, ids=[repr(t[:40]) for t in HOSTILE])
def test_hostile_input_is_refused(db, text):
    before = db.execute("SELECT * FROM items ORDER BY 1").fetchall()
    schema = db.execute("SELECT sql FROM sqlite_master").fetchall()
    with pytest.raises(InvalidParameter):
        compile_where(text, FIELDS)
    assert db.execute("SELECT * FROM items ORDER BY 1").fetchall() == before
    assert db.execute("SELECT sql FROM sqlite_master").fetchall() == schema
