"""Raster function templates in ArcGIS's RFT JSON form (`rasterFunctionDefinition`, digest §7.5),
read into the same plain nodes as the classic `rasterFunction` form.

Each node is {"type": "RasterFunctionTemplate", "function": {"type": "<Name>Function", "pixelType"},
"arguments": {"type": "<Name>FunctionArguments", <name>: value}}; a value is a literal, a nested
template, an argument array, or a RasterFunctionVariable (`name`, `value`, `isDataset`). A dataset
variable without a value is the service's raster; a variable's name is what a request's
`rasterFunctionArguments` may address it by.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .schema import ArgError

MAX_DEPTH = 16


@dataclass
class Node:
    """One raster function as sent, before validation (either form)."""

    function: str
    args: dict[str, Any]                        # values as sent; nested functions are Nodes
    pixel_type: Any = None
    variable: Any = None
    # variable name (lower) -> (argument, index in an argument array or None)
    variables: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    by_name: bool = True            # `function` may name a service template (the classic form)


def is_template(value: Any) -> bool:
    return isinstance(value, dict) and (value.get("type") == "RasterFunctionTemplate"
                                        or isinstance(value.get("function"), dict))


def read_template(doc: Any, depth: int = 0) -> Node:
    """An RFT JSON document (or a nested template) -> Node."""
    if depth > MAX_DEPTH:
        raise ArgError(f"raster functions nested deeper than {MAX_DEPTH} levels")
    if not isinstance(doc, dict):
        raise ArgError("a raster function template must be a JSON object")
    function = doc.get("function")
    if not isinstance(function, dict):
        raise ArgError("a raster function template needs \"function\": {\"type\": \"<Name>Function\", ...}")
    kind, label = function.get("type"), function.get("name")
    if isinstance(kind, str) and kind.endswith("Function") and len(kind) > len("Function"):
        name = kind[:-len("Function")]
    elif isinstance(label, str) and label.strip():
        name = label.strip()
    else:
        raise ArgError("a raster function template's \"function\" needs a \"type\" such as \"HillshadeFunction\"")
    arguments = doc.get("arguments", {})
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise ArgError(f"{name}: \"arguments\" must be a JSON object")
    node = Node(name, {}, function.get("pixelType"), by_name=False)
    for key, value in arguments.items():
        if key == "type":
            continue
        node.args[key] = _value(value, key, node, depth)
    return node


def _value(value: Any, key: str, node: Node, depth: int, index: int | None = None) -> Any:
    if is_template(value):
        return read_template(value, depth + 1)
    if isinstance(value, list):
        return [_value(v, key, node, depth, k) for k, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    kind = value.get("type")
    if kind == "RasterFunctionVariable":
        name = value.get("name")
        if isinstance(name, str) and name and (name.lower() != key.lower() or index is not None):
            node.variables[name.lower()] = (key, index)
        inner = value.get("value")
        if inner is None and value.get("isDataset"):
            return "$$"
        return _value(inner, key, node, depth, index)
    if kind == "ArgumentArray" or (kind is None and "elements" in value and len(value) <= 2):
        elements = value.get("elements", [])
        if not isinstance(elements, list):
            raise ArgError(f"{node.function}: {key}: an argument array needs a list of \"elements\"")
        return [_value(v, key, node, depth, k) for k, v in enumerate(elements)]
    return value
