"""Item attributes: the fields that come from the attribute CSV and the files' metadata, their
types (inferred from the cells), values set by hand, and the derivation of the `items`, `fields`
and item-time tables from `rasters` - pure derivation, rebuilt whenever an input changes, so
attribute columns can appear, vanish or change type without migrations."""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import shapely

from .. import sources
from ..errors import InvalidParameter
from ..fields import DATE, DOUBLE, GEOMETRY, IDENTIFIER, INTEGER, STRING, Field, iso_to_epoch_ms
from ..fields import EPOCH as _EPOCH
from ..fields import quote as _quote
from ..rasterinfo import ring_polygons
from .base import CatalogBase
from .records import BUILTIN_FIELDS, HEAD_FIELDS, TAIL_FIELDS

log = logging.getLogger("ogc_gateway.catalog")

_INT_TEXT = re.compile(r"[+-]?\d+")
_NUM_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
# What deriving an item row needs of its `rasters` row.
_DERIVE_SQL = "SELECT oid, path, overviews, tags, footprint, cell_size FROM rasters"


def _overlay(raw: dict[str, str | None], edits: dict[str, str | None] | None) -> None:
    """Values set by hand (`Catalog.set_attributes`, lower-cased names) over an item's raw cells."""
    if edits:
        for name in raw:
            if name.lower() in edits:
                raw[name] = edits[name.lower()]


def items_ddl(attributes: list[Field], types: dict[str, str], if_not_exists: bool = False) -> str:
    """The `items` table: one column per field (Shape excepted), named exactly like the field."""
    columns = [f for f in HEAD_FIELDS + tuple(attributes) + TAIL_FIELDS if f.type != GEOMETRY]
    body = ", ".join(f"{_quote(f.name)} {types[f.type]}" for f in columns)
    return f"CREATE TABLE {'IF NOT EXISTS ' if if_not_exists else ''}items ({body})"


# --- value parsing --------------------------------------------------------------------------------

def _is_int(text: str) -> bool:
    return bool(_INT_TEXT.fullmatch(text)) and -2**63 <= int(text) < 2**63


def infer_type(values: list[str]) -> str:
    """Esri type of a column from its non-empty cells: the narrowest type that fits them all."""
    if not values:
        return STRING
    if all(_is_int(v) for v in values):
        return INTEGER
    if all(_NUM_TEXT.fullmatch(v) for v in values):
        return DOUBLE
    if all(iso_to_epoch_ms(v) is not None for v in values):
        return DATE
    return STRING


def convert(text: str | None, ftype: str) -> Any:
    """A cell as stored in its column (dates as epoch ms)."""
    if text is None:
        return None
    if ftype == INTEGER:
        return int(text)
    if ftype == DOUBLE:
        return float(text)
    if ftype == DATE:
        return iso_to_epoch_ms(text)
    return text


def check_attributes(fields: Iterable[Field], values: Any, param: str = "attributes") -> dict[str, str | None]:
    """JSON attribute values for `Catalog.set_attributes`: each name an attribute field (matched
    case-insensitively, given in its own spelling) and each value of its type — integers for
    integer fields, numbers for doubles, epoch ms or ISO 8601 text for dates, text for strings,
    or null — returned as the text a CSV cell would hold."""
    if not isinstance(values, dict):
        raise InvalidParameter(param, "must be a JSON object of field names and values")
    by_name = {f.name.lower(): f for f in fields}
    cells: dict[str, str | None] = {}
    for name, value in values.items():
        f = by_name.get(str(name).lower())
        if f is None:
            known = ", ".join(by_name[k].name for k in by_name) or "(none)"
            if str(name).lower() in BUILTIN_FIELDS:
                raise InvalidParameter(param, f"{name!r} is a built-in field and cannot be set")
            raise InvalidParameter(param, f"no attribute field {name!r}; attribute fields: {known}")
        cells[f.name] = _cell(f, value, param)
    return cells


def _cell(f: Field, value: Any, param: str) -> str | None:
    if value is None:
        return None
    wrong = InvalidParameter(param, f"{f.name}: {value!r} is not a valid {f.type[len('esriFieldType'):].lower()}")
    if isinstance(value, bool):
        raise wrong
    if f.type == INTEGER:
        if isinstance(value, int) and -2**63 <= value < 2**63:
            return str(value)
        raise wrong
    if f.type == DOUBLE:
        if isinstance(value, (int, float)) and math.isfinite(value):
            return repr(float(value))
        raise wrong
    if f.type == DATE:
        if isinstance(value, (int, float)) and math.isfinite(value) and abs(value) < 1e15:
            return (_EPOCH + timedelta(milliseconds=int(value))).isoformat()
        if isinstance(value, str) and iso_to_epoch_ms(value) is not None:
            return value.strip()
        raise wrong
    if isinstance(value, str):
        return value
    raise wrong


