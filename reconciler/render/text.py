"""The plan as terraform-like text (:func:`render_text`); Markdown is in
:mod:`reconciler.render.markdown`. Pure and deterministic.

Changes are grouped by object (administrative units, groups, Teams; by key), symbols as
Terraform: ``+`` create/add, ``~`` update, ``-`` delete/remove, ``>`` archive, ``<`` unarchive.
The summary line counts changes and memberships (members, owners and AU placements, including
those bound when an object is created).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.plan.model import Plan
from reconciler.plan.operations import MembershipChange
from reconciler.render.common import (
    LIST_FIELDS,
    NO_CHANGES,
    SECTIONS,
    ObjectChanges,
    document,
    group_by_object,
    managed_text,
    scalar_fields,
    summary_line,
    truncated,
    value,
    warnings_to_show,
)

__all__ = ["NO_CHANGES", "TEXT_LIST_LIMIT", "render_text"]

TEXT_LIST_LIMIT = 10


def _list_lines(sign: str, items: Sequence[str], indent: str, limit: int) -> list[str]:
    if limit <= 0:  # counts only (the brief form)
        return []
    shown, more = truncated(items, limit)
    lines = [f"{indent}{sign} {m}" for m in shown]
    if more:
        lines.append(f"{indent}... and {more} more")
    return lines


def _document_lines(doc: Mapping[str, Any], sign: str, indent: str, limit: int) -> list[str]:
    lines = [f"{indent}{k}: {value(v)}" for k, v in scalar_fields(doc)]
    for k in LIST_FIELDS:
        if k in doc:
            lines.append(f"{indent}{k} ({len(doc[k])}){':' if doc[k] and limit > 0 else ''}")
            lines += _list_lines(sign, doc[k], indent + "  ", limit)
    return lines


def _object_text(obj: ObjectChanges, limit: int) -> list[str]:
    lines: list[str] = []
    for c in obj.changes:
        if isinstance(c, MembershipChange):
            continue
        head = f"  {c.symbol} {c.action} {c.kind} {c.key}"
        if c.object_id:
            head += f" ({c.object_id})"
        if c.kind == "team":
            doc = document(c.after or c.before)
            extra = f"group {doc.get('group')}"
            if c.action == "create":
                extra += f", template {doc.get('template')}"
            lines.append(f"{head}  [{extra}]")
        elif c.action == "update":
            lines.append(head)
            before, after = document(c.before), document(c.after)
            lines += [f"      {k}: {value(before.get(k))} -> {value(v)}" for k, v in after.items()]
        else:
            lines.append(head)
            lines += _document_lines(document(c.after if c.action == "create" else c.before),
                                     "+" if c.action == "create" else "-", "      ", limit)
    for name, added, removed in obj.relations():
        lines.append(f"  ~ {obj.kind} {obj.key}  {name} +{len(added)} -{len(removed)}")
        lines += _list_lines("+", added, "      ", limit)
        lines += _list_lines("-", removed, "      ", limit)
    return lines


def render_text(plan: Plan, *, list_limit: int = TEXT_LIST_LIMIT) -> str:
    """The plan as terraform-like text, ending with the summary line and a newline. Lists show at
    most ``list_limit`` names each; 0 shows only their counts."""
    lines: list[str] = []
    managed = managed_text(plan)
    if managed:
        lines += [f"Entra plan, made against managed state {managed[0]} ({managed[1]}).", ""]
    objects = group_by_object(plan)
    for section, _ in SECTIONS:
        in_section = [o for o in objects if o.section == section]
        if not in_section:
            continue
        lines.append(f"{section}:")
        for obj in in_section:
            lines += _object_text(obj, list_limit)
        lines.append("")
    lines += _notes_text(plan)
    lines.append(summary_line(plan))
    return "\n".join(lines) + "\n"


def _notes_text(plan: Plan) -> list[str]:
    lines: list[str] = []
    if plan.conflicts:
        lines.append(f"Conflicts ({len(plan.conflicts)}): not created; rename in the school data or adopt:")
        lines += [f"  ! {c.kind} {c.key}: unmanaged {c.kind} {c.object_id} has the same {c.field} "
                  f"{value(c.value)}" for c in plan.conflicts]
        lines.append("")
    shown = warnings_to_show(plan)
    if shown:
        lines.append(f"Warnings ({len(shown)}):")
        lines += [f"  ! {w.code}: {w.message}" for w in shown]
        lines.append("")
    return lines
