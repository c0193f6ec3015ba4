"""Mosaic methods (which items, in which order) and operators (how overlapping pixels merge).

Methods are small ordering functions keyed by canonical esriMosaic* name; operators are small
classes fed one item at a time, so adding a method or an operator is one entry each.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Callable, Sequence

import numpy as np

from .catalog import Item
from .errors import InvalidParameter
from .requests import MosaicRule, round_into

Point = tuple[float, float]


def _distance(item: Item, p: Point) -> float:
    return math.hypot(item.center[0] - p[0], item.center[1] - p[1])


def _field_value(item: Item, field: str):
    low = field.lower()
    for key, value in item.attributes.items():
        if key.lower() == low:
            return value
    return None


def _sort_base(value) -> float | None:
    """A sortValue as a number: numbers as they are, dates ('2024/06/01', ISO) as epoch ms."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("/", "-"))
    except ValueError:
        raise InvalidParameter("mosaicRule", f"sortValue {text!r} is neither a number nor a date")
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp() * 1000.0


def _by_attribute(items: Sequence[Item], rule: MosaicRule) -> list[Item]:
    if not rule.sort_field:
        raise InvalidParameter("mosaicRule", "esriMosaicAttribute needs a sortField")
    base = _sort_base(rule.sort_value)
    keyed, missing = [], []
    for item in items:
        value = _field_value(item, rule.sort_field)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            keyed.append((abs(value - base) if base is not None else float(value), item.oid, item))
        elif value is not None and base is None:
            keyed.append((str(value), item.oid, item))
        else:
            missing.append(item)
    try:
        keyed.sort(key=lambda t: (t[0], t[1]), reverse=not rule.ascending)
    except TypeError:          # a field holding numbers and strings: order as text
        keyed.sort(key=lambda t: (str(t[0]), t[1]), reverse=not rule.ascending)
    return [t[2] for t in keyed] + missing


def _by_zorder(items: Sequence[Item], rule: MosaicRule) -> list[Item]:
    ordered = sorted(items, key=lambda i: (i.zorder is None, i.zorder or 0, i.oid))
    return ordered if rule.ascending else ordered[::-1]


def order(items: Sequence[Item], rule: MosaicRule, *, view_center: Point,
          northwest: Point) -> list[Item]:
    """Items in mosaic order (first = on top) for `rule`; `fids` and lock ids restrict the set."""
    if rule.fids is not None:
        wanted = set(rule.fids)
        items = [i for i in items if i.oid in wanted]
    method = rule.method
    if method == "esriMosaicLockRaster":
        rank = {oid: n for n, oid in enumerate(rule.lock_raster_ids)}
        return sorted((i for i in items if i.oid in rank), key=lambda i: rank[i.oid])
    if method == "esriMosaicAttribute":
        return _by_attribute(items, rule)
    if method == "esriMosaicNone":
        return _by_zorder(items, rule)
    anchors: dict[str, Callable[[], Point]] = {
        "esriMosaicNorthwest": lambda: northwest,
        "esriMosaicSeamline": lambda: northwest,      # no stored seamlines: Northwest, as ArcGIS falls back
        "esriMosaicCenter": lambda: view_center,
        "esriMosaicNadir": lambda: view_center,       # no sensor geometry: closest centre is nadir-most
        "esriMosaicViewpoint": lambda: rule.viewpoint or view_center,
    }
    anchor = anchors[method]()
    return sorted(items, key=lambda i: (_distance(i, anchor), i.oid))


class Operator:
    """Merges item pixels into an output of `shape` (bands, rows, cols); `done` allows early exit.

    `feed` gets an item's masked pixels for grid cells [rows, cols] and `full`, where the item's
    resampling kernel saw only valid pixels (cells on an item's edge are valid but not full).
    """

    done = False

    def __init__(self, shape: tuple[int, int, int], dtype: np.dtype):
        self.shape, self.dtype = shape, np.dtype(dtype)

    def feed(self, data: np.ma.MaskedArray, full: np.ndarray, rows: slice, cols: slice) -> None:
        raise NotImplementedError

    def result(self) -> np.ma.MaskedArray:
        raise NotImplementedError


class First(Operator):
    """Each pixel from the first item (in mosaic order) that has data there. A value from an item's
    edge is kept only until an item with full support for that cell comes along."""

    def __init__(self, shape, dtype):
        super().__init__(shape, dtype)
        self.data = np.zeros(shape, self.dtype)
        self.filled = np.zeros(shape[1:], bool)      # holds a fully supported value
        self.partial = np.zeros(shape[1:], bool)     # holds an edge value, may still be replaced

    def feed(self, data, full, rows, cols):
        valid = ~np.ma.getmaskarray(data).any(axis=0)
        filled, partial = self.filled[rows, cols], self.partial[rows, cols]
        take = valid & ~filled & (full | ~partial)
        if take.any():
            region = self.data[:, rows, cols]
            region[:, take] = data.data[:, take]
            filled |= take & full
            partial |= take & ~full
            self.done = bool(self.filled.all())

    def result(self):
        empty = ~(self.filled | self.partial)
        return np.ma.MaskedArray(self.data, mask=np.broadcast_to(empty, self.shape).copy())


class Last(First):
    """Each pixel from the last item that has data there: later items overwrite (edge values only
    where no fully supported one exists)."""

    def feed(self, data, full, rows, cols):
        valid = ~np.ma.getmaskarray(data).any(axis=0)
        filled, partial = self.filled[rows, cols], self.partial[rows, cols]
        take = valid & (full | ~filled)
        region = self.data[:, rows, cols]
        region[:, take] = data.data[:, take]
        filled |= take & full
        partial |= take & ~full


class _Reduce(Operator):
    """Pixel-wise reduction over every item with data (running totals, never a list of inputs)."""

    def __init__(self, shape, dtype):
        super().__init__(shape, dtype)
        self.acc = np.zeros(shape, np.float64)
        self.count = np.zeros(shape[1:], np.int32)

    def combine(self, acc: np.ndarray, new: np.ndarray, first: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def feed(self, data, full, rows, cols):
        valid = ~np.ma.getmaskarray(data).any(axis=0)
        acc = self.acc[:, rows, cols]
        first = valid & (self.count[rows, cols] == 0)
        merged = self.combine(acc, data.data.astype(np.float64), first)
        acc[:, valid] = merged[:, valid]
        self.count[rows, cols] += valid

    def final(self) -> np.ndarray:
        return self.acc

    def result(self):
        return np.ma.MaskedArray(round_into(self.final(), self.dtype),
                                 mask=np.broadcast_to(self.count == 0, self.shape).copy())


class Min(_Reduce):
    def combine(self, acc, new, first):
        return np.where(first, new, np.minimum(acc, new))


class Max(_Reduce):
    def combine(self, acc, new, first):
        return np.where(first, new, np.maximum(acc, new))


class Sum(_Reduce):
    def combine(self, acc, new, first):
        return acc + new


class Mean(Sum):
    def final(self):
        return self.acc / np.maximum(self.count, 1)


OPERATORS: dict[str, type[Operator]] = {"MT_FIRST": First, "MT_LAST": Last, "MT_MIN": Min,
                                        "MT_MAX": Max, "MT_SUM": Sum, "MT_MEAN": Mean}
