"""ArcGIS REST parameters -> engine values. Pure functions over a case-insensitive mapping, so the
rules of §1.2 (any case, GET = POST, empty = unset, unknown ignored, stray '+') live in one place."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar

from rasterio.crs import CRS

from ..engine import (
    PIXEL_TYPES,
    DimensionSelection,
    InvalidParameter,
    MosaicRule,
    Resampling,
    TimeWindow,
    bounded_json,
    canonical_mosaic_method,
    canonical_mosaic_operation,
    canonical_resampling,
    check_coordinates,
    check_epoch_ms,
    ordered_corners,
    parse_rendering_rule,
    parse_sr,
    reproject_point,
)
from ..engine import json_number as _float

_V = TypeVar("_V")


class Params:
    """Request parameters by lower-cased name; blank values count as absent; first value wins."""

    def __init__(self, pairs: Iterable[tuple[str, str]]):
        self._values: dict[str, str] = {}
        for key, value in pairs:
            value = (value or "").strip()
            if value and key.lower() not in self._values:
                self._values[key.lower()] = value

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._values.get(name.lower(), default)

    def enum(self, name: str, choices: Mapping[str, _V], default: _V) -> _V:
        """A value matched case-insensitively against `choices` (lower-case key -> canonical)."""
        raw = self.get(name)
        if raw is None:
            return default
        key = raw.lstrip("+").strip().lower()
        if key not in choices:
            raise InvalidParameter(name, f"{raw!r} is not one of {', '.join(sorted(set(choices.values())))}")
        return choices[key]

    def bool(self, name: str, default: bool) -> bool:
        raw = self.get(name)
        if raw is None:
            return default
        key = raw.lstrip("+").strip().lower()
        if key in ("true", "1", "yes"):
            return True
        if key in ("false", "0", "no"):
            return False
        raise InvalidParameter(name, f"{raw!r} is not true or false")

    def number(self, name: str, default: float | None = None, *, lo: float | None = None,
               hi: float | None = None) -> float | None:
        raw = self.get(name)
        if raw is None:
            return default
        value = _float(raw.lstrip("+"), name)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise InvalidParameter(name, f"{raw} is outside {lo}..{hi}")
        return value

    def json_or_text(self, name: str) -> Any:
        """A value that may be JSON (an object or array) or plain text."""
        raw = self.get(name)
        if raw is None or raw[0] not in "{[":
            return raw
        return bounded_json(raw, name)


def numbers(text: str, name: str, count: int | None = None) -> list[float]:
    """'1,2,3' (or '[1,2,3]') -> floats; `count` fixes how many."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    parts = [p for p in (s.strip() for s in text.split(",")) if p]
    if count is not None and len(parts) != count:
        raise InvalidParameter(name, f"expected {count} comma-separated numbers, got {len(parts)}")
    return [_float(p, name) for p in parts]


def parse_sr_param(params: Params, name: str, default: CRS) -> CRS:
    value = params.json_or_text(name)
    return default if value is None else parse_sr(value, name)


def parse_bbox(params: Params, default: tuple[float, float, float, float], default_sr: CRS
               ) -> tuple[tuple[float, float, float, float], CRS]:
    """bbox as 'xmin,ymin,xmax,ymax' or envelope JSON (whose spatialReference counts when bboxSR is
    absent); absent means the service extent."""
    value = params.json_or_text("bbox")
    sr = parse_sr_param(params, "bboxSR", default_sr)
    if value is None:
        return default, (default_sr if params.get("bboxSR") is None else sr)
    if isinstance(value, dict):
        try:
            box = [_float(value[k], "bbox") for k in ("xmin", "ymin", "xmax", "ymax")]
        except KeyError as exc:
            raise InvalidParameter("bbox", f"envelope JSON lacks {exc.args[0]}")
        if params.get("bboxSR") is None and value.get("spatialReference"):
            sr = parse_sr(value["spatialReference"], "bbox")
    elif isinstance(value, list):
        box = [_float(v, "bbox") for v in value]
        if len(box) != 4:
            raise InvalidParameter("bbox", "expected xmin,ymin,xmax,ymax")
    else:
        box = numbers(value, "bbox", 4)
    check_coordinates(box, "bbox")
    corners = ordered_corners(*box)           # esri-leaflet sends xmin,ymax,xmax,ymin
    if not (corners[0] < corners[2] and corners[1] < corners[3]):
        raise InvalidParameter("bbox", "the box has no area: xmin must differ from xmax and ymin from ymax")
    return corners, sr


def parse_size(params: Params, default: tuple[int, int] = (400, 400)) -> tuple[int, int]:
    raw = params.get("size")
    if raw is None:
        return default
    w, h = numbers(raw, "size", 2)
    width, height = round(w), round(h)
    if width < 1 or height < 1:
        raise InvalidParameter("size", "width and height must be positive")
    return width, height


