"""The deciding steps of a run, over the :class:`~reconciler.ports.Directory` port: make a plan
(read, diff, safety), check a saved plan against Entra now, choose what ``adopt`` takes over.
Nothing here writes; :mod:`entra_sync.pipeline` runs them inside a locked, recorded run (and
``entra-sync plan`` calls :func:`make_plan` on its own: it never writes)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from entra_sync.runs.history import History
from reconciler.apply.result import ChangeResult
from reconciler.errors import InputError, StalePlanError
from reconciler.model import ActualState, DesiredState
from reconciler.plan.diff import diff
from reconciler.plan.fingerprint import fingerprint
from reconciler.plan.model import Conflict, Plan, Warning
from reconciler.plan.safety import SafetyLimits, check
from reconciler.ports import Directory, Progress
from reconciler.render.summary import school_of

log = logging.getLogger(__name__)

__all__ = [
    "SCOPE_CODE",
    "Planned",
    "check_saved",
    "count_throttled",
    "make_plan",
    "plan_school",
    "recovered_creates",
    "scope_actual",
    "scope_desired",
    "select_adoptions",
]

#: warning code recording that a plan was made for one school only (its ``key`` is the school id)
SCOPE_CODE = "schoolScope"


def _in_school(key: str, school: str) -> bool:
    return school_of(key) == school


def scope_desired(desired: DesiredState, school: str | None) -> DesiredState:
    """Only ``school``'s objects of ``desired`` (the school is in each key; None: all of them)."""
    if school is None:
        return desired
    return replace(
        desired,
        administrative_units=tuple(a for a in desired.administrative_units if _in_school(a.key, school)),
        groups=tuple(g for g in desired.groups if _in_school(g.key, school)),
        teams=tuple(t for t in desired.teams if _in_school(t.key, school) or _in_school(t.group, school)),
    )


def scope_actual(actual: ActualState, school: str | None) -> ActualState:
    """Only ``school``'s managed objects of ``actual``: other schools' objects are neither
    compared nor ever planned for deletion, and safety limits count this school's objects."""
    if school is None:
        return actual
    return replace(
        actual,
        administrative_units={k: v for k, v in actual.administrative_units.items() if _in_school(k, school)},
        groups={k: v for k, v in actual.groups.items() if _in_school(k, school)},
        teams={k: v for k, v in actual.teams.items() if _in_school(k, school) or _in_school(v.group, school)},
    )


def plan_school(plan: Plan) -> str | None:
    """The school a plan was made for (``--school``), or None for the whole tenant."""
    for w in plan.warnings:
        if w.code == SCOPE_CODE and w.key:
            return w.key
    return None


@dataclass(frozen=True)
class Planned:
    actual: ActualState
    plan: Plan

    @property
    def refusals(self) -> tuple[str, ...]:
        return self.plan.refusals


def make_plan(
    desired: DesiredState, directory: Directory, limits: SafetyLimits, progress: Progress | None = None,
    *, school: str | None = None,
) -> Planned:
    """Read the directory, diff, and record any safety refusal in the plan (nothing is written).

    ``school``: plan that school's objects only (desired and managed actual state alike)."""
    desired = scope_desired(desired, school)
    actual = scope_actual(directory.read(desired, progress), school)
    plan = diff(desired, actual)
    reasons = check(plan, desired, actual, limits)
    if reasons:
        plan = replace(plan, refusals=tuple(reasons))
    if school is not None:
        scope = Warning(code=SCOPE_CODE, message=f"planned for school {school} only", key=school)
        plan = replace(plan, warnings=(*plan.warnings, scope))
    return Planned(actual=actual, plan=plan)


def check_saved(
    plan: Plan, directory: Directory, limits: SafetyLimits, progress: Progress | None = None
) -> tuple[ActualState, tuple[str, ...]]:
    """Check a plan made earlier (``plan --out``) against Entra now: the state it acts on, and the
    safety refusals (those recorded when it was made, and the delete limits now).

    Raises :class:`StalePlanError` when the managed state is not the one the plan was made against.
    """
    # read people the way the plan named them, so the fingerprints compare like with like
    read = directory.read(DesiredState(user_match=plan.user_match), progress)
    actual = scope_actual(read, plan_school(plan))
    now = fingerprint(actual)
    if plan.actual_fingerprint != now:
        raise StalePlanError(
            "stale plan: the managed objects in Entra have changed since this plan was made "
            f"(plan made against {plan.actual_fingerprint[:12] or 'nothing'}, now {now[:12]}); "
            "run `entra-sync plan` again and review the new plan"
        )
    # the empty-collection rule was checked, and recorded, when the plan was made
    reasons = [*plan.refusals, *check(plan, DesiredState(), actual, replace(limits, allow_empty=True))]
    return actual, tuple(sorted(set(reasons)))


