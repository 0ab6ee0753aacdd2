"""The run store, on SQLite and on a real PostgreSQL server (see tests/postgres.py): every test
that takes ``target`` runs on both."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from entra_sync.runs.history import History, HistoryError, redact, run_status_for
from entra_sync.store.engine import target_url
from entra_sync.store.tables import metadata
from reconciler.apply.executor import apply
from reconciler.apply.result import ApplyResult, ChangeResult
from reconciler.clock import VirtualClock
from reconciler.plan.model import Plan, Warning
from reconciler.plan.operations import AddGroupMembers, CreateGroup
from reconciler.plan.payloads import GroupDocument
from tests.fakes import FakeDirectory, fake_id
from tests.postgres import postgres_database, postgres_server

__all__ = ["postgres_database", "postgres_server"]  # fixtures, used by name

AMY = "amy.learner@oak.example"
TEA = "t.teacher@oak.example"
G1 = "class:SCH1:2026-27:7A-Ma1"
G2 = "class:SCH1:2026-27:7B-En1"
SECRET = "s3cr3t-Value~xyz"


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the store is: a SQLite file, or a new database on the PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "h.db")
    return str(request.getfixturevalue("postgres_database"))


def _plan() -> Plan:
    return Plan(
        changes=(
            CreateGroup(G1, after=GroupDocument("7A Maths", "7a-ma1", owners=(TEA,),
                                                  members=(AMY, "ghost@oak.example"))),
            CreateGroup(G2, after=GroupDocument("7B English", "7b-en1", owners=(TEA,))),
            AddGroupMembers(G2, members=(AMY,), depends_on=(f"create:group:{G2}",)),
        ),
        warnings=(Warning("unresolvedUser", "ghost@oak.example is not in Entra", key=G1,
                          ref="ghost@oak.example"),),
        actual_fingerprint="abc",
    )


def _apply(plan: Plan) -> ApplyResult:
    d = FakeDirectory([AMY, TEA])
    d.fail_on("create_group", G2)
    return apply(plan, d, d.read(), max_workers=1)


def _all_stored(target: str) -> str:
    """Every value of every table of the store, as text."""
    engine = create_engine(target_url(target))
    with engine.connect() as conn:
        text = repr([conn.execute(select(t)).all() for t in metadata.sorted_tables])
    engine.dispose()
    return text


def test_round_trip_of_a_run(tmp_path: Path, target: str) -> None:
    clock = VirtualClock(start=1_800_000_000.0)
    if target.endswith("h.db"):
        target = str(tmp_path / "state" / "history.sqlite")
    h = History(target, clock)
    plan = _plan()
    run_id = h.start_run("sync", {"tenantId": "t-1", "clientSecret": SECRET, "sync": {"teams": True}})
    clock.advance(12.5)
    h.record_plan(run_id, plan)
    clock.advance(30)
    result = _apply(plan)
    h.record_results(run_id, result)
    clock.advance(0.5)
    h.finish_run(run_id, run_status_for(result))

    (summary,) = h.list_runs()
    assert summary.run_id == run_id and summary.kind == "sync"
    assert summary.status == "partial"
    assert summary.duration == pytest.approx(43.0)
    assert summary.counts == {"done": 0, "partial": 1, "failed": 1, "skipped": 1, "deferred": 0}
    assert summary.change_count == 3

    run = h.get_run(run_id)
    assert run.config == {"tenantId": "t-1", "clientSecret": "[redacted]", "sync": {"teams": True}}
    assert [rc.change for rc in run.changes] == list(plan.changes)
    assert tuple(rc.result for rc in run.changes) == result.results
    assert run.plan_summary == plan.summary()
    assert run.plan_checksum == plan.checksum()
    assert run.warnings == ({"code": "unresolvedUser", "message": "ghost@oak.example is not in Entra",
                             "key": G1, "ref": "ghost@oak.example"},)
    assert run.durations() == {"plan": 12.5, "apply": 30.0, "total": 43.0}
    h.close()
    assert SECRET not in _all_stored(target) and "[redacted]" in _all_stored(target)
    if "://" not in target:
        assert SECRET.encode() not in b"".join(p.read_bytes() for p in (tmp_path / "state").iterdir())


def test_changes_for_object_across_runs(target: str) -> None:
    clock = VirtualClock()
    with History(target, clock) as h:
        first = h.start_run("apply")
        h.record_plan(first, _plan())
        h.record_results(first, _apply(_plan()))
        h.finish_run(first, "partial")
        clock.advance(3600)
        second = h.start_run("plan")
        h.record_plan(second, Plan(changes=(AddGroupMembers(G1, members=("x@oak.example",)),)))
        h.finish_run(second, "succeeded")

        found = h.changes_for_object(G1)
        assert [(c.run_id, c.action, c.kind, c.status) for c in found] == [
            (first, "create", "group", "partial"), (second, "add", "groupMembers", None)]
        assert found[0].message == "created; 1 of 3 owners/members could not be added"
        assert found[1].members == ("x@oak.example",)
        assert found[1].run_started_at - found[0].run_started_at == 3600
        assert [c.run_id for c in h.changes_for_object(G1, applied_only=True)] == [first]
        assert h.changes_for_object("class:nothing") == []
        # an object's history is found by its identity, whatever case its key is spelled in
        assert h.changes_for_object(G1.swapcase()) == found
        assert h.changes_for_object(G1.upper()) == found
        assert [r.run_id for r in h.list_runs()] == [second, first]
        assert [r.run_id for r in h.list_runs(limit=1)] == [second]
        assert [r.run_id for r in h.list_runs(kind="apply")] == [first]


def test_results_without_a_recorded_plan_are_kept(target: str) -> None:
    with History(target, VirtualClock()) as h:
        run_id = h.start_run("apply")
        done = ChangeResult("create:group:k", "create", "group", "k", "done", object_id="id1")
        result = ApplyResult((done,))
        h.record_results(run_id, result)
        (rc,) = h.get_run(run_id).changes
        assert rc.result == result.results[0]
        assert rc.change == CreateGroup("k")


def test_unfinished_run_and_errors(target: str) -> None:
    with History(target, VirtualClock()) as h:
        run_id = h.start_run("sync")
        assert h.list_runs()[0].status == "running"
        assert h.list_runs()[0].duration is None
        assert h.get_run(run_id).durations() == {}
        h.finish_run(run_id, "failed", error="directory: Graph answered 503 three times")
        assert h.get_run(run_id).summary.error == "directory: Graph answered 503 three times"
        with pytest.raises(ValueError, match="cannot finish"):
            h.finish_run(run_id, "running")
        with pytest.raises(HistoryError, match="no run 99"):
            h.get_run(99)
        with pytest.raises(HistoryError, match="no run 99"):
            h.record_plan(99, Plan())


def test_prune_keeps_the_newest(target: str) -> None:
    with History(target, VirtualClock()) as h:
        ids = [h.start_run("sync") for _ in range(5)]
        h.record_plan(ids[0], _plan())
        assert h.prune(keep_runs=2) == []  # a run in progress is never pruned
        for run_id in ids:
            h.finish_run(run_id, "succeeded")
        assert h.prune(keep_runs=2) == ids[:3]
        assert [r.run_id for r in h.list_runs()] == ids[:2:-1]
        assert h.changes_for_object(G1) == []  # the pruned run's changes went with it


def test_redact_and_run_status() -> None:
    assert redact({"client_secret": "x", "accessToken": "y", "password": "", "nested": [{"privateKey": "z"}],
                   "clientId": "c"}) == {
        "client_secret": "[redacted]", "accessToken": "[redacted]", "password": "",
        "nested": [{"privateKey": "[redacted]"}], "clientId": "c"}
    done = ChangeResult("a", "create", "group", "k", "done")
    failed = ChangeResult("b", "create", "group", "k2", "failed")
    deferred = ChangeResult("c", "create", "team", "t", "deferred")
    assert run_status_for(ApplyResult((done, deferred))) == "succeeded"
    assert run_status_for(ApplyResult((done, failed))) == "partial"
    assert run_status_for(ApplyResult((failed,))) == "failed"
    assert fake_id("x") != fake_id("y")


def test_created_since_names_the_objects_recent_runs_created(target: str) -> None:
    clock = VirtualClock(start=1_800_000_000.0)
    with History(target, clock) as h:
        old = h.start_run("sync")
        h.record_plan(old, _plan())
        h.record_results(old, _apply(_plan()))  # G1 created (partial: a ghost member), G2 failed
        h.finish_run(old, "partial")
        clock.advance(3600)
        assert h.created_since(clock.now() - 7200) == {fake_id(G1): "group"}
        assert h.created_since(clock.now() - 60) == {}  # older runs are not asked about