def parse_time(params: Params) -> TimeWindow | None:
    """'t' or 't1,t2' in epoch ms; 'null' (or nothing) is an open end."""
    raw = params.get("time")
    if raw is None:
        return None
    parts = [p.strip() for p in raw.split(",")]
    if len(parts) > 2:
        raise InvalidParameter("time", "expected an instant or start,end in epoch milliseconds")
    floats = [None if p.lower() in ("", "null", "none") else _float(p, "time") for p in parts]
    check_epoch_ms(floats, "time")
    ends = [None if v is None else int(v) for v in floats]
    start, end = (ends[0], ends[0]) if len(ends) == 1 else ends
    if start is not None and end is not None and start > end:
        raise InvalidParameter("time", "the start is after the end")
    return None if start is None and end is None else TimeWindow(start, end)


def parse_band_ids(params: Params) -> tuple[int, ...] | None:
    raw = params.get("bandIds")
    if raw is None:
        return None
    ids = numbers(raw, "bandIds")
    if not ids or any(not v.is_integer() or v < 0 for v in ids):
        raise InvalidParameter("bandIds", "expected 0-based band numbers such as 2,1,0")
    return tuple(int(v) for v in ids)


def parse_pixel_type(params: Params) -> str | None:
    raw = params.get("pixelType")
    if raw is None or raw.strip().upper() == "UNKNOWN":
        return None
    code = raw.lstrip("+").strip().upper()
    if code in ("C64", "C128"):
        raise InvalidParameter("pixelType", f"complex output ({code}) is not supported")
    if code not in PIXEL_TYPES:
        raise InvalidParameter("pixelType", f"{raw!r} is not one of {', '.join(PIXEL_TYPES)}, UNKNOWN")
    return code


def parse_nodata(params: Params) -> tuple[tuple[float, ...] | None, bool]:
    """noData values and whether all bands must match (ArcGIS: MatchAny for one value, All for a list)."""
    raw = params.get("noData")
    values = tuple(numbers(raw, "noData")) if raw is not None else None
    default = "all" if values and len(values) > 1 else "any"
    how = params.enum("noDataInterpretation", {"esrinodatamatchany": "any", "esrinodatamatchall": "all",
                                               "matchany": "any", "matchall": "all"}, default)
    return (values or None), how == "all"


def parse_mosaic_rule(params: Params, default: MosaicRule, service_crs: CRS, templates) -> MosaicRule | None:
    value = params.json_or_text("mosaicRule")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidParameter("mosaicRule", "expected a mosaic rule JSON object")
    member = partial(_member, value)             # clients vary the case of members
    method = default.method
    if member("mosaicMethod") is not None:
        named = canonical_mosaic_method(str(member("mosaicMethod")))
        if named is None:
            raise InvalidParameter("mosaicRule", f"unknown mosaicMethod {member('mosaicMethod')!r}")
        method = named
    operation = "MT_FIRST"
    asked = member("mosaicOperation") if member("mosaicOperation") is not None else member("mosaicOperator")
    if asked is not None:
        named_operation = canonical_mosaic_operation(str(asked))
        if named_operation is None:
            raise InvalidParameter("mosaicRule", f"unknown mosaicOperation {asked!r}")
        operation = named_operation
    sort_field = member("sortField") or (default.sort_field if method == default.method else None)
    ascending = member("ascending")
    if ascending is None:
        ascending = default.ascending if method == default.method and not member("sortField") else True
    elif not isinstance(ascending, bool):
        ascending = str(ascending).lower() == "true"
    where = member("where")
    if where is not None and not isinstance(where, str):
        raise InvalidParameter("mosaicRule", "where must be a string")
    return MosaicRule(
        method=method, where=where or None,
        sort_field=str(sort_field) if sort_field else None, sort_value=member("sortValue"),
        ascending=ascending, lock_raster_ids=_lock_ids(member("lockRasterIds")),
        fids=_ids(member("fids"), "fids"), operation=operation,
        viewpoint=_viewpoint(member("viewpoint"), service_crs),
        item_rendering_rule=parse_rendering_rule(member("itemRenderingRule"), templates, "mosaicRule"),
        multidimensional_definition=parse_definition(member("multidimensionalDefinition"), "mosaicRule"))


def _member(obj: dict, name: str) -> Any:
    """A JSON member by name, matched case-insensitively when not spelt exactly."""
    if name in obj:
        return obj[name]
    low = name.lower()
    return next((v for k, v in obj.items() if str(k).lower() == low), None)


