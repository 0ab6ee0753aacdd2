"""The JSON Schemas shipped inside the wheel, in the top-level ``schemas`` package.

They are read with :mod:`importlib.resources`, so a non-editable install finds them from any
working directory.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["inline_refs", "load_schema", "schema_names"]


def schema_names() -> list[str]:
    """Names of the shipped schemas, without ``.schema.json`` (for example ``desired-state``)."""
    suffix = ".schema.json"
    return sorted(
        entry.name[: -len(suffix)]
        for entry in resources.files("schemas").iterdir()
        if entry.name.endswith(suffix)
    )


@cache
def _load(name: str) -> dict[str, Any]:
    resource = resources.files("schemas").joinpath(f"{name}.schema.json")
    if not resource.is_file():
        raise LookupError(f"no schema named {name!r}; shipped schemas: {', '.join(schema_names())}")
    data = json.loads(resource.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise LookupError(f"schema {name!r} is not a JSON object")
    return data


def load_schema(name: str) -> dict[str, Any]:
    """The schema ``schemas/<name>.schema.json`` as a dict (``name`` like ``"desired-state"``).

    The file is read once and cached; each call returns a deep copy, so a caller may not change
    the cached one. Raises :class:`LookupError` when there is no such schema (a packaging bug).
    """
    return copy.deepcopy(_load(name))


def inline_refs(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` with every local ``{"$ref": "#/$defs/x", ...}`` replaced by ``x`` (siblings win).

    Our schemas have no recursion; resolving each ``$ref`` once here instead of once per list item
    makes validating a large document several times faster.
    """
    defs: Mapping[str, Any] = schema.get("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, list):
            return [inline(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {k: inline(v) for k, v in node.items() if k != "$defs"}
        ref = out.pop("$ref", None)
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return {**inline(defs[ref.removeprefix("#/$defs/")]), **out}
        if ref is not None:
            out["$ref"] = ref
        return out

    result: dict[str, Any] = inline(dict(schema))
    return result
