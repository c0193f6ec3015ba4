"""Arithmetic expressions over bands (BandArithmetic), parsed by a grammar into numpy operations.

Nothing is ever evaluated as Python. The grammar:

    expression := term (("+" | "-") term)*
    term       := unary (("*" | "/") unary | "(" expression ")")*     -- "2(B1 + B2)" multiplies
    unary      := ("-" | "+") unary | power
    power      := atom ("^" unary)?                                    -- right-associative
    atom       := number | name | function "(" expression ("," expression)* ")" | "(" expression ")"

Names are bands (`B1`..`Bn`, any case, 1-based) or, for the predefined indexes, the names the
method binds (NIR, Red, L ...). Functions: sqrt, abs, exp, ln/log, log10, sin, cos, tan, asin, acos,
atan, min, max, pow. A division by zero or a root of a negative number is nodata.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from .schema import ArgError

MAX_LENGTH = 2000
MAX_DEPTH = 64
_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|"
                    r"(\*\*|[-+*/^(),]))")
_BAND = re.compile(r"^[bB](\d+)$")

FUNCTIONS: dict[str, tuple[int, Callable[..., Value]]] = {
    "sqrt": (1, np.sqrt), "abs": (1, np.abs), "exp": (1, np.exp), "ln": (1, np.log), "log": (1, np.log),
    "log10": (1, np.log10), "sin": (1, np.sin), "cos": (1, np.cos), "tan": (1, np.tan),
    "asin": (1, np.arcsin), "acos": (1, np.arccos), "atan": (1, np.arctan),
    "min": (2, np.minimum), "max": (2, np.maximum), "pow": (2, np.power),
}
_BINARY = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "^": np.power}

Env = Mapping[str, np.ndarray]
Value = np.ndarray | float          # a constant sub-expression is a plain float
Node = Callable[[Env], Value]


@dataclass(frozen=True)
class Expression:
    source: str
    bands: tuple[int, ...]        # 0-based band indexes it reads (sorted)
    names: tuple[str, ...]        # other names it reads
    run: Node

    @property
    def key(self) -> str:
        return self.source

    def evaluate(self, env: Env) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.asarray(self.run(env), dtype=np.float64)


def _tokens(source: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    while pos < len(source):
        if source[pos:].strip() == "":
            break
        m = _TOKEN.match(source, pos)
        if m is None or m.lastindex is None:
            raise ArgError(f"cannot read {source[pos:].strip()[:20]!r} at position {pos}")
        kind = "number" if m.group(1) else "name" if m.group(2) else "op"
        out.append((kind, m.group(m.lastindex), m.start(m.lastindex)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, source: str, names: frozenset[str], bands: bool):
        self.source, self.tokens, self.i = source, _tokens(source), 0
        self.allowed, self.allow_bands = names, bands
        self.bands: set[int] = set()
        self.used: set[str] = set()

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, text: str | None = None) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            raise ArgError(f"unexpected end of the expression{f' (expected {text!r})' if text else ''}")
        if text is not None and token[1] != text:
            raise ArgError(f"expected {text!r} at position {token[2]}, not {token[1]!r}")
        self.i += 1
        return token

    def parse(self) -> Node:
        if not self.tokens:
            raise ArgError("the expression is empty")
        node = self.expression(0)
        token = self.peek()
        if token is not None:
            raise ArgError(f"unexpected {token[1]!r} at position {token[2]}")
        return node

    def expression(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise ArgError("the expression is nested too deeply")
        node = self.term(depth)
        while (t := self.peek()) and t[1] in "+-" and t[0] == "op":
            self.take()
            node = _binary(_BINARY[t[1]], node, self.term(depth))
        return node

    def term(self, depth: int) -> Node:
        node = self.unary(depth)
        while (t := self.peek()) and t[0] == "op" and t[1] in ("*", "/", "("):
            if t[1] == "(":                         # "2(B1 + B2)": implicit multiplication
                node = _binary(np.multiply, node, self.unary(depth))
            else:
                self.take()
                node = _binary(_BINARY[t[1]], node, self.unary(depth))
        return node

    def unary(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise ArgError("the expression is nested too deeply")
        t = self.peek()
        if t and t[0] == "op" and t[1] in "+-":
            self.take()
            inner = self.unary(depth + 1)
            return inner if t[1] == "+" else (lambda env: np.negative(inner(env)))
        return self.power(depth)

    def power(self, depth: int) -> Node:
        node = self.atom(depth)
        t = self.peek()
        if t and t[0] == "op" and t[1] in ("^", "**"):
            self.take()
            node = _binary(np.power, node, self.unary(depth + 1))
        return node

    def atom(self, depth: int) -> Node:
        kind, text, pos = self.take()
        if kind == "number":
            value = float(text)
            return lambda env: value
        if kind == "op" and text == "(":
            node = self.expression(depth + 1)
            self.take(")")
            return node
        if kind == "name":
            low = text.lower()
            if (t := self.peek()) and t[1] == "(" and low in FUNCTIONS:
                return self.call(low, depth)
            band = _BAND.match(text)
            if band and self.allow_bands and low not in self.allowed:
                index = int(band.group(1)) - 1
                if index < 0:
                    raise ArgError(f"bands are numbered from B1, not {text!r}")
                self.bands.add(index)
                key = f"b{index + 1}"
                return lambda env: env[key]
            if low in self.allowed:
                self.used.add(low)
                return lambda env: env[low]
            raise ArgError(f"unknown name {text!r} at position {pos} "
                           + ("(bands are B1, B2, ...)" if self.allow_bands else
                              f"(names: {', '.join(sorted(self.allowed))})"))
        raise ArgError(f"unexpected {text!r} at position {pos}")

    def call(self, name: str, depth: int) -> Node:
        arity, fn = FUNCTIONS[name]
        self.take("(")
        args = [self.expression(depth + 1)]
        while (t := self.peek()) and t[1] == ",":
            self.take()
            args.append(self.expression(depth + 1))
        self.take(")")
        if len(args) != arity:
            raise ArgError(f"{name}() takes {arity} argument{'s' if arity > 1 else ''}, not {len(args)}")
        if arity == 1:
            (a,) = args
            return lambda env: fn(a(env))
        return _binary(fn, *args)


def _binary(fn: Callable[..., Value], left: Node, right: Node) -> Node:
    return lambda env: fn(left(env), right(env))


def compile_expression(source: str, names: frozenset[str] = frozenset(), bands: bool = True) -> Expression:
    """Parse `source`; it may read bands B1..Bn (`bands`) and the lower-cased `names`."""
    if not isinstance(source, str):
        raise ArgError("the expression must be a string")
    if len(source) > MAX_LENGTH:
        raise ArgError(f"the expression is longer than {MAX_LENGTH} characters")
    parser = _Parser(source, names, bands)
    run = parser.parse()
    return Expression(source.strip(), tuple(sorted(parser.bands)), tuple(sorted(parser.used)), run)
