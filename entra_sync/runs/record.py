"""One run's record: its plan, each change's outcome as it settles, how it ended, and the
run-result document built from them; kept in the run store when there is one, in memory always.
Used by :class:`entra_sync.pipeline.RunPipeline` for every run."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from entra_sync.runs.history import History, RunStatus, run_status_for
from reconciler.apply.result import ApplyResult, ChangeResult
from reconciler.errors import EntraSyncError, SafetyError
from reconciler.plan.model import Plan
from reconciler.render.summary import SummaryContext

__all__ = ["RunRecord"]


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
        tenant: str | None = None,
    ) -> None:
        self._history = history
        self._interrupted_by = interrupted_by
        self._open = True
        self.kind = kind
        self.started_at = time.time()
        self.run_id = history.start_run(kind, config_summary, tenant=tenant) if history is not None else None
        #: what the run-result document is built from (kept in memory with or without a store)
        self.status: RunStatus = "running"
        self.error: str | None = None
        self.last_plan: Plan | None = None
        self.last_result: ApplyResult | None = None
        self.planned_at: float | None = None
        self.applied_at: float | None = None
        self.finished_at: float | None = None
        self.context: SummaryContext | None = None
        self.throttled_requests: int | None = None
        self.dry_run = False
        #: the run-result document, once the run is closed
        self.document: dict[str, Any] | None = None

    def __enter__(self) -> RunRecord:
        return self

    def plan(self, plan: Plan) -> None:
        self.last_plan, self.planned_at = plan, time.time()
        if self._history is not None and self.run_id is not None:
            self._history.record_plan(self.run_id, plan)

    def result(self, result: ChangeResult) -> None:
        """One change's outcome, as it settles."""
        if self._history is not None and self.run_id is not None:
            self._history.record_result(self.run_id, result)

    def results(self, result: ApplyResult) -> None:
        self.last_result, self.applied_at = result, time.time()
        if self._history is not None and self.run_id is not None:
            self._history.record_results(self.run_id, result)
        self.finish(run_status_for(result))

    def finish(self, status: RunStatus, error: str | None = None) -> None:
        if not self._open:
            return
        self._open = False
        self.status, self.error, self.finished_at = status, error, time.time()
        if self._history is not None and self.run_id is not None:
            self._history.finish_run(self.run_id, status, error)

    def build_document(self) -> dict[str, Any]:
        """The run-result document (:mod:`entra_sync.runs.result_json`) of this run, as it ended."""
        from entra_sync.runs.result_json import RunFacts, run_result

        facts = RunFacts(
            run_id=self.run_id, kind=self.kind, status=self.status, started_at=self.started_at,
            finished_at=self.finished_at, error=self.error, planned_at=self.planned_at,
            applied_at=self.applied_at,
            plan_checksum=self.last_plan.checksum() if self.last_plan is not None else None,
            throttled_requests=self.throttled_requests, dry_run=self.dry_run,
        )  # fmt: skip
        self.document = run_result(facts, self.last_plan, self.last_result, self.context)
        return self.document

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
