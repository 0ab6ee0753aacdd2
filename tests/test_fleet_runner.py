"""One slot of one tenant through the run pipeline, in-process (a real Redis for the lease, a
SQLite store): recorded with its tenant; a duplicate delivery does nothing; a busy tenant waits; a
paused one is skipped; an attempt whose worker died after the run finished is not run again; a
configuration broken since it was registered is a failed run with the loader's message."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from pathlib import Path

import pytest
from redis import Redis

from entra_sync.fleet import slots
from entra_sync.fleet.lease import TenantLease
from entra_sync.fleet.registry import FleetStore
from entra_sync.fleet.runner import run_slot
from entra_sync.fleet.settings import FleetSettings
from entra_sync.runs.history import History
from entra_sync.store.delta import SqlDeltaStore
from providers.emulator import Tenant
from tests.emulator_support import age_groups
from tests.fleet_support import duplicates, redis_server, write_tenant  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture
def parts(tmp_path: Path, redis_server: str):  # noqa: F811
    client = Redis.from_url(redis_server)
    client.flushdb()
    url = str(tmp_path / "fleet.sqlite")
    store, history = FleetStore(url), History(url)
    store.add("oak", write_tenant(tmp_path / "oak"))
    settings = FleetSettings(store=url, broker=redis_server, lease=5, degrade_after=2)
    yield store, history, client, settings
    store.close()
    history.close()
    client.close()


def _slot(store: FleetStore, at: float) -> int:
    assert slots.add_catch_up(store, "oak", at)
    (sent,) = slots.dispatch(store, at + 1, lambda _i: None)
    return sent


def test_a_slot_runs_once_and_is_recorded_with_its_tenant(parts, tmp_path: Path) -> None:
    store, history, redis, settings = parts
    settings = dataclasses.replace(settings, reports=tmp_path / "reports")
    slot = _slot(store, time.time() - 5)
    out = run_slot(store, history, redis, slot, settings, "w1:1")
    assert (out.what, out.status) == ("ran", "succeeded")
    assert "oak.example" in (tmp_path / "reports" / "oak" / f"run-{out.run_id}.html").read_text()
    (run,) = history.list_runs(5, tenant="oak")
    assert run.run_id == out.run_id and run.kind == "fleet catch-up" and run.tenant == "oak"
    assert history.list_runs(5) == [run]
    done = slots.get(store, slot)
    assert done is not None and done.state == "done" and done.run_id == run.run_id and done.worker == "w1:1"
    assert run_slot(store, history, redis, slot, settings, "w2:1").what == "duplicate"
    assert len(history.list_runs(5)) == 1
    assert store.get("oak").last_status == "succeeded" and store.get("oak").last_success_at is not None
    assert duplicates(Tenant.load(tmp_path / "oak" / "tenant.json")) == []


def test_a_busy_tenant_waits_and_a_paused_one_is_skipped(parts) -> None:
    store, history, redis, settings = parts
    slot = _slot(store, time.time() - 5)
    with TenantLease(redis, "oak", lease=5):
        assert run_slot(store, history, redis, slot, settings, "w1:1").what == "busy"
    assert slots.get(store, slot).state == "queued"  # type: ignore[union-attr]
    store.pause("oak")
    assert run_slot(store, history, redis, slot, settings, "w1:1").what == "skipped"
    assert slots.get(store, slot).message == "paused"  # type: ignore[union-attr]
    assert history.list_runs(5) == []


def test_an_attempt_whose_worker_died_after_the_run_finished_is_not_run_again(parts) -> None:
    store, history, redis, settings = parts
    slot = _slot(store, time.time() - 5)
    assert slots.claim(store, slot, "w1:1") is not None  # the first attempt...
    run_id = history.start_run("fleet catch-up", tenant="oak")
    history.finish_run(run_id, "succeeded")  # ...ran to its end, and its worker died before the slot did
    out = run_slot(store, history, redis, slot, settings, "w2:1")
    assert (out.what, out.run_id) == ("ran", run_id)
    assert [r.run_id for r in history.list_runs(5)] == [run_id]
    s = slots.get(store, slot)
    assert s is not None and s.attempts == 2 and s.state == "done" and s.run_id == run_id


def test_an_attempt_whose_worker_died_mid_run_runs_again_and_closes_the_run(parts) -> None:
    store, history, redis, settings = parts
    slot = _slot(store, time.time() - 5)
    assert slots.claim(store, slot, "w1:1") is not None
    killed = history.start_run("fleet catch-up", tenant="oak")  # never finished: the worker died
    other = history.start_run("sync", tenant="elm")  # another tenant's run in the same store, live
    out = run_slot(store, history, redis, slot, settings, "w2:1")
    assert out.status == "succeeded" and out.run_id not in (killed, other)
    statuses = {r.run_id: r.status for r in history.list_runs(5)}
    assert statuses[killed] == "interrupted" and statuses[other] == "running"  # only this tenant's


def test_a_configuration_broken_since_registration_is_a_failed_run_with_the_loaders_message(
    parts, tmp_path: Path
) -> None:
    store, history, redis, settings = parts
    cfg = tmp_path / "oak" / "entra-sync.toml"
    cfg.write_text(cfg.read_text() + "\n[safety]\nmax_deletez = 1\n")
    for _ in range(2):
        out = run_slot(store, history, redis, _slot(store, time.time() - 5 - _), settings, "w1:1")
        assert out.status == "failed" and "safety.max_deletez" in (out.message or "")
    assert "did you mean" in (history.list_runs(1, tenant="oak")[0].error or "")
    assert store.get("oak").degraded


def test_a_run_that_deferred_teams_adds_a_catch_up_slot_that_creates_them(parts, tmp_path: Path) -> None:
    from providers.emulator.profile import Profile
    from providers.emulator.server import EmulatorServer
    from reconciler.clock import VirtualClock
    from tests.fleet_support import served_tenant

    store, history, redis, settings = parts
    clock = VirtualClock(time.time())
    server = EmulatorServer(served_tenant(tmp_path / "ash"), clock=clock,
                            profile=Profile(team_min_group_age=900.0))  # fmt: skip
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}"
        cfg = write_tenant(tmp_path / "ash", graph_url=url, token_env="ASH_TOKEN", teams=True,
                           catch_up_minutes=20)  # fmt: skip
        store.add("ash", cfg)
        assert slots.add_catch_up(store, "ash", time.time() - 5)
        (first,) = slots.dispatch(store, time.time(), lambda _i: None)
        out = run_slot(store, history, redis, first, settings, "w1:1", env={"ASH_TOKEN": "t"})
        assert out.status == "succeeded"
        (catch_up,) = [s for s in slots.slots(store, "ash") if s.state == "pending"]
        assert catch_up.kind == "catch-up" and catch_up.due_at - time.time() == pytest.approx(1200, abs=60)
        clock.advance(1000)  # the groups are old enough for their Teams now
        age_groups(server, 1000)  # (the worker reads the time from the system clock)
        (sent,) = slots.dispatch(store, catch_up.due_at + 1, lambda _i: None)
        out = run_slot(store, history, redis, sent, settings, "w1:1", env={"ASH_TOKEN": "t"})
        assert out.status == "succeeded"
        first_run, second_run = sorted(history.list_runs(5, tenant="ash"), key=lambda r: r.run_id)
        assert first_run.counts.get("deferred", 0) > 0 and second_run.counts.get("done", 0) > 0
        assert [s.state for s in slots.slots(store, "ash")] == ["done", "done"]  # no third: nothing deferred
        with server.engine.lock:
            assert server.engine.tenant.teams
    finally:
        server.stop()


def test_a_plan_refused_by_a_safety_limit_is_held_for_the_console_and_is_no_failure(
    parts, tmp_path: Path
) -> None:
    from sqlalchemy import select

    from entra_sync.store.tables import console_held_plans
    from tests.fleet_support import small_export

    store, history, redis, settings = parts
    assert (
        run_slot(store, history, redis, _slot(store, time.time() - 9), settings, "w1:1").status == "succeeded"
    )
    small_export(tmp_path / "oak" / "export.json", classes=1)  # two classes gone...
    cfg = tmp_path / "oak" / "entra-sync.toml"
    cfg.write_text(cfg.read_text() + "\n[safety]\nmax_deletes = 1\n")  # ...and at most one delete a run
    out = run_slot(store, history, redis, _slot(store, time.time() - 5), settings, "w1:1")
    assert out.status == "refused"
    with store.read() as conn:
        (held,) = conn.execute(select(console_held_plans)).mappings().all()
    assert held["tenant"] == "oak" and held["run_id"] == out.run_id and held["status"] == "held"
    assert held["requested_by"] == "fleet" and '"action":"delete"' in held["plan"].replace(" ", "")
    assert any("max_deletes" in r or "deletes" in r for r in held["reasons"])
    health = store.get("oak")
    assert health.consecutive_failures == 0 and health.last_status == "refused"
    assert health.last_success_at is not None and health.last_success_at < health.last_run_at  # type: ignore[operator]


def test_a_client_secret_typed_in_the_console_signs_in_only_its_own_tenant(parts, tmp_path: Path) -> None:
    from cryptography.fernet import Fernet
    from sqlalchemy import update

    from entra_sync.console.security import SecretBox
    from entra_sync.fleet.runner import console_secret, tenant_env
    from entra_sync.store.tables import console_tenants
    from reconciler.errors import ConfigError

    store, history, redis, settings = parts
    key = Fernet.generate_key()
    store.add("elm", write_tenant(tmp_path / "elm"), credential_ref="console")
    elm = store.get("elm")
    with pytest.raises(ConfigError, match="no client secret has been typed in the console"):
        console_secret(elm, elm.load_config(), {}, None)
    with store.tx() as conn:
        conn.execute(update(console_tenants).where(console_tenants.c.slug == "elm")
                     .values(secret_enc=SecretBox(key).encrypt("elm-s3cret")))  # fmt: skip
    elm = store.get("elm")
    assert elm.secret_enc is not None and "elm-s3cret" not in elm.secret_enc and "elm-s3cret" not in repr(elm)
    with pytest.raises(ConfigError, match="the console's key is needed"):
        console_secret(elm, elm.load_config(), {}, tmp_path / "no-key")
    (tmp_path / "console.key").write_bytes(key)
    config, env = console_secret(
        elm, elm.load_config(), {"ENTRA_SYNC_CLIENT_SECRET": "oak's"}, tmp_path / "console.key"
    )
    assert config.credentials.method == "client_secret_env"
    assert config.credentials.client_secret_env == "ENTRA_SYNC_CONSOLE_SECRET_ELM"
    assert tenant_env(env, config) == {"ENTRA_SYNC_CONSOLE_SECRET_ELM": "elm-s3cret"}
    # without the key a worker records the run as failed, with the way out, and carries on
    out = run_slot(store, history, redis, _slot_of(store, "elm"), settings, "w1:1", env={})
    assert out.status == "failed" and "ENTRA_SYNC_FLEET_CONSOLE_KEY_FILE" in (out.message or "")
    assert "elm-s3cret" not in (out.message or "")


def _slot_of(store: FleetStore, tenant: str) -> int:
    assert slots.add_catch_up(store, tenant, time.time() - 5)
    (sent,) = slots.dispatch(store, time.time(), lambda _i: None)
    return sent


def test_fleet_runs_read_through_delta_and_are_followed_by_the_tenants_after_run_steps(
    parts, tmp_path: Path
) -> None:
    """A fleet run is the same run as `entra-sync sync`: its reads follow the delta links kept in
    the shared store ([delta] is on by default), and the tenant's notifications, metrics textfile
    and history retention follow it."""
    store, history, redis, settings = parts
    cfg = tmp_path / "oak" / "entra-sync.toml"
    textfile = tmp_path / "oak.prom"
    cfg.write_text(cfg.read_text() + f'[metrics]\ntextfile = "{textfile}"\n[history]\nkeep_runs = 1\n')
    first = run_slot(store, history, redis, _slot(store, time.time() - 50), settings, "w1:1")
    assert (first.what, first.status) == ("ran", "succeeded")
    delta = SqlDeltaStore(settings.store)
    with sqlite3.connect(settings.store) as db:
        (scope,) = [r[0] for r in db.execute("SELECT scope FROM delta_snapshots")]
    snap = delta.load(scope)
    assert snap is not None and snap.runs_since_full == 0  # the first read was full
    assert "entra_sync_last_success_timestamp_seconds" in textfile.read_text()
    second = run_slot(store, history, redis, _slot(store, time.time() - 5), settings, "w1:1")
    assert (second.what, second.status) == ("ran", "succeeded")
    snap = delta.load(scope)
    assert snap is not None and snap.runs_since_full == 1  # read through delta
    assert [r.run_id for r in history.list_runs(5, tenant="oak")] == [second.run_id]  # keep_runs = 1
    delta.close()
