"""The run store's newer half, on SQLite and PostgreSQL: each outcome committed as it settles,
interrupted runs, per-person membership history, tenants, retention."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from entra_sync.runs.history import INTERRUPTED, History, HistoryError
from reconciler.apply.executor import apply
from reconciler.apply.result import ChangeResult
from reconciler.clock import VirtualClock
from reconciler.plan.model import Plan
from reconciler.plan.operations import AddGroupOwners, CreateGroup, RemoveGroupMembers
from reconciler.plan.payloads import GroupDocument
from tests.fakes import FakeDirectory
from tests.postgres import postgres_database, postgres_server

__all__ = ["postgres_database", "postgres_server"]  # fixtures, used by name

ROOT = Path(__file__).resolve().parent.parent
AMY, BEN, TEA = "amy.learner@oak.example", "ben.learner@oak.example", "t.teacher@oak.example"
G1 = "class:SCH1:2026-27:9A-Ma1"
DAY = 86400.0


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "h.db")
    return str(request.getfixturevalue("postgres_database"))


def _three() -> Plan:
    return Plan(changes=tuple(
        CreateGroup(f"g{i}", after=GroupDocument(f"G{i}", f"g{i}", owners=(TEA,), members=(AMY,)))
        for i in range(3)
    ))


def test_each_outcome_is_seen_by_another_connection_as_soon_as_it_is_recorded(target: str) -> None:
    clock = VirtualClock(start=1_800_000_000.0)
    with History(target, clock) as writer, History(target, VirtualClock()) as reader:
        run_id = writer.start_run("sync")
        plan = _three()
        writer.record_plan(run_id, plan)
        assert [rc.result for rc in reader.get_run(run_id).changes] == [None, None, None]
        statuses = ["done", "failed", "done"]
        for i, (change, status) in enumerate(zip(plan.changes, statuses, strict=True)):
            clock.advance(1)
            writer.record_result(run_id, ChangeResult(change.id, "create", "group", change.key, status,
                                                      "" if status == "done" else "Graph said 400",
                                                      object_id=f"id-{i}" if status == "done" else None))
            seen = reader.get_run(run_id)
            assert [rc.result.status if rc.result else None for rc in seen.changes] == (
                statuses[: i + 1] + [None] * (2 - i))
            assert seen.applied_at == clock.now()
            (person,) = [p for p in reader.changes_for_person(AMY) if p.change_id == change.id]
            assert person.status == status
        summary = reader.list_runs()[0]
        assert summary.counts == {"done": 2, "partial": 0, "failed": 1, "skipped": 0, "deferred": 0}
        # recording a change again (a retry) moves its count, it does not add one
        writer.record_result(run_id, ChangeResult(plan.changes[1].id, "create", "group", "g1", "done"))
        assert reader.list_runs()[0].counts["done"] == 3 and reader.list_runs()[0].counts["failed"] == 0
        assert reader.created_since(0) == {"id-0": "group", "id-2": "group"}
        with pytest.raises(HistoryError, match="no run 99"):
            writer.record_result(99, ChangeResult("x", "create", "group", "x", "done"))


def test_a_killed_run_keeps_its_outcomes_and_is_closed_as_interrupted(target: str) -> None:
    child = textwrap.dedent(f"""
        import sys, time
        from entra_sync.runs.history import History
        from reconciler.apply.result import ChangeResult
        from tests.test_entra_sync_store_outcomes import _three
        h = History({target!r})
        run_id = h.start_run("sync")
        plan = _three()
        h.record_plan(run_id, plan)
        h.record_result(run_id, ChangeResult(plan.changes[0].id, "create", "group", "g0", "done",
                                             object_id="id-0"))
        print(run_id, flush=True)
        time.sleep(120)
    """)
    with subprocess.Popen([sys.executable, "-c", child], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}) as proc:
        try:
            assert proc.stdout is not None
            run_id = int(proc.stdout.readline())
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
    with History(target, VirtualClock(start=2e9)) as h:
        finished = h.start_run("plan")
        h.finish_run(finished, "succeeded")
        assert h.list_runs()[1].status == "running"
        assert h.close_interrupted() == [run_id]
        run = h.get_run(run_id)
        assert (run.summary.status, run.summary.error, run.summary.finished_at) == (
            "interrupted", f"{INTERRUPTED} (1 of 3 planned changes had settled; closed by the next run)", 2e9)
        assert [rc.result.status if rc.result else None for rc in run.changes] == ["done", None, None]
        assert h.get_run(finished).summary.status == "succeeded"
        assert h.close_interrupted() == []


def test_a_persons_memberships_say_when_by_which_run_and_why(target: str) -> None:
    clock = VirtualClock(start=1_800_000_000.0)
    d = FakeDirectory([AMY, BEN, TEA])
    with History(target, clock) as h:
        first = h.start_run("sync")
        plan = Plan(changes=(CreateGroup(G1, after=GroupDocument(
            "9A Maths", "9a-ma1", owners=(TEA,), members=(AMY, BEN))),))
        h.record_plan(first, plan)
        for r in apply(plan, d, d.read(), max_workers=1).results:
            h.record_result(first, r)
        h.finish_run(first, "succeeded")
        clock.advance(30 * DAY)

        second = h.start_run("sync")
        removal = Plan(changes=(RemoveGroupMembers(G1, members=(AMY, BEN)),))
        h.record_plan(second, removal)
        d.fail_items[d.user_id(BEN)] = "the directory refused (injected)"
        (result,) = apply(removal, d, d.read(), max_workers=1).results
        assert result.status == "partial"
        h.record_result(second, result)
        h.finish_run(second, "partial")
        dry = h.start_run("sync (dry run)")
        h.record_plan(dry, Plan(changes=(AddGroupOwners(G1, members=(AMY,)),)))
        h.finish_run(dry, "succeeded")

        amy = h.changes_for_person(AMY.upper())
        assert [(p.run_id, p.change_id, p.kind, p.key, p.action, p.status) for p in amy] == [
            (first, f"create:group:{G1}", "groupMembers", G1, "add", "done"),
            (second, f"remove:groupMembers:{G1}", "groupMembers", G1, "remove", "done"),
            (dry, f"add:groupOwners:{G1}", "groupOwners", G1, "add", None),
        ]
        assert amy[1].run_started_at - amy[0].run_started_at == 30 * DAY and amy[1].run_status == "partial"
        assert [p.run_id for p in h.changes_for_person(AMY, applied_only=True)] == [first, second]
        (ben_added, ben_removal) = h.changes_for_person(BEN)
        assert ben_added.status == "done"
        assert (ben_removal.status, ben_removal.message) == (
            "failed", f"{BEN}: the directory refused (injected)")
        assert [(p.kind, p.action, p.status) for p in h.changes_for_person(TEA)] == [
            ("groupOwners", "add", "done")]
        # the object history answers for a person too
        found = h.changes_for_object(AMY)
        assert [(c.run_id, c.kind, c.action, c.key, c.status, c.members) for c in found] == [
            (first, "groupMembers", "add", G1, "done", (AMY,)),
            (second, "groupMembers", "remove", G1, "done", (AMY,)),
            (dry, "groupOwners", "add", G1, None, (AMY,)),
        ]
        assert [c.change_id for c in h.changes_for_object(G1)] == [
            f"create:group:{G1}", f"remove:groupMembers:{G1}", f"add:groupOwners:{G1}"]
        assert h.changes_for_person("nobody@oak.example") == []


def test_tenants_see_their_own_runs(target: str) -> None:
    with History(target, VirtualClock()) as h:
        oak = h.start_run("sync", {"school": "Oak"}, tenant="oak")
        elm = h.start_run("sync", tenant="elm")
        single = h.start_run("sync")
        for run_id in (oak, elm):
            h.record_plan(run_id, _three())
            h.record_result(run_id, ChangeResult("create:group:g0", "create", "group", "g0", "done",
                                                 object_id=f"id-{run_id}"))
        assert [r.run_id for r in h.list_runs()] == [single, elm, oak]
        assert [(r.run_id, r.tenant) for r in h.list_runs(tenant="oak")] == [(oak, "oak")]
        assert h.get_run(oak, tenant="oak").summary.tenant == "oak"
        with pytest.raises(HistoryError, match=f"no run {elm}"):
            h.get_run(elm, tenant="oak")
        assert h.created_since(0, tenant="elm") == {f"id-{elm}": "group"}
        assert [p.tenant for p in h.changes_for_person(AMY, tenant="oak")] == ["oak"] * 3
        assert {c.run_id for c in h.changes_for_object("g0", tenant="elm")} == {elm}
        assert h.close_interrupted(tenant="oak") == [oak]
        assert [r.status for r in h.list_runs()] == ["running", "running", "interrupted"]
        assert h.prune(keep_runs=0, tenant="elm") == []  # running
        h.finish_run(elm, "succeeded")
        assert h.prune(keep_runs=0, tenant="elm") == [elm]
        assert [r.run_id for r in h.list_runs()] == [single, oak]


def test_prune_by_age_and_by_count(target: str) -> None:
    clock = VirtualClock(start=1_800_000_000.0)
    with History(target, clock) as h:
        ids = []
        for _ in range(4):  # days 0, 10, 20, 30
            ids.append(h.start_run("sync"))
            h.record_plan(ids[-1], _three())
            h.finish_run(ids[-1], "succeeded")
            clock.advance(10 * DAY)
        clock.advance(-10 * DAY)  # now: day 30
        assert h.prune() == []
        assert h.prune(keep_days=15) == ids[:2]  # days 0 and 10
        assert [r.run_id for r in h.list_runs()] == ids[:1:-1]
        assert h.prune(keep_runs=5, keep_days=100) == []
        assert h.prune(keep_runs=1, keep_days=100) == [ids[2]]
        assert [p.run_id for p in h.changes_for_person(AMY)] == [ids[3]] * 3
        after = h.start_run("sync")
        assert after == ids[3] + 1  # the ids of pruned runs are not given again (reports are named by them)
        with pytest.raises(ValueError, match="negative"):
            h.prune(keep_runs=-1)


def test_a_database_url_is_shown_without_its_password() -> None:
    url = "postgresql://entra:hunter2-pass@127.0.0.1:1/history"
    with pytest.raises(HistoryError) as caught:
        History(url, VirtualClock())
    message = str(caught.value)
    assert "hunter2" not in message and "hunter2" not in repr(caught.value.__cause__ or "")
    assert message.startswith("run history postgresql://entra:***@127.0.0.1:1/history: cannot open the "
                              "database (connection failed: ")
    assert message.endswith("check that the server is up and the URL, user and password are right")


def test_outcomes_recorded_from_several_threads_at_once_are_all_kept(target: str) -> None:
    plan = Plan(changes=tuple(
        CreateGroup(f"g{i:03}", after=GroupDocument(f"G{i}", f"g{i}", members=(AMY,))) for i in range(60)))
    with History(target, VirtualClock()) as h:
        run_id = h.start_run("sync")
        h.record_plan(run_id, plan)

        def settle(part: int) -> None:
            for c in plan.changes[part::4]:
                h.record_result(run_id, ChangeResult(c.id, "create", "group", c.key, "done", object_id=c.key))

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(settle, range(4)))
        assert h.list_runs()[0].counts["done"] == 60
        assert {p.status for p in h.changes_for_person(AMY)} == {"done"}
        assert len(h.created_since(0)) == 60
