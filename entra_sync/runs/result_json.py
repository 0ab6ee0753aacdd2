"""The run-result document (``schemas/run-result.schema.json``): what one run did, for machines.

The run (id, kind, status, error, times), the plan's summary by school × kind × action, what needs
a person, and every change with its result. Built from values only (:func:`run_result`), or from a
run the history holds (:func:`run_result_from_detail`); the notifications and the metrics read it.

Must: be deterministic for the same inputs; carry no secret (the plan and history hold none).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from entra_sync import __version__
from entra_sync.runs.history import RunDetail, RunSummary
from reconciler.apply.result import ApplyResult, ChangeResult
from reconciler.plan.model import Plan, recorded_plan
from reconciler.render.summary import SummaryContext, summarise

__all__ = [
    "SCHEMA_VERSION", "RunFacts", "detail_plan", "load_schema", "run_list", "run_result",
    "run_result_from_detail",
]

#: the document's format version (``schemaVersion``); bump on an incompatible change
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What the run record knows about a run besides its plan and results."""

    run_id: int | None
    kind: str  # sync, apply, plan, demo...
    status: str  # running, succeeded, partial, failed, refused, interrupted
    started_at: float
    finished_at: float | None = None
    error: str | None = None
    planned_at: float | None = None
    applied_at: float | None = None
    plan_checksum: str | None = None
    #: requests Graph answered with 429 (None when unknown)
    throttled_requests: int | None = None
    dry_run: bool = False


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _timings(f: RunFacts) -> dict[str, float]:
    out: dict[str, float] = {}
    if f.planned_at is not None:
        out["planSeconds"] = round(f.planned_at - f.started_at, 3)
    if f.applied_at is not None:
        began = f.planned_at if f.planned_at is not None else f.started_at
        out["applySeconds"] = round(f.applied_at - began, 3)
    if f.finished_at is not None:
        out["totalSeconds"] = round(f.finished_at - f.started_at, 3)
    return out


def _change(d: Mapping[str, Any], r: ChangeResult | None) -> dict[str, Any]:
    out = dict(d)
    if r is not None:
        if r.failures:
            out["failures"] = [{"objectId": x.object_id, "message": x.message} for x in r.failures]
        if r.object_id is not None:
            out["objectId"] = r.object_id
    return out


def run_result(facts: RunFacts, plan: Plan | None, result: ApplyResult | None = None,
               ctx: SummaryContext | None = None) -> dict[str, Any]:
    """The run-result document of one run (``plan`` None: the run ended before it had a plan)."""
    summary = summarise(plan or Plan(), result, ctx)
    by_id = {r.change_id: r for r in result.results} if result is not None else {}
    doc: dict[str, Any] = {
        "schemaVersion": SCHEMA_VERSION,
        "tool": {"name": "realsmart-entra-sync", "version": __version__},
        "run": {
            "id": facts.run_id,
            "kind": facts.kind,
            "status": facts.status,
            "dryRun": facts.dry_run,
            "error": facts.error,
            "startedAt": _iso(facts.started_at),
            "finishedAt": _iso(facts.finished_at),
            "timings": _timings(facts),
            "planChecksum": facts.plan_checksum,
            "throttledRequests": facts.throttled_requests,
        },
        "summary": {
            "changes": summary.total_changes,
            "memberships": summary.total_memberships,
            "applied": summary.applied,
            "statuses": summary.status_counts(),
            "bySchool": [r.to_dict() for r in summary.counts],
        },
        "needsYou": summary.needs_you.to_dict(),
        "changes": [_change(d.to_dict(), by_id.get(d.change_id)) for d in summary.detail],
    }
    return doc


def detail_plan(run: RunDetail) -> tuple[Plan, ApplyResult | None]:
    """The plan a run recorded and its results (None when nothing was applied)."""
    plan = replace(
        recorded_plan(run.warnings, run.conflicts),
        # an adopt run records one "adopt" result per object taken over: a result, not a plan change
        changes=tuple(rc.change for rc in run.changes if rc.change.action != "adopt"),
    )
    results = tuple(rc.result for rc in run.changes if rc.result is not None)
    return plan, (ApplyResult(results) if results else None)


def run_result_from_detail(run: RunDetail, ctx: SummaryContext | None = None) -> dict[str, Any]:
    """The run-result document of a run the history holds."""
    s = run.summary
    plan, result = detail_plan(run)
    facts = RunFacts(run_id=s.run_id, kind=s.kind, status=s.status, started_at=s.started_at,
                     finished_at=s.finished_at, error=s.error, planned_at=run.planned_at,
                     applied_at=run.applied_at, plan_checksum=run.plan_checksum, dry_run=s.dry_run)
    return run_result(facts, plan, result, ctx)


def run_list(summaries: list[RunSummary], history: str) -> dict[str, Any]:
    """The run-list document (``schemas/run-list.schema.json``) of ``history list --format json``."""
    return {
        "schemaVersion": SCHEMA_VERSION,
        "tool": {"name": "realsmart-entra-sync", "version": __version__},
        "history": history,
        "runs": [{
            "id": s.run_id, "kind": s.kind, "status": s.status, "dryRun": s.dry_run, "tenant": s.tenant,
            "startedAt": _iso(s.started_at), "finishedAt": _iso(s.finished_at),
            "durationSeconds": None if s.duration is None else round(s.duration, 3),
            "planned": s.planned, "plannedChanges": s.change_count,
            "results": {k: v for k, v in s.counts.items() if v}, "reason": s.error,
        } for s in summaries],
    }


def load_schema(name: str = "run-result.schema.json") -> dict[str, Any]:
    """A schema shipped in ``schemas/`` (the run-result document's by default)."""
    text = resources.files("schemas").joinpath(name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data
