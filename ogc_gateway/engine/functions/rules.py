"""Parse ArcGIS raster-function JSON (renderingRule) into validated RenderingRule trees.

Accepted forms: the classic `{"rasterFunction", "rasterFunctionArguments", "variableName",
"outputPixelType"}` with nested functions as raster arguments; `{"rasterFunctionDefinition": <RFT
JSON>}` (and an RFT document itself); and a service template by name, whose public arguments and
variables a request's `rasterFunctionArguments` override. Every argument is checked against its
function's schema, so whatever is wrong is one InvalidParameter naming the function and argument.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .. import bounded
from ..errors import InvalidParameter
from ..requests import PIXEL_TYPES, RenderingRule
from ..settings import FunctionTemplate
from .registry import FUNCTIONS, Function
from .rft import MAX_DEPTH, Node, is_template, read_template
from .schema import ArgError, find, validate

_MAX_NODES = 256


def parse_rendering_rule(value: Any, templates: Mapping[str, FunctionTemplate] | None = None,
                         name: str = "rendering") -> RenderingRule | None:
    """A RenderingRule from JSON text or a dict; None for an empty value.

    `templates` maps lower-cased template names to the service's templates.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = bounded.loads(value, name)
    try:
        return _build(read_node(value), templates or {}, 0, frozenset(), [0])
    except ArgError as exc:
        raise InvalidParameter(name, str(exc))
    except RecursionError:
        raise InvalidParameter(name, "the raster function is nested too deeply")


def check_template(template: FunctionTemplate, templates: Mapping[str, FunctionTemplate]) -> str | None:
    """Why a configured template is not a valid rule (None when it is)."""
    try:
        _build(Node(template.name, {}), {**templates, template.name.lower(): template}, 0, frozenset(), [0])
    except ArgError as exc:
        return str(exc)
    return None


# --- reading either form into Nodes -----------------------------------------------------------------

def read_node(value: Any, depth: int = 0) -> Node:
    if depth > MAX_DEPTH:
        raise ArgError(f"raster functions nested deeper than {MAX_DEPTH} levels")
    if not isinstance(value, dict):
        raise ArgError("a raster function must be a JSON object")
    if "rasterFunctionDefinition" in value:
        definition = value["rasterFunctionDefinition"]
        if isinstance(definition, str):
            try:
                definition = bounded.loads(definition, "rasterFunctionDefinition")
            except InvalidParameter as exc:
                raise ArgError(f"rasterFunctionDefinition {'is ' if exc.why.startswith('not ') else ''}"
                               f"{exc.why}")
        node = read_template(definition, depth)
        overrides = _arguments(value, depth)
        if overrides:
            _override(node, overrides, "rasterFunctionDefinition")
        if value.get("outputPixelType") is not None:
            node.pixel_type = value["outputPixelType"]
        return node
    if is_template(value):
        return read_template(value, depth)
    function = value.get("rasterFunction")
    if function is None:
        function = "None"           # the Python API sends {"rasterFunction": null} for raw data
    if not isinstance(function, str) or not function.strip():
        raise ArgError("rasterFunction must be a function or template name")
    return Node(function.strip(), _arguments(value, depth), value.get("outputPixelType"),
                value.get("variableName"))


def _arguments(value: dict[str, Any], depth: int) -> dict[str, Any]:
    args = value.get("rasterFunctionArguments")
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise ArgError("rasterFunctionArguments must be a JSON object")
    return {k: _raw(v, depth) for k, v in args.items()}


def _raw(value: Any, depth: int) -> Any:
    if isinstance(value, dict) and ("rasterFunction" in value or "rasterFunctionDefinition" in value
                                    or is_template(value)):
        return read_node(value, depth + 1)
    if isinstance(value, list):
        return [_raw(v, depth) for v in value]
    return value


def _template_node(template: FunctionTemplate) -> Node:
    if template.definition is not None:
        return read_template(copy.deepcopy(template.definition))
    return read_node({"rasterFunction": template.function,
                      "rasterFunctionArguments": copy.deepcopy(template.arguments)})


# --- template arguments ---------------------------------------------------------------------------

