"""The one run pipeline: every command that changes Entra (``sync``, ``schedule``, ``apply PLAN``,
``apply --desired``, ``adopt``; later the web console and a fleet worker) runs through
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

No printing here: the CLI (or a console, or a worker) passes callbacks. A plan refused by a safety
limit carries the reasons as warnings with code ``safetyRefusal``, so a saved plan remembers that
it was refused and ``apply PLAN`` refuses it too unless forced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from entra_sync.runs.history import History, RunStatus, run_status_for
from entra_sync.runs.lock import RunLock
from entra_sync.steps import SAFETY_CODE, Planned, check_saved, make_plan, refusals, select_adoptions
from reconciler.apply.executor import apply as apply_plan
from reconciler.apply.result import ApplyResult, ChangeResult
from reconciler.errors import EntraSyncError, SafetyError
from reconciler.model import ActualState, DesiredState
from reconciler.plan.model import Conflict, Plan
from reconciler.plan.safety import SafetyLimits
from reconciler.ports import Directory, Progress

__all__ = [
    "SAFETY_CODE",
    "AdoptHooks",
    "AdoptOutcome",
    "AdoptRequest",
    "AdoptingDirectory",
    "DirectoryFactory",
    "Planned",
    "Recorded",
    "ReportWriter",
    "RunHooks",
    "RunOutcome",
    "RunPipeline",
    "RunRecord",
    "RunRequest",
    "check_saved",
    "html_report_writer",
    "make_plan",
    "recovered_creates",
    "refusals",
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


class RunRecord:
    """One run in the run store, or nowhere when there is none: its plan, each change's outcome as
    it settles, and how it ended. As a context manager it records an exception as the end
    (``refused`` for a safety refusal, ``interrupted`` for ``interrupted_by``, else ``failed``) and
    a run left open as ``succeeded`` (nothing needed applying)."""

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

    def result(self, result: ChangeResult) -> None:
        """One change's outcome, as it settles."""
        if self._history is not None and self.run_id is not None:
            self._history.record_result(self.run_id, result)

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
    max_workers: int = 4

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


class RunPipeline:
    """Runs with explicit dependencies: the directory factory, the run store, the run lock, and the
    report writer (each optional but the first: no store, no record; no lock, no locking)."""

    def __init__(
        self,
        directory: DirectoryFactory,
        *,
        store: History | None = None,
        lock: RunLock | None = None,
        report: ReportWriter | None = None,
    ) -> None:
        self._directory = directory
        self._store = store
        self._lock = lock
        self._report = report

    def run(self, request: RunRequest, hooks: RunHooks | None = None) -> RunOutcome:
        """Plan (or check a saved plan), show, confirm, apply and record one run.

        Raises what stops a run early (:class:`~entra_sync.runs.lock.LockHeldError` before anything
        is recorded; a source, sign-in or Graph error after it was recorded as ``failed``). A plan
        refused by safety is returned with the reasons in ``refused``, not raised.
        """
        hooks = hooks or RunHooks()
        kind = f"{request.kind} (dry run)" if request.dry_run else request.kind
        with self._session(kind, request.config_summary, hooks.recorded) as record:
            return self._run(request, hooks, record)

    def _run(self, request: RunRequest, hooks: RunHooks, record: RunRecord) -> RunOutcome:
        saved = request.saved_plan() if request.saved_plan is not None else None
        desired = request.desired() if request.desired is not None else None
        if saved is not None:
            record.plan(saved)
        with self._directory() as directory:
            if saved is not None:
                plan = saved
                actual, reasons = check_saved(saved, directory, request.limits, hooks.progress)
            else:
                assert desired is not None
                planned = make_plan(desired, directory, request.limits, hooks.progress)
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
        (its record holds the plan's conflicts and one ``adopt`` result per object taken over)."""
        hooks = hooks or AdoptHooks()
        with self._session(request.kind, request.config_summary, hooks.recorded) as record:
            desired = request.desired()
            with self._directory() as directory:
                planned = make_plan(desired, directory, request.limits, hooks.progress)
                # adopting applies none of the plan's changes: record its conflicts only
                record.plan(replace(planned.plan, changes=()))
                conflicts = select_adoptions(planned.plan, request.keys, request.object_id)
                if not conflicts:
                    return AdoptOutcome(run_id=record.run_id)
                if hooks.show is not None:
                    hooks.show(conflicts)
                if hooks.confirm is not None and not hooks.confirm(conflicts):
                    record.finish("interrupted", "not confirmed: nothing was adopted")
                    return AdoptOutcome(run_id=record.run_id, declined=True)
                results = []
                for c in conflicts:
                    kind: Literal["administrativeUnit", "group"] = (
                        "group" if c.kind == "group" else "administrativeUnit"
                    )
                    directory.adopt(kind, c.object_id, c.key)
                    r = ChangeResult(
                        change_id=f"adopt:{c.kind}:{c.key}", action="adopt", kind=c.kind, key=c.key,
                        status="done", message=f"adopted (same {c.field} {c.value!r})", object_id=c.object_id,
                    )  # fmt: skip
                    record.result(r)
                    results.append(r)
                record.results(ApplyResult(tuple(results)))
                return AdoptOutcome(conflicts, record.run_id)

    @contextmanager
    def _session(
        self, kind: str, summary: Mapping[str, Any] | None, recorded: Recorded | None
    ) -> Iterator[RunRecord]:
        """Lock, close abandoned runs, open the record; afterwards write the report."""
        with ExitStack() as stack:
            if self._lock is not None:
                stack.enter_context(self._lock)
                if self._store is not None:
                    for run_id in self._store.close_interrupted():
                        log.warning("run %d was left running by a process that died: now interrupted", run_id)
            record = RunRecord(self._store, kind, summary)
            try:
                with record:
                    yield record
            finally:
                if record.run_id is not None:
                    path = self._write_report(record.run_id)
                    if recorded is not None:
                        recorded(record.run_id, path)

    def _write_report(self, run_id: int) -> Path | None:
        if self._report is None or self._store is None:
            return None
        try:
            return self._report(self._store, run_id)
        except (OSError, EntraSyncError) as exc:  # the run is recorded; a report is a convenience
            log.error("could not write the report of run %d: %s", run_id, exc)
            return None


def recovered_creates(store: History, actual: ActualState, *, runs: int = 20) -> list[ChangeResult]:
    """Creates that an interrupted run (one of the newest ``runs``) sent and Graph applied, but whose
    outcome never reached the run store (the process was killed in between): each unsettled create
    whose key Graph now holds under an id no run recorded creating. Recorded in the run that finds
    them, so the history says who created every managed object."""
    known = set(store.created_since(0))
    found: list[ChangeResult] = []
    for summary in store.list_runs(runs):
        if summary.status != "interrupted":
            continue
        for rc in store.get_run(summary.run_id).changes:
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
                message=f"created by interrupted run {summary.run_id} "
                "(its outcome never reached the run store)",
            ))  # fmt: skip
    for r in found:
        log.warning("%s %s: %s", r.kind, r.key, r.message)
    return found


def html_report_writer(folder: Path, tz: str) -> ReportWriter:
    """Write ``run-N.html`` into ``folder`` (created when missing)."""

    def write(store: History, run_id: int) -> Path:
        from entra_sync.runs.report import render_run_report

        path = folder / f"run-{run_id}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_run_report(store.get_run(run_id), tz=tz), encoding="utf-8")
        return path

    return write
