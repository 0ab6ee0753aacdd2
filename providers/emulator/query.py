"""OData query options: ``$select``, ``$filter``, ``$top`` and opaque ``$skiptoken`` paging.

``$filter`` supports what the product needs: ``eq``/``ne`` on strings, booleans, numbers and null,
``startswith(prop,'x')``, ``prop in ('a','b')`` (at most 15 values), lambda ``any`` over
collections (``groupTypes/any(c:c eq 'Unified')``), ``and``/``or``/``not`` and parentheses.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from providers.emulator.wire import bad_request

__all__ = ["Predicate", "decode_token", "encode_token", "parse_filter", "parse_select", "parse_top"]

Getter = Callable[[str], Any]
Predicate = Callable[[Getter], bool]

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<punct>[(),:])|(?P<word>[A-Za-z_@][\w./@]*))"
)


def parse_select(raw: str | None, known: Callable[[str], str | None]) -> list[str] | None:
    """The ``$select`` names in their canonical case, or None. Unknown names give 400 as Graph does.

    ``known`` maps a name (any case) to its canonical spelling, or None when unknown.
    """
    if not raw:
        return None
    names: list[str] = []
    for raw_name in (n.strip() for n in raw.split(",") if n.strip()):
        name = known(raw_name)
        if name is None:
            raise bad_request(
                f"Could not find a property named '{raw_name}' on type 'microsoft.graph.directoryObject'.",
                "BadRequest",
            )
        names.append(name)
    return names


def parse_top(raw: str | None, default: int, maximum: int) -> int:
    if raw is None:
        return default
    try:
        top = int(raw)
    except ValueError:
        raise bad_request(f"Invalid value '{raw}' for $top.", "BadRequest") from None
    if top < 1 or top > maximum:
        raise bad_request(
            f"Invalid page size specified: '{top}'. Must be between 1 and {maximum} inclusive.",
            "Request_BadRequest",
        )
    return top


def encode_token(data: Mapping[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return "X" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any]:
    """Decode a token made by :func:`encode_token`; anything else is a 400."""
    try:
        if not token.startswith("X"):
            raise ValueError(token)
        body = token[1:]
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        if not isinstance(data, dict):
            raise ValueError(token)
        return data
    except ValueError:
        raise bad_request("Invalid skip or delta token.", "Request_BadRequest") from None


class _Parser:
    def __init__(self, text: str, known: Callable[[str], str | None] | None = None) -> None:
        self.known = known
        self.lambda_vars: set[str] = set()
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN_RE.match(text, pos)
            if not m or m.end() == pos:
                raise bad_request(
                    f"Invalid filter clause: syntax error at position {pos} in '{text}'.", "BadRequest"
                )
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
            while pos < len(text) and text[pos].isspace():
                pos += 1
        self.i = 0
        self.text = text

    def prop(self, name: str) -> str:
        """The canonical property name (lambda variables pass through); unknown names give 400."""
        if name in self.lambda_vars or self.known is None:
            return name
        canonical = self.known(name)
        if canonical is None:
            raise bad_request(f"Property '{name}' does not exist or cannot be used in $filter.", "BadRequest")
        return canonical

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1].lower() != value):
            raise bad_request(f"Invalid filter clause: '{self.text}'.", "BadRequest")
        self.i += 1
        return tok

    def parse(self) -> Predicate:
        pred = self.or_expr()
        if self.peek() is not None:
            raise bad_request(f"Invalid filter clause: '{self.text}'.", "BadRequest")
        return pred

    def or_expr(self) -> Predicate:
        left = self.and_expr()
        while (tok := self.peek()) and tok[1].lower() == "or":
            self.take()
            right = self.and_expr()
            left = (lambda a, b: lambda g: a(g) or b(g))(left, right)
        return left

    def and_expr(self) -> Predicate:
        left = self.unary()
        while (tok := self.peek()) and tok[1].lower() == "and":
            self.take()
            right = self.unary()
            left = (lambda a, b: lambda g: a(g) and b(g))(left, right)
        return left

    def unary(self) -> Predicate:
        tok = self.peek()
        if tok and tok[1].lower() == "not":
            self.take()
            inner = self.unary()
            return lambda g: not inner(g)
        if tok and tok[1] == "(":
            self.take("(")
            inner = self.or_expr()
            self.take(")")
            return inner
        return self.comparison()

    def literal(self) -> Any:
        kind, value = self.take()
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if kind == "num":
            return float(value) if "." in value else int(value)
        if kind == "word" and value.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[value.lower()]
        raise bad_request(f"Invalid filter clause: expected a literal, found '{value}'.", "BadRequest")

    def comparison(self) -> Predicate:
        kind, word = self.take()
        if kind != "word":
            raise bad_request(f"Invalid filter clause: '{self.text}'.", "BadRequest")
        low = word.lower()
        if low in ("startswith", "endswith") and (nxt := self.peek()) and nxt[1] == "(":
            self.take("(")
            prop = self.prop(self.take()[1])
            self.take(",")
            prefix = str(self.literal()).lower()
            self.take(")")
            if low == "startswith":
                return lambda g: isinstance(v := g(prop), str) and v.lower().startswith(prefix)
            return lambda g: isinstance(v := g(prop), str) and v.lower().endswith(prefix)
        if "/" in word and word.lower().endswith(("/any", "/all")):
            prop, _, fn = word.rpartition("/")
            prop = self.prop(prop)
            self.take("(")
            var = self.take()[1]
            self.lambda_vars.add(var)
            self.take(":")
            inner = self.or_expr()
            self.take(")")

            def lam(g: Getter) -> bool:
                items = g(prop) or []

                def check(it: Any) -> bool:
                    return inner(lambda name: it if name == var else None)

                return any(map(check, items)) if fn.lower() == "any" else all(map(check, items))

            return lam
        word = self.prop(word)
        op = self.take()[1].lower()
        if op == "in":
            self.take("(")
            values = [self.literal()]
            while (t := self.peek()) and t[1] == ",":
                self.take(",")
                values.append(self.literal())
            self.take(")")
            if len(values) > 15:
                raise bad_request(
                    "Too many values in the 'in' operator (at most 15).", "Request_UnsupportedQuery"
                )
            wanted = {_norm(v) for v in values}
            return lambda g: _norm(g(word)) in wanted
        value = _norm(self.literal())
        if isinstance(value, str) and len(value) > 120:
            raise bad_request("Filter value too long (at most 120 characters).", "Request_UnsupportedQuery")
        if op == "eq":
            return lambda g: _norm(g(word)) == value
        if op == "ne":
            return lambda g: _norm(g(word)) != value
        raise bad_request(f"Unsupported operator '{op}' in filter.", "Request_UnsupportedQuery")


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def parse_filter(raw: str | None, known: Callable[[str], str | None] | None = None) -> Predicate | None:
    """A predicate over a property getter, or None when there is no ``$filter``.

    ``known`` (as for :func:`parse_select`) makes unknown property names a 400.
    """
    if not raw:
        return None
    return _Parser(raw, known).parse()


def eq_lookup(raw: str | None) -> tuple[str, str] | None:
    """``prop eq 'value'`` alone (the indexed fast path), else None."""
    if not raw:
        return None
    m = re.fullmatch(r"\s*([A-Za-z_]\w*)\s+eq\s+'((?:[^']|'')*)'\s*", raw)
    return (m.group(1), m.group(2).replace("''", "'")) if m else None
