"""A fast yes/no check of a JSON value against one of our JSON Schemas (draft 2020-12).

:mod:`jsonschema` spends most of its time per value it descends into (a validator object, a
resource lookup, a generator per keyword): checking a trust's 48,000 people that way takes
seconds. :func:`compile_check` turns a schema into plain nested closures once, so a valid document
is accepted in a fraction of that time. It answers only *valid or not*; when the answer is *not*,
the caller runs :mod:`jsonschema` as before for the findings and their wording, so a rejected
document gets exactly the messages it always got.

The closures follow :mod:`jsonschema`'s draft 2020-12 semantics keyword for keyword (types as its
type checker sees them: ``1.0`` is an integer, ``true`` is not a number; ``enum``, ``const`` and
``uniqueItems`` compare with its ``equal``; ``pattern`` is :func:`re.search`; ``format`` asks the
same :class:`jsonschema.FormatChecker`). A schema using a keyword not listed here cannot be compiled
(:func:`compile_check` returns ``None``) and the caller keeps using :mod:`jsonschema` alone.
``tests/test_schema_check.py`` compares both answers on random schemas and values.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Mapping, Sequence, Sized
from typing import Any

from jsonschema import FormatChecker

__all__ = ["Check", "compile_check"]

Check = Callable[[Any], bool]

#: keywords that never change whether a value is valid
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "$defs", "title", "description", "default", "examples",
     "deprecated", "readOnly", "writeOnly", "contentMediaType", "contentEncoding"}
)  # fmt: skip


class _Unsupported(Exception):
    """The schema uses something this compiler does not implement."""


def compile_check(schema: Any, formats: FormatChecker | None = None) -> Check | None:
    """``schema`` (local ``$ref``s already inlined) as a function: value -> valid; ``None`` when the
    schema uses a keyword (or a non-local ``$ref``) this module does not implement."""
    try:
        return _compile(schema, formats)
    except _Unsupported:
        return None


# ------------------------------------------------------------------------------- types, equal


def _is_integer(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    return isinstance(v, float) and v.is_integer()


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Number) and not isinstance(v, bool)


_TYPES: dict[str, Check] = {
    "array": lambda v: isinstance(v, list),
    "boolean": lambda v: isinstance(v, bool),
    "integer": _is_integer,
    "null": lambda v: v is None,
    "number": _is_number,
    "object": lambda v: isinstance(v, dict),
    "string": lambda v: isinstance(v, str),
}

_TRUE, _FALSE = object(), object()


def _unbool(v: Any) -> Any:
    return _TRUE if v is True else _FALSE if v is False else v


def _equal(one: Any, two: Any) -> bool:
    """:func:`jsonschema._utils.equal`: ``true`` is not ``1``, ``1`` is ``1.0``, recursively."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, Sequence) and isinstance(two, Sequence):
        return len(one) == len(two) and all(_equal(a, b) for a, b in zip(one, two, strict=True))
    if isinstance(one, Mapping) and isinstance(two, Mapping):
        return one.keys() == two.keys() and all(_equal(one[k], two[k]) for k in one)
    return bool(_unbool(one) == _unbool(two))


def _unique(items: list[Any]) -> bool:
    if all(type(i) is str for i in items):
        return len(set(items)) == len(items)
    seen: list[Any] = []
    for item in items:
        if any(_equal(s, item) for s in seen):
            return False
        seen.append(item)
    return True


# ---------------------------------------------------------------------------------- keywords


def _type(value: Any, schema: Mapping[str, Any], formats: FormatChecker | None) -> Check:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(n in _TYPES for n in names):
        raise _Unsupported("type")
    tests = [_TYPES[n] for n in names]
    if len(tests) == 1:
        return tests[0]
    return lambda v: any(t(v) for t in tests)


def _properties(value: Any, schema: Mapping[str, Any], formats: FormatChecker | None) -> Check:
    subs = [(name, _compile(sub, formats)) for name, sub in value.items()]

    def check(v: Any) -> bool:
        return not isinstance(v, dict) or all(sub(v[name]) for name, sub in subs if name in v)

    return check


