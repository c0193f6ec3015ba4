"""The catalog's field vocabulary, shared by the catalog store and the where-clause compiler.

Kept apart from catalog.py so the where compiler can quote columns and read dates without
importing the catalog that uses it (the two imported each other).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True, slots=True)
class Field:
    """A catalog field as the ArcGIS root JSON lists it."""

    name: str
    type: str            # esriFieldType + OID | String | Integer | Double | Date | Geometry
    alias: str
    length: int | None = None


OID, GEOMETRY = "esriFieldTypeOID", "esriFieldTypeGeometry"
STRING, INTEGER, DOUBLE, DATE = ("esriFieldTypeString", "esriFieldTypeInteger",
                                 "esriFieldTypeDouble", "esriFieldTypeDate")

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def quote(name: str) -> str:
    """A column identifier for SQL; only names that passed IDENTIFIER ever get here."""
    if not IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a field name: {name!r}")
    return f'"{name}"'


def iso_to_epoch_ms(text: str) -> int | None:
    """ISO 8601 date or date-time -> epoch ms; naive times are UTC (the catalog's one convention)."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - EPOCH) // timedelta(milliseconds=1)
