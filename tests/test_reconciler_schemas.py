from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from reconciler.schemas import load_schema, schema_names


def _properties(node: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, subschema) under a ``properties`` keyword, anywhere in the schema."""
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            yield f"{where}.{name}", sub
        for key, value in node.items():
            yield from _properties(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _properties(value, f"{where}[{i}]")


def test_desired_state_schema_is_valid_draft_2020_12() -> None:
    schema = load_schema("desired-state")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_every_property_is_described() -> None:
    schema = load_schema("desired-state")
    props = list(_properties(schema))
    assert len(props) >= 30
    missing = [path for path, sub in props if not sub.get("description")]
    assert missing == []
    assert all(d.get("description") for d in schema["$defs"].values())


def test_objects_forbid_unknown_fields() -> None:
    schema = load_schema("desired-state")
    objects = [sub for _, sub in _properties(schema) if sub.get("type") == "object"]
    objects += [d for d in schema["$defs"].values() if d.get("type") == "object"]
    assert objects and all(o.get("additionalProperties") is False for o in objects)


def test_schema_is_cached_but_callers_get_their_own_copy() -> None:
    first = load_schema("desired-state")
    first["title"] = "changed"
    assert load_schema("desired-state")["title"] != "changed"


def test_names_and_unknown_schema() -> None:
    assert "desired-state" in schema_names()
    with pytest.raises(LookupError, match="no schema named 'nope'"):
        load_schema("nope")
