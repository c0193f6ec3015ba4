"""Mosaic methods (which items, in which order) and operators (how overlapping pixels merge).

A method is an ordering the catalog sorts by in SQL (`catalog.Order`), so a request reads the
first items of a 100,000-item catalog without loading the others; operators are small classes fed
one item at a time. Adding a method or an operator is one entry each.
"""

from __future__ import annotations

import typing
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from .catalog import Order
from .errors import InvalidParameter
from .requests import MosaicRule, round_into

Point = tuple[float, float]
Bools = npt.NDArray[np.bool_]
Doubles = npt.NDArray[np.float64]


def _sort_base(value: Any) -> float | None:
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
        raise InvalidParameter("mosaic", f"sortValue {text!r} is neither a number nor a date")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp() * 1000.0


def order_of(rule: MosaicRule, *, view_center: Point, northwest: Point, nadir_field: str | None = None,
             view_box: tuple[float, float, float, float] | None = None) -> Order:
    """The catalog order (first = on top) of a rule's method.

    None: ZOrder then OBJECTID, or the rule's sortField. Attribute: |sortField - sortValue| (dates
    as epoch ms). LockRaster: the order of lockRasterIds. Nadir: the smallest off-nadir angle in
    the service's `nadir_field`, else (like Center) the footprint centre nearest the view centre.
    Viewpoint: the centre nearest the rule's viewpoint. Northwest: nearest the north-west corner of
    the service's extent. Seamline: items whose seamline meets `view_box`, then Northwest.
    """
    method = rule.method
    if method == "esriMosaicLockRaster":
        return Order(ids=rule.lock_raster_ids)
    if method == "esriMosaicAttribute":
        if not rule.sort_field:
            raise InvalidParameter("mosaic", "esriMosaicAttribute needs a sortField")
        return Order(field=rule.sort_field, base=_sort_base(rule.sort_value), ascending=rule.ascending)
    if method == "esriMosaicNone":
        return Order(field=rule.sort_field or "ZOrder", ascending=rule.ascending)
    if method == "esriMosaicNadir" and nadir_field:
        return Order(field=nadir_field, base=0.0, point=view_center)
    if method == "esriMosaicSeamline":
        return Order(seams=view_box, point=northwest)
    anchor = {"esriMosaicNorthwest": northwest, "esriMosaicCenter": view_center,
              "esriMosaicNadir": view_center, "esriMosaicViewpoint": rule.viewpoint or view_center}[method]
    return Order(point=anchor)


def has_data(data: np.ma.MaskedArray) -> Bools:
    """(rows, cols): where an item holds data in at least one band. An item offers a pixel there,
    with its own per-band masks: a band's nodata never masks another band's valid value."""
    # (numpy's stubs also allow the scalar a reduction of a 0-d array gives; data here is 3-d)
    return typing.cast("Bools", ~np.ma.getmaskarray(data).all(axis=0))


class Operator:
    """Merges item pixels into an output of `shape` (bands, rows, cols); `done` allows early exit.

    `feed` gets an item's masked pixels for grid cells [rows, cols] and `full`, where the item's
    resampling kernel saw only valid pixels (cells on an item's edge are valid but not full).
    Only valid pixels (every band valid) take part, and where an item has full support, an edge
    value of another item does not: two tiles that merely touch never add up along their seam.
    Weighted operators (`weighted`) also get a weight per cell (see engine/seams.py).
    """

    done = False
    weighted = False

    def __init__(self, shape: tuple[int, int, int], dtype: npt.DTypeLike):
        self.shape, self.dtype = shape, np.dtype(dtype)

    def feed(self, data: np.ma.MaskedArray, full: Bools, rows: slice, cols: slice,
             weight: Doubles | None = None) -> None:
        raise NotImplementedError

    def result(self) -> np.ma.MaskedArray:
        raise NotImplementedError


