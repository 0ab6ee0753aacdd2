"""Safety limits, checked before any write (octoDNS thresholds, Entra Connect's deletion limit).

:func:`check` returns the reasons a plan is refused, or an empty list. The caller shows the plan
first, then raises :class:`~reconciler.errors.SafetyError` with the reasons unless forced. Each
reason states the counts, the limit, what would go, and how to override.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.model import ActualState, DesiredState
from reconciler.plan.align import align
from reconciler.plan.diff_support import format_keys
from reconciler.plan.model import AnyChange, Plan
from reconciler.plan.operations import RemoveAdministrativeUnitMembers, RemoveGroupMembers, RemoveGroupOwners

__all__ = ["SafetyLimits", "check"]

_KIND_NAMES = {"administrativeUnit": "administrative units", "group": "groups", "team": "Teams"}


@dataclass(frozen=True, slots=True)
class SafetyLimits:
    #: refuse deleting more than this fraction of the managed objects of a kind ...
    max_delete_fraction: float = 0.3
    #: ... once at least this many managed objects of that kind exist (and the member-removal
    #: fraction once an object has at least this many members or owners)
    min_objects_for_fraction: int = 10
    #: refuse more deletes than this in one plan, whatever the fraction (Entra Connect's default)
    max_deletes: int = 500
    #: refuse removing more than this fraction of one object's current members or owners
    max_member_removal_fraction: float = 0.3
    #: allow a desired collection to be empty while managed objects of that kind exist
    allow_empty: bool = False


def _override(setting: str) -> str:
    return f"use --force for one run, or raise safety.{setting} in the configuration"


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def check(plan: Plan, desired: DesiredState, actual: ActualState, limits: SafetyLimits) -> list[str]:
    """The reasons ``plan`` must not be applied under ``limits`` (empty: it may be applied).

    Must: look at deletes, membership removals and empty desired collections; be deterministic.
    Must-not: raise, print or write; it only reports.
    """
    reasons: list[str] = []
    actual = align(desired, actual)  # the plan spells keys as the desired state does
    deletes = [c for c in plan.changes if c.action == "delete"]
    # a Team is never deleted, but archiving most of them at once is as suspicious as deleting
    archives = [c for c in plan.changes if c.action == "archive" and c.kind == "team"]
    reasons += _delete_fraction([*deletes, *archives], actual, limits)
    if len(deletes) > limits.max_deletes:
        reasons.append(
            f"{len(deletes)} objects would be deleted, more than the limit of {limits.max_deletes} per run "
            f"({_override('max_deletes')}): {format_keys(c.key for c in deletes)}"
        )
    reasons += _member_removals(plan.changes, actual, limits)
    if not limits.allow_empty:
        reasons += _empty_collections(desired, actual)
    return reasons


def _delete_fraction(deletes: Sequence[AnyChange], actual: ActualState, limits: SafetyLimits) -> list[str]:
    # live objects only: archived Teams (and the groups kept for them) pile up year after year and
    # must not dilute the fraction until a mass archive or delete passes unnoticed
    retired = {k for k, t in actual.teams.items() if t.archived}
    managed = {
        "administrativeUnit": len(actual.administrative_units),
        "group": sum(1 for k in actual.groups if k not in retired),
        "team": len(actual.teams) - len(retired),
    }
    out: list[str] = []
    for kind, total in managed.items():
        keys = [c.key for c in deletes if c.kind == kind]
        if not keys or total < limits.min_objects_for_fraction:
            continue
        fraction = len(keys) / total
        if fraction > limits.max_delete_fraction:
            verb = "archived" if kind == "team" else "deleted"
            out.append(
                f"{len(keys)} of {total} managed {_KIND_NAMES[kind]} would be {verb} ({_pct(fraction)}), "
                f"more than the limit of {_pct(limits.max_delete_fraction)} "
                f"({_override('max_delete_fraction')}): {format_keys(keys)}"
            )
    return out


def _member_removals(changes: Sequence[AnyChange], actual: ActualState, limits: SafetyLimits) -> list[str]:
    over: list[str] = []
    for c in changes:
        if not isinstance(c, RemoveAdministrativeUnitMembers | RemoveGroupMembers | RemoveGroupOwners):
            continue
        if isinstance(c, RemoveAdministrativeUnitMembers):
            au = actual.administrative_units.get(c.key)
            current = len(au.members) if au is not None else 0
        else:
            g = actual.groups.get(c.key)
            current = 0 if g is None else len(g.owners if isinstance(c, RemoveGroupOwners) else g.members)
        if current < limits.min_objects_for_fraction:
            continue
        fraction = len(c.members) / current
        if fraction > limits.max_member_removal_fraction:
            over.append(f"{c.key} (-{len(c.members)} of {current} {c.noun}, {_pct(fraction)})")
    if not over:
        return []
    return [
        f"{len(over)} object{'s' if len(over) != 1 else ''} would lose more than "
        f"{_pct(limits.max_member_removal_fraction)} of their members or owners "
        f"({_override('max_member_removal_fraction')}): {format_keys(over)}"
    ]


def _empty_collections(desired: DesiredState, actual: ActualState) -> list[str]:
    # only objects an empty collection would retire count: an archived Team stays archived, and a
    # group with a Team is never deleted, so once retired they must not refuse every later run
    pairs = (
        ("administrativeUnit", "administrativeUnits", bool(desired.administrative_units),
         [a.key for a in actual.administrative_units.values()]),
        ("group", "groups", bool(desired.groups),
         [g.key for g in actual.groups.values() if g.key not in actual.teams]),
        ("team", "teams", bool(desired.teams), [t.key for t in actual.teams.values() if not t.archived]),
    )
    out: list[str] = []
    for kind, field, wanted, have in pairs:
        if not wanted and have:
            out.append(
                f"the desired state has no {_KIND_NAMES[kind]} ({field} is empty) while {len(have)} managed "
                f"{_KIND_NAMES[kind]} exist; an empty source is usually a broken export, not a wish to "
                f"remove everything (check the source; if it is meant to be empty, review the plan and "
                f"run once with --force): {format_keys(have)}"
            )
    return out
