"""The argument schema of raster functions: wire names as ArcGIS spells them, aliases, kinds (a type
with its range), defaults.

One mechanism validates every rule: each function lists its `Arg`s, `validate` turns the
arguments as sent into canonical names and typed values (defaults filled in), and any problem is an
`ArgError` that the parser reports as a 400 naming the function and the argument.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..requests import RenderingRule

REQUIRED = object()          # an Arg default: the argument must be given
_SPLIT = re.compile(r"[\s,;]+")


class ArgError(ValueError):
    """An argument value that its kind refuses; the message says why."""


def short(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (dict, list)) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- kinds -----------------------------------------------------------------------------------------

class Kind:
    """How one argument's value is read; `raster` kinds take rasters (nested functions, "$$")."""

    raster = False
    what = "a value"

    def parse(self, value: Any) -> Any:
        return value


class Anything(Kind):
    """Accepted as sent (arguments that only make sense inside ArcGIS and change nothing here)."""

    what = "any value"


class Number(Kind):
    def __init__(self, lo: float | None = None, hi: float | None = None, *, integer: bool = False,
                 above: float | None = None):
        self.lo, self.hi, self.integer, self.above = lo, hi, integer, above
        self.what = "an integer" if integer else "a number"
        bounds = [f">= {lo:g}" if lo is not None else "", f"> {above:g}" if above is not None else "",
                  f"<= {hi:g}" if hi is not None else ""]
        if any(bounds):
            self.what += " " + " and ".join(b for b in bounds if b)

    def parse(self, value: Any) -> float | int:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ArgError(f"must be {self.what}, not {short(value)}")
        try:
            number = float(value.strip()) if isinstance(value, str) else float(value)
        except ValueError:
            raise ArgError(f"must be {self.what}, not {short(value)}")
        if not math.isfinite(number):
            raise ArgError(f"must be a finite number, not {short(value)}")
        if self.integer and not number.is_integer():
            raise ArgError(f"must be an integer, not {short(value)}")
        if (self.lo is not None and number < self.lo) or (self.hi is not None and number > self.hi) \
                or (self.above is not None and number <= self.above):
            raise ArgError(f"must be {self.what}, not {short(value)}")
        return int(number) if self.integer else number


