"""The fleet end to end: a real Redis server, a real PostgreSQL server, `entra-sync worker`
processes and 20 emulated tenants, three slots of one day.

The test plays beat with a virtual clock (``slots.tick`` at 04:01, 08:01 and 12:01 London time),
so the slots come at once instead of hours apart; everything else is real: the tasks go through
Redis to two worker processes (prefork pools), which run each tenant's slot through the run
pipeline against its emulated tenant and record it in PostgreSQL. Checked: every tenant syncs once
per slot and never twice at once; a worker SIGKILLed mid-run (its whole process group) leaves its
run to Redis's redelivery, and the retry, on another worker, closes the killed run as interrupted
and completes the slot without a duplicate object; a paused tenant is skipped; a tenant whose
token Graph refuses becomes degraded after 2 failed runs (then runs only at its first slot of
the day) while the others carry on.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from redis import Redis

from entra_sync.fleet import slots
from entra_sync.fleet.app import RUN_TASK, make_app
from entra_sync.fleet.metrics import exposition
from entra_sync.fleet.registry import FleetStore
from entra_sync.fleet.settings import FleetSettings
from entra_sync.runs.history import History
from providers.emulator import Tenant
from providers.emulator.profile import Profile
from providers.emulator.server import EmulatorServer
from tests.fleet_support import Worker, duplicates, redis_server, served_tenant, write_tenant  # noqa: F401
from tests.postgres import postgres_database, postgres_server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("clean_env")

LONDON = ZoneInfo("Europe/London")
DAY = "2026-11-02"
NORMAL = [f"school-{i:02d}" for i in range(17)]


def _at(hhmm: str) -> float:
    return datetime.fromisoformat(f"{DAY}T{hhmm}:00").replace(tzinfo=LONDON).timestamp()


def _wait(what: str, ok: Callable[[], bool], timeout: float = 150.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Fleet:
    def __init__(self, tmp: Path, store_url: str, redis_url: str) -> None:
        self.tmp = tmp
        self.env = {
            k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS" and not k.startswith("ENTRA_SYNC_")
        }
        self.env.update({
            "ENTRA_SYNC_FLEET_STORE": store_url, "ENTRA_SYNC_FLEET_BROKER": redis_url,
            "ENTRA_SYNC_FLEET_LEASE": "3", "ENTRA_SYNC_FLEET_VISIBILITY_TIMEOUT": "6",
            "ENTRA_SYNC_FLEET_BUSY_RETRY": "1", "ENTRA_SYNC_FLEET_DEGRADE_AFTER": "2",
            "BAD_TENANT_TOKEN": "a-token-graph-refuses", "SLOW_TENANT_TOKEN": "any-token",
        })  # fmt: skip
        self.settings = FleetSettings.from_env(self.env)
        self.store = FleetStore(store_url)
        self.history = History(store_url)
        self.app = make_app(self.settings)
        self.workers: list[Worker] = []

    def start_worker(self, name: str) -> Worker:
        w = Worker(self.env, name, self.tmp / f"{name}.log", concurrency=2)
        self.workers.append(w)
        _wait(f"worker {name} ready", lambda: b"ready." in w.log.read_bytes(), timeout=60)
        return w

    def tick(self, hhmm: str) -> list[int]:
        """Beat's tick at ``hhmm`` local time (plus a minute), the tasks sent through Redis."""
        return slots.tick(self.store, _at(hhmm) + 60, 30, lambda i: self.app.send_task(RUN_TASK, args=[i]))

    def slots_at(self, hhmm: str) -> dict[str, slots.Slot]:
        return {s.tenant: s for s in slots.slots(self.store) if s.slot_at == _at(hhmm)}

    def wait_slot(self, hhmm: str) -> dict[str, slots.Slot]:
        _wait(f"every slot at {hhmm} to finish",
              lambda: all(s.state in slots.FINISHED for s in self.slots_at(hhmm).values()))  # fmt: skip
        return self.slots_at(hhmm)

    def close(self) -> None:
        for w in self.workers:
            w.stop()
        self.history.close()
        self.store.close()