class First(Operator):
    """Each pixel from the first item (in mosaic order) that has data there. A value from an item's
    edge is kept only until an item with full support for that cell comes along."""

    def __init__(self, shape: tuple[int, int, int], dtype: npt.DTypeLike):
        super().__init__(shape, dtype)
        self.data = np.zeros(shape, self.dtype)
        self.band_mask = np.ones(shape, bool)        # the taken item's own per-band masks
        self.filled = np.zeros(shape[1:], bool)      # holds a fully supported value
        self.partial = np.zeros(shape[1:], bool)     # holds an edge value, may still be replaced

    def _take(self, data: np.ma.MaskedArray, take: Bools, rows: slice, cols: slice) -> None:
        """The item's values and per-band masks at `take` (a pixel comes whole from one item)."""
        np.copyto(self.data[:, rows, cols], data.data, where=take)
        np.copyto(self.band_mask[:, rows, cols], np.ma.getmaskarray(data), where=take)

    def feed(self, data: np.ma.MaskedArray, full: Bools, rows: slice, cols: slice,
             weight: Doubles | None = None) -> None:
        valid = has_data(data)
        filled, partial = self.filled[rows, cols], self.partial[rows, cols]
        take = valid & ~filled & (full | ~partial)
        if take.any():
            self._take(data, take, rows, cols)
            filled |= take & full
            partial |= take & ~full
            self.done = bool(self.filled.all())

    def result(self) -> np.ma.MaskedArray:
        empty = ~(self.filled | self.partial)
        return np.ma.MaskedArray(self.data, mask=self.band_mask | empty)


class Last(First):
    """Each pixel from the last item that has data there: later items overwrite (edge values only
    where no fully supported one exists)."""

    def feed(self, data: np.ma.MaskedArray, full: Bools, rows: slice, cols: slice,
             weight: Doubles | None = None) -> None:
        valid = has_data(data)
        filled, partial = self.filled[rows, cols], self.partial[rows, cols]
        take = valid & (full | ~filled)
        self._take(data, take, rows, cols)
        filled |= take & full
        partial |= take & ~full


class _Reduce(Operator):
    """Pixel-wise reduction over every item with data (running totals, never a list of inputs).
    Edge values count only where no item has full support; the first full one replaces them."""

    def __init__(self, shape: tuple[int, int, int], dtype: npt.DTypeLike):
        super().__init__(shape, dtype)
        self.acc = np.zeros(shape, np.float64)
        self.count = np.zeros(shape, np.int32)           # per band: per-band nodata counts no value
        self.has_full = np.zeros(shape[1:], bool)

    def combine(self, acc: Doubles, new: Doubles, first: Bools) -> Doubles:
        raise NotImplementedError

    def feed(self, data: np.ma.MaskedArray, full: Bools, rows: slice, cols: slice,
             weight: Doubles | None = None) -> None:
        band_valid = ~np.ma.getmaskarray(data)
        valid = band_valid.any(axis=0)
        has_full, count = self.has_full[rows, cols], self.count[:, rows, cols]
        reset = valid & full & ~has_full                 # the first full value drops edge values
        take = band_valid & (full | ~has_full)
        first = take & ((count == 0) | reset)
        acc = self.acc[:, rows, cols]
        merged = self.combine(acc, data.data.astype(np.float64), first)
        acc[take] = merged[take]
        count[:, reset] = 0
        count += take
        has_full |= valid & full

    def final(self) -> Doubles:
        return self.acc

    def result(self) -> np.ma.MaskedArray:
        return np.ma.MaskedArray(round_into(self.final(), self.dtype), mask=self.count == 0)


class Min(_Reduce):
    def combine(self, acc: Doubles, new: Doubles, first: Bools) -> Doubles:
        return np.where(first, new, np.minimum(acc, new))


class Max(_Reduce):
    def combine(self, acc: Doubles, new: Doubles, first: Bools) -> Doubles:
        return np.where(first, new, np.maximum(acc, new))


class Sum(_Reduce):
    def combine(self, acc: Doubles, new: Doubles, first: Bools) -> Doubles:
        return np.where(first, new, acc + new)


class Mean(Sum):
    def final(self) -> Doubles:
        return self.acc / np.maximum(self.count, 1)


