"""Parse ArcGIS raster-function JSON (renderingRule) into RenderingRule trees, by structure only."""

from __future__ import annotations

import json
from typing import Any, Mapping

from ...config import FunctionTemplate
from ..errors import InvalidParameter
from ..requests import PIXEL_TYPES, RenderingRule
from .registry import FUNCTIONS

_MAX_DEPTH = 16


def parse_rendering_rule(value: Any, templates: Mapping[str, FunctionTemplate] | None = None,
                         name: str = "renderingRule") -> RenderingRule | None:
    """A RenderingRule from JSON text or a dict; None for an empty value.

    `templates` maps lower-cased template names to the service's templates; a rule naming one is
    expanded, with the request's arguments overriding the template's.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise InvalidParameter(name, f"not valid JSON ({exc.msg} at position {exc.pos})")
    return _node(value, templates or {}, name, 0)


def _node(value: Any, templates, name: str, depth: int) -> RenderingRule:
    if depth > _MAX_DEPTH:
        raise InvalidParameter(name, f"raster functions nested deeper than {_MAX_DEPTH} levels")
    if not isinstance(value, dict):
        raise InvalidParameter(name, "a raster function must be a JSON object")
    if "rasterFunctionDefinition" in value and "rasterFunction" not in value:
        raise InvalidParameter(name, "rasterFunctionDefinition (inline templates) is not supported; "
                                     "use rasterFunction with rasterFunctionArguments")
    function = value.get("rasterFunction")
    if function is None:
        function = "None"           # the Python API sends {"rasterFunction": null} for raw data
    if not isinstance(function, str) or not function.strip():
        raise InvalidParameter(name, "rasterFunction must be a function or template name")
    args = value.get("rasterFunctionArguments") or {}
    if not isinstance(args, dict):
        raise InvalidParameter(name, "rasterFunctionArguments must be a JSON object")
    pixel_type = value.get("outputPixelType")
    if pixel_type in (None, "", "UNKNOWN", "unknown"):
        pixel_type = None
    elif not isinstance(pixel_type, str) or pixel_type.upper() not in PIXEL_TYPES:
        raise InvalidParameter(name, f"outputPixelType {pixel_type!r} is not one of "
                                     f"{', '.join(PIXEL_TYPES)}, UNKNOWN")
    else:
        pixel_type = pixel_type.upper()
    variable = value.get("variableName") or "Raster"
    if not isinstance(variable, str):
        raise InvalidParameter(name, "variableName must be a string")
    arguments = {k: _argument(v, templates, name, depth) for k, v in args.items()}
    function = function.strip()
    template = templates.get(function.lower())
    if template is not None:
        merged = {**template.arguments, **arguments}
        return RenderingRule(_canonical(template.function, name), merged, pixel_type, variable,
                             template=template.name)
    return RenderingRule(_canonical(function, name), arguments, pixel_type, variable)


def _argument(value: Any, templates, name: str, depth: int) -> Any:
    if isinstance(value, dict) and ("rasterFunction" in value or "rasterFunctionDefinition" in value):
        return _node(value, templates, name, depth + 1)
    if isinstance(value, list):
        return [_argument(v, templates, name, depth) for v in value]
    return value


def _canonical(function: str, name: str) -> str:
    fn = FUNCTIONS.get(function.lower())
    if fn is None:
        raise InvalidParameter(name, f"unknown raster function {function!r} "
                                     f"(known: {', '.join(sorted(f.name for f in FUNCTIONS.values()))})")
    return fn.name