def _additional(value: Any, schema: Mapping[str, Any], formats: FormatChecker | None) -> Check:
    if "patternProperties" in schema:
        raise _Unsupported("patternProperties")
    known = frozenset(schema.get("properties", {}))
    if value is False:
        return lambda v: not isinstance(v, dict) or known.issuperset(v)
    sub = _compile(value, formats)
    return lambda v: not isinstance(v, dict) or all(sub(x) for k, x in v.items() if k not in known)


def _required(value: Any, schema: Mapping[str, Any], formats: FormatChecker | None) -> Check:
    names = tuple(value)
    return lambda v: not isinstance(v, dict) or all(n in v for n in names)


def _property_names(value: Any, schema: Mapping[str, Any], formats: FormatChecker | None) -> Check:
    sub = _compile(value, formats)
    return lambda v: not isinstance(v, dict) or all(sub(k) for k in v)


def _items(value: Any, schema: Mapping[str, Any], formats: FormatChecker | None) -> Check:
    if "prefixItems" in schema:
        raise _Unsupported("prefixItems")
    sub = _compile(value, formats)
    return lambda v: not isinstance(v, list) or all(map(sub, v))


def _pattern(value: Any, schema: Mapping[str, Any], formats: FormatChecker | None) -> Check:
    search = re.compile(value).search
    return lambda v: not isinstance(v, str) or search(v) is not None


def _format(value: Any, schema: Mapping[str, Any], formats: FormatChecker | None) -> Check | None:
    if formats is None:
        return None
    checker = formats
    return lambda v: checker.conforms(v, value)


def _anyof(value: Any, schema: Mapping[str, Any], formats: FormatChecker | None) -> Check:
    subs = [_compile(s, formats) for s in value]
    return lambda v: any(s(v) for s in subs)


def _allof(value: Any, schema: Mapping[str, Any], formats: FormatChecker | None) -> Check:
    subs = [_compile(s, formats) for s in value]
    return lambda v: all(s(v) for s in subs)


def _oneof(value: Any, schema: Mapping[str, Any], formats: FormatChecker | None) -> Check:
    subs = [_compile(s, formats) for s in value]
    return lambda v: sum(1 for s in subs if s(v)) == 1


def _not(value: Any, schema: Mapping[str, Any], formats: FormatChecker | None) -> Check:
    sub = _compile(value, formats)
    return lambda v: not sub(v)


def _if(value: Any, schema: Mapping[str, Any], formats: FormatChecker | None) -> Check | None:
    if "then" not in schema and "else" not in schema:
        return None
    test = _compile(value, formats)
    then = _compile(schema.get("then", True), formats)
    other = _compile(schema.get("else", True), formats)
    return lambda v: then(v) if test(v) else other(v)


def _enum(value: Any, schema: Mapping[str, Any], formats: FormatChecker | None) -> Check:
    options = list(value)
    return lambda v: any(_equal(o, v) for o in options)


def _const(value: Any, schema: Mapping[str, Any], formats: FormatChecker | None) -> Check:
    return lambda v: _equal(v, value)


def _sized(kind: type[Sized], test: Callable[[int, Any], bool]) -> Callable[..., Check]:
    def build(value: Any, schema: Mapping[str, Any], formats: FormatChecker | None) -> Check:
        return lambda v: not isinstance(v, kind) or test(len(v), value)

    return build


def _bound(test: Callable[[Any, Any], bool]) -> Callable[..., Check]:
    def build(value: Any, schema: Mapping[str, Any], formats: FormatChecker | None) -> Check:
        return lambda v: not _is_number(v) or test(v, value)

    return build


def _unique_items(value: Any, schema: Mapping[str, Any], formats: FormatChecker | None) -> Check | None:
    if not value:
        return None
    return lambda v: not isinstance(v, list) or _unique(v)


def _ignored(value: Any, schema: Mapping[str, Any], formats: FormatChecker | None) -> None:
    return None  # read by the keyword that owns it (``then``/``else`` by ``if``)


