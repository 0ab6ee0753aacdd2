"""What the plan renderers share: grouping changes by object, counts, the summary line.
Pure and deterministic."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.plan.model import AnyChange, Plan
from reconciler.plan.operations import MembershipChange
from reconciler.plan.payloads import Payload

__all__ = [
    "LIST_FIELDS",
    "NO_CHANGES",
    "SECTIONS",
    "Counts",
    "ObjectChanges",
    "counts",
    "display_name",
    "document",
    "group_by_object",
    "managed_text",
    "scalar_fields",
    "summary_line",
    "truncated",
    "value",
    "warnings_to_show",
]

NO_CHANGES = "No changes. Entra matches the desired state."
#: how many members a text rendering lists per list before "... and N more"

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
#: fields of an object document shown as lists (with counts), in this order
LIST_FIELDS = ("owners", "members", "administrativeUnits", "groups")


@dataclass(frozen=True, slots=True)
class ObjectChanges:
    """The changes of one object, in plan order."""

    section: str
    kind: str  # administrativeUnit, group or team
    key: str
    changes: tuple[AnyChange, ...]

    def relations(self) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
        """``(relation name, added, removed)`` per relation with add/remove changes, in a fixed order."""
        out: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        for c in self.changes:
            if isinstance(c, MembershipChange):
                added, removed = out.get(c.noun, ((), ()))
                if c.action == "add":
                    added = c.members
                else:
                    removed = c.members
                out[c.noun] = (added, removed)
        order = ["owners", "members", "administrative units"]
        return [(name, *out[name]) for name in order if name in out]


def group_by_object(plan: Plan) -> list[ObjectChanges]:
    """The plan's changes grouped by section, then object key."""
    grouped: dict[tuple[int, str], list[AnyChange]] = {}
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
            n["add"] += c.after.memberships()
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


def document(payload: Payload | None) -> dict[str, Any]:
    """A change's side as a plan shows it: its JSON fields (none for an empty side)."""
    return payload.to_dict() if payload is not None else {}


def display_name(c: AnyChange) -> str:
    """The display name a change's sides give its object ("" when they give none)."""
    for side in (c.after, c.before):
        name = side.name() if side is not None else None
        if name:
            return str(name)
    return ""


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