@pytest.fixture
def fleet(tmp_path: Path, postgres_database: str, redis_server: str) -> Iterator[Fleet]:  # noqa: F811
    Redis.from_url(redis_server).flushdb()
    f = Fleet(tmp_path, postgres_database, redis_server)
    try:
        yield f
    finally:
        f.close()


def _slowed(server: EmulatorServer, seconds: float) -> None:
    """Every write to this served tenant takes ``seconds`` (so a run is long enough to be killed)."""
    handle = server.engine.handle

    def slow(method: str, *args: Any, **kwargs: Any) -> Any:
        if method in ("POST", "PATCH", "PUT", "DELETE"):
            time.sleep(seconds)
        return handle(method, *args, **kwargs)

    server.engine.handle = slow  # type: ignore[method-assign]


def test_twenty_tenants_on_two_workers_through_a_killed_worker_a_pause_and_a_degraded_tenant(
    fleet: Fleet, tmp_path: Path
) -> None:
    slow_server = EmulatorServer(served_tenant(tmp_path / "slow", classes=8))
    bad_server = EmulatorServer(
        served_tenant(tmp_path / "bad"), profile=Profile(accepted_tokens=frozenset({"good"}))
    )
    for server in (slow_server, bad_server):
        server.start()
    try:
        _slowed(slow_server, 0.08)
        for name in NORMAL:
            fleet.store.add(name, write_tenant(tmp_path / name))
        fleet.store.add("paused", write_tenant(tmp_path / "paused"), paused=True)
        fleet.store.add("slow", write_tenant(tmp_path / "slow", graph_url=f"http://127.0.0.1:{slow_server.port}",
                                             token_env="SLOW_TENANT_TOKEN", classes=8))  # fmt: skip
        fleet.store.add("bad", write_tenant(tmp_path / "bad", graph_url=f"http://127.0.0.1:{bad_server.port}",
                                            token_env="BAD_TENANT_TOKEN"))  # fmt: skip
        assert len(fleet.store.tenants()) == 20
        slots.tick(fleet.store, _at("03:00"), 30, lambda _i: None)  # the first tick: next slots at 04:00
        w1, w2 = fleet.start_worker("w1"), fleet.start_worker("w2")

        # -- 04:00: kill the worker running "slow" mid-run -----------------------------------
        sent = fleet.tick("04:00")
        assert len(sent) == 19  # all but the paused tenant
        slow_slot = fleet.slots_at("04:00")["slow"].id

        def slow_run_half_done() -> bool:
            runs = fleet.history.list_runs(5, tenant="slow")
            if not runs or runs[0].status != "running":
                return False
            return sum(1 for c in fleet.history.get_run(runs[0].run_id).changes if c.result is not None) >= 3

        _wait("the slow tenant's run to be under way", slow_run_half_done, timeout=90)
        holder = slots.get(fleet.store, slow_slot)
        assert holder is not None and holder.state == "running" and holder.worker is not None
        victim = w1 if holder.worker.startswith(("w1", "celery@w1")) else w2
        assert holder.worker.split(":")[0].endswith(victim.name)
        killed_run = fleet.history.list_runs(1, tenant="slow")[0]
        victim.kill()
        killed_at = time.time()
        fleet.start_worker("w3")  # a replacement (Kubernetes would start one)
        at4 = fleet.wait_slot("04:00")

        assert at4["paused"].state == "skipped" and at4["paused"].message == "paused"
        assert at4["slow"].state == "done" and at4["slow"].attempts == 2, at4["slow"]
        assert not at4["slow"].worker.split(":")[0].endswith(victim.name)  # type: ignore[union-attr]
        slow_runs = sorted(fleet.history.list_runs(10, tenant="slow"), key=lambda r: r.run_id)
        assert [(r.run_id, r.status) for r in slow_runs] == [
            (killed_run.run_id, "interrupted"),
            (at4["slow"].run_id, "succeeded"),
        ]
        assert slow_runs[1].started_at > killed_at  # the retry began after the kill, never beside it
        with slow_server.engine.lock:
            assert duplicates(slow_server.engine.tenant) == []
        assert (
            at4["bad"].state == "done"
            and fleet.history.get_run(at4["bad"].run_id or 0).summary.status == "failed"
        )
        assert "401" in (fleet.store.get("bad").last_error or "")

        # -- 08:00 and 12:00: the others carry on; "bad" is degraded after its second failure ----
        assert len(fleet.tick("08:00")) == 19
        at8 = fleet.wait_slot("08:00")
        bad = fleet.store.get("bad")
        assert bad.degraded and bad.consecutive_failures == 2
        assert len(fleet.tick("12:00")) == 18  # degraded: only its first slot of the day runs
        at12 = fleet.wait_slot("12:00")
        assert at12["bad"].state == "skipped" and at12["bad"].message == slots.DEGRADED_SKIP
        assert at12["paused"].state == "skipped"
    finally:
        slow_server.stop()
        bad_server.stop()

    for name in [*NORMAL, "slow"]:
        runs = sorted(fleet.history.list_runs(20, tenant=name), key=lambda r: r.run_id)
        ok = [r for r in runs if r.status != "interrupted"]
        # once per slot: one recorded run each, in slot order, each the slot's own
        assert [r.status for r in ok] == ["succeeded"] * 3, (name, runs)
        assert [r.run_id for r in ok] == [at4[name].run_id, at8[name].run_id, at12[name].run_id]
        assert all(r.kind == "fleet sync" for r in ok)
        # never twice at once
        for a, b in itertools.pairwise(ok):
            assert a.finished_at is not None and a.finished_at <= b.started_at, (name, a, b)
        assert ok[1].counts == {} and ok[2].counts == {}, (name, ok)  # converged: nothing left to do
        if name != "slow":
            assert duplicates(Tenant.load(tmp_path / name / "tenant.json")) == []
    assert fleet.history.list_runs(10, tenant="paused") == []
    bad_runs = fleet.history.list_runs(10, tenant="bad")
    assert [r.status for r in bad_runs if r.status != "interrupted"] == ["failed", "failed"]
    # a run is interrupted only where the killed worker was running it, and its slot was retried
    for t in fleet.store.tenants():
        retried = sum(s.attempts - 1 for s in slots.slots(fleet.store, t.slug) if s.attempts > 1)
        interrupted = [r for r in fleet.history.list_runs(20, tenant=t.slug) if r.status == "interrupted"]
        assert len(interrupted) <= retried, (t.slug, interrupted)
    text = exposition(fleet.store)
    assert 'entra_sync_fleet_tenant_degraded{tenant="bad"} 1.0' in text
    assert 'entra_sync_fleet_tenant_degraded{tenant="school-00"} 0.0' in text
    assert 'entra_sync_fleet_tenants{state="paused"} 1.0' in text


