"""One summary of a plan (and, once applied, of its results) that every rendering reads.

Three parts, in the order people need them:

1. **counts** by school × kind × action (changes, and the memberships they move);
2. **needs you**: safety refusals (each states the limit and the way out), failed/partly done/
   skipped changes, conflicts with unmanaged objects, and people who are not in Entra counted per
   school;
3. **detail**: one row per change, with the object's display name beside its key and, after an
   apply, its status.

The school of an object comes from its key (``au:SCH1:year-7``, ``class:SCH1:2026-27:7A-Ma1``,
``mentor:SCH1:2026-27:7R``, ``team:class:SCH1:...``; the school part is percent-encoded by
:func:`reconciler.generate.generator.key_part`) or from :class:`ObjectInfo` given by the caller.

Pure and deterministic: reads only the plan's read surface (``action``, ``kind``, ``key``,
``members``, ``id``, ``after``/``before`` display names, ``warnings``, ``conflicts``, refusals).
Renderings: :mod:`reconciler.render.summary_format` (text, Markdown) and :meth:`Summary.to_dict` (JSON).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from reconciler.apply.result import ApplyResult
from reconciler.identity import group_of
from reconciler.model import DesiredState
from reconciler.plan.model import AnyChange, Plan
from reconciler.render.common import display_name

__all__ = [
    "NO_SCHOOL",
    "UNRESOLVED_CODE",
    "ConflictItem",
    "CountRow",
    "DetailRow",
    "NeedsYou",
    "ObjectInfo",
    "Summary",
    "SummaryContext",
    "context_from_desired",
    "school_of",
    "school_order",
    "summarise",
]

#: warning code of a person the plan could not find in Entra
UNRESOLVED_CODE = "unresolvedUser"
#: the school shown for an object whose key names none (a trust-wide object, a hand-written key)
NO_SCHOOL = "(no school)"
#: key prefixes whose second part is the school id
_SCHOOL_PREFIXES = frozenset({"au", "class", "mentor"})
#: statuses that need a person's attention
NEEDS_ATTENTION = ("failed", "partial", "skipped")


def school_of(key: str) -> str:
    """The school id in an object key, or :data:`NO_SCHOOL`."""
    rest = str(group_of(key))
    parts = rest.split(":")
    if len(parts) >= 2 and parts[0] in _SCHOOL_PREFIXES and parts[1]:
        return unquote(parts[1])
    return NO_SCHOOL


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    name: str
    school: str


@dataclass(frozen=True)
class SummaryContext:
    """What the desired state adds to a plan: names and schools of objects, schools of people."""

    objects: Mapping[str, ObjectInfo] = field(default_factory=dict)
    #: person reference -> the schools of the objects that want them
    people: Mapping[str, frozenset[str]] = field(default_factory=dict)


def context_from_desired(desired: DesiredState) -> SummaryContext:
    objects: dict[str, ObjectInfo] = {}
    people: dict[str, set[str]] = {}

    def want(refs: Iterable[str], school: str) -> None:
        for ref in refs:
            people.setdefault(ref, set()).add(school)

    for au in desired.administrative_units:
        school = school_of(au.key)
        objects[au.key] = ObjectInfo(au.display_name, school)
        want(au.members, school)
    for g in desired.groups:
        school = school_of(g.key)
        objects[g.key] = ObjectInfo(g.display_name, school)
        want(g.members | g.owners, school)
    for t in desired.teams:
        group = objects.get(t.group)
        objects[t.key] = ObjectInfo(group.name if group else "", group.school if group else school_of(t.key))
    return SummaryContext(objects, {ref: frozenset(s) for ref, s in people.items()})


@dataclass(frozen=True, slots=True)
class CountRow:
    school: str
    kind: str
    action: str
    #: number of changes
    changes: int
    #: memberships moved: members of an add/remove, members and owners bound by a create
    memberships: int
    #: changes that failed, partly failed or were skipped (after an apply)
    not_done: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"school": self.school, "kind": self.kind, "action": self.action, "changes": self.changes,
                "memberships": self.memberships, "notDone": self.not_done}


@dataclass(frozen=True, slots=True)
class DetailRow:
    school: str
    change_id: str
    action: str
    kind: str
    key: str
    name: str
    memberships: int
    #: ``planned`` before an apply, else the change's result status
    status: str = "planned"
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"school": self.school, "id": self.change_id, "action": self.action,
                             "kind": self.kind, "key": self.key, "name": self.name,
                             "memberships": self.memberships, "status": self.status}
        if self.message:
            d["message"] = self.message
        return d


@dataclass(frozen=True, slots=True)
class ConflictItem:
    school: str
    kind: str
    key: str
    name: str
    field: str
    value: str
    object_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"school": self.school, "kind": self.kind, "key": self.key, "name": self.name,
                "field": self.field, "value": self.value, "objectId": self.object_id}


@dataclass(frozen=True)
class NeedsYou:
    refusals: tuple[str, ...] = ()
    failures: tuple[DetailRow, ...] = ()
    conflicts: tuple[ConflictItem, ...] = ()
    #: (school, number of distinct people not in Entra), by school
    unresolved: tuple[tuple[str, int], ...] = ()
    #: distinct people not in Entra, all schools
    unresolved_people: int = 0

    @property
    def empty(self) -> bool:
        return not (self.refusals or self.failures or self.conflicts or self.unresolved_people)

    def to_dict(self) -> dict[str, Any]:
        return {
            "refusals": list(self.refusals),
            "failures": [f.to_dict() for f in self.failures],
            "conflicts": [c.to_dict() for c in self.conflicts],
            "unresolvedPeople": self.unresolved_people,
            "unresolvedBySchool": [{"school": s, "people": n} for s, n in self.unresolved],
        }


@dataclass(frozen=True)
class Summary:
    counts: tuple[CountRow, ...]
    needs_you: NeedsYou
    detail: tuple[DetailRow, ...]
    #: True when an apply's results are included
    applied: bool = False

    @property
    def schools(self) -> tuple[str, ...]:
        return tuple(sorted({r.school for r in self.counts}, key=school_order))

    @property
    def total_changes(self) -> int:
        return len(self.detail)

    @property
    def total_memberships(self) -> int:
        return sum(r.memberships for r in self.counts)

    def status_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.detail:
            out[r.status] = out.get(r.status, 0) + 1
        return dict(sorted(out.items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": self.total_changes,
            "memberships": self.total_memberships,
            "applied": self.applied,
            "statuses": self.status_counts(),
            "counts": [r.to_dict() for r in self.counts],
            "needsYou": self.needs_you.to_dict(),
            "detail": [r.to_dict() for r in self.detail],
        }


def school_order(school: str) -> tuple[int, list[str | int], str]:
    """Schools in natural order (SCH2 before SCH10), the objects of no school last."""
    chunks = re.split(r"(\d+)", school)
    parts: list[str | int] = [int(p) if i % 2 else p.lower() for i, p in enumerate(chunks)]
    return (1 if school == NO_SCHOOL else 0, parts, school)


def _memberships(c: AnyChange) -> int:
    if c.action in ("add", "remove"):
        return len(c.members)
    if c.action == "create" and c.after is not None:
        return int(c.after.memberships())
    return 0


def _name(c: AnyChange, ctx: SummaryContext) -> str:
    info = ctx.objects.get(c.key)
    if info is not None and info.name:
        return info.name
    return display_name(c)


def _school(key: str, ctx: SummaryContext) -> str:
    info = ctx.objects.get(key)
    return info.school if info is not None else school_of(key)


def _keys_in_message(message: str) -> list[str]:
    """The object keys an ``unresolvedUser`` warning names (after ``": "``, cut at ``" and N more"``)."""
    _, sep, tail = message.partition(": ")
    if not sep:
        return []
    tail = tail.split(" and ", 1)[0] if " more" in tail else tail
    return [k.strip() for k in tail.split(", ") if k.strip()]


def _unresolved(plan: Plan, ctx: SummaryContext) -> tuple[tuple[tuple[str, int], ...], int]:
    by_school: dict[str, set[str]] = {}
    people: set[str] = set()
    for w in plan.warnings:
        if w.code != UNRESOLVED_CODE:
            continue
        ref = w.ref or w.message
        people.add(ref)
        schools = ctx.people.get(ref)
        if not schools:
            keys = [w.key] if w.key else _keys_in_message(w.message)
            schools = frozenset(_school(k, ctx) for k in keys) or frozenset({NO_SCHOOL})
        for s in schools:
            by_school.setdefault(s, set()).add(ref)
    rows = tuple((s, len(by_school[s])) for s in sorted(by_school, key=school_order))
    return rows, len(people)


def summarise(plan: Plan, result: ApplyResult | None = None, ctx: SummaryContext | None = None) -> Summary:
    """The summary of ``plan`` (and of ``result``, the apply of that plan, when given)."""
    ctx = ctx or SummaryContext()
    statuses = {r.change_id: r for r in result.results} if result is not None else {}
    detail: list[DetailRow] = []
    tally: dict[tuple[str, str, str], list[int]] = {}
    for c in plan.changes:
        school = _school(c.key, ctx)
        r = statuses.get(c.id)
        status = r.status if r is not None else ("planned" if result is None else "not applied")
        row = DetailRow(school, c.id, c.action, c.kind, c.key, _name(c, ctx), _memberships(c), status,
                        r.message if r is not None else "")
        detail.append(row)
        t = tally.setdefault((school, c.kind, c.action), [0, 0, 0])
        t[0] += 1
        t[1] += row.memberships
        t[2] += status in NEEDS_ATTENTION
    counts = tuple(
        CountRow(s, k, a, *tally[(s, k, a)])
        for s, k, a in sorted(tally, key=lambda t: (school_order(t[0]), t[1], t[2]))
    )
    detail.sort(key=lambda d: (school_order(d.school), d.key, d.kind, d.action))
    conflicts = tuple(
        ConflictItem(_school(c.key, ctx), c.kind, c.key,
                     ctx.objects[c.key].name if c.key in ctx.objects else "", c.field, c.value, c.object_id)
        for c in plan.conflicts
    )
    unresolved, people = _unresolved(plan, ctx)
    needs = NeedsYou(
        refusals=plan.refusals,
        failures=tuple(d for d in detail if d.status in NEEDS_ATTENTION),
        conflicts=tuple(sorted(conflicts, key=lambda c: (school_order(c.school), c.key, c.field))),
        unresolved=unresolved,
        unresolved_people=people,
    )
    return Summary(counts, needs, tuple(detail), applied=result is not None)
