"""Loading a saved plan: JSON text -> schema check -> semantic checks -> :class:`Plan`.

The only I/O here is reading ``schemas/plan.schema.json`` from the installed package (cached).
Reading the plan file itself is the caller's job (the CLI).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

from reconciler.errors import DocumentError, Finding
from reconciler.plan.model import Change, Plan

__all__ = ["load_plan_document", "loads_plan", "plan_schema"]


@lru_cache(maxsize=1)
def plan_schema() -> dict[str, Any]:
    """The plan JSON Schema (draft 2020-12) shipped in the ``schemas`` package."""
    text = resources.files("schemas").joinpath("plan.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(plan_schema())


def json_path(parts: Iterable[str | int]) -> str:
    """``["changes", 3, "action"]`` -> ``changes[3].action``."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _sort_path(parts: Iterable[str | int]) -> tuple[str, ...]:
    return tuple(f"{p:09d}" if isinstance(p, int) else p for p in parts)


def loads_plan(text: str, *, file: str = "<plan>") -> Plan:
    """Parse plan JSON text and load it with :func:`load_plan_document`."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(file, [Finding(f"line {exc.lineno}, column {exc.colno}",
                                           f"not valid JSON ({exc.msg}); is this a plan saved by "
                                           "`entra-sync plan --out`?")]) from None
    return load_plan_document(data, file=file)


def load_plan_document(data: Any, *, file: str = "<plan>") -> Plan:
    """Validate a plan document (schema, then ids, dependencies and summary) and build the Plan.

    Must: report every finding at once, each with its JSON path, in a :class:`DocumentError`.
    """
    errors = sorted(_validator().iter_errors(data), key=lambda e: (_sort_path(e.absolute_path), e.message))
    findings = [Finding(json_path(e.absolute_path), e.message) for e in errors]
    if findings:
        raise DocumentError(file, findings)
    findings = _semantic_findings(data)
    if findings:
        raise DocumentError(file, findings)
    return Plan.from_dict(data)


def _semantic_findings(data: dict[str, Any]) -> list[Finding]:
    findings: list[Finding] = []
    changes = [Change.from_dict(c) for c in data["changes"]]
    ids: set[str] = set()
    for i, (raw, c) in enumerate(zip(data["changes"], changes, strict=True)):
        if raw["id"] != c.id:
            findings.append(Finding(f"changes[{i}].id", f"is {raw['id']!r} but action, kind and key make "
                                    f"{c.id!r}; the plan was edited by hand: make a new one"))
        if c.id in ids:
            findings.append(Finding(f"changes[{i}].id", f"{c.id!r} appears twice"))
        ids.add(c.id)
    for i, c in enumerate(changes):
        for j, dep in enumerate(c.depends_on):
            if dep not in ids:
                where = f"changes[{i}].dependsOn[{j}]"
                findings.append(Finding(where, f"{dep!r} is not a change in this plan"))
    if not findings:
        expected = Plan(changes=tuple(changes)).summary()
        if data["summary"] != expected:
            findings.append(Finding("summary", "does not match the changes; the plan was edited by hand: "
                                    "make a new one"))
    return findings
