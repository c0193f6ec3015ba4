"""The multidimensionalInfo and slices resources (digest §13) of a multidimensional service."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from ..engine import Dimension, ImageService, InvalidParameter, Multidimensional, NotFound, Slice
from .params import Params, parse_definition

_RETURN_VALUES = {"always": "always", "never": "never", "ifirregular": "ifIrregular"}
# Time steps that divide evenly, largest first, for a regular StdTime.
_TIME_UNITS = (("Days", 86_400_000), ("Hours", 3_600_000), ("Minutes", 60_000), ("Seconds", 1000),
               ("Milliseconds", 1))


def _model(service: ImageService) -> Multidimensional:
    md = service.info.multidimensional
    if md is None:
        raise NotFound("This service is not multidimensional (hasMultidimensions is false).")
    return md


def _number(v: float) -> int | float:
    return int(v) if float(v).is_integer() and abs(v) < 2**53 else float(v)


def _value(v) -> int | float | list:
    return [_number(v[0]), _number(v[1])] if isinstance(v, tuple) else _number(v)


def regular_interval(dim: Dimension) -> tuple[int | float, str] | None:
    """(interval, intervalUnit) when the values step evenly: whole months or years for times on the
    same day of the month, else the largest time unit (or the dimension's own unit) that the step is."""
    starts = [v[0] if isinstance(v, tuple) else v for v in dim.values]
    if len(starts) < 2:
        return None
    steps = [b - a for a, b in zip(starts, starts[1:])]
    if not dim.is_time:
        if all(math.isclose(s, steps[0], rel_tol=1e-9) for s in steps):
            return _number(steps[0]), dim.unit
        return None
    when = [datetime.fromtimestamp(t / 1000, tz=UTC) for t in starts]
    months = [(b.year - a.year) * 12 + b.month - a.month for a, b in zip(when, when[1:])]
    same_day = all((w.day, w.time()) == (when[0].day, when[0].time()) for w in when)
    if same_day and len(set(months)) == 1 and months[0] > 0:
        return (months[0] // 12, "Years") if months[0] % 12 == 0 else (months[0], "Months")
    if len(set(steps)) == 1:
        for unit, ms in _TIME_UNITS:
            if steps[0] % ms == 0:
                return steps[0] // ms, unit
    return None


def _dimension_json(dim: Dimension, returned: str) -> dict:
    lows = [v[0] if isinstance(v, tuple) else v for v in dim.values]
    highs = [v[1] if isinstance(v, tuple) else v for v in dim.values]
    interval = regular_interval(dim)
    out = {"name": dim.name, "description": dim.description, "unit": dim.unit, "field": dim.field,
           "extent": [_number(min(lows)), _number(max(highs))] if lows else [],
           "hasRanges": dim.has_ranges, "hasRegularIntervals": interval is not None}
    if interval is not None:
        out |= {"interval": interval[0], "intervalUnit": interval[1]}
    if returned == "always" or (returned == "ifIrregular" and interval is None):
        out["values"] = [_value(v) for v in dim.values]
    out["recurring"] = False
    return out


def multidimensional_info(p: Params, service: ImageService) -> dict:
    """Variables with their dimensions, values, extents, units and statistics."""
    md = _model(service)
    returned = p.enum("returnDimensionValues", _RETURN_VALUES, "always")
    variables = []
    for v in md.variables:
        body = {"name": v.name, "description": v.description, "unit": v.unit,
                "dimensions": [_dimension_json(d, returned) for d in v.dimensions]}
        if v.stats:
            body["statistics"] = [{"min": s.min, "max": s.max, "mean": s.mean, "standardDeviation": s.stdv}
                                  for s in v.stats]
        variables.append(body)
    return {"multidimensionalInfo": {"variables": variables}}


def slice_json(s: Slice) -> dict:
    return {"sliceId": s.id, "multidimensionalDefinition": [
        {"variableName": s.variable, "dimensionName": name, "values": [_value(value)], "isSlice": True}
        for name, value in s.values]}


def slices(p: Params, service: ImageService) -> dict:
    """Every slice, or those a multidimensionalDefinition selects (as a filter)."""
    md = _model(service)
    definition = parse_definition(p.get("multidimensionalDefinition"), "multidimensionalDefinition")
    if p.get("multidimensionalDefinition") is not None and not definition:
        raise InvalidParameter("multidimensionalDefinition", "give at least one dimensional definition")
    return {"slices": [slice_json(s) for s in md.matching_slices(definition, "multidimensionalDefinition")]}
