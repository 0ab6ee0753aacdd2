"""One run's steps, shared by ``plan``, ``apply``, ``sync`` and the scheduler: read, diff, check,
apply, record. Pure orchestration over the :class:`~reconciler.ports.Directory` port; the CLI
wires the real directory, prints and decides about confirmation.

A plan refused by a safety limit carries the reasons as warnings with code ``safetyRefusal``,
so a saved plan remembers that it was refused and ``apply PLAN`` refuses it too unless forced.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from entra_sync.runs.history import History, RunStatus, run_status_for
from reconciler.apply.executor import apply as apply_plan
from reconciler.apply.result import ApplyResult
from reconciler.errors import EntraSyncError, SafetyError, StalePlanError
from reconciler.model import ActualState, DesiredState
from reconciler.plan.diff import diff
from reconciler.plan.fingerprint import fingerprint
from reconciler.plan.model import Plan, Warning
from reconciler.plan.safety import SafetyLimits, check
from reconciler.ports import Directory, Progress

__all__ = [
    "SAFETY_CODE",
    "Planned",
    "RunRecord",
    "SyncOutcome",
    "apply_saved",
    "make_plan",
    "refusals",
    "sync",
]

log = logging.getLogger(__name__)

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
    desired: DesiredState,
    directory: Directory,
    limits: SafetyLimits,
    progress: Progress | None = None,
) -> Planned:
    """Read the directory, diff, and record any safety refusal in the plan (nothing is written)."""
    actual = directory.read(desired, progress)
    plan = diff(desired, actual)
    reasons = check(plan, desired, actual, limits)
    if reasons:
        extra = tuple(Warning(code=SAFETY_CODE, message=r) for r in reasons)
        plan = replace(plan, warnings=plan.warnings + extra)
    return Planned(actual=actual, plan=plan)


def apply_saved(
    plan: Plan,
    directory: Directory,
    limits: SafetyLimits,
    *,
    force: bool = False,
    progress: Progress | None = None,
    max_workers: int = 4,
) -> ApplyResult:
    """Apply a plan made earlier (``plan --out``), exactly as saved.

    Must refuse a stale plan: the managed state is read again and its fingerprint must equal the
    one the plan was made against. Must refuse a plan that was refused by safety when it was made,
    or that breaks the delete limits now, unless ``force``.
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
    reasons = list(refusals(plan))
    # the delete and removal limits hold for a saved plan too (the empty-collection rule was
    # checked, and recorded, when the plan was made)
    reasons += check(plan, DesiredState(), actual, replace(limits, allow_empty=True))
    if reasons and not force:
        raise SafetyError(sorted(set(reasons)))
    return apply_plan(plan, directory, actual, progress=progress, max_workers=max_workers)


class RunRecord:
    """One run in the run history, or nowhere when there is none: its plan, its results, and how
    it ended. As a context manager it records an exception as the end (``refused`` for a safety
    refusal, ``interrupted`` for ``interrupted_by``, else ``failed``) and a run left open as
    ``succeeded`` (nothing needed applying)."""

    def __init__(
        self,
        history: History | None,
        kind: str,
        config_summary: Mapping[str, Any] | None = None,
        *,
        interrupted_by: tuple[type[BaseException], ...] = (KeyboardInterrupt,),
    ) -> None:
        self._history = history
        self._interrupted_by = interrupted_by
        self._open = history is not None
        self.run_id = history.start_run(kind, config_summary) if history is not None else None

    def __enter__(self) -> RunRecord:
        return self

    def plan(self, plan: Plan) -> None:
        if self._history is not None and self.run_id is not None:
            self._history.record_plan(self.run_id, plan)

    def results(self, result: ApplyResult) -> None:
        if self._history is not None and self.run_id is not None:
            self._history.record_results(self.run_id, result)
        self.finish(run_status_for(result))

    def finish(self, status: RunStatus, error: str | None = None) -> None:
        if self._open and self._history is not None and self.run_id is not None:
            self._history.finish_run(self.run_id, status, error)
            self._open = False

    def __exit__(self, _kind: type[BaseException] | None, exc: BaseException | None, _tb: object) -> None:
        if exc is None:
            self.finish("succeeded")
        elif isinstance(exc, SafetyError):
            self.finish("refused", str(exc))
        elif isinstance(exc, self._interrupted_by):
            self.finish("interrupted", str(exc) or type(exc).__name__)
        elif isinstance(exc, EntraSyncError):
            self.finish("failed", str(exc))
        else:
            self.finish("failed", f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class SyncOutcome:
    plan: Plan
    result: ApplyResult | None  # None: dry run, refused, or nothing to do
    run_id: int | None = None
    #: the safety limits that refused the plan (nothing was written)
    refused: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.refused and (self.result is None or self.result.ok)


def sync(
    desired: DesiredState,
    directory: Directory,
    limits: SafetyLimits,
    *,
    force: bool = False,
    dry_run: bool = False,
    history: History | None = None,
    config_summary: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    max_workers: int = 4,
    kind: str = "sync",
) -> SyncOutcome:
    """Plan, check safety, apply and record one run.

    Must record the run in ``history`` (when given) whatever happens: the plan, the results, and
    the error that stopped it. Must not write anything to the directory on a dry run or when a
    safety limit refuses the plan (unless ``force``); a refused plan is returned with the reasons in
    ``refused`` (not raised), so the caller can show the plan before the refusal.
    """
    if dry_run:
        kind = f"{kind} (dry run)"
    with RunRecord(history, kind, config_summary) as record:
        planned = make_plan(desired, directory, limits, progress)
        record.plan(planned.plan)
        reasons = refusals(planned.plan)
        if reasons and not force and not dry_run:
            record.finish("refused", "plan refused by safety limits")
            return SyncOutcome(planned.plan, None, record.run_id, refused=reasons)
        if dry_run or planned.plan.empty:
            return SyncOutcome(planned.plan, None, record.run_id)
        if reasons:
            log.warning("safety limits overridden with --force: %d refusal(s)", len(reasons))
        result = apply_plan(
            planned.plan, directory, planned.actual, progress=progress, max_workers=max_workers
        )
        record.results(result)
        return SyncOutcome(planned.plan, result, record.run_id)
