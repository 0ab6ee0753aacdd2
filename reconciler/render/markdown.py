"""The plan as Markdown (GitHub-flavoured) for a pull request or an email.

A summary, one table row per change, then ``<details>`` blocks listing every membership moved
(nothing truncated) and everything a delete loses, then conflicts and warnings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.plan.model import AnyChange, Plan
from reconciler.plan.operations import MembershipChange
from reconciler.render.common import (
    LIST_FIELDS,
    counts,
    document,
    group_by_object,
    managed_text,
    scalar_fields,
    summary_line,
    value,
    warnings_to_show,
)

__all__ = ["render_markdown"]

_ESCAPE = str.maketrans({c: "\\" + c for c in "\\`*_[]|#+"} | {"<": "&lt;", ">": "&gt;"})


def md(text: str) -> str:
    """Plain text safe in Markdown and in a table cell."""
    return text.translate(_ESCAPE).replace("\n", " ")


def code(text: str) -> str:
    """Inline code safe in a table cell."""
    if "`" in text or "\n" in text:
        return md(text)
    return "`" + text.replace("|", "\\|") + "`"


def _fields(doc: Mapping[str, Any]) -> str:
    return "; ".join(f"{k} {md(value(v))}" for k, v in scalar_fields(doc))


def _counts(doc: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}: {len(doc[k])}" for k in LIST_FIELDS if k in doc)


def _describe(c: AnyChange) -> str:
    if c.kind == "team":
        doc = document(c.after or c.before)
        text = f"{c.action} (group {code(str(doc.get('group')))}"
        return text + (f", template {md(str(doc.get('template')))})" if c.action == "create" else ")")
    if c.action == "update":
        before = document(c.before)
        return "update: " + "; ".join(f"{k} {md(value(before.get(k)))} → {md(value(v))}"
                                      for k, v in document(c.after).items())
    doc = document(c.after if c.action == "create" else c.before)
    parts = [p for p in (_fields(doc), _counts(doc)) if p]
    return f"{c.action}: " + "; ".join(parts)


def _bullets(sign: str, items: Sequence[str]) -> list[str]:
    # "- + x" would open a nested list: escape the plus
    return [f"- {md(sign)} {code(m)}" for m in items]


def _membership_details(plan: Plan) -> list[str]:
    lines: list[str] = []
    for obj in group_by_object(plan):
        for c in obj.changes:
            if c.action == "create" and c.after is not None:
                doc = document(c.after)
                for k in ("owners", "members"):
                    if doc.get(k):
                        lines += ["", f"**{obj.kind} {code(obj.key)}: {k} at creation "
                                  f"(+{len(doc[k])})**", "", *_bullets("+", doc[k])]
        for name, added, removed in obj.relations():
            lines += ["", f"**{obj.kind} {code(obj.key)}: {name} +{len(added)} −{len(removed)}**", "",
                      *_bullets("+", added), *_bullets("−", removed)]
    return lines


def _delete_details(plan: Plan) -> list[str]:
    lines: list[str] = []
    for c in plan.changes:
        if c.action != "delete" or c.before is None:
            continue
        lines += ["", f"**{c.kind} {code(c.key)}**" + (f" ({code(c.object_id)})" if c.object_id else ""), ""]
        before = document(c.before)
        lines += [f"- {k}: {md(value(v))}" for k, v in scalar_fields(before)]
        for k in LIST_FIELDS:
            if k in before:
                items = ", ".join(code(m) for m in before[k]) or "none"
                lines.append(f"- {k} ({len(before[k])}): {items}")
    return lines


def _details(summary: str, body: list[str]) -> list[str]:
    return ["", f"<details><summary>{summary}</summary>", *body, "", "</details>"]


def render_markdown(plan: Plan) -> str:
    """The plan as Markdown, ending with a newline. Deterministic; lists are never truncated."""
    lines = ["### Entra plan", ""]
    managed = managed_text(plan)
    if managed:
        lines += [f"Made against managed state {code(managed[0])} ({md(managed[1])}).", ""]
    lines.append(f"**{md(summary_line(plan))}**")
    if not plan.empty:
        lines += ["", "| | Kind | Key | Change |", "|---|---|---|---|"]
        for obj in group_by_object(plan):
            for c in obj.changes:
                if not isinstance(c, MembershipChange):
                    lines.append(f"| {md(c.symbol)} | {obj.kind} | {code(c.key)} | {_describe(c)} |")
            for name, added, removed in obj.relations():
                lines.append(f"| ~ | {obj.kind} | {code(obj.key)} | {name} +{len(added)} −{len(removed)} |")
        members = _membership_details(plan)
        if members:
            n = counts(plan)
            lines += _details(f"Memberships: {n.add} to add, {n.remove} to remove", members)
        deletes = _delete_details(plan)
        if deletes:
            lines += _details("What the deletes remove", deletes)
    if plan.conflicts:
        lines += ["", f"#### Conflicts ({len(plan.conflicts)})", "",
                  "Not created: an unmanaged object in Entra has the same name. Rename it in the school "
                  "data, or adopt the existing object.", "",
                  "| Kind | Key | Unmanaged object | Field | Value |", "|---|---|---|---|---|"]
        lines += [f"| {c.kind} | {code(c.key)} | {code(c.object_id)} | {c.field} | {md(c.value)} |"
                  for c in plan.conflicts]
    shown = warnings_to_show(plan)
    if shown:
        lines += ["", f"#### Warnings ({len(shown)})", ""]
        lines += [f"- **{md(w.code)}**: {md(w.message)}" for w in shown]
    return "\n".join(lines) + "\n"
