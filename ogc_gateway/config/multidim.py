"""`services.<name>.variables` and `.dimensions`: the slices of a multidimensional service, checked
together with its time field."""

from __future__ import annotations

import re
from typing import Any

from ..engine import DimensionConfig, VariableConfig
from .values import Checker

DIMENSION_KEYS = ("field", "band_metadata", "unit", "description")
VARIABLE_KEYS = ("unit", "description")
STANDARD_DIMENSIONS = ("StdTime", "StdZ")
# What the OGC faces call StdTime, StdZ and the variables: not available as dimension names.
RESERVED_DIMENSIONS = ("time", "elevation", "variable")


def multidimensional(check: Checker, d: dict, where: str, time_field: str | None) -> dict[str, Any]:
    """variable_field, variables and dimensions, checked together: a multidimensional service
    needs a dimension (time_field counts as StdTime) and a way to name each slice's variable."""
    variable_field = check.text(d, "variable_field", where)
    variables = variable_list(check, d.get("variables"), f"{where}.variables")
    dimensions = dimension_list(check, d.get("dimensions"), f"{where}.dimensions", time_field)
    if not (variable_field or variables or dimensions):
        return {}
    if not dimensions and not time_field:
        check.problem(where, "a multidimensional service needs a dimension: `dimensions`, or "
                             "time_field (its StdTime)")
    from_bands = any(dim.band_metadata for dim in dimensions)
    if not variable_field and len(variables) != 1 and not from_bands:
        check.problem(f"{where}.variable_field",
                      "name each item's variable (variable_field: an attribute) or the "
                      "service's one variable (variables: {name: {unit, description}})")
    return dict(variable_field=variable_field, variables=variables, dimensions=dimensions)


def variable_list(check: Checker, value: Any, key: str) -> tuple[VariableConfig, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        check.problem(key, f"must be a mapping of variable name to {{unit, description}}, not {value!r}")
        return ()
    built = []
    for name, body in value.items():
        where = f"{key}.{name}"
        if not isinstance(name, str) or not name.strip() or "," in name:
            check.problem(where, "a variable name is non-empty text without commas")
            continue
        if body is not None and not isinstance(body, dict):
            check.problem(where, f"must be a mapping {{unit, description}} or empty, not {body!r}")
            continue
        d = check.mapping(body, where, VARIABLE_KEYS)
        built.append(VariableConfig(name.strip(), unit=check.text(d, "unit", where) or "",
                                    description=check.text(d, "description", where) or ""))
    return tuple(built)


def dimension_list(check: Checker, value: Any, key: str, time_field: str | None) -> tuple[DimensionConfig, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict) or not value:
        check.problem(key, "must be a mapping of dimension name (StdTime, StdZ or any name) to an "
                           f"attribute name or {{field | band_metadata, unit, description}}, not {value!r}")
        return ()
    built: list[DimensionConfig] = []
    for raw_name, body in value.items():
        where = f"{key}.{raw_name}"
        name = dimension_name(check, raw_name, where)
        if name is None:
            continue
        if any(dim.name == name for dim in built):
            check.problem(where, f"dimension {name!r} appears twice (names are case-insensitive)")
            continue
        dimension = dimension_entry(check, name, body, where, time_field)
        if dimension is not None:
            built.append(dimension)
    return tuple(built)


def dimension_name(check: Checker, raw: Any, where: str) -> str | None:
    text = str(raw)
    for standard in STANDARD_DIMENSIONS:
        if text.lower() == standard.lower():
            return standard
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", text):
        check.problem(where, "a dimension name is a letter, then letters, digits or '_' (it is also "
                             "the WMS parameter DIM_<NAME>)")
        return None
    if text.lower() in RESERVED_DIMENSIONS:
        check.problem(where, f"{text!r} is how WMS and WCS call StdTime, StdZ or the variables; "
                             "name the dimension StdTime, StdZ or anything else")
        return None
    return text


def dimension_entry(check: Checker, name: str, body: Any, where: str, time_field: str | None) -> DimensionConfig | None:
    if isinstance(body, str):
        body = {"field": body}
    if body is None and name == "StdTime":
        body = {}
    if not isinstance(body, dict):
        check.problem(where, "must be an attribute name or a mapping {field | band_metadata, unit, "
                             f"description}}, not {body!r}")
        return None
    d = check.mapping(body, where, DIMENSION_KEYS)
    field_ = check.text(d, "field", where)
    band = check.text(d, "band_metadata", where)
    unit = check.text(d, "unit", where) or ""
    if name == "StdTime":
        if field_:
            check.problem(f"{where}.field", "StdTime is the service's time: set time_field (and "
                                            "end_time_field) instead")
            return None
        if band and time_field:
            check.problem(f"{where}.band_metadata", "StdTime comes from time_field or from band "
                                                    "metadata, not both")
            return None
        if not band and not time_field:
            check.problem(where, "StdTime needs time_field (an attribute) or band_metadata")
            return None
        if unit:
            check.problem(f"{where}.unit", "StdTime is in time units (ISO 8601, epoch milliseconds); "
                                           "drop unit")
    elif bool(field_) == bool(band):
        check.problem(where, "give field (a catalog attribute) or band_metadata (a band metadata "
                             "item, e.g. NETCDF_DIM_depth: the bands are slices), one of them")
        return None
    return DimensionConfig(name, field=field_, band_metadata=band, unit=unit,
                           description=check.text(d, "description", where) or "")

