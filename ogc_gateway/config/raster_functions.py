"""`services.<name>.raster_functions`: templates given by function name, inline, or as a JSON file
(this project's form or ArcGIS's RFT form), each checked as a whole rule by the engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..engine import FunctionTemplate
from .values import Checker

TEMPLATE_KEYS = ("name", "function", "arguments", "description")
TEMPLATE_FILE_KEYS = ("name", "description", "rasterFunction", "rasterFunctionArguments")
# ArcGIS raster function template (RFT JSON) files
RFT_FILE_KEYS = ("type", "name", "description", "function", "arguments", "functionType", "thumbnail",
                 "thumbnailEx", "help", "aliases", "definition", "properties", "group", "tag")


def templates(check: Checker, value: Any, key: str) -> tuple[FunctionTemplate, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        check.problem(key, f"must be a list of templates, not {value!r}")
        return ()
    built: list[FunctionTemplate] = []
    for i, entry in enumerate(value):
        where = f"{key}[{i}]"
        template = template_entry(check, entry, where)
        if template is None:
            continue
        if any(t.name == template.name for t in built):
            check.problem(f"{where}.name", f"duplicate template name {template.name!r}")
            continue
        built.append(template)
    return tuple(built)


def template_entry(check: Checker, entry: Any, where: str) -> FunctionTemplate | None:
    if isinstance(entry, str) and entry.lower().endswith(".json"):
        return template_file(check, entry, where)
    if isinstance(entry, str):
        return FunctionTemplate(name=entry, function=entry) if known(check, entry, where) else None
    if not isinstance(entry, dict):
        check.problem(where, "must be a function name, a mapping {name, function, arguments} "
                             f"or a .json template file, not {entry!r}")
        return None
    d = check.mapping(entry, where, TEMPLATE_KEYS)
    function = check.text(d, "function", where)
    if function is None:
        check.problem(f"{where}.function", "required: the raster function's name")
        return None
    return checked_template(check, check.text(d, "name", where) or function, function,
                            d.get("arguments"), check.text(d, "description", where) or "",
                            where, "arguments")


def template_file(check: Checker, entry: str, where: str) -> FunctionTemplate | None:
    path = check.path(entry)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        check.problem(where, f"no such file: {entry!r}")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        check.problem(where, f"cannot read {entry!r}: {getattr(exc, 'strerror', None) or exc}")
        return None
    except json.JSONDecodeError as exc:
        check.problem(where, f"{entry}: invalid JSON at line {exc.lineno}, column {exc.colno}: "
                             f"{exc.msg}")
        return None
    where = f"{where} ({entry})"
    if isinstance(doc, dict) and (isinstance(doc.get("function"), dict) or doc.get("type") == "RasterFunctionTemplate"):
        return rft_file(check, doc, path, where)
    d = check.mapping(doc, where, TEMPLATE_FILE_KEYS)
    function = check.text(d, "rasterFunction", where)
    if function is None:
        check.problem(f"{where}.rasterFunction", "required: the raster function's name")
        return None
    return checked_template(check, check.text(d, "name", where) or path.stem, function,
                            d.get("rasterFunctionArguments"),
                            check.text(d, "description", where) or "", where,
                            "rasterFunctionArguments")


def rft_file(check: Checker, doc: dict, path: Path, where: str) -> FunctionTemplate | None:
    """A template file in ArcGIS's RFT JSON form ({"type": "RasterFunctionTemplate", ...})."""
    from ..engine import ArgError, read_template

    d = check.mapping(doc, where, RFT_FILE_KEYS)
    try:
        function = read_template(doc).function
    except ArgError as exc:
        check.problem(where, str(exc))
        return None
    template = FunctionTemplate(check.text(d, "name", where) or path.stem, function, {},
                                check.text(d, "description", where) or "", definition=doc)
    return valid_template(check, template, where)


def checked_template(check: Checker, name: str, function: str, arguments: Any, description: str,
                     where: str, args_key: str) -> FunctionTemplate | None:
    ok = known(check, function, f"{where}.function" if args_key == "arguments"
               else f"{where}.rasterFunction")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        check.problem(f"{where}.{args_key}", f"must be a mapping, not {arguments!r}")
        return None
    ok = nested_functions(check, arguments, f"{where}.{args_key}") and ok
    return valid_template(check, FunctionTemplate(name, function, arguments, description), where) if ok else None


def valid_template(check: Checker, template: FunctionTemplate, where: str) -> FunctionTemplate | None:
    """The template when its whole chain is a valid rule (every argument checked)."""
    from ..engine import check_template

    problem = check_template(template, {})
    if problem:
        check.problem(where, problem)
        return None
    return template


def known(check: Checker, function: str, where: str) -> bool:
    # Imported when a service has templates: the registry loads every raster function's module.
    from ..engine import is_known

    if is_known(function):
        return True
    check.problem(where, f"unknown raster function {function!r}")
    return False


def nested_functions(check: Checker, value: Any, where: str) -> bool:
    """Check the function names of chained functions inside a template's arguments."""
    ok = True
    if isinstance(value, dict):
        inner = value.get("rasterFunction")
        if isinstance(inner, str):
            ok = known(check, inner, f"{where}.rasterFunction")
        for k, v in value.items():
            ok = nested_functions(check, v, f"{where}.{k}") and ok
    elif isinstance(value, list):
        for i, v in enumerate(value):
            ok = nested_functions(check, v, f"{where}[{i}]") and ok
    return ok

