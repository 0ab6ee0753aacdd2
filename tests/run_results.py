"""Run-result documents for the notification, metrics and report tests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from entra_sync.runs.result_json import RunFacts, run_result
from reconciler.apply.result import ApplyResult, ChangeResult
from reconciler.plan.model import Plan
from reconciler.ports import ItemFailure
from reconciler.render.summary import context_from_desired
from tests.plan_samples import sample_desired, sample_plan

T0 = 1_788_000_000.0  # 2026-08-29


def applied(plan: Plan) -> ApplyResult:
    results = []
    for c in plan.changes:
        if c.kind == "group" and c.action == "create":
            results.append(
                ChangeResult(c.id, c.action, c.kind, c.key, "failed", "Graph answered 400: bad name"))
        elif c.kind == "groupMembers" and c.action == "add":
            results.append(ChangeResult(c.id, c.action, c.kind, c.key, "partial", "1 member failed",
                                        (ItemFailure("u-1", "not found"),)))
        else:
            results.append(ChangeResult(c.id, c.action, c.kind, c.key, "done",
                                        object_id="22222222-0000-0000-0000-000000000001"))
    return ApplyResult(tuple(results))


def partial_run() -> dict[str, Any]:
    plan = sample_plan()
    facts = RunFacts(run_id=7, kind="sync", status="partial", started_at=T0, finished_at=T0 + 95.5,
                     planned_at=T0 + 20, applied_at=T0 + 95, plan_checksum="ab" * 32, throttled_requests=4)
    return run_result(facts, plan, applied(plan), context_from_desired(sample_desired()))


def refused_run() -> dict[str, Any]:
    plan = sample_plan()
    plan = replace(plan, refusals=(
        "4 groups would be deleted, more than the limit of 2 per run (use --force for one "
        "run, or raise safety.max_deletes in the configuration)",))
    facts = RunFacts(run_id=8, kind="sync", status="refused", started_at=T0, finished_at=T0 + 12,
                     error="the plan was refused by a safety limit")
    return run_result(facts, plan, None, context_from_desired(sample_desired()))


def clean_run() -> dict[str, Any]:
    facts = RunFacts(run_id=9, kind="sync", status="succeeded", started_at=T0, finished_at=T0 + 3)
    return run_result(facts, Plan())