def select_adoptions(
    plan: Plan, keys: Sequence[str] = (), object_id: str | None = None
) -> tuple[Conflict, ...]:
    """The conflicts of ``plan`` to adopt: those of ``keys`` (all when empty), the one object
    ``object_id`` when given. Raises :class:`InputError` for an unknown key or an ambiguous one."""
    conflicts = [c for c in plan.conflicts if not keys or c.key in keys]
    unknown = sorted(set(keys) - {c.key for c in plan.conflicts})
    if unknown:
        raise InputError(
            f"no conflict to adopt for {', '.join(unknown)}; objects in conflict: "
            + (", ".join(sorted({c.key for c in plan.conflicts})) or "none")
        )
    if object_id is not None:
        conflicts = [c for c in conflicts if c.object_id == object_id]
        if not conflicts:
            named = ", ".join(keys or ["any desired object"])
            raise InputError(f"{object_id} is not in conflict with {named}")
    by_key: dict[str, set[str]] = {}
    for c in conflicts:
        by_key.setdefault(c.key, set()).add(c.object_id)
    problems: list[str] = []
    for key, ids in sorted(by_key.items()):
        if len(ids) > 1:
            problems.append(
                f"{len(ids)} existing objects collide with {key} ({', '.join(sorted(ids))}); "
                f"choose one: entra-sync adopt {key} --object-id ID"
            )
    # one existing object can become at most one desired object: identical display names across
    # schools ("Year 7" in two academies) must never be guessed
    by_object: dict[str, set[str]] = {}
    for c in plan.conflicts:  # all of the plan's keys, not only those asked for
        by_object.setdefault(c.object_id, set()).add(c.key)
    for c in conflicts:
        keys_of = by_object.get(c.object_id, set())
        chosen = bool(keys) and object_id is not None and len({x.key for x in conflicts}) == 1
        if len(keys_of) > 1 and not chosen:
            problems.append(
                f"existing {c.kind} {c.object_id} (same {c.field} {c.value!r}) matches {len(keys_of)} "
                f"desired objects ({', '.join(sorted(keys_of))}); it can become only one: rename it in "
                f"Entra, or name the one key it is: entra-sync adopt KEY --object-id {c.object_id} --apply"
            )
    if problems:
        raise AmbiguousAdoptionError("ambiguous adoption, nothing was stamped:\n  " + "\n  ".join(
            dict.fromkeys(problems)))
    return tuple(conflicts)


class AmbiguousAdoptionError(InputError):
    """An existing object matches more than one desired key (or a key several objects)."""


def recovered_creates(store: History, actual: ActualState, *, runs: int = 20) -> list[ChangeResult]:
    """Creates that an interrupted run (one of the newest ``runs``) sent and Graph applied, but whose
    outcome never reached the run store (the process was killed in between): each unsettled create
    whose key Graph now holds under an id no run recorded creating. Recorded in the run that finds
    them, so the history says who created every managed object."""
    interrupted = [s.run_id for s in store.list_runs(runs) if s.status == "interrupted"]
    if not interrupted:  # the usual case: no need to read what every run created
        return []
    known = set(store.created_since(0))
    found: list[ChangeResult] = []
    for run_id in interrupted:
        for rc in store.get_run(run_id).changes:
            change = rc.change
            oid = actual.ids.get(change.key)
            if rc.result is not None or change.action != "create" or oid is None or oid in known:
                continue
            if change.kind not in ("group", "administrativeUnit"):
                continue
            known.add(oid)
            found.append(ChangeResult(
                change_id=f"recovered:{change.id}", action="create", kind=change.kind, key=change.key,
                status="done", object_id=oid,
                message=f"created by interrupted run {run_id} "
                "(its outcome never reached the run store)",
            ))  # fmt: skip
    for r in found:
        log.warning("%s %s: %s", r.kind, r.key, r.message)
    return found


@contextmanager
def count_throttled(directory: object, record: Any) -> Iterator[None]:
    """Note on ``record`` (its ``throttled_requests``) the requests Graph throttled in this run,
    when the directory counts them (a ``throttled_requests`` attribute: the Graph client's, or the
    directory's own)."""

    def count() -> int | None:
        for owner in (directory, getattr(directory, "client", None), getattr(directory, "_client", None)):
            n = getattr(owner, "throttled_requests", None)
            if isinstance(n, int):
                return n
        return None

    before = count()
    try:
        yield
    finally:
        after = count()
        if after is not None:
            record.throttled_requests = after - (before or 0)