_KEYWORDS: dict[str, Callable[..., Check | None]] = {
    "type": _type,
    "properties": _properties,
    "additionalProperties": _additional,
    "required": _required,
    "propertyNames": _property_names,
    "items": _items,
    "pattern": _pattern,
    "format": _format,
    "anyOf": _anyof,
    "allOf": _allof,
    "oneOf": _oneof,
    "not": _not,
    "if": _if,
    "then": _ignored,
    "else": _ignored,
    "enum": _enum,
    "const": _const,
    "uniqueItems": _unique_items,
    "minLength": _sized(str, lambda n, b: n >= b),
    "maxLength": _sized(str, lambda n, b: n <= b),
    "minItems": _sized(list, lambda n, b: n >= b),
    "maxItems": _sized(list, lambda n, b: n <= b),
    "minProperties": _sized(dict, lambda n, b: n >= b),
    "maxProperties": _sized(dict, lambda n, b: n <= b),
    "minimum": _bound(lambda v, b: v >= b),
    "maximum": _bound(lambda v, b: v <= b),
    "exclusiveMinimum": _bound(lambda v, b: v > b),
    "exclusiveMaximum": _bound(lambda v, b: v < b),
}

#: checked first: the cheapest keywords reject most wrong values
_ORDER = {"type": 0, "required": 1, "additionalProperties": 2}


def _string(schema: Mapping[str, Any], formats: FormatChecker | None) -> Check | None:
    """The common ``{"type": "string", "minLength", "maxLength", "pattern"}`` as one function."""
    rules = {k: v for k, v in schema.items() if k not in _ANNOTATIONS}
    if rules.get("type") != "string" or not set(rules) <= {"type", "minLength", "maxLength", "pattern"}:
        return None
    low, high = rules.get("minLength", 0), rules.get("maxLength")
    search = re.compile(rules["pattern"]).search if "pattern" in rules else None
    if high is None:
        if search is None:
            return lambda v: isinstance(v, str) and len(v) >= low
        return lambda v: isinstance(v, str) and len(v) >= low and search(v) is not None
    if search is None:
        return lambda v: isinstance(v, str) and low <= len(v) <= high
    return lambda v: isinstance(v, str) and low <= len(v) <= high and search(v) is not None


def _object(schema: Mapping[str, Any], formats: FormatChecker | None) -> Check | None:
    """The common closed object (``type``, ``properties``, ``required``, no additional
    properties) as one function."""
    rules = {k: v for k, v in schema.items() if k not in _ANNOTATIONS}
    if rules.get("type") != "object" or rules.get("additionalProperties") is not False:
        return None
    if not set(rules) <= {"type", "properties", "required", "additionalProperties"}:
        return None
    properties = rules.get("properties", {})
    known = frozenset(properties)
    required = tuple(rules.get("required", ()))
    subs = [(name, _compile(sub, formats)) for name, sub in properties.items()]

    def check(v: Any) -> bool:
        if not isinstance(v, dict) or not known.issuperset(v):
            return False
        return all(name in v for name in required) and all(sub(v[name]) for name, sub in subs if name in v)

    return check


def _compile(schema: Any, formats: FormatChecker | None) -> Check:
    if schema is True:
        return lambda v: True
    if schema is False:
        return lambda v: False
    if not isinstance(schema, Mapping):
        raise _Unsupported("schema")
    fused = _string(schema, formats) or _object(schema, formats)
    if fused is not None:
        return fused
    checks: list[Check] = []
    for keyword in sorted(schema, key=lambda k: _ORDER.get(k, 9)):
        if keyword in _ANNOTATIONS:
            continue
        build = _KEYWORDS.get(keyword)
        if build is None:
            raise _Unsupported(keyword)
        check = build(schema[keyword], schema, formats)
        if check is not None:
            checks.append(check)
    if not checks:
        return lambda v: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda v: first(v) and second(v)
    return lambda v: all(c(v) for c in checks)
