"""The fleet's registry and slots on the store (SQLite and PostgreSQL): tenants added from their
configuration with the same checks and messages, paused and resumed, removed; health and degraded;
slots planned on a virtual clock in each tenant's time zone with a jitter, dispatched once, claimed
once; the Prometheus exposition."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from prometheus_client.parser import text_string_to_metric_families

from entra_sync.fleet import slots
from entra_sync.fleet.metrics import exposition, write_textfile
from entra_sync.fleet.registry import FleetStore, check_credential_ref
from entra_sync.fleet.runner import apply_credential_ref, tenant_env
from reconciler.clock import VirtualClock
from reconciler.errors import ConfigError, InputError
from tests.fleet_support import write_tenant
from tests.postgres import postgres_database, postgres_server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("clean_env")

LONDON = ZoneInfo("Europe/London")


def _at(day: str, hhmm: str, tz: ZoneInfo = LONDON) -> float:
    return datetime.fromisoformat(f"{day}T{hhmm}:00").replace(tzinfo=tz).timestamp()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "fleet.sqlite")
    return str(request.getfixturevalue("postgres_database"))


def test_tenants_commands_register_list_pause_resume_and_remove(
    run_cli, tmp_path: Path, store_url: str
) -> None:
    oak = write_tenant(tmp_path / "oak")
    r = run_cli("tenants", "add", "oak", "--config", oak, "--store", store_url, "--name", "Oak Academy")
    assert r.exit_code == 0, r.output
    assert "Registered tenant oak: runs at 04:00, 08:00, 12:00 (Europe/London)" in r.stdout
    r = run_cli("tenants", "add", "oak", "--config", oak, "--store", store_url)
    assert r.exit_code == 1 and "tenant 'oak' is already registered" in r.stderr
    assert run_cli("tenants", "pause", "oak", "--store", store_url, "--reason", "holidays").exit_code == 0
    r = run_cli("tenants", "list", "--store", store_url)
    assert r.stdout.split()[:2] == ["oak", "paused"]
    with FleetStore(store_url) as s:
        t = s.get("oak")
        assert t.paused and t.paused_reason == "holidays" and t.display_name == "Oak Academy"
        assert t.config_path == str(oak.absolute()) and t.credential_ref == "config" and t.config_toml is None
    assert run_cli("tenants", "resume", "oak", "--store", store_url).exit_code == 0
    assert run_cli("tenants", "list", "--store", store_url).stdout.split()[:2] == ["oak", "active"]
    assert run_cli("tenants", "remove", "oak", "--store", store_url).exit_code == 0
    r = run_cli("tenants", "list", "--store", store_url)
    assert "No tenants registered yet" in r.stdout
    r = run_cli("tenants", "pause", "oak", "--store", store_url)
    assert r.exit_code == 1 and "no tenant 'oak' in the registry" in r.stderr


def test_import_checks_each_configuration_like_sync_and_names_the_file(run_cli, tmp_path: Path) -> None:
    folder = tmp_path / "configs"
    write_tenant(tmp_path / "elm")
    folder.mkdir()
    (folder / "elm.toml").write_text((tmp_path / "elm" / "entra-sync.toml").read_text().replace(
        'path = "export.json"', f'path = "{tmp_path / "elm" / "export.json"}"'))  # fmt: skip
    (folder / "ash.toml").write_text('[schedule]\ntimes = ["25:00"]\ntimezone = "Europe/Londn"\n')
    store = str(tmp_path / "fleet.sqlite")
    r = run_cli("tenants", "import", folder, "--store", store, "--store-config")
    assert r.exit_code == 1
    assert "Registered tenant elm" in r.stdout
    # the loader's own messages, file and key named
    assert f"{folder / 'ash.toml'}" in r.stderr and "schedule.times[0]" in r.stderr
    assert "did you mean 'Europe/London'?" in r.stderr and "1 of 2 configuration(s) not imported" in r.stderr
    with FleetStore(store) as s:
        assert [t.slug for t in s.tenants()] == ["elm"]
        elm = s.get("elm")
        assert elm.config_toml is not None and "export.json" in elm.config_toml
        assert elm.load_config().source is not None


def test_credential_references_are_checked_and_never_echoed(tmp_path: Path) -> None:
    for ok in ("config", "env:OAK_SECRET", "file:/run/secrets/oak", "certificate:/etc/oak.pem",
               "federated:/var/run/token", "managed-identity", "managed-identity:system"):  # fmt: skip
        assert check_credential_ref(ok) == ok
    for bad in ("s3cr3t~value", "env:", "file:relative/path", "managed-identity:nope", "config:x"):
        with pytest.raises(InputError) as e:
            check_credential_ref(bad)
        assert "s3cr3t" not in str(e.value) and "credential reference is not valid" in str(e.value)
    oak = write_tenant(tmp_path / "oak", graph_url="http://127.0.0.1:9", token_env="OAK_TOKEN")
    with FleetStore(tmp_path / "f.sqlite") as s:
        t = s.add("oak", oak, credential_ref="env:OAK_SECRET")
        config = apply_credential_ref(t.load_config(), t.credential_ref)
    assert (
        config.credentials.method == "client_secret_env"
        and config.credentials.client_secret_env == "OAK_SECRET"
    )
    env = {
        "OAK_SECRET": "x",
        "ENTRA_SYNC_CLIENT_SECRET": "another tenant's",
        "AZURE_CLIENT_ID": "y",
        "PATH": "/bin",
    }
    assert tenant_env(env, config) == {"OAK_SECRET": "x", "PATH": "/bin"}


def test_a_tenant_with_no_credentials_is_refused_with_the_way_out(tmp_path: Path) -> None:
    cfg = write_tenant(tmp_path / "oak", graph_url="https://graph.microsoft.com")
    with FleetStore(tmp_path / "f.sqlite") as s, pytest.raises(ConfigError) as e:
        s.add("oak", cfg)
    assert "no credentials" in str(e.value) and "--credential env:NAME" in str(e.value)
    with FleetStore(tmp_path / "f.sqlite") as s:
        assert s.tenants() == []
        with pytest.raises(InputError, match="lower-case letters"):
            s.add("Oak Academy", cfg)


def test_health_counts_failures_in_a_row_and_degrades_after_n(tmp_path: Path, store_url: str) -> None:
    with FleetStore(store_url, clock=VirtualClock(1000.0)) as s:
        s.add("oak", write_tenant(tmp_path / "oak"))
        assert s.record_outcome("oak", "failed", "401", degrade_after=3).consecutive_failures == 1
        assert not s.record_outcome("oak", "partial", "1 failed", degrade_after=3).degraded
        t = s.record_outcome("oak", "failed", "401 InvalidAuthenticationToken", degrade_after=3)
        assert t.degraded and t.consecutive_failures == 3 and t.last_error == "401 InvalidAuthenticationToken"
        assert t.last_success_at is None
        t = s.record_outcome("oak", "succeeded", None, degrade_after=3)
        assert not t.degraded and t.consecutive_failures == 0 and t.last_success_at == 1000.0


def _store(tmp_path: Path, clock: VirtualClock, *names: str) -> FleetStore:
    s = FleetStore(tmp_path / "fleet.sqlite", clock=clock)
    for name in names:
        s.add(name, write_tenant(tmp_path / name))
    return s


def test_slots_come_at_local_times_with_a_jitter_and_are_dispatched_once(tmp_path: Path) -> None:
    clock = VirtualClock(_at("2026-10-24", "03:00"))
    sent: list[int] = []
    with _store(tmp_path, clock, "oak", "elm") as s:
        assert slots.tick(s, clock.now(), 600, sent.append) == []  # the first tick sets the next slots
        assert {t.next_slot_at for t in s.tenants()} == {_at("2026-10-24", "04:00")}
        slot_at = _at("2026-10-24", "04:00")
        assert slots.plan_slots(s, slot_at + 1, 600) == 2
        planned = slots.slots(s)
        assert [(p.tenant, p.slot_at, p.kind) for p in planned] == [
            ("elm", slot_at, "scheduled"),
            ("oak", slot_at, "scheduled"),
        ]
        for p in planned:
            assert p.due_at == slot_at + slots.jitter_for(p.tenant, slot_at, 600)
            assert 0 <= p.due_at - slot_at < 600
        assert planned[0].due_at != planned[1].due_at  # spread
        sent.clear()
        slots.tick(s, slot_at + 600, 600, sent.append)
        assert sorted(sent) == sorted(p.id for p in planned)
        slots.tick(s, slot_at + 700, 600, sent.append)  # a second tick sends nothing again
        assert len(sent) == 2 and {p.state for p in slots.slots(s)} == {"queued"}
        # the next slot is 08:00 local, and the clocks go back on 25 October: 04:00 is still 04:00 GMT
        assert {t.next_slot_at for t in s.tenants()} == {_at("2026-10-24", "08:00")}
        assert slots.jitter_for("oak", slot_at, 600) == slots.jitter_for("oak", slot_at, 600)


def test_slots_missed_while_down_run_once_late_and_claims_are_once(tmp_path: Path) -> None:
    clock = VirtualClock(_at("2026-10-24", "03:00"))
    with _store(tmp_path, clock, "oak") as s:
        slots.tick(s, clock.now(), 0, lambda _i: None)
        sent: list[int] = []
        slots.tick(s, _at("2026-10-26", "09:30", ZoneInfo("UTC")), 0, sent.append)  # two days down
        assert len(sent) == 1
        assert s.get("oak").next_slot_at == _at("2026-10-26", "12:00")
        first = slots.claim(s, sent[0], "w1")
        assert first is not None and first.state == "running" and first.attempts == 1
        again = slots.claim(s, sent[0], "w2")  # the worker died; the task is delivered again
        assert again is not None and again.attempts == 2 and again.worker == "w2"
        slots.finish(s, sent[0], "done", run_id=7, message="succeeded")
        assert slots.claim(s, sent[0], "w3") is None  # a duplicate delivery of a finished slot


def test_paused_and_degraded_tenants_slots_are_skipped(tmp_path: Path) -> None:
    clock = VirtualClock(_at("2026-11-02", "03:00"))
    with _store(tmp_path, clock, "oak", "elm", "ash") as s:
        slots.tick(s, clock.now(), 0, lambda _i: None)
        s.pause("oak", "half term")
        for _ in range(2):
            s.record_outcome("elm", "failed", "401", degrade_after=2)
        sent: list[int] = []
        for hhmm in ("04:00", "08:00", "12:00"):
            slots.tick(s, _at("2026-11-02", hhmm), 0, sent.append)
        by = {
            (p.tenant, datetime.fromtimestamp(p.slot_at, LONDON).strftime("%H:%M")): p for p in slots.slots(s)
        }
        assert {k for k, p in by.items() if p.state == "skipped"} == {
            ("oak", "04:00"),
            ("oak", "08:00"),
            ("oak", "12:00"),
            ("elm", "08:00"),
            ("elm", "12:00"),
        }
        assert by[("oak", "04:00")].message == "paused: half term"
        assert by[("elm", "08:00")].message == slots.DEGRADED_SKIP
        assert {
            by[k].id for k in (("ash", "04:00"), ("ash", "08:00"), ("ash", "12:00"), ("elm", "04:00"))
        } == set(sent)
        s.resume("oak")
        assert s.get("oak").next_slot_at is None  # from the next slot on: nothing is made up


def test_metrics_show_each_tenants_health(tmp_path: Path) -> None:
    clock = VirtualClock(_at("2026-11-02", "03:00"))
    with _store(tmp_path, clock, "oak", "elm") as s:
        slots.tick(s, clock.now(), 0, lambda _i: None)
        s.record_outcome("oak", "succeeded", None, degrade_after=2)
        for _ in range(2):
            s.record_outcome("elm", "failed", "401", degrade_after=2)
        text = exposition(s)
        write_textfile(s, tmp_path / "fleet.prom")
    assert (tmp_path / "fleet.prom").read_text() == text
    samples = {(m.name, tuple(sorted(m.labels.items()))): m.value
               for f in text_string_to_metric_families(text) for m in f.samples}  # fmt: skip
    assert samples[("entra_sync_fleet_tenant_degraded", (("tenant", "elm"),))] == 1
    assert samples[("entra_sync_fleet_tenant_degraded", (("tenant", "oak"),))] == 0
    assert samples[("entra_sync_fleet_tenant_consecutive_failures", (("tenant", "elm"),))] == 2
    assert (
        samples[("entra_sync_fleet_tenant_last_success_timestamp_seconds", (("tenant", "oak"),))]
        == clock.now()
    )
    assert samples[("entra_sync_fleet_tenant_last_status", (("status", "failed"), ("tenant", "elm")))] == 1
    assert samples[("entra_sync_fleet_tenants", (("state", "degraded"),))] == 1
    assert samples[("entra_sync_fleet_last_tick_timestamp_seconds", ())] == clock.now()


def test_the_cli_names_what_is_missing_and_prints_the_metrics(run_cli, tmp_path: Path) -> None:
    r = run_cli("tenants", "list")
    assert r.exit_code == 1 and "ENTRA_SYNC_FLEET_STORE" in r.stderr and "Traceback" not in r.output
    r = run_cli("worker", "--pool", "gevent", "--store", tmp_path / "f.sqlite")
    assert r.exit_code == 1 and "--pool must be prefork, threads or solo" in r.stderr
    store = tmp_path / "f.sqlite"
    assert (
        run_cli("tenants", "add", "oak", "-c", write_tenant(tmp_path / "oak"), "--store", store).exit_code
        == 0
    )
    r = run_cli("tenants", "metrics", "--store", store)
    assert r.exit_code == 0 and 'entra_sync_fleet_tenant_degraded{tenant="oak"} 0.0' in r.stdout
    assert run_cli("tenants", "metrics", "--store", store, "--textfile", tmp_path / "m.prom").exit_code == 0
    assert 'entra_sync_fleet_tenants{state="active"} 1.0' in (tmp_path / "m.prom").read_text()


def test_a_store_url_read_from_a_file_and_bad_settings_named(tmp_path: Path) -> None:
    from entra_sync.fleet.settings import FleetSettings

    (tmp_path / "url").write_text("postgresql://entra:pw@db/entra\n")
    s = FleetSettings.from_env({"ENTRA_SYNC_FLEET_STORE_FILE": str(tmp_path / "url")})
    assert s.store == "postgresql://entra:pw@db/entra" and "pw" not in repr(s)
    with pytest.raises(ConfigError, match="ENTRA_SYNC_FLEET_LEASE"):
        FleetSettings.from_env({"ENTRA_SYNC_FLEET_STORE": "x.sqlite", "ENTRA_SYNC_FLEET_LEASE": "soon"})
    with pytest.raises(ConfigError, match="cannot read"):
        FleetSettings.from_env({"ENTRA_SYNC_FLEET_STORE_FILE": str(tmp_path / "missing")})


def test_a_slot_queued_long_ago_and_never_started_is_sent_again(tmp_path: Path) -> None:
    clock = VirtualClock(_at("2026-11-02", "03:00"))
    with _store(tmp_path, clock, "oak") as s:
        slots.tick(s, clock.now(), 0, lambda _i: None)
        sent: list[int] = []
        slots.tick(s, _at("2026-11-02", "04:00"), 0, sent.append, resend_after=7200)
        slots.tick(s, _at("2026-11-02", "05:00"), 0, sent.append, resend_after=7200)
        assert len(sent) == 1  # not yet: it may still be waiting in the queue
        slots.tick(s, _at("2026-11-02", "06:01"), 0, sent.append, resend_after=7200)
        assert sent == [sent[0], sent[0]]  # its message was lost (Redis restarted empty): sent again
        assert slots.claim(s, sent[0], "w1") is not None
        slots.tick(s, _at("2026-11-02", "09:00"), 0, sent.append, resend_after=7200)
        assert len(sent) == 3 and sent[2] != sent[0]  # a started one is never re-sent; the 08:00 slot is


def test_finished_slots_are_pruned_after_keep_days_and_the_rest_are_kept(tmp_path: Path) -> None:
    clock = VirtualClock(_at("2026-11-02", "03:00"))
    with _store(tmp_path, clock, "oak") as s:
        slots.tick(s, clock.now(), 0, lambda _i: None)
        sent: list[int] = []
        slots.tick(s, _at("2026-11-02", "04:00"), 0, sent.append)
        (old,) = sent
        slots.claim(s, old, "w1")
        slots.finish(s, old, "done", run_id=1)
        slots.tick(s, _at("2026-11-02", "08:00"), 0, sent.append)  # queued, never finished
        # a month and a day later: the finished slot goes, the unfinished one stays
        later = _at("2026-12-03", "03:00")
        slots.tick(s, later, 0, lambda _i: None, keep_days=30)
        left = {x.id for x in slots.slots(s, "oak")}
        assert old not in left and sent[1] in left
        assert slots.get(s, old) is None
        assert slots.claim(s, old, "w2") is None  # a late duplicate delivery of it does nothing
    from entra_sync.fleet.settings import FleetSettings

    env = {"ENTRA_SYNC_FLEET_STORE": "x.sqlite"}
    assert FleetSettings.from_env(env).keep_slot_days == 30
    with pytest.raises(ConfigError, match="ENTRA_SYNC_FLEET_KEEP_SLOT_DAYS"):
        FleetSettings.from_env({**env, "ENTRA_SYNC_FLEET_KEEP_SLOT_DAYS": "0"})