def time_value(value: Any, ftype: str) -> int | None:
    """An attribute value as an instant: dates and numbers are epoch ms; strings are parsed as ISO."""
    if value is None:
        return None
    if ftype in (DATE, INTEGER, DOUBLE):
        return int(value)
    if ftype == STRING:
        return iso_to_epoch_ms(value)
    return None



class Attributes(CatalogBase):
    """The attribute part of `Catalog` (a mixin: `self.store`, `self.service` come from it)."""

    # attributes

    def _derive(self, con: Any, oids: set[int] | None = None) -> list[str]:
        """Rebuild `items`, `fields` and item times from `rasters`, the CSV and the config. With
        `oids` (new or re-read items) only their rows are written when their attributes fit the
        present fields; a new attribute, or a value of another type, rebuilds everything."""
        if oids is not None:
            written = self._derive_rows(con, oids)
            if written is not None:
                return written
        rows = con.execute(_DERIVE_SQL + " ORDER BY oid").fetchall()
        csv_columns, csv_rows, problems = self._read_csv({r[1] for r in rows})
        tag_columns = self._tag_columns([json.loads(r[3]) for r in rows], csv_columns)
        edits = self._edits(con)
        raw: dict[int, dict[str, str | None]] = {}
        for row in rows:
            oid, path, tags = row[0], row[1], json.loads(row[3])
            tags = {k.lower(): v.strip() or None for k, v in tags.items()}
            raw[oid] = {**{c: csv_rows.get(path, {}).get(c) for c in csv_columns},
                        **{c: tags.get(c.lower()) for c in tag_columns}}
            _overlay(raw[oid], edits.get(path))
        attributes = [self._field_of(c, [raw[o][c] for o in raw]) for c in csv_columns + tag_columns]
        types = {f.name: f.type for f in attributes}
        values = {oid: {c: convert(v, types[c]) for c, v in r.items()} for oid, r in raw.items()}
        self._write_items(con, rows, attributes, values)
        return problems + (self._write_times(con, attributes, values) or [])    # None only for rows_only

    def _derive_rows(self, con: Any, oids: set[int]) -> list[str] | None:
        """Write the item rows of `oids` alone; None when they do not fit the present fields.
        (Removals leave the fields as they are, so a rebuild may later narrow a type.)"""
        if not oids:
            return []
        ids = json.dumps(sorted(oids))
        rows = con.execute(_DERIVE_SQL + f" WHERE oid IN ({self.store.ids}) ORDER BY oid",
                           (ids,)).fetchall()
        attributes = list(self.attribute_fields())
        edits = self._edits(con)
        csv_columns, csv_rows, problems = self._read_csv({r[1] for r in rows}, every_item=False)
        from_csv = {c.lower() for c in csv_columns}
        known = {f.name.lower() for f in attributes} | from_csv
        raw: dict[int, dict[str, str | None]] = {}
        for row in rows:
            oid, path, tags = row[0], row[1], json.loads(row[3])
            if problems or any(IDENTIFIER.fullmatch(k) and k.lower() not in BUILTIN_FIELDS and k.lower() not in known
                               for k in tags):
                return None
            tags = {k.lower(): v.strip() or None for k, v in tags.items()}
            cells = csv_rows.get(path, {})
            raw[oid] = {f.name: cells.get(f.name) if f.name.lower() in from_csv else tags.get(f.name.lower())
                        for f in attributes}
            _overlay(raw[oid], edits.get(path))
        for i, f in enumerate(attributes):
            new = [v for r in raw.values() if (v := r[f.name]) is not None]
            if new and not self._fits(con, f, new):
                return None
            if new and f.type == STRING:
                attributes[i] = Field(f.name, f.type, f.alias, max([f.length or 1] + [len(v) for v in new]))
                con.execute("UPDATE fields SET length = ? WHERE name = ?", (attributes[i].length, f.name))
        values = {oid: {f.name: convert(r[f.name], f.type) for f in attributes} for oid, r in raw.items()}
        con.execute(f'DELETE FROM items WHERE "OBJECTID" IN ({self.store.ids})', (ids,))
        self._insert_items(con, rows, attributes, values)
        return self._write_times(con, attributes, values, rows_only=True)

    @staticmethod
    def _fits(con: Any, f: Field, new: list[str]) -> bool:
        """Whether new cells leave the type a full inference would give a field unchanged."""
        if f.type == STRING:          # a text field stays text, unless it held nothing so far
            return (infer_type(new) == STRING
                    or con.execute(f"SELECT 1 FROM items WHERE {_quote(f.name)} IS NOT NULL LIMIT 1").fetchone())
        fits: Callable[[str], bool] = {INTEGER: _is_int, DOUBLE: lambda v: _NUM_TEXT.fullmatch(v) is not None,
                DATE: lambda v: iso_to_epoch_ms(v) is not None}[f.type]
        return all(fits(v) for v in new)

    def _read_csv(self, known: set[str], every_item: bool = True
                  ) -> tuple[list[str], dict[str, dict[str, str | None]], list[str]]:
        """The attribute CSV: (valid columns, cells by absolute file path, problems). Rows for files
        not `known` are skipped, with a warning when `known` is every item (not when only some
        items are being derived)."""
        csv_path = self.service.catalog
        if not csv_path:
            return [], {}, []
        where = f"{self._where}.catalog: {csv_path}"
        try:
            with open(csv_path, newline="", encoding="utf-8-sig") as f:
                table = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            return [], {}, [f"{where}: cannot be read ({exc})"]
        header = [h.strip() for h in table[0]] if table else []
        lowered = [h.lower() for h in header]
        if "path" not in lowered:
            return [], {}, [f"{where}: no 'path' column (the raster file of each row)"]
        path_at = lowered.index("path")
        columns: list[str] = []
        problems: list[str] = []
        for i, name in enumerate(header):
            if i == path_at:
                continue
            problem = self._column_problem(name, columns)
            if problem:
                problems.append(f"{where}: column {name!r} {problem}")
            else:
                columns.append(name)
        index = {name: header.index(name) for name in columns}
        base = os.path.dirname(os.path.abspath(csv_path))
        cells: dict[str, dict[str, str | None]] = {}
        for row in table[1:]:
            row = row + [""] * (len(header) - len(row))
            cell = row[path_at].strip()
            target = cell if sources.is_remote(cell) else os.path.normpath(os.path.join(base, cell))
            if not row[path_at].strip() or target not in known:
                if every_item:
                    log.warning("%s: row for %r matches no source file; skipped", where, row[path_at])
                continue
            cells[target] = {c: row[index[c]].strip() or None for c in columns}
        return columns, cells, problems

    @staticmethod
    def _column_problem(name: str, taken: list[str]) -> str | None:
        if not IDENTIFIER.fullmatch(name):
            return "is not a valid field name (a letter or _ first, then letters, digits, _)"
        if name.lower() in BUILTIN_FIELDS:
            return f"clashes with the built-in field {BUILTIN_FIELDS[name.lower()]!r}"
        if name.lower() in (t.lower() for t in taken):
            return "appears twice (field names are case-insensitive)"
        return None

    def _tag_columns(self, tag_sets: list[dict[str, str]], csv_columns: list[str]) -> list[str]:
        """GDAL metadata names that become attributes, in order of first appearance; a CSV column of
        the same name wins."""
        seen = {c.lower() for c in csv_columns}
        columns = []
        for tags in tag_sets:
            for name in tags:
                if name.lower() in seen:
                    continue
                seen.add(name.lower())
                if not IDENTIFIER.fullmatch(name) or name.lower() in BUILTIN_FIELDS:
                    # NetCDF's variable attributes ("temp#units" ...) are never fields: no warning
                    (log.debug if "#" in name else log.warning)(
                        "%s: metadata item %r is not usable as a field name; skipped", self._where, name)
                    continue
                columns.append(name)
        return columns

    @staticmethod
    def _field_of(name: str, cells: list[str | None]) -> Field:
        present = [c for c in cells if c is not None]
        ftype = infer_type(present)
        length = max([len(c) for c in present], default=1) if ftype == STRING else None
        return Field(name, ftype, name, length)

    def _write_items(self, con: Any, rows: list[tuple[Any, ...]], attributes: list[Field],
                     values: dict[int, dict[str, Any]]) -> None:
        self.store.reset_items(con, items_ddl(attributes, self.store.types))
        con.execute("DELETE FROM fields")
        con.executemany("INSERT INTO fields (position, name, type, alias, length) VALUES (?, ?, ?, ?, ?)",
                        [(i, f.name, f.type, f.alias, f.length) for i, f in enumerate(attributes)])
        self._insert_items(con, rows, attributes, values)
        # Selection filters and sorts on these (mosaic rules, where clauses, orderByFields): an index
        # each keeps a 100,000-item catalog from being scanned.
        for name in ("Name", "ZOrder", "LowPS", *(f.name for f in attributes)):
            con.execute(f"CREATE INDEX {_quote('items_' + name)} ON items ({_quote(name)})")

    @staticmethod
    def _insert_items(con: Any, rows: list[tuple[Any, ...]], attributes: list[Field],
                      values: dict[int, dict[str, Any]]) -> None:
        names = ["OBJECTID", "Name", "MinPS", "MaxPS", "LowPS", "HighPS", "Category", "ZOrder", "CenterX",
                 "CenterY", *(f.name for f in attributes), "Shape_Length", "Shape_Area"]
        sql = (f"INSERT INTO items ({', '.join(map(_quote, names))}) "
               f"VALUES ({', '.join('?' * len(names))})")
        rows = [r for r in rows if r[4] is not None]      # no footprint: unusable, already reported
        shapes = ring_polygons([json.loads(r[4]) for r in rows])
        centres = shapely.centroid(shapes)
        geometry = zip(shapely.get_x(centres).tolist(), shapely.get_y(centres).tolist(),
                       shapely.length(shapes).tolist(), shapely.area(shapes).tolist(), strict=True)
        batch = []
        for (oid, path, overviews, _tags, _, low), (cx, cy, length, area) in zip(rows, geometry, strict=True):
            high = low * max(json.loads(overviews), default=1)
            batch.append([oid, Path(path).stem, 0.0, high * 2, low, high, 1, None, cx, cy,
                          *(values[oid][f.name] for f in attributes), length, area])
        con.executemany(sql, batch)

    def _write_times(self, con: Any, attributes: list[Field],
                     values: dict[int, dict[str, Any]], rows_only: bool = False) -> list[str] | None:
        """Item instants from time_field / end_time_field (matched case-insensitively), and their
        index. With `rows_only` (some rows of a derived table) None is returned when those rows
        change what the whole column says (plain dates become date-times)."""
        by_name = {f.name.lower(): f for f in attributes}
        problems, chosen = [], []
        for key in ("time_field", "end_time_field"):
            wanted = getattr(self.service, key)
            found = by_name.get(wanted.lower()) if wanted else None
            if wanted and found is None:
                problems.append(f"{self._where}.{key}: no attribute {wanted!r}; attributes: "
                                f"{', '.join(f.name for f in attributes) or '(none)'}")
            chosen.append(found)
        start_f, end_f = chosen
        ends = [time_value(vals[end_f.name], end_f.type) for vals in values.values()] if end_f else []
        # A column of plain dates ends each item at the end of its day: "date_end 2024-12-31"
        # covers the 31st, not just its first millisecond.
        whole_days = bool(ends) and all(e is None or e % 86_400_000 == 0 for e in ends)
        if rows_only:
            column = self._meta(con, "whole_days") == "1"
            if whole_days != column and any(e is not None for e in ends):
                return None
            whole_days = column
        else:
            self._set_meta(con, "whole_days", "1" if whole_days else "0")
            con.execute("DELETE FROM item_times")
        ids = json.dumps(list(values))
        con.execute(f"DELETE FROM item_times WHERE id IN ({self.store.ids})", (ids,))
        spans = []
        for oid, vals in values.items():
            start = time_value(vals[start_f.name], start_f.type) if start_f else None
            end = time_value(vals[end_f.name], end_f.type) if end_f else None
            if end is not None and whole_days:
                end += 86_400_000 - 1
            if start is None:
                end = None
            elif end is None:
                end = start
            spans.append((start, end, oid))
        con.executemany("UPDATE rasters SET time_start = ?, time_end = ? WHERE oid = ?", spans)
        con.executemany("INSERT INTO item_times (id, t0, t1) VALUES (?, ?, ?)",
                        [(oid, t0, t1) for t0, t1, oid in spans if t0 is not None])
        return problems
    def attribute_fields(self) -> tuple[Field, ...]:
        """The attribute fields (CSV columns, then metadata items), in column order."""
        rows = self.store.con().execute("SELECT name, type, alias, length FROM fields ORDER BY position")
        return tuple(Field(*row) for row in rows)
