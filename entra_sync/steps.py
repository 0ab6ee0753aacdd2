"""The deciding steps of a run, over the :class:`~reconciler.ports.Directory` port: make a plan
(read, diff, safety), check a saved plan against Entra now, choose what ``adopt`` takes over.
Nothing here writes; :mod:`entra_sync.pipeline` runs them inside a locked, recorded run (and
``entra-sync plan`` calls :func:`make_plan` on its own: it never writes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from reconciler.errors import InputError, StalePlanError
from reconciler.model import ActualState, DesiredState
from reconciler.plan.diff import diff
from reconciler.plan.fingerprint import fingerprint
from reconciler.plan.model import Conflict, Plan, Warning
from reconciler.plan.safety import SafetyLimits, check
from reconciler.ports import Directory, Progress

__all__ = ["SAFETY_CODE", "Planned", "check_saved", "make_plan", "refusals", "select_adoptions"]

#: warning code of a safety refusal recorded in a plan
SAFETY_CODE = "safetyRefusal"


@dataclass(frozen=True)
class Planned:
    actual: ActualState
    plan: Plan

    @property
    def refusals(self) -> tuple[str, ...]:
        return refusals(self.plan)


def refusals(plan: Plan) -> tuple[str, ...]:
    """The safety refusals recorded in ``plan``."""
    return tuple(w.message for w in plan.warnings if w.code == SAFETY_CODE)


def make_plan(
    desired: DesiredState, directory: Directory, limits: SafetyLimits, progress: Progress | None = None
) -> Planned:
    """Read the directory, diff, and record any safety refusal in the plan (nothing is written)."""
    actual = directory.read(desired, progress)
    plan = diff(desired, actual)
    reasons = check(plan, desired, actual, limits)
    if reasons:
        extra = tuple(Warning(code=SAFETY_CODE, message=r) for r in reasons)
        plan = replace(plan, warnings=plan.warnings + extra)
    return Planned(actual=actual, plan=plan)


def check_saved(
    plan: Plan, directory: Directory, limits: SafetyLimits, progress: Progress | None = None
) -> tuple[ActualState, tuple[str, ...]]:
    """Check a plan made earlier (``plan --out``) against Entra now: the state it acts on, and the
    safety refusals (those recorded when it was made, and the delete limits now).

    Raises :class:`StalePlanError` when the managed state is not the one the plan was made against.
    """
    # read people the way the plan named them, so the fingerprints compare like with like
    actual = directory.read(DesiredState(user_match=plan.user_match), progress)
    now = fingerprint(actual)
    if plan.actual_fingerprint != now:
        raise StalePlanError(
            "stale plan: the managed objects in Entra have changed since this plan was made "
            f"(plan made against {plan.actual_fingerprint[:12] or 'nothing'}, now {now[:12]}); "
            "run `entra-sync plan` again and review the new plan"
        )
    # the empty-collection rule was checked, and recorded, when the plan was made
    reasons = [*refusals(plan), *check(plan, DesiredState(), actual, replace(limits, allow_empty=True))]
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
    for key, ids in sorted(by_key.items()):
        if len(ids) > 1:
            raise InputError(
                f"{len(ids)} existing objects collide with {key} ({', '.join(sorted(ids))}); "
                f"choose one: entra-sync adopt {key} --object-id ID"
            )
    return tuple(conflicts)
