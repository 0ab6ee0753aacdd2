"""Plan renderings for people: terraform-like text (:func:`render_text`) and Markdown
(:func:`render_markdown`, in :mod:`reconciler.render_plan_markdown`). Pure and deterministic.

Changes are grouped by object (administrative units, groups, Teams; by key), symbols as
Terraform: ``+`` create/add, ``~`` update, ``-`` delete/remove, ``>`` archive, ``<`` unarchive.
The summary line counts changes and memberships (members, owners and AU placements, including
those bound when an object is created).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.plan import Change, Plan

__all__ = [
    "Counts",
    "ObjectChanges",
    "counts",
    "group_by_object",
    "managed_text",
    "render_markdown",
    "render_text",
    "summary_line",
]

NO_CHANGES = "No changes. Entra matches the desired state."
#: how many members a text rendering lists per list before "... and N more"
TEXT_LIST_LIMIT = 10

SECTIONS: tuple[tuple[str, frozenset[str]], ...] = (
    ("Administrative units", frozenset({"administrativeUnit", "administrativeUnitMembers"})),
    ("Groups", frozenset({"group", "groupMembers", "groupOwners", "groupAdministrativeUnits"})),
    ("Teams", frozenset({"team"})),
)
OBJECT_KIND = {
    "administrativeUnit": "administrativeUnit",
    "administrativeUnitMembers": "administrativeUnit",
    "group": "group",
    "groupMembers": "group",
    "groupOwners": "group",
    "groupAdministrativeUnits": "group",
    "team": "team",
}
RELATION = {
    "administrativeUnitMembers": "members",
    "groupMembers": "members",
    "groupOwners": "owners",
    "groupAdministrativeUnits": "administrative units",
}
SYMBOL = {"create": "+", "add": "+", "update": "~", "delete": "-", "remove": "-", "archive": ">",
          "unarchive": "<"}
#: fields of an object document shown as lists (with counts), in this order
LIST_FIELDS = ("owners", "members", "administrativeUnits", "groups")


@dataclass(frozen=True, slots=True)
class ObjectChanges:
    """The changes of one object, in plan order."""

    section: str
    kind: str  # administrativeUnit, group or team
    key: str
    changes: tuple[Change, ...]

    def relations(self) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
        """``(relation name, added, removed)`` per relation with add/remove changes, in a fixed order."""
        out: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        for c in self.changes:
            if c.kind in RELATION:
                added, removed = out.get(RELATION[c.kind], ((), ()))
                if c.action == "add":
                    added = c.members
                else:
                    removed = c.members
                out[RELATION[c.kind]] = (added, removed)
        order = ["owners", "members", "administrative units"]
        return [(name, *out[name]) for name in order if name in out]


def group_by_object(plan: Plan) -> list[ObjectChanges]:
    """The plan's changes grouped by section, then object key."""
    grouped: dict[tuple[int, str], list[Change]] = {}
    for c in plan.changes:
        section = next(i for i, (_, kinds) in enumerate(SECTIONS) if c.kind in kinds)
        grouped.setdefault((section, c.key), []).append(c)
    return [
        ObjectChanges(SECTIONS[s][0], OBJECT_KIND[changes[0].kind], key, tuple(changes))
        for (s, key), changes in sorted(grouped.items())
    ]


@dataclass(frozen=True, slots=True)
class Counts:
    create: int = 0
    update: int = 0
    delete: int = 0
    archive: int = 0
    unarchive: int = 0
    add: int = 0
    remove: int = 0


def counts(plan: Plan) -> Counts:
    n = {"create": 0, "update": 0, "delete": 0, "archive": 0, "unarchive": 0, "add": 0, "remove": 0}
    for c in plan.changes:
        if c.action in ("add", "remove"):
            n[c.action] += len(c.members)
            continue
        n[c.action] += 1
        if c.action == "create" and c.after is not None:
            n["add"] += sum(len(c.after.get(f) or ()) for f in ("owners", "members"))
    return Counts(**n)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary_line(plan: Plan) -> str:
    """``Plan: 3 to create, 1 to update, 0 to delete, 2 Teams to archive; 120 memberships to add, 4 to
    remove.`` or the no-changes line."""
    if plan.empty:
        return NO_CHANGES
    n = counts(plan)
    teams = f"{_plural(n.archive, 'Team')} to archive"
    if n.unarchive:
        teams += f", {n.unarchive} to unarchive"
    return (f"Plan: {n.create} to create, {n.update} to update, {n.delete} to delete, {teams}; "
            f"{_plural(n.add, 'membership')} to add, {n.remove} to remove.")


def managed_text(plan: Plan) -> tuple[str, str] | None:
    """``(short fingerprint, "3 administrative units, 4 groups, 3 Teams")``, or None if unknown."""
    if not plan.actual_fingerprint:
        return None
    m = plan.managed_counts
    return (plan.actual_fingerprint[:12],
            f"{_plural(m.get('administrativeUnit', 0), 'administrative unit')}, "
            f"{_plural(m.get('group', 0), 'group')}, {_plural(m.get('team', 0), 'Team')}")


def value(v: Any) -> str:
    """A field value as shown: JSON (strings quoted, ``null``)."""
    return json.dumps(v, ensure_ascii=False)


def scalar_fields(doc: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in doc.items() if k not in LIST_FIELDS and not isinstance(v, Mapping)]


def truncated(items: Sequence[str], limit: int) -> tuple[Sequence[str], int]:
    if len(items) <= limit:
        return items, 0
    return items[:limit], len(items) - limit


def warnings_to_show(plan: Plan) -> list[Any]:
    """Warnings except ``conflict`` ones (each conflict is shown in the conflicts section)."""
    return [w for w in plan.warnings if w.code != "conflict"]


# --- text ------------------------------------------------------------------------------------


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
    team = doc.get("team")
    if isinstance(team, Mapping):
        state = "archived " if team.get("archived") else ""
        lines.append(f"{indent}team: {state}Team {team.get('key')} goes with it")
    return lines


def _object_text(obj: ObjectChanges, limit: int) -> list[str]:
    lines: list[str] = []
    for c in obj.changes:
        if c.kind in RELATION:
            continue
        head = f"  {SYMBOL[c.action]} {c.action} {c.kind} {c.key}"
        if c.object_id:
            head += f" ({c.object_id})"
        if c.kind == "team":
            doc = c.after or c.before or {}
            extra = f"group {doc.get('group')}"
            if c.action == "create":
                extra += f", template {doc.get('template')}"
            lines.append(f"{head}  [{extra}]")
        elif c.action == "update":
            lines.append(head)
            before = c.before or {}
            lines += [f"      {k}: {value(before.get(k))} -> {value(v)}" for k, v in (c.after or {}).items()]
        else:
            lines.append(head)
            lines += _document_lines((c.after if c.action == "create" else c.before) or {},
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


def render_markdown(plan: Plan) -> str:
    """The plan as Markdown for a pull request or an email (see :mod:`reconciler.render_plan_markdown`)."""
    from reconciler.render_plan_markdown import render_markdown as _render

    return _render(plan)
