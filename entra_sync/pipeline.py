"""The one run pipeline: every command that changes Entra (``sync``, ``schedule``, ``apply PLAN``,
``apply --desired``, ``adopt``, the web console and the fleet worker) runs through
:class:`RunPipeline`, so each of them is locked, recorded and reported the same way.

The steps of a run, in order:

1. take the run lock (one run at a time per run store), and close as ``interrupted`` any run of
   the store still marked ``running``: its process died (SIGKILL, power cut), since it no longer
   holds the lock; what it recorded is kept;
2. open the run record, *before* anything can fail, so that a run that stops early (a missing
   export, bad credentials, a refused sign-in, a network error) is recorded and reported as this
   run with its error, never as the previous one;
3. read the source (or load the saved plan), open the directory, read, diff, check safety;
4. show the plan (a callback), ask the ``confirm`` callback;
5. apply, recording each change's outcome in the run store as it settles;
6. record how the run ended, then write the run's report.

No printing here: the CLI, the console or a worker passes callbacks. A refused plan carries its
reasons (``Plan.refusals``): ``apply PLAN`` refuses it too unless forced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from entra_sync.runs.history import History
from entra_sync.runs.lock import LockHeldError, RunLock
from entra_sync.runs.logcontext import RUN_ID
from entra_sync.runs.record import RunRecord
from entra_sync.steps import (
    Planned,
    check_saved,
    count_throttled,
    make_plan,
    recovered_creates,
    select_adoptions,
)
from entra_sync.store.values import DRY_RUN_SUFFIX
from reconciler.apply.executor import apply as apply_plan
from reconciler.apply.result import ApplyResult, ChangeResult
from reconciler.errors import EntraSyncError
from reconciler.model import DesiredState
from reconciler.plan.model import Conflict, Plan
from reconciler.plan.safety import SafetyLimits
from reconciler.ports import Directory, Progress
from reconciler.render.summary import context_from_desired

__all__ = [
    "AdoptHooks",
    "AdoptOutcome",
    "AdoptRequest",
    "AdoptingDirectory",
    "DirectoryFactory",
    "HoldPlan",
    "Planned",
    "Recorded",
    "ReportWriter",
    "RunHooks",
    "RunObserver",
    "RunOutcome",
    "RunPipeline",
    "RunRecord",
    "RunRequest",
    "check_saved",
    "make_plan",
    "recovered_creates",
    "select_adoptions",
]

log = logging.getLogger(__name__)

class AdoptingDirectory(Directory, Protocol):
    """A directory that can also take over an existing object (``entra-sync adopt``)."""

    def adopt(self, kind: Literal["administrativeUnit", "group"], object_id: str, key: str) -> None: ...


#: opens the directory for one run (a Graph connection, an emulator); closed when the run is done
DirectoryFactory = Callable[[], AbstractContextManager[AdoptingDirectory]]
#: writes the report of a recorded run and returns where
ReportWriter = Callable[[History, int], Path]
#: told a run's id and its report (None: no report) once the run is closed
Recorded = Callable[[int, Path | None], None]
#: holds a plan that a safety limit refused for an approver (the console's queue): told the run's
#: id, the plan, the refusals and who asked for the run; returns the held plan's id
HoldPlan = Callable[[int | None, Plan, tuple[str, ...], str | None], int]
#: told the run-result document of every run once it is closed and reported (notifications,
#: metrics, retention); an observer that raises is logged and never fails the run
RunObserver = Callable[[Mapping[str, Any]], None]


@dataclass(frozen=True)
class RunRequest:
    """What to run: plan and apply a desired state (``desired``), or apply a saved plan
    (``saved_plan``). Both are read inside the run, so a source that cannot be read is recorded."""

    kind: str
    desired: Callable[[], DesiredState] | None = None
    saved_plan: Callable[[], Plan] | None = None
    limits: SafetyLimits = field(default_factory=SafetyLimits)
    #: apply even when a safety limit refuses the plan (this run only)
    force: bool = False
    #: stop after the plan (a refused plan still ends ``refused``)
    dry_run: bool = False
    config_summary: Mapping[str, Any] | None = None
    max_workers: int = 40
    #: plan only this school's objects (``--school``); a saved plan carries its own
    school: str | None = None
    #: who asked for the run (a console user), for a held plan's "requested by"
    requested_by: str | None = None

    def __post_init__(self) -> None:
        if (self.desired is None) == (self.saved_plan is None):
            raise ValueError("a run needs either a desired state or a saved plan")


@dataclass(frozen=True)
class AdoptRequest:
    """Take over existing objects that collide with desired ones (all, or those of ``keys``)."""

    desired: Callable[[], DesiredState]
    keys: tuple[str, ...] = ()
    object_id: str | None = None
    limits: SafetyLimits = field(default_factory=SafetyLimits)
    config_summary: Mapping[str, Any] | None = None
    kind: str = "adopt"
    #: stamp the objects; False (the default): a dry run that only says what would be adopted
    apply: bool = False
    #: only this school's desired objects (``--school``)
    school: str | None = None


@dataclass(frozen=True)
class RunHooks:
    """How a run talks to people; every callback is optional."""

    progress: Progress | None = None
    #: the plan, once made (a refused plan too), before anything is applied
    show: Callable[[Plan], None] | None = None
    #: asked before applying a non-empty plan; False stops the run (None: approved)
    confirm: Callable[[Plan], bool] | None = None
    #: the run's id and its report (None when none was written), once the run is closed
    recorded: Recorded | None = None


@dataclass(frozen=True)
class AdoptHooks:
    progress: Progress | None = None
    show: Callable[[Sequence[Conflict]], None] | None = None
    confirm: Callable[[Sequence[Conflict]], bool] | None = None
    recorded: Recorded | None = None


@dataclass(frozen=True)
class RunOutcome:
    plan: Plan
    #: None: a dry run, a refused or declined plan, or nothing to do
    result: ApplyResult | None = None
    run_id: int | None = None
    #: the safety limits that refused the plan (nothing was written)
    refused: tuple[str, ...] = ()
    #: the confirm callback said no (nothing was written)
    declined: bool = False
    dry_run: bool = False
    #: safety refusals overridden with ``force`` in this run
    forced: tuple[str, ...] = ()
    #: the run-result document (schemas/run-result.schema.json) of this run
    document: Mapping[str, Any] | None = None
    #: the held plan a refused plan became (the pipeline's ``hold``), for an approver
    held: int | None = None

    @property
    def ok(self) -> bool:
        return not self.refused and not self.declined and (self.result is None or self.result.ok)

    @property
    def deferred(self) -> int:
        """Changes deferred to a later run (Teams whose groups are too new)."""
        return 0 if self.result is None else self.result.counts["deferred"]


@dataclass(frozen=True)
class AdoptOutcome:
    adopted: tuple[Conflict, ...] = ()
    run_id: int | None = None
    declined: bool = False
    #: True when nothing was stamped (a dry run: ``AdoptRequest.apply`` False)
    dry_run: bool = False
    #: the adoptions that failed or were skipped after a failure (``adopted`` lists what was stamped)
    failed: tuple[ChangeResult, ...] = ()
    document: Mapping[str, Any] | None = None


class RunPipeline:
    """Runs with explicit dependencies: the directory factory, the run store, the run lock, and the
    report writer (each optional but the first: no store, no record; no lock, no locking).

    ``tenant`` (a shared store: the console's, a fleet's): runs are recorded under it, and only its
    abandoned runs are closed (the lock is that tenant's). ``lock`` is any context manager that
    refuses a second holder: a :class:`RunLock`, or a fleet's lease. ``hold`` keeps a plan that a
    safety limit refused (not a dry run's) for an approver."""

    def __init__(
        self,
        directory: DirectoryFactory,
        *,
        store: History | None = None,
        lock: RunLock | AbstractContextManager[object] | None = None,
        report: ReportWriter | None = None,
        tenant: str | None = None,
        observers: Sequence[RunObserver] = (),
        hold: HoldPlan | None = None,
    ) -> None:
        self._directory = directory
        self._hold = hold
        self._store = store
        self._lock = lock
        self._report = report
        self._tenant = tenant
        self._observers = tuple(observers)

    def run(self, request: RunRequest, hooks: RunHooks | None = None) -> RunOutcome:
        """Plan (or check a saved plan), show, confirm, apply and record one run.

        Raises what stops a run early (:class:`~entra_sync.runs.lock.LockHeldError`, recorded as a
        ``failed`` run that did not start; a source, sign-in or Graph error after it was recorded as
        ``failed``). A plan refused by safety is returned with the reasons in ``refused``, not raised.
        """
        hooks = hooks or RunHooks()
        kind = request.kind + DRY_RUN_SUFFIX if request.dry_run else request.kind
        with self._session(kind, request.config_summary, hooks.recorded) as record:
            record.dry_run = request.dry_run
            outcome = self._run(request, hooks, record)
            if outcome.refused and not outcome.dry_run and self._hold is not None:
                outcome = replace(outcome, held=self._held(request, outcome))
        return replace(outcome, document=record.document)

    def _held(self, request: RunRequest, outcome: RunOutcome) -> int | None:
        assert self._hold is not None
        try:
            who = request.requested_by or request.kind
            held = self._hold(outcome.run_id, outcome.plan, outcome.refused, who)
        except Exception:  # the run is recorded as refused either way; holding it is the console's
            log.exception("could not hold the refused plan of run %s for an approver", outcome.run_id)
            return None
        log.warning("run %s: the refused plan is held as plan %d for an approver", outcome.run_id, held)
        return held

    def _run(self, request: RunRequest, hooks: RunHooks, record: RunRecord) -> RunOutcome:
        saved = request.saved_plan() if request.saved_plan is not None else None
        desired = request.desired() if request.desired is not None else None
        if desired is not None:
            record.context = context_from_desired(desired)
        if saved is not None:
            record.plan(saved)
        with self._directory() as directory, count_throttled(directory, record):
            if saved is not None:
                plan = saved
                actual, reasons = check_saved(saved, directory, request.limits, hooks.progress)
            else:
                assert desired is not None
                planned = make_plan(desired, directory, request.limits, hooks.progress, school=request.school)
                plan, actual, reasons = planned.plan, planned.actual, planned.refusals
                record.plan(plan)
            if self._store is not None and not request.dry_run:
                for recovered in recovered_creates(self._store, actual):
                    record.result(recovered)
            if hooks.show is not None:
                hooks.show(plan)
            done = RunOutcome(plan, run_id=record.run_id, dry_run=request.dry_run)
            if reasons and not request.force:
                why = "dry run: the plan would be refused" if request.dry_run else "plan refused"
                record.finish("refused", f"{why} by safety limits: " + "; ".join(reasons))
                return replace(done, refused=reasons)
            if request.dry_run or plan.empty:
                return done
            if hooks.confirm is not None and not hooks.confirm(plan):
                record.finish("interrupted", "not confirmed: nothing was changed")
                return replace(done, declined=True)
            if reasons:
                log.warning("safety limits overridden with --force: %d refusal(s)", len(reasons))
            result = apply_plan(
                plan, directory, actual, progress=hooks.progress, max_workers=request.max_workers,
                on_settle=record.result,
            )  # fmt: skip
            record.results(result)
            return replace(done, result=result, forced=reasons)

    def adopt(self, request: AdoptRequest, hooks: AdoptHooks | None = None) -> AdoptOutcome:
        """Plan, pick the conflicts to adopt, show, confirm, adopt each and record it as a run
        (its record holds the plan's conflicts and one ``adopt`` result per object taken over).

        Ambiguity (one existing object for two keys, two objects for one key) stamps nothing. A dry
        run (``request.apply`` False) stamps nothing either. When stamping stops part way (Graph
        refuses one), every object stamped until then is recorded as done and the rest as skipped,
        so the record says exactly what was stamped."""
        hooks = hooks or AdoptHooks()
        kind = request.kind if request.apply else request.kind + DRY_RUN_SUFFIX
        with self._session(kind, request.config_summary, hooks.recorded) as record:
            record.dry_run = not request.apply
            outcome = self._adopt(request, hooks, record)
        return replace(outcome, document=record.document)

    def _adopt(self, request: AdoptRequest, hooks: AdoptHooks, record: RunRecord) -> AdoptOutcome:
        desired = request.desired()
        record.context = context_from_desired(desired)
        with self._directory() as directory, count_throttled(directory, record):
            planned = make_plan(desired, directory, request.limits, hooks.progress, school=request.school)
            # adopting applies none of the plan's changes: record its conflicts only
            record.plan(replace(planned.plan, changes=()))
            conflicts = select_adoptions(planned.plan, request.keys, request.object_id)
            if not conflicts:
                return AdoptOutcome(run_id=record.run_id, dry_run=not request.apply)
            if hooks.show is not None:
                hooks.show(conflicts)
            if not request.apply:
                return AdoptOutcome(conflicts, record.run_id, dry_run=True)
            if hooks.confirm is not None and not hooks.confirm(conflicts):
                record.finish("interrupted", "not confirmed: nothing was adopted")
                return AdoptOutcome(run_id=record.run_id, declined=True)
            results: list[ChangeResult] = []
            stamped: list[Conflict] = []
            error: BaseException | None = None
            for c in conflicts:
                change_id = f"adopt:{c.kind}:{c.key}"
                if error is not None:
                    r = ChangeResult(change_id=change_id, action="adopt", kind=c.kind, key=c.key,
                                     status="skipped", message="not adopted: an earlier adoption failed",
                                     object_id=c.object_id)
                else:
                    target: Literal["administrativeUnit", "group"] = (
                        "group" if c.kind == "group" else "administrativeUnit"
                    )
                    try:
                        directory.adopt(target, c.object_id, c.key)
                    except EntraSyncError as exc:
                        error = exc
                        r = ChangeResult(change_id=change_id, action="adopt", kind=c.kind, key=c.key,
                                         status="failed", message=str(exc), object_id=c.object_id)
                    else:
                        stamped.append(c)
                        r = ChangeResult(change_id=change_id, action="adopt", kind=c.kind, key=c.key,
                                         status="done", message=f"adopted (same {c.field} {c.value!r})",
                                         object_id=c.object_id)
                record.result(r)
                results.append(r)
            record.results(ApplyResult(tuple(results)))
            return AdoptOutcome(tuple(stamped), record.run_id, failed=tuple(
                r for r in results if r.status != "done"))

    @contextmanager
    def _session(
        self, kind: str, summary: Mapping[str, Any] | None, recorded: Recorded | None
    ) -> Iterator[RunRecord]:
        """Lock, close abandoned runs, open the record; afterwards write the report."""
        with ExitStack() as stack:
            if self._lock is not None:
                try:
                    stack.enter_context(self._lock)
                except LockHeldError as exc:
                    self._record_not_started(kind, summary, exc)
                    raise
                if self._store is not None:
                    for run_id in self._store.close_interrupted(tenant=self._tenant):
                        log.warning("run %d was left running by a process that died: now interrupted", run_id)
            record = RunRecord(self._store, kind, summary, tenant=self._tenant)
            token = RUN_ID.set(record.run_id)
            stack.callback(RUN_ID.reset, token)
            try:
                with record:
                    yield record
            finally:
                if record.run_id is not None:
                    path = self._write_report(record.run_id)
                    if recorded is not None:
                        recorded(record.run_id, path)
                self._observe(record)

    def _record_not_started(self, kind: str, summary: Mapping[str, Any] | None, exc: LockHeldError) -> None:
        """A run the lock turned away is recorded as ``failed`` with the reason, so the history
        shows every run that was due (the live run is not touched: this writes only a new row)."""
        if self._store is None:
            return
        try:
            run_id = self._store.start_run(kind, summary, tenant=self._tenant)
            self._store.finish_run(run_id, "failed", f"not run: {exc}")
        except EntraSyncError as store_exc:
            log.error("could not record the run the lock turned away: %s", store_exc)

    def _observe(self, record: RunRecord) -> None:
        """Build the run-result document and tell every observer (none of them can fail the run)."""
        try:
            doc = record.build_document()
        except Exception:  # a bug here must not hide the run's own outcome
            log.exception("could not build the run-result document")
            return
        for observer in self._observers:
            try:
                observer(doc)
            except Exception as exc:
                log.error("after-run step %s failed: %s", getattr(observer, "__name__", observer), exc)

    def _write_report(self, run_id: int) -> Path | None:
        if self._report is None or self._store is None:
            return None
        try:
            return self._report(self._store, run_id)
        except (OSError, EntraSyncError) as exc:  # the run is recorded; a report is a convenience
            log.error("could not write the report of run %d: %s", run_id, exc)
            return None
