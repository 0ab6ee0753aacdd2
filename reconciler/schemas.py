"""The JSON Schemas shipped inside the wheel, in the top-level ``schemas`` package.

They are read with :mod:`importlib.resources`, so a non-editable install finds them from any
working directory.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["load_schema", "schema_names"]


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