class _WeightedSum:
    """Running sums of weight x value and of weight per cell (the weighted operators' state)."""

    def __init__(self, shape: tuple[int, int, int]):
        self.values = np.zeros(shape, np.float64)
        self.weights = np.zeros(shape, np.float64)       # per band: a band's nodata weighs nothing

    def add(self, data: np.ma.MaskedArray, weight: Doubles, rows: slice, cols: slice) -> None:
        weight = weight * ~np.ma.getmaskarray(data)
        self.values[:, rows, cols] += data.data.astype(np.float64) * weight
        self.weights[:, rows, cols] += weight

    def mean(self, elsewhere: npt.NDArray[np.generic]) -> Doubles:
        """The weighted mean where some weight is positive, `elsewhere` where none is."""
        weighed = self.weights > 0
        return np.where(weighed, self.values / np.where(weighed, self.weights, 1), elsewhere)


class Blend(Mean):
    """MT_BLEND: the weighted mean of the valid values, each item weighing by the pixel's distance
    to its own edge (engine/seams.edge_weights), so overlaps fade from one item into the next.
    Where every weight is 0 (a pixel on an edge) the plain mean stands in."""

    weighted = True

    def __init__(self, shape: tuple[int, int, int], dtype: npt.DTypeLike):
        super().__init__(shape, dtype)
        self.sums = _WeightedSum(shape)

    def feed(self, data: np.ma.MaskedArray, full: Bools, rows: slice, cols: slice,
             weight: Doubles | None = None) -> None:
        if weight is None:          # export always weighs a Blend's items; say so before any state changes
            raise TypeError("Blend is a weighted operator: feed it a weight per cell")
        valid = has_data(data)
        has_full = self.has_full[rows, cols]
        reset = valid & full & ~has_full                 # as in _Reduce: edge values give way
        self.sums.values[:, rows, cols][:, reset] = 0
        self.sums.weights[:, rows, cols][:, reset] = 0
        self.sums.add(data, np.where(valid & (full | ~has_full), weight, 0.0), rows, cols)
        super().feed(data, full, rows, cols)

    def final(self) -> Doubles:
        return self.sums.mean(super().final())


class SeamlineCut(First):
    """esriMosaicSeamline with MT_FIRST: each item inside its seamline, feathered across the seam
    (weights from engine/seams.seam_weights). Items come seamline-first (mosaic order); one fed
    without a weight is a stand-in for pixels whose seamline owner has no data (an item left out
    by a where clause, a time filter, nodata), which take the first such item's value."""

    weighted = True

    def __init__(self, shape: tuple[int, int, int], dtype: npt.DTypeLike):
        super().__init__(shape, dtype)
        self.sums = _WeightedSum(shape)

    def feed(self, data: np.ma.MaskedArray, full: Bools, rows: slice, cols: slice,
             weight: Doubles | None = None) -> None:
        if weight is not None:
            self.sums.add(data, np.where(has_data(data), weight, 0.0), rows, cols)
        elif (self.sums.weights > 0).all():
            self.done = True
            return
        super().feed(data, full, rows, cols)
        self.done = self.done and weight is None

    def result(self) -> np.ma.MaskedArray:
        fallback = super().result()
        data = round_into(self.sums.mean(fallback.data), self.dtype)
        return np.ma.MaskedArray(data, mask=(self.sums.weights == 0) & fallback.mask)


OPERATORS: dict[str, type[Operator]] = {"MT_FIRST": First, "MT_LAST": Last, "MT_MIN": Min,
                                        "MT_MAX": Max, "MT_SUM": Sum, "MT_MEAN": Mean, "MT_BLEND": Blend}


def operator(rule: MosaicRule, shape: tuple[int, int, int], dtype: npt.DTypeLike) -> Operator:
    """The operator of a rule: MT_FIRST under esriMosaicSeamline cuts along the seamlines; MT_LAST
    is not valid there (ArcGIS's rule: the seamline order is fixed)."""
    if rule.method == "esriMosaicSeamline":
        if rule.operation == "MT_LAST":
            raise InvalidParameter("mosaic", "MT_LAST is not valid with esriMosaicSeamline")
        if rule.operation == "MT_FIRST":
            return SeamlineCut(shape, dtype)
    return OPERATORS[rule.operation](shape, dtype)
