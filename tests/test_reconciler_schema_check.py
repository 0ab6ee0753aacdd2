"""reconciler.schema_check: the fast yes/no schema check answers exactly as jsonschema does."""

from __future__ import annotations

import copy
import json
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft202012Validator, FormatChecker

from reconciler.document.load import _FORMATS
from reconciler.schema_check import compile_check
from reconciler.schemas import inline_refs, load_schema

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.sampled_from([0.0, 1.0, 1.5, -2.0])
    | st.sampled_from(["", "a", "ab", "abc", " ", "a b", "x@y.z", "2026-27", "1", "A-1", "\u202e"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3)
    ),
    max_leaves=8,
)

_leaf_schemas = st.one_of(
    st.just(True),
    st.just(False),
    st.builds(
        lambda t: {"type": t},
        st.sampled_from(["null", "boolean", "integer", "number", "string", "array", "object"]),
    ),
    st.builds(
        lambda ts: {"type": ts},
        st.lists(st.sampled_from(["integer", "string", "null"]), min_size=1, max_size=2, unique=True),
    ),
    st.builds(lambda n: {"minLength": n}, st.integers(0, 3)),
    st.builds(lambda n: {"maxLength": n}, st.integers(0, 3)),
    st.builds(
        lambda n, p: {"type": "string", "minLength": n, "pattern": p},
        st.integers(0, 2),
        st.sampled_from(["\\S", "^[a-z]+$", "b"]),
    ),
    st.builds(
        lambda n, m: {"type": "string", "minLength": n, "maxLength": m}, st.integers(0, 2), st.integers(0, 3)
    ),
    st.builds(lambda p: {"pattern": p}, st.sampled_from(["\\S", "^[0-9]{4}-[0-9]{2}$", "@"])),
    st.builds(lambda n: {"minItems": n}, st.integers(0, 2)),
    st.builds(lambda n: {"maxItems": n}, st.integers(0, 2)),
    st.builds(lambda n: {"minProperties": n}, st.integers(0, 2)),
    st.builds(lambda n: {"minimum": n}, st.integers(-1, 1)),
    st.builds(lambda n: {"exclusiveMaximum": n}, st.integers(-1, 1)),
    st.builds(lambda u: {"uniqueItems": u}, st.booleans()),
    st.builds(lambda e: {"enum": e}, st.lists(json_values, min_size=1, max_size=3)),
    st.builds(lambda c: {"const": c}, json_values),
    st.builds(lambda r: {"required": r}, st.lists(st.sampled_from(["a", "b"]), unique=True)),
    st.just({"format": "email"}),
    st.just({"format": "date-time"}),
)


def _combine(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    props = st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2)
    return st.one_of(
        st.builds(lambda p: {"properties": p}, props),
        st.builds(
            lambda p, a: {"type": "object", "properties": p, "additionalProperties": a},
            props,
            st.just(False) | inner,
        ),
        st.builds(
            lambda p, r: {"type": "object", "properties": p, "required": r, "additionalProperties": False},
            props,
            st.lists(st.sampled_from(["a", "b", "c"]), unique=True),
        ),
        st.builds(lambda i: {"items": i}, inner),
        st.builds(lambda i: {"propertyNames": i}, inner),
        st.builds(lambda s: {"anyOf": s}, st.lists(inner, min_size=1, max_size=2)),
        st.builds(lambda s: {"allOf": s}, st.lists(inner, min_size=1, max_size=2)),
        st.builds(lambda s: {"oneOf": s}, st.lists(inner, min_size=1, max_size=2)),
        st.builds(lambda s: {"not": s}, inner),
        st.builds(lambda i, t, e: {"if": i, "then": t, "else": e}, inner, inner, inner),
        st.builds(lambda t: {"then": t}, inner),
        st.builds(
            lambda a, b: {**a, **b} if isinstance(a, dict) and isinstance(b, dict) else a, inner, inner
        ),
    )


schemas = st.recursive(_leaf_schemas, _combine, max_leaves=6)


def _jsonschema_says(schema: Any, value: Any, formats: FormatChecker | None) -> bool:
    return not any(Draft202012Validator(schema, format_checker=formats).iter_errors(value))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schemas, json_values)
def test_same_answer_as_jsonschema(schema: Any, value: Any) -> None:
    formats = FormatChecker()
    check = compile_check(schema, formats)
    assert check is not None, schema
    assert check(value) is _jsonschema_says(schema, value, formats), (schema, value)


def test_unknown_keywords_are_not_compiled() -> None:
    assert compile_check({"type": "object", "patternProperties": {"^a": {}}}) is None
    assert compile_check({"properties": {"a": {"$ref": "other.json"}}}) is None
    assert compile_check({"unevaluatedProperties": False}) is None
    assert compile_check({"type": "decimal"}) is None


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*path, i))
    return out


def _replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    out = copy.deepcopy(doc)
    node = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


def _removed(doc: Any, path: tuple[Any, ...]) -> Any:
    out = copy.deepcopy(doc)
    node = out
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return out


def _example(name: str) -> Any:
    if name == "desired-state":
        with open("desired-state.example.json", encoding="utf-8") as f:
            return json.load(f)
    from providers.sources.realsmart import example_export_path

    return json.loads(example_export_path().read_text(encoding="utf-8"))


_SHIPPED = {"desired-state": _FORMATS, "realsmart-export": FormatChecker()}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(_SHIPPED)), st.data())
def test_shipped_schemas_same_answer_on_damaged_examples(name: str, data: st.DataObject) -> None:
    """The examples, with one value replaced or removed anywhere, checked both ways."""
    schema = inline_refs(load_schema(name))
    check = compile_check(schema, _SHIPPED[name])
    assert check is not None
    doc = _example(name)
    assert check(doc) and _jsonschema_says(schema, doc, _SHIPPED[name])
    path = data.draw(st.sampled_from(_paths(doc)))
    if path and data.draw(st.booleans()):
        damaged = _removed(doc, path)
    else:
        damaged = _replaced(doc, path, data.draw(json_values))
    assert check(damaged) is _jsonschema_says(schema, damaged, _SHIPPED[name])