def parse_definition(value: Any, name: str) -> tuple[DimensionSelection, ...]:
    """A multidimensionalDefinition (digest §13.3): [{variableName, dimensionName, values, isSlice}],
    each value a number (StdTime: epoch ms) or a [lower, upper] pair. Names are checked against the
    service by the engine; here only the form."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        value = bounded_json(value, name)
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise InvalidParameter(name, "multidimensionalDefinition must be an array of "
                                     "{variableName, dimensionName, values, isSlice}")
    return tuple(_dimensional_definition(entry, name) for entry in value)


def _dimensional_definition(entry: Any, name: str) -> DimensionSelection:
    what = "a multidimensionalDefinition entry"
    if not isinstance(entry, dict):
        raise InvalidParameter(name, f"{what} must be an object {{variableName, dimensionName, values}}")
    variable, dimension = entry.get("variableName"), entry.get("dimensionName")
    for key, text in (("variableName", variable), ("dimensionName", dimension)):
        if text is not None and not isinstance(text, str):
            raise InvalidParameter(name, f"{what}: {key} must be a string")
    if entry.get("isSlice") is not None and not isinstance(entry.get("isSlice"), bool):
        raise InvalidParameter(name, f"{what}: isSlice must be true or false")
    raw = entry.get("values")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise InvalidParameter(name, f"{what}: values must be an array of numbers or [lower, upper] pairs")
    values = []
    for v in raw:
        if isinstance(v, list):
            if len(v) != 2:
                raise InvalidParameter(name, f"{what}: a range is [lower, upper], not {json.dumps(v)[:40]}")
            values.append((_definition_number(v[0], name), _definition_number(v[1], name)))
        else:
            values.append(_definition_number(v, name))
    if values and not dimension:
        raise InvalidParameter(name, f"{what}: values need a dimensionName")
    return DimensionSelection(variable or None, dimension or None, tuple(values))


def _definition_number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidParameter(name, f"multidimensionalDefinition: {json.dumps(value)[:40]} is not a number")
    return _float(value, name)


def with_slice(p: Params, service, rule: MosaicRule | None) -> MosaicRule | None:
    """The mosaic rule with `sliceId`'s definition in place of its own (sliceId wins)."""
    slice_id = p.number("sliceId")
    if slice_id is None:
        return rule
    if not slice_id.is_integer():
        raise InvalidParameter("sliceId", "expected an integer slice id")
    md = service.info.multidimensional
    if md is None:
        raise InvalidParameter("sliceId", "this service has no slices (hasMultidimensions is false)")
    return replace(rule or service.info.default_rule, multidimensional_definition=md.slice_definition(int(slice_id)))


def _ids(value: Any, name: str) -> tuple[int, ...] | None:
    """Raster ids as a JSON list, one number, or text '1,2' / '1;2' (the geoprocessing tools'
    separator)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [v for v in value.replace(";", ",").split(",") if v.strip()]
    elif isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    try:
        return tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidParameter("mosaicRule", f"{name} must be a list of raster ids")


def _lock_ids(value: Any) -> tuple[int | str, ...]:
    """lockRasterIds: raster ids or raster names (Make Image Server Layer takes either), as a JSON
    list, one value, or text separated by ',' or ';'."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [v.strip() for v in value.replace(";", ",").split(",") if v.strip()]
    elif not isinstance(value, list):
        value = [value]
    out: list[int | str] = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise InvalidParameter("mosaicRule", "lockRasterIds must be a list of raster ids or names")
        if isinstance(v, float):
            if not v.is_integer():
                raise InvalidParameter("mosaicRule", "lockRasterIds must be a list of raster ids or names")
            v = int(v)
        if isinstance(v, str) and re.fullmatch(r"[+-]?\d+", v.strip()):
            v = int(v)
        out.append(v)
    return tuple(out)


def _viewpoint(value: Any, service_crs: CRS) -> tuple[float, float] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or "x" not in value or "y" not in value:
        raise InvalidParameter("mosaicRule", "viewpoint must be a point {\"x\":..,\"y\":..}")
    x, y = _float(value["x"], "mosaicRule"), _float(value["y"], "mosaicRule")
    if value.get("spatialReference"):
        crs = parse_sr(value["spatialReference"], "mosaicRule")
        x, y = reproject_point(x, y, crs, service_crs, "mosaicRule", "viewpoint")
    return x, y


def parse_interpolation(p: Params, default: Resampling) -> Resampling:
    """interpolation (RSP_NearestNeighbor, RSP_BilinearInterpolation, ...) as the engine's resampling."""
    raw = p.get("interpolation")
    if raw is None:
        return default
    found = canonical_resampling(raw)
    if found is None:
        raise InvalidParameter("interpolation", f"{raw!r} is not one of RSP_NearestNeighbor, "
                                                "RSP_BilinearInterpolation, RSP_CubicConvolution, RSP_Majority")
    return found