def test_beat_ticks_and_a_worker_runs_the_slot_that_came(fleet: Fleet, tmp_path: Path) -> None:
    from sqlalchemy import update

    from entra_sync.store.tables import fleet_tenants

    fleet.store.add("oak", write_tenant(tmp_path / "oak"))
    with fleet.store.tx() as conn:  # its 04:00 slot came a minute ago
        conn.execute(update(fleet_tenants).values(next_slot_at=time.time() - 60))
    fleet.env["ENTRA_SYNC_FLEET_TICK"] = "0.5"
    fleet.env["ENTRA_SYNC_FLEET_JITTER"] = "0"
    fleet.start_worker("w1")
    beat = Worker(
        fleet.env, "beat", tmp_path / "beat.log", command=["beat", "--schedule-file", str(tmp_path / "s")]
    )
    fleet.workers.append(beat)
    _wait(
        "the slot to be run",
        lambda: [s.state for s in slots.slots(fleet.store, "oak")] == ["done"],
        timeout=90,
    )
    assert slots.last_tick(fleet.store) is not None
    (run,) = fleet.history.list_runs(5, tenant="oak")
    assert run.status == "succeeded" and run.kind == "fleet sync"
    assert fleet.store.get("oak").next_slot_at > time.time()  # the next slot, not this one again
