"""The one run pipeline on an in-memory directory: lock, record first, outcomes as they settle,
interrupted runs closed by the next, failures before planning recorded as their own run, adopt."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import pytest

from entra_sync.pipeline import (
    AdoptHooks,
    AdoptRequest,
    RunHooks,
    RunPipeline,
    RunRequest,
)
from entra_sync.run_setup import html_report_writer
from entra_sync.runs.history import History
from entra_sync.runs.lock import LockHeldError, RunLock
from reconciler.apply.result import ChangeResult
from reconciler.clock import VirtualClock
from reconciler.errors import DirectoryError
from reconciler.model import AdministrativeUnit, DesiredState, Group
from reconciler.plan.diff import diff
from reconciler.plan.model import Conflict, Plan
from tests.fakes import FakeDirectory

PEOPLE = [f"p{i}@oak.example" for i in range(12)]


def desired(n: int = 3, members: int = 12) -> DesiredState:
    people = frozenset(PEOPLE[:members])
    return DesiredState(
        administrative_units=(AdministrativeUnit("au:oak", "Oak", members=people),),
        groups=tuple(Group(f"class:oak:{i}", f"Class {i}", f"class-oak-{i}", owners=frozenset({PEOPLE[0]}),
                           members=people) for i in range(n)),
    )  # fmt: skip


class AdoptingFake(FakeDirectory):
    def __init__(self, users: list[str]) -> None:
        super().__init__(users)
        self.adopted: list[tuple[str, str, str]] = []

    def adopt(self, kind: Literal["administrativeUnit", "group"], object_id: str, key: str) -> None:
        self.adopted.append((kind, object_id, key))


@pytest.fixture
def fake() -> AdoptingFake:
    return AdoptingFake(PEOPLE)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[History]:
    with History(tmp_path / "history.sqlite", VirtualClock()) as h:
        yield h


def pipeline(fake: FakeDirectory, store: History | None, tmp_path: Path, **kw: Any) -> RunPipeline:
    @contextlib.contextmanager
    def open_fake() -> Iterator[Any]:
        yield fake

    return RunPipeline(
        open_fake, store=store, lock=RunLock(tmp_path / "history.lock"),
        report=html_report_writer(tmp_path / "reports", "Europe/London"), **kw,
    )  # fmt: skip


def test_a_run_is_planned_shown_confirmed_applied_recorded_and_reported(
    fake: AdoptingFake, store: History, tmp_path: Path
) -> None:
    seen: list[str] = []
    recorded: list[tuple[int, Path | None]] = []

    def confirm(plan: Plan) -> bool:
        seen.append(f"confirm {len(plan.changes)}")
        assert fake.writes == []  # asked before anything is written
        return True

    hooks = RunHooks(show=lambda p: seen.append(f"show {len(p.changes)}"), confirm=confirm,
                     recorded=lambda i, p: recorded.append((i, p)))  # fmt: skip
    outcome = pipeline(fake, store, tmp_path).run(RunRequest("sync", desired=desired), hooks)
    assert outcome.ok and outcome.result is not None and outcome.run_id == 1
    n = len(outcome.plan.changes)
    assert seen == [f"show {n}", f"confirm {n}"]
    run = store.get_run(1)
    assert run.summary.status == "succeeded"
    assert [c.result.status for c in run.changes if c.result] == ["done"] * n
    assert recorded == [(1, tmp_path / "reports" / "run-1.html")]
    assert "run 1" in (tmp_path / "reports" / "run-1.html").read_text().lower()


def test_each_outcome_is_in_the_store_as_it_settles(
    fake: AdoptingFake, store: History, tmp_path: Path
) -> None:
    """While the third group is being created, the first two creates are already on disk (read
    through a second connection, as the next process would)."""
    seen_on_disk: list[dict[str, str | None]] = []

    def hook(method: str, args: tuple[Any, ...]) -> None:
        if method == "create_group" and args[0] == "class:oak:2":
            with History(store.path) as other:
                run = other.get_run(1)
                seen_on_disk.append({c.change.key: c.result.status if c.result else None
                                     for c in run.changes if c.change.action == "create"})  # fmt: skip

    fake.hook = hook
    pipeline(fake, store, tmp_path).run(RunRequest("sync", desired=desired, max_workers=1))
    [during] = seen_on_disk
    assert during["au:oak"] == "done"
    assert during["class:oak:0"] == "done" and during["class:oak:1"] == "done"
    assert during["class:oak:2"] is None  # planned, not yet settled
    assert store.get_run(1).summary.status == "succeeded"


def test_a_run_left_running_is_closed_as_interrupted_by_the_next_keeping_what_it_did(
    fake: AdoptingFake, store: History, tmp_path: Path
) -> None:
    # a run that was killed after its first create settled: "running" forever, one result on disk
    plan = diff(desired(), fake.read(desired()))
    killed = store.start_run("scheduled sync")
    store.record_plan(killed, plan)
    first = plan.changes[0]
    assert (first.action, first.kind) == ("create", "administrativeUnit")
    store.record_result(killed, ChangeResult(first.id, first.action, first.kind, first.key, "done",
                                             object_id="au-made-by-the-killed-run"))  # fmt: skip
    assert store.created_since(0) == {"au-made-by-the-killed-run": "administrativeUnit"}

    outcome = pipeline(fake, store, tmp_path).run(RunRequest("sync", desired=desired))
    assert outcome.run_id == killed + 1 and outcome.ok
    closed = store.get_run(killed)
    assert closed.summary.status == "interrupted"
    assert "1 of" in (closed.summary.error or "") and "closed by the next run" in (closed.summary.error or "")
    assert closed.summary.counts["done"] == 1
    statuses = {c.change.id: (c.result.status if c.result else None) for c in closed.changes}
    assert statuses[first.id] == "done"
    assert sum(1 for s in statuses.values() if s is None) == len(plan.changes) - 1
    # its create is still known as a create (the lag defence after a kill)
    assert "au-made-by-the-killed-run" in store.created_since(0)
    assert (tmp_path / "reports" / f"run-{killed + 1}.html").exists()


def test_no_run_is_closed_without_the_lock(fake: AdoptingFake, store: History, tmp_path: Path) -> None:
    running = store.start_run("sync")
    unlocked = RunPipeline(lambda: contextlib.nullcontext(fake), store=store)  # type: ignore[arg-type,return-value]
    unlocked.run(RunRequest("sync", desired=desired))
    assert store.get_run(running).summary.status == "running"


def test_a_run_refused_by_the_lock_is_recorded_with_the_reason_and_leaves_the_live_run_alone(
    fake: AdoptingFake, store: History, tmp_path: Path
) -> None:
    left_running = store.start_run("sync")
    with RunLock(tmp_path / "history.lock"), pytest.raises(LockHeldError):
        pipeline(fake, store, tmp_path).run(RunRequest("sync", desired=desired, dry_run=True))
    turned_away, live = store.list_runs()
    assert live.run_id == left_running and live.status == "running"  # it may really be running
    assert turned_away.status == "failed" and turned_away.kind == "sync (dry run)"
    assert turned_away.error is not None and "another entra-sync run is in progress" in turned_away.error
    assert not turned_away.planned
    assert fake.writes == []


def test_a_failure_before_planning_is_its_own_run_and_the_last_report_is_untouched(
    fake: AdoptingFake, store: History, tmp_path: Path
) -> None:
    pipe = pipeline(fake, store, tmp_path)
    pipe.run(RunRequest("sync", desired=desired))
    first_report = (tmp_path / "reports" / "run-1.html").read_bytes()

    @contextlib.contextmanager
    def cannot_sign_in() -> Iterator[Any]:
        raise DirectoryError("sign-in refused: AADSTS7000215 invalid client secret")
        yield fake  # pragma: no cover

    failing = RunPipeline(cannot_sign_in, store=store, lock=RunLock(tmp_path / "history.lock"),
                          report=html_report_writer(tmp_path / "reports", "Europe/London"))  # fmt: skip
    recorded: list[int] = []
    with pytest.raises(DirectoryError):
        failing.run(RunRequest("sync", desired=desired), RunHooks(recorded=lambda i, _p: recorded.append(i)))
    assert recorded == [2]
    run = store.get_run(2)
    assert run.summary.status == "failed" and "AADSTS7000215" in (run.summary.error or "")
    assert "AADSTS7000215" in (tmp_path / "reports" / "run-2.html").read_text()
    assert (tmp_path / "reports" / "run-1.html").read_bytes() == first_report

    def broken_source() -> DesiredState:
        raise DirectoryError("export.json: cannot be read")

    with pytest.raises(DirectoryError):
        pipe.run(RunRequest("sync", desired=broken_source))
    assert store.get_run(3).summary.status == "failed"


def test_refused_dry_run_and_declined_plans_write_nothing(
    fake: AdoptingFake, store: History, tmp_path: Path
) -> None:
    pipe = pipeline(fake, store, tmp_path)
    pipe.run(RunRequest("sync", desired=lambda: desired(12)))
    writes = len(fake.writes)
    outcome = pipe.run(RunRequest("sync", desired=lambda: desired(2), dry_run=True))
    assert outcome.refused and outcome.dry_run and not outcome.ok
    assert store.get_run(2).summary.kind == "sync (dry run)"
    assert store.get_run(2).summary.status == "refused"
    outcome = pipe.run(RunRequest("sync", desired=lambda: desired(2)))
    assert outcome.refused and store.get_run(3).summary.status == "refused"
    outcome = pipe.run(
        RunRequest("sync", desired=lambda: desired(2), force=True), RunHooks(confirm=lambda p: False)
    )
    assert outcome.declined and store.get_run(4).summary.status == "interrupted"
    assert len(fake.writes) == writes
    outcome = pipe.run(RunRequest("sync", desired=lambda: desired(2), force=True))
    assert outcome.ok and outcome.forced and len(fake.writes) > writes


def test_adopt_is_recorded_as_a_run_with_what_it_took_over(
    fake: AdoptingFake, store: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an unmanaged twin (School Data Sync made it) collides with a desired group
    twin = Conflict(kind="group", key="class:oak:0", object_id="sds-made-it", field="mailNickname",
                    value="class-oak-0")  # fmt: skip
    monkeypatch.setattr("entra_sync.steps.diff", lambda d, a: replace(diff(d, a), conflicts=(twin,)))
    shown: list[int] = []
    outcome = pipeline(fake, store, tmp_path).adopt(
        AdoptRequest(desired=lambda: desired(1), apply=True),
        AdoptHooks(show=lambda cs: shown.append(len(cs))),
    )
    assert outcome.adopted == (twin,) and shown == [1]
    assert fake.adopted == [("group", "sds-made-it", "class:oak:0")]
    run = store.get_run(outcome.run_id or 0)
    assert (run.summary.kind, run.summary.status) == ("adopt", "succeeded")
    [change] = run.changes  # the plan's creates were not applied, so they are not in the record
    assert (change.change.action, change.change.key) == ("adopt", "class:oak:0")
    assert change.result is not None and change.result.object_id == "sds-made-it"
    assert [c["key"] for c in run.conflicts] == ["class:oak:0"]
    assert [o.action for o in store.changes_for_object("class:oak:0")] == ["adopt"]
    assert fake.writes == []  # adopting wrote nothing else
    assert (tmp_path / "reports" / f"run-{outcome.run_id}.html").exists()
