"""Where-clause compiler: an ArcGIS-style SQL where clause (a safe subset) -> parameterised SQLite SQL.

The where text comes straight from a request, so it must never reach SQLite as text. This module
accepts only a small grammar, maps field names through the catalog's allow-list (emitting each
field's own spelling, quoted) and turns every literal into a `?` parameter; everything else in the
emitted SQL is a fixed token chosen by the compiler. Anything outside the grammar is refused with a
message saying what was not understood and where (positions are 1-based character offsets).

    expr      := and (OR and)*
    and       := not (AND not)*
    not       := NOT not | '(' expr ')' | predicate
    predicate := operand cmp operand                      cmp: = <> != < <= > >=
               | operand [NOT] IN '(' literal, ... ')'
               | operand [NOT] BETWEEN operand AND operand
               | operand [NOT] LIKE string [ESCAPE string]
               | operand IS [NOT] NULL
    operand   := field | "field" | [+|-]number | 'string' | DATE 'YYYY-MM-DD'
               | TIMESTAMP 'YYYY-MM-DD HH:MM:SS[.fff]' | CURRENT_DATE | CURRENT_TIMESTAMP
               | UPPER(operand) | LOWER(operand)

Keywords and field names are case-insensitive. Dates are epoch milliseconds UTC, as the catalog
stores them; a string compared with a DATE field is read as a date (ArcGIS users write
`acquired > '2024-06-01'`). A blank where clause compiles to `1` (every row).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from .errors import InvalidParameter
from .fields import DATE, GEOMETRY, Field, iso_to_epoch_ms
from .fields import quote as _quote

MAX_LENGTH = 4000       # characters of where text
MAX_DEPTH = 50          # nested parentheses / NOT / function calls
MAX_IN_ITEMS = 1000     # values in one IN list

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FUNCTIONS = ("UPPER", "LOWER")
_SUBQUERY_WORDS = {"SELECT", "UNION", "FROM", "EXISTS", "WITH", "INTERSECT", "EXCEPT", "VALUES"}
_COMPARE = {"=": "=", "<>": "<>", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATOR = re.compile(r"<>|!=|<=|>=|=|<|>")
_ARITHMETIC = re.compile(r"\|\||[-+*/%]")
_DATE_LITERAL = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_TIMESTAMP_LITERAL = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?", re.ASCII)
_SLASH_DATE = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})(.*)", re.S | re.ASCII)


@dataclass(frozen=True, slots=True)
class Where:
    """Compiled where clause: `sql` holds only compiler tokens, quoted columns and `?`s."""

    sql: str
    params: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str           # num | str | name | qname | op | arith | ( | ) | , | end
    text: str           # the source text (for messages)
    value: str          # unquoted string or name (the text of a number; '' at the end)
    pos: int            # 1-based
    number: int | float = 0     # a num token's value


@dataclass(frozen=True, slots=True)
class _Operand:
    sql: str
    params: tuple[Any, ...]
    field: Field | None = None      # set when the operand is a bare field
    literal: bool = False
    pos: int = 0


def compile_where(text: str, fields: Sequence[Field], *, alias: str = "i", param: str = "where",
                  now: datetime | None = None) -> Where:
    """Compile `text` against the allow-list `fields`; raise InvalidParameter(param, why) if refused.

    `now` fixes CURRENT_DATE / CURRENT_TIMESTAMP (default: the current UTC time, read once)."""
    if not _NAME.fullmatch(alias):
        raise ValueError(f"not a table alias: {alias!r}")
    if text is None or not text.strip():
        return Where("1", ())
    if len(text) > MAX_LENGTH:
        raise InvalidParameter(param, f"where clause is too long ({len(text)} characters; "
                                      f"at most {MAX_LENGTH})")
    parser = _Parser(_tokenize(text, param), fields, alias, param, now)
    sql, params = parser.expr()
    if parser.peek().kind != "end":
        parser.unexpected(parser.peek())
    return Where(sql, tuple(params))


def _tokenize(text: str, param: str) -> list[_Token]:
    """Split into tokens; comments, `;`, control characters and unknown symbols fail here."""
    def fail(why: str) -> NoReturn:
        raise InvalidParameter(param, why)

    if m := _CONTROL.search(text):
        fail(f"control character U+{ord(m.group()):04X} at position {m.start() + 1} is not allowed")
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c, pos = text[i], i + 1
        if c.isspace():
            i += 1
        elif text.startswith(("--", "/*"), i):
            fail(f"comments are not allowed (position {pos})")
        elif c in "'\"":                 # 'string' with '' escaping, or "quoted field"
            parts, j = [], i + 1
            while True:
                end = text.find(c, j)
                if end < 0:
                    what = "string" if c == "'" else "quoted field name"
                    fail(f"unterminated {what} starting at position {pos}")
                parts.append(text[j:end])
                if c == "'" and text.startswith("''", end):
                    parts.append("'")
                    j = end + 2
                    continue
                break
            kind = "str" if c == "'" else "qname"
            tokens.append(_Token(kind, text[i:end + 1], "".join(parts), pos))
            i = end + 1
        elif m := _NUMBER.match(text, i):
            if m.end() < n and (text[m.end()].isalnum() or text[m.end()] in "_."):
                fail(f"malformed number at position {pos}")
            num = m.group()
            value = int(num) if num.isdigit() else float(num)
            tokens.append(_Token("num", num, num, pos, value))
            i = m.end()
        elif m := _NAME.match(text, i):
            if m.group().upper() == "X" and text.startswith("'", m.end()):
                fail(f"blob literals are not allowed (position {pos})")
            tokens.append(_Token("name", m.group(), m.group(), pos))
            i = m.end()
        elif m := _OPERATOR.match(text, i) or _ARITHMETIC.match(text, i):
            kind = "op" if m.re is _OPERATOR else "arith"
            tokens.append(_Token(kind, m.group(), m.group(), pos))
            i = m.end()
        elif c in "(),":
            tokens.append(_Token(c, c, c, pos))
            i += 1
        else:
            fail(f"unexpected {c!r} at position {pos}")
    tokens.append(_Token("end", "", "", n + 1))
    return tokens


def _balanced(op: str, parts: list[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    """Join AND/OR terms as a balanced tree, keeping SQLite's expression depth low for long chains."""
    if len(parts) == 1:
        return parts[0]
    mid = len(parts) // 2
    (ls, lp), (rs, rp) = _balanced(op, parts[:mid]), _balanced(op, parts[mid:])
    return f"({ls} {op} {rs})", lp + rp


