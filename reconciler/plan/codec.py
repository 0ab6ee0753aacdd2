"""Loading a saved plan: JSON text -> schema check -> value checks -> semantic checks -> :class:`Plan`.

A saved plan is applied as it is, so it is validated as strictly as a desired state: the values
it would write follow the same naming rules (:mod:`reconciler.document.rules`: keys,
displayNames, mailNicknames, user references of the plan's ``userMatch``), no string anywhere
holds a control or bidirectional-control character, and it is at most
:data:`reconciler.document.load.JSON_MAX_DEPTH` deep.

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

from reconciler.document import rules
from reconciler.document.load import json_value_problem
from reconciler.document.snapshot import UNNAMED_PREFIX
from reconciler.errors import DocumentError, Finding
from reconciler.model import UserMatch
from reconciler.plan.model import AnyChange, Change, Plan
from reconciler.plan.operations import PayloadError

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
        raise DocumentError(
            file,
            [
                Finding(
                    f"line {exc.lineno}, column {exc.colno}",
                    f"not valid JSON ({exc.msg}); is this a plan saved by `entra-sync plan --out`?",
                )
            ],
        ) from None
    except RecursionError:
        raise DocumentError(file, [Finding("", "nested too deeply to read")]) from None
    except ValueError as exc:  # a number of more than 4300 digits
        raise DocumentError(file, [Finding("", f"not valid here: {str(exc).split(';')[0]}")]) from None
    return load_plan_document(data, file=file)


def load_plan_document(data: Any, *, file: str = "<plan>") -> Plan:
    """Validate a plan document (schema, then ids, dependencies and summary) and build the Plan.

    Must: report every finding at once, each with its JSON path, in a :class:`DocumentError`.
    Must-not raise anything else on any JSON value (too deep, lone surrogates, odd values).
    """
    problem = json_value_problem(data)
    if problem is not None:
        raise DocumentError(file, [Finding("", problem)])
    errors = sorted(_validator().iter_errors(data), key=lambda e: (_sort_path(e.absolute_path), e.message))
    findings = [Finding(json_path(e.absolute_path), e.message) for e in errors]
    if findings:
        raise DocumentError(file, findings)
    findings = _value_findings(data)
    if findings:
        raise DocumentError(file, findings)
    findings = _semantic_findings(data)
    if findings:
        raise DocumentError(file, findings)
    return Plan.from_dict(data)


#: an object id goes into a Graph URL path: these would address another resource
_OBJECT_ID_FORBIDDEN = frozenset("/\\?#%&")
_KEY_LISTS = ("administrativeUnits", "groups")


def _strings(value: Any, path: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], str]]:
    out: list[tuple[tuple[str | int, ...], str]] = []
    stack = [(value, path)]
    while stack:
        v, p = stack.pop()
        if isinstance(v, str):
            out.append((p, v))
        elif isinstance(v, dict):
            stack.extend((item, (*p, k)) for k, item in v.items())
        elif isinstance(v, list):
            stack.extend((item, (*p, i)) for i, item in enumerate(v))
    return sorted(out, key=lambda x: _sort_path(x[0]))


def _field_problem(name: str, value: str, user_match: UserMatch, kind: str) -> str | None:
    if name == "displayName":
        return rules.display_name_problem(value)
    if name == "mailNickname":
        return rules.mail_nickname_problem(value)
    if name in ("key", "group") or name in _KEY_LISTS:
        return rules.key_problem(value)
    if name in ("owners", "members"):
        if kind == "groupAdministrativeUnits":
            return rules.key_problem(value)
        if value.startswith(UNNAMED_PREFIX):  # a member Entra holds that no user reference names
            return _field_problem("objectId", value[len(UNNAMED_PREFIX) :], user_match, kind)
        return rules.user_ref_problem(value, user_match)
    if name == "objectId":
        odd = set(value) & _OBJECT_ID_FORBIDDEN or any(c.isspace() for c in value)
        if odd or len(value) > 128 or rules.text_problem(value):
            return (
                f"{rules.quote(value)} is not a Graph object id; the plan was edited by hand: make a new one"
            )
        return None
    if name == "description":
        return rules.text_problem(value, newlines=True)
    return rules.text_problem(value)


def _value_findings(data: dict[str, Any]) -> list[Finding]:
    """The values a plan would write, checked with the desired-state rules; every other string
    must be printable (messages and conflicts are shown on a terminal)."""
    user_match: UserMatch = data.get("userMatch", "userPrincipalName")
    findings: list[Finding] = []
    for i, change in enumerate(data["changes"]):
        for path, value in _strings(change, ("changes", i)):
            # the field a string belongs to: its own name, or its list's (members[3] -> members)
            names = [p for p in path[2:] if isinstance(p, str)]
            name = names[-1] if names else ""
            if (name == "id" and len(path) == 3) or name == "dependsOn" or name in ("action", "kind"):
                problem = rules.text_problem(value)
            else:
                problem = _field_problem(name, value, user_match, change["kind"])
            if problem is not None:
                findings.append(Finding(json_path(path), problem))
    for section in ("warnings", "conflicts"):
        for path, value in _strings(data[section], (section,)):
            problem = rules.text_problem(value)
            if problem is not None:
                findings.append(Finding(json_path(path), problem))
    return findings


def _semantic_findings(data: dict[str, Any]) -> list[Finding]:
    findings: list[Finding] = []
    changes: list[AnyChange] = []
    for i, raw in enumerate(data["changes"]):
        try:
            changes.append(Change.from_dict(raw))
        except PayloadError as exc:
            findings.append(Finding(f"changes[{i}].{exc.side}", exc.message))
    if findings:
        return findings
    ids: set[str] = set()
    for i, (raw, c) in enumerate(zip(data["changes"], changes, strict=True)):
        if raw["id"] != c.id:
            findings.append(
                Finding(
                    f"changes[{i}].id",
                    f"is {raw['id']!r} but action, kind and key make "
                    f"{c.id!r}; the plan was edited by hand: make a new one",
                )
            )
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
            findings.append(
                Finding("summary", "does not match the changes; the plan was edited by hand: make a new one")
            )
    return findings