def _override(node: Node, args: dict[str, Any], template: str) -> None:
    """Set each of a request's arguments on the template node that declares it: a named variable,
    else the first (outermost) function with an argument of that name — for a raster argument,
    one that holds a dataset reference, not a nested function."""
    for key, value in args.items():
        if not _set(node, key, value):
            raise ArgError(f"template {template!r} has no argument or variable {key!r}")


def _set(root: Node, key: str, value: Any) -> bool:
    queue = [root]
    while queue:
        node = queue.pop(0)
        slot = node.variables.get(key.lower())
        if slot is not None:
            arg, index = slot
            current = node.args.get(arg)
            if index is not None and isinstance(current, list) and index < len(current):
                current[index] = value
            else:
                node.args[arg] = value
            return True
        fn = FUNCTIONS.get(node.function.lower())
        spec = find(fn.args, key) if fn else None
        if spec is not None:
            existing = next((k for k in node.args if k.lower() in spec.spellings()), None)
            held = node.args.get(existing) if existing is not None else None
            nested = isinstance(held, Node) or (isinstance(held, list) and any(isinstance(v, Node) for v in held))
            if not (spec.kind.raster and nested):
                node.args[existing or spec.name] = value
                return True
        for held in node.args.values():
            queue += [v for v in (held if isinstance(held, list) else [held]) if isinstance(v, Node)]
    return False


# --- validation -----------------------------------------------------------------------------------

def _build(node: Node, templates: Mapping[str, FunctionTemplate], depth: int, seen: frozenset[str],
           count: list[int]) -> RenderingRule:
    if depth > MAX_DEPTH:
        raise ArgError(f"raster functions nested deeper than {MAX_DEPTH} levels")
    count[0] += 1
    if count[0] > _MAX_NODES:
        raise ArgError(f"a rule may hold at most {_MAX_NODES} raster functions")
    low = node.function.lower()
    template = templates.get(low) if node.by_name else None
    if template is not None and low not in seen:
        base = _template_node(template)
        if node.args:
            _override(base, node.args, template.name)
        if node.pixel_type is not None:
            base.pixel_type = node.pixel_type
        rule = _build(base, templates, depth + 1, seen | {low}, count)
        return replace(rule, template=template.name)
    fn = FUNCTIONS.get(low)
    if fn is None:
        raise ArgError(f"unknown raster function {node.function!r} "
                       f"(known: {', '.join(sorted(f.name for f in FUNCTIONS.values()))})")
    pixel_type = _pixel_type(node.pixel_type, fn.name)
    variable = _variable(node.variable, fn)
    built = {k: _nested(v, templates, depth, seen, count) for k, v in node.args.items()}
    try:
        args = validate(fn.args, built, variable)
        fn.check(args)
    except ArgError as exc:
        raise ArgError(f"{fn.name}: {exc}")
    return RenderingRule(fn.name, args, pixel_type, variable)


def _nested(value: Any, templates: Mapping[str, FunctionTemplate], depth: int, seen: frozenset[str],
            count: list[int]) -> Any:
    if isinstance(value, Node):
        return _build(value, templates, depth + 1, seen, count)
    if isinstance(value, list):
        return [_nested(v, templates, depth, seen, count) for v in value]
    return value


def _pixel_type(value: Any, function: str) -> str | None:
    if value in (None, "", "UNKNOWN", "unknown"):
        return None
    if not isinstance(value, str) or value.upper() not in PIXEL_TYPES:
        raise ArgError(f"{function}: outputPixelType {value!r} is not one of {', '.join(PIXEL_TYPES)}, UNKNOWN")
    return value.upper()


def _variable(value: Any, fn: Function) -> str:
    """The argument that receives the service's raster: variableName, else the function's own.
    "Raster" (what most clients send whatever the function) means the function's own."""
    if value in (None, ""):
        return fn.variable
    if not isinstance(value, str):
        raise ArgError(f"{fn.name}: variableName must be a string")
    spec = find(fn.args, value)
    if spec is not None and spec.kind.raster:
        return spec.name
    if value.lower() == "raster":
        return fn.variable
    raster_args = [a.name for a in fn.args if a.kind.raster]
    raise ArgError(f"{fn.name}: variableName {value!r} is not one of its raster arguments "
                   f"({', '.join(raster_args) or 'none'})")