class Boolean(Kind):
    what = "true or false"

    def parse(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
            return value.strip().lower() in ("true", "1")
        raise ArgError(f"must be true or false, not {short(value)}")


class Choice(Kind):
    """An ArcGIS enumeration: its number code or its name (case-insensitive, spaces ignored)."""

    def __init__(self, options: Mapping[int, str], aliases: Mapping[str, int] | None = None):
        self.options = dict(options)
        self.names = {self._key(n): c for c, n in self.options.items()}
        self.names |= {self._key(n): c for n, c in (aliases or {}).items()}
        self.what = "one of " + ", ".join(f"{c} ({n})" for c, n in self.options.items())

    @staticmethod
    def _key(name: str) -> str:
        return re.sub(r"[\s_-]", "", name).lower()

    def parse(self, value: Any) -> int:
        if isinstance(value, str) and self._key(value) in self.names:
            return self.names[self._key(value)]
        try:
            code = Number(integer=True).parse(value)
        except ArgError:
            code = None
        if code in self.options:
            return int(code)
        raise ArgError(f"must be {self.what}; not {short(value)}")


class Text(Kind):
    what = "a string"

    def __init__(self, max_length: int = 2000):
        self.max_length = max_length

    def parse(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ArgError(f"must be a string, not {short(value)}")
        if len(value) > self.max_length:
            raise ArgError(f"is longer than {self.max_length} characters")
        return value


class Numbers(Kind):
    """A list of numbers; a single number or a space/comma separated string is accepted too."""

    def __init__(self, item: Number | None = None, *, min_length: int = 0, max_length: int = 10000):
        self.item = item or Number()
        self.min_length, self.max_length = min_length, max_length
        self.what = f"a list of {self.item.what.replace('a number', 'numbers').replace('an integer', 'integers')}"

    def parse(self, value: Any) -> tuple[Any, ...]:
        if isinstance(value, str):
            value = [v for v in _SPLIT.split(value.strip()) if v]
        elif not isinstance(value, (list, tuple)):
            value = [value]
        if not self.min_length <= len(value) <= self.max_length:
            raise ArgError(f"must hold {self.min_length} to {self.max_length} values, not {len(value)}")
        return _each(self.item.parse, value)


def _each(parse: Callable[[Any], Any], items: Iterable[Any]) -> tuple[Any, ...]:
    """Each item parsed; an error says which item."""
    out = []
    for k, v in enumerate(items):
        try:
            out.append(parse(v))
        except ArgError as exc:
            raise ArgError(f"item {k}: {exc}")
    return tuple(out)


class Texts(Kind):
    what = "a list of strings"

    def parse(self, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ArgError(f"must be a list of strings, not {short(value)}")
        if len(value) > 1000:
            raise ArgError("holds more than 1000 strings")
        return tuple(value)


def raster_reference(value: Any) -> Any:
    """"$$" (the service's mosaic), "$<rasterId>" (one catalog item) or a parsed function."""
    if isinstance(value, RenderingRule):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text == "$$":
            return "$$"
        if text.startswith("$") and text[1:].isdigit() and 0 < int(text[1:]) < 2 ** 31:
            return f"${int(text[1:])}"
    if isinstance(value, dict) and "url" in value:
        raise ArgError("rasters of another service ({\"url\": ...}) are not supported; "
                       "use \"$$\", \"$<rasterId>\" or a raster function")
    raise ArgError(f"must be a raster (\"$$\", \"$<rasterId>\" or a raster function), not {short(value)}")


class Raster(Kind):
    raster = True
    what = "a raster"

    def parse(self, value: Any) -> Any:
        return raster_reference(value)


class RasterOrNumber(Kind):
    raster = True
    what = "a raster or a number"

    def parse(self, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return Number().parse(value)
        try:
            return raster_reference(value)
        except ArgError:
            raise ArgError(f"must be a raster (\"$$\", \"$<rasterId>\", a raster function) or a number, "
                           f"not {short(value)}")


class Rasters(Kind):
    """A list of rasters (and, where `numbers`, constants); a single raster is a list of one."""

    raster = True

    def __init__(self, *, numbers: bool = True, min_length: int = 1, max_length: int = 32):
        self.item = RasterOrNumber() if numbers else Raster()
        self.min_length, self.max_length = min_length, max_length
        self.what = f"a list of {min_length} to {max_length} rasters"

    def parse(self, value: Any) -> tuple[Any, ...]:
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        if not self.min_length <= len(items) <= self.max_length:
            raise ArgError(f"must list {self.min_length} to {self.max_length} rasters, not {len(items)}")
        return _each(self.item.parse, items)


# --- arguments and validation ----------------------------------------------------------------------

@dataclass(frozen=True)
class Arg:
    """One argument: `name` as ArcGIS spells it on the wire, other accepted spellings, its kind and
    default (None: stays absent; REQUIRED: must be given)."""

    name: str
    kind: Kind
    default: Any = None
    aliases: tuple[str, ...] = ()
    doc: str = ""

    def spellings(self) -> tuple[str, ...]:
        return (self.name.lower(),) + tuple(a.lower() for a in self.aliases)


def find(args: tuple[Arg, ...], name: str) -> Arg | None:
    low = name.lower()
    return next((a for a in args if low in a.spellings()), None)


def validate(args: tuple[Arg, ...], given: Mapping[str, Any], variable: str) -> dict[str, Any]:
    """Arguments as sent -> {canonical name: typed value}, defaults filled in. The argument named by
    `variable` (the rule's variableName) receives the service's raster ("$$") when absent."""
    out: dict[str, Any] = {}
    for key, value in given.items():
        arg = find(args, key)
        if arg is None:
            names = [a.name for a in args]
            near = difflib.get_close_matches(key, names, n=1, cutoff=0.6) or \
                difflib.get_close_matches(key.lower(), [n.lower() for n in names], n=1, cutoff=0.6)
            hint = f" (did you mean {next(n for n in names if n.lower() == near[0].lower())}?)" if near else \
                f" (arguments: {', '.join(names) or 'none'})"
            raise ArgError(f"{key}: unknown argument{hint}")
        if arg.name in out:
            raise ArgError(f"{key}: given twice (as {arg.name} and an alias)")
        if value is None:
            continue                     # JSON null: as if absent, so the default applies
        try:
            out[arg.name] = arg.kind.parse(value)
        except ArgError as exc:
            raise ArgError(f"{arg.name} {exc}")
    for arg in args:
        if arg.name in out:
            continue
        if arg.kind.raster and variable.lower() in arg.spellings():
            out[arg.name] = arg.kind.parse("$$")
        elif arg.default is REQUIRED:
            raise ArgError(f"{arg.name} is required ({arg.kind.what})")
        elif arg.default is not None:
            out[arg.name] = arg.default
    return out