def _epoch_ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // timedelta(milliseconds=1)


class _Parser:
    """Recursive descent over the token list; each rule returns (sql, params)."""

    def __init__(self, tokens: list[_Token], fields: Sequence[Field], alias: str, param: str,
                 now: datetime | None):
        self.tokens, self.i, self.depth = tokens, 0, 0
        self.fields = {f.name.lower(): f for f in fields}
        self.alias, self.param, self._now = alias, param, now

    # -- helpers
    def fail(self, why: str) -> NoReturn:
        raise InvalidParameter(self.param, why)

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def next(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def accept(self, word: str) -> bool:
        tok = self.peek()
        if tok.kind == "name" and tok.text.upper() == word:
            self.i += 1
            return True
        return False

    def expect(self, kind: str, what: str) -> _Token:
        if self.peek().kind != kind:
            self.unexpected(self.peek(), f"expected {what}")
        return self.next()

    def unexpected(self, tok: _Token, expected: str = "") -> NoReturn:
        hint = f" ({expected})" if expected else ""
        if tok.kind == "end":
            self.fail(f"unexpected end of where clause{hint}")
        if tok.kind == "name" and tok.text.upper() in _SUBQUERY_WORDS:
            self.fail(f"sub-queries are not allowed ({tok.text!r} at position {tok.pos})")
        if tok.kind == "arith":
            self.fail(f"arithmetic and '||' are not allowed ({tok.text!r} at position {tok.pos})")
        self.fail(f"unexpected {tok.text!r} at position {tok.pos}{hint}")

    def enter(self, tok: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"nesting is too deep at position {tok.pos} (at most {MAX_DEPTH} levels)")

    def now(self) -> datetime:
        if self._now is None:
            self._now = datetime.now(UTC)
        elif self._now.tzinfo is None:
            self._now = self._now.replace(tzinfo=UTC)
        return self._now.astimezone(UTC)

    # -- boolean structure
    def expr(self) -> tuple[str, list[Any]]:
        parts = [self.and_()]
        while self.accept("OR"):
            parts.append(self.and_())
        return _balanced("OR", parts)

    def and_(self) -> tuple[str, list[Any]]:
        parts = [self.not_()]
        while self.accept("AND"):
            parts.append(self.not_())
        return _balanced("AND", parts)

    def not_(self) -> tuple[str, list[Any]]:
        tok = self.peek()
        if (tok.kind == "name" and tok.text.upper() == "NOT") or tok.kind == "(":
            self.next()
            self.enter(tok)
            if tok.kind == "(":
                sql, params = self.expr()
                self.expect(")", "')'")
            else:
                inner, params = self.not_()
                sql = f"(NOT {inner})"
            self.depth -= 1
            return sql, params
        return self.predicate()

    # -- predicates
    def predicate(self) -> tuple[str, list[Any]]:
        left = self.operand()
        tok = self.peek()
        if tok.kind == "op":
            self.next()
            right = self.operand()
            left, right = self.coerce(left, right), self.coerce(right, left)
            return f"({left.sql} {_COMPARE[tok.text]} {right.sql})", [*left.params, *right.params]
        if self.accept("IS"):
            negate = "NOT " if self.accept("NOT") else ""
            if not self.accept("NULL"):
                self.unexpected(self.peek(), "expected NULL")
            return f"({left.sql} IS {negate}NULL)", [*left.params]
        negate = "NOT " if self.accept("NOT") else ""
        if self.accept("IN"):
            self.expect("(", "'(' after IN")
            items = [self.coerce(self.in_item(), left)]
            while self.peek().kind == ",":
                self.next()
                items.append(self.coerce(self.in_item(), left))
                if len(items) > MAX_IN_ITEMS:
                    self.fail(f"IN list is too long (at most {MAX_IN_ITEMS} values)")
            self.expect(")", "',' or ')'")
            marks = ", ".join(x.sql for x in items)
            return f"({left.sql} {negate}IN ({marks}))", [*left.params, *(p for x in items for p in x.params)]
        if self.accept("BETWEEN"):
            low = self.coerce(self.operand(), left)
            if not self.accept("AND"):
                self.unexpected(self.peek(), "expected AND in BETWEEN")
            high = self.coerce(self.operand(), left)
            return (f"({left.sql} {negate}BETWEEN {low.sql} AND {high.sql})",
                    [*left.params, *low.params, *high.params])
        if self.accept("LIKE"):
            pattern = self.expect("str", "a string pattern after LIKE")
            params = [*left.params, pattern.value]
            if self.accept("ESCAPE"):
                esc = self.expect("str", "a string after ESCAPE")
                if len(esc.value) != 1:
                    self.fail(f"ESCAPE takes a single character (position {esc.pos})")
                params.append(esc.value)
                return f"({left.sql} {negate}LIKE ? ESCAPE ?)", params
            return f"({left.sql} {negate}LIKE ?)", params
        self.unexpected(self.peek(), "expected a comparison, IN, BETWEEN, LIKE or IS")

    def in_item(self) -> _Operand:
        item = self.operand()
        if not item.literal:
            self.fail(f"IN lists take literal values only (position {item.pos})")
        return item

    def coerce(self, value: _Operand, against: _Operand) -> _Operand:
        """A string literal met by a DATE field is read as a date, since the column holds epoch ms."""
        if not (value.literal and against.field and against.field.type == DATE
                and isinstance(value.params[0], str)):
            return value
        text = value.params[0]
        if m := _SLASH_DATE.fullmatch(text.strip()):
            y, mo, d, rest = m.groups()
            text = f"{y}-{int(mo):02d}-{int(d):02d}{rest}"
        ms = iso_to_epoch_ms(text)
        if ms is None:
            self.fail(f"{value.params[0]!r} at position {value.pos} is not a date for field "
                      f"{against.field.name!r} (use 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS')")
        return _Operand("?", (ms,), literal=True, pos=value.pos)

    # -- operands
    def operand(self) -> _Operand:
        tok = self.next()
        if tok.kind == "num":
            return self.number(tok, tok.number)
        if tok.kind == "arith" and tok.text in "+-" and self.peek().kind == "num":
            num = self.next().number
            return self.number(tok, -num if tok.text == "-" else num)
        if tok.kind == "str":
            return _Operand("?", (tok.value,), literal=True, pos=tok.pos)
        if tok.kind == "qname":
            return self.field(tok.value, tok)
        if tok.kind != "name":
            self.unexpected(tok, "expected a field or a value")
        word = tok.text.upper()
        if self.peek().kind == "(":
            return self.function(tok, word)
        if word in ("DATE", "TIMESTAMP") and self.peek().kind == "str":
            return self.date_literal(word, self.next())
        if word == "CURRENT_TIMESTAMP":
            return _Operand("?", (_epoch_ms(self.now()),), literal=True, pos=tok.pos)
        if word == "CURRENT_DATE":
            midnight = self.now().replace(hour=0, minute=0, second=0, microsecond=0)
            return _Operand("?", (_epoch_ms(midnight),), literal=True, pos=tok.pos)
        if word == "NULL":
            self.fail(f"NULL at position {tok.pos} can only be tested with IS [NOT] NULL")
        return self.field(tok.text, tok)

    def number(self, tok: _Token, value: int | float) -> _Operand:
        if (isinstance(value, int) and not -2**63 <= value < 2**63) or not math.isfinite(value):
            self.fail(f"number out of range at position {tok.pos}")
        return _Operand("?", (value,), literal=True, pos=tok.pos)

    def function(self, tok: _Token, word: str) -> _Operand:
        if word in _SUBQUERY_WORDS:
            self.unexpected(tok)
        if word not in _FUNCTIONS:
            self.fail(f"function {tok.text.upper()!r} at position {tok.pos} is not allowed "
                      f"(allowed: {', '.join(_FUNCTIONS)})")
        self.next()                                 # '('
        self.enter(tok)
        arg = self.operand()
        self.expect(")", f"')' to close {word}(")
        self.depth -= 1
        return _Operand(f"{word}({arg.sql})", arg.params, pos=tok.pos)

    def date_literal(self, word: str, tok: _Token) -> _Operand:
        pattern = _DATE_LITERAL if word == "DATE" else _TIMESTAMP_LITERAL
        m = pattern.fullmatch(tok.value)
        try:
            if not m:
                raise ValueError
            y, mo, d = m.group(1, 2, 3)
            h, mi, s, frac = (*m.groups(), None, None, None, None)[3:7]   # DATE: 3 groups
            micro = int((frac or "0").ljust(6, "0")[:6])
            dt = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), micro)
        except ValueError:
            shape = "'YYYY-MM-DD'" if word == "DATE" else "'YYYY-MM-DD HH:MM:SS'"
            self.fail(f"invalid {word} literal {tok.text} at position {tok.pos} (expected {shape})")
        return _Operand("?", (_epoch_ms(dt),), literal=True, pos=tok.pos)

    def field(self, name: str, tok: _Token) -> _Operand:
        if tok.kind == "name" and name.upper() in _SUBQUERY_WORDS and name.lower() not in self.fields:
            self.unexpected(tok)
        field = self.fields.get(name.lower())
        if field is None:
            known = ", ".join(f.name for f in self.fields.values() if f.type != GEOMETRY)
            self.fail(f"unknown field {name!r} at position {tok.pos} (fields: {known})")
        if field.type == GEOMETRY:
            self.fail(f"field {field.name!r} at position {tok.pos} cannot be used in a where clause")
        return _Operand(f"{self.alias}.{_quote(field.name)}", (), field, pos=tok.pos)
