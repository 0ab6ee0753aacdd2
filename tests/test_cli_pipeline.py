"""Every Entra-changing command through the one run pipeline, end to end on the emulator: the run
lock, runs that fail before planning, adopt recorded, dry-run exit codes, and a run killed with
SIGKILL mid-apply closed as interrupted by the next, which converges without duplicates."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from entra_sync.cli.running import render_config
from entra_sync.cli.wiring import DEMO_CLIENT_ID
from entra_sync.config.load import load_config
from entra_sync.runs.history import History
from providers.emulator import Tenant
from providers.emulator.profile import Profile
from providers.emulator.seed import SeedUser, seed_users
from providers.emulator.server import EmulatorServer
from providers.sources import example_export_path
from tests.emulator_support import age_groups

pytestmark = pytest.mark.usefixtures("clean_env")

_HOLDER = """
import sys
from entra_sync.runs.lock import RunLock
lock = RunLock(sys.argv[1])
lock.acquire()
print("locked", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def demo_dir(run_cli, tmp_path: Path) -> Path:
    d = tmp_path / "demo"
    r = run_cli("demo", "--dir", d, "-q")
    assert r.exit_code == 0, r.output
    return d


@pytest.fixture
def lock_holder(demo_dir: Path) -> Iterator[int]:
    """Another process (a scheduled run) holding the run lock; yields its pid."""
    with subprocess.Popen([sys.executable, "-c", _HOLDER, str(demo_dir / "history.lock")],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as holder:  # fmt: skip
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            yield holder.pid
        finally:
            holder.kill()
            holder.wait(timeout=30)


def _runs(cfg: Path) -> list[tuple[int, str, str]]:
    with History(load_config(cfg).history.path) as h:
        return [(r.run_id, r.kind, r.status) for r in reversed(h.list_runs(100))]


def _renamed_desired(run_cli, cfg: Path, out: Path) -> Path:
    assert run_cli("render", "--config", cfg, "-o", out).exit_code == 0
    doc = json.loads(out.read_text())
    doc["groups"][0]["displayName"] += " (renamed)"
    out.write_text(json.dumps(doc))
    return out


def test_apply_and_adopt_with_a_config_are_refused_while_a_scheduled_run_holds_the_lock(
    run_cli, demo_dir: Path, lock_holder: int, tmp_path: Path
) -> None:
    cfg = demo_dir / "entra-sync.toml"
    desired = _renamed_desired(run_cli, cfg, tmp_path / "desired.json")
    before = (demo_dir / "tenant.json").read_text()
    for command in (["apply", "-d", desired], ["adopt", "-d", desired], ["sync"]):
        r = run_cli(*command, "--config", cfg, "--auto-approve" if command[0] != "sync" else "-q", "-q")
        assert r.exit_code == 1, (command, r.output)
        assert "another entra-sync run is in progress" in r.stderr
        assert f"process {lock_holder} holds the lock file {demo_dir / 'history.lock'}" in r.stderr
        assert "Traceback" not in r.output
    assert (demo_dir / "tenant.json").read_text() == before
    runs = _runs(cfg)  # each run the lock turned away is recorded, with the reason, and nothing else
    assert runs[0] == (1, "demo sync", "succeeded")
    assert [(kind, status) for _, kind, status in runs[1:]] == [
        ("apply", "failed"), ("adopt (dry run)", "failed"), ("sync", "failed")]
    r = run_cli("history", "list", "--config", cfg)
    assert r.stdout.count("not run: another entra-sync run is in progress") == 3, r.stdout


def test_apply_with_a_config_takes_the_lock_and_is_recorded_with_a_report(
    run_cli, demo_dir: Path, tmp_path: Path
) -> None:
    cfg = demo_dir / "entra-sync.toml"
    desired = _renamed_desired(run_cli, cfg, tmp_path / "desired.json")
    plan_file = tmp_path / "plan.json"
    assert run_cli("plan", "-d", desired, "--config", cfg, "-o", plan_file, "-q").exit_code == 0
    r = run_cli("apply", plan_file, "--config", cfg, "-q")
    assert r.exit_code == 0, r.output
    assert "Recorded as run 2" in r.stderr and (demo_dir / "reports" / "run-2.html").exists()
    assert _runs(cfg)[-1] == (2, "apply (saved plan)", "succeeded")
    assert (demo_dir / "history.lock").read_text() == ""  # released


def test_a_sync_that_cannot_sign_in_is_recorded_as_its_own_run_and_the_last_report_is_untouched(
    run_cli, demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = demo_dir / "entra-sync.toml"
    first_report = (demo_dir / "reports" / "run-1.html").read_bytes()
    server = EmulatorServer(
        Tenant.load(demo_dir / "tenant.json"), profile=Profile(accepted_tokens=frozenset({"good"}))
    )
    server.start()
    try:
        monkeypatch.setenv("ENTRA_SYNC_ACCESS_TOKEN", "a-token-graph-refuses")
        r = run_cli("sync", "--config", cfg, "-q", "--graph-url", f"http://127.0.0.1:{server.port}")
    finally:
        server.stop()
    assert r.exit_code == 1
    assert "401 InvalidAuthenticationToken" in r.stderr and "Traceback" not in r.output
    assert "Recorded as run 2" in r.stderr and "a-token-graph-refuses" not in r.output
    monkeypatch.delenv("ENTRA_SYNC_ACCESS_TOKEN")
    r = run_cli("sync", "--config", cfg, "-q", "--graph-url", "https://graph.microsoft.com")  # no credential
    assert r.exit_code == 1 and "ENTRA_SYNC_CLIENT_SECRET" in r.stderr
    assert _runs(cfg) == [(1, "demo sync", "succeeded"), (2, "sync", "failed"), (3, "sync", "failed")]
    with History(demo_dir / "history.sqlite") as h:
        assert "401 InvalidAuthenticationToken" in (h.get_run(2).summary.error or "")
        assert "ENTRA_SYNC_CLIENT_SECRET" in (h.get_run(3).summary.error or "")
    assert "InvalidAuthenticationToken" in (demo_dir / "reports" / "run-2.html").read_text()
    assert "ENTRA_SYNC_CLIENT_SECRET" in (demo_dir / "reports" / "run-3.html").read_text()
    assert (demo_dir / "reports" / "run-1.html").read_bytes() == first_report


def test_a_missing_export_is_recorded_as_a_failed_run(run_cli, demo_dir: Path) -> None:
    (demo_dir / "realsmart-export.json").unlink()
    r = run_cli("sync", "--config", demo_dir / "entra-sync.toml", "-q")
    assert r.exit_code == 1 and "realsmart-export.json" in r.stderr
    assert _runs(demo_dir / "entra-sync.toml")[-1] == (2, "sync", "failed")
    assert "realsmart-export.json" in (demo_dir / "reports" / "run-2.html").read_text()


def test_adopt_with_a_config_is_recorded_as_a_run(run_cli, demo_dir: Path, tmp_path: Path) -> None:
    cfg = demo_dir / "entra-sync.toml"
    desired = tmp_path / "desired.json"
    assert run_cli("render", "--config", cfg, "-o", desired).exit_code == 0
    doc = json.loads(desired.read_text())
    new = dict(doc["groups"][0], key="class:extra:2026-27:x", mailNickname="made-by-hand",
               displayName="Made by hand")  # fmt: skip
    doc["groups"].append(new)
    desired.write_text(json.dumps(doc))
    tenant = Tenant.load(demo_dir / "tenant.json")
    someone = next(iter(tenant.users))
    existing = tenant.add_group(
        "Made by hand", mail_nickname="made-by-hand", owners=[someone], members=[someone]
    )
    tenant.save(demo_dir / "tenant.json")

    r = run_cli("adopt", new["key"], "-d", desired, "--config", cfg, "--apply", "--auto-approve", "-q")
    assert r.exit_code == 0, r.output
    assert "Adopted 1 object" in r.stdout and "Recorded as run 2" in r.stderr
    assert _runs(cfg)[-1] == (2, "adopt", "succeeded")
    r = run_cli("history", "show", "--config", cfg, "2")
    assert "done     adopt     group" in r.stdout and new["key"] in r.stdout
    r = run_cli("history", "object", "--config", cfg, new["key"])
    assert "#2" in r.stdout and "adopt" in r.stdout
    assert existing in (demo_dir / "reports" / "run-2.html").read_text()
    r = run_cli("adopt", "no:such:key", "-d", desired, "--config", cfg, "--apply", "--auto-approve", "-q")
    assert r.exit_code == 1 and "no conflict to adopt" in r.stderr
    assert _runs(cfg)[-1] == (3, "adopt", "failed")


def test_a_dry_run_that_would_be_refused_exits_3_and_writes_nothing(run_cli, demo_dir: Path) -> None:
    cfg = demo_dir / "entra-sync.toml"
    export = demo_dir / "realsmart-export.json"
    data = json.loads(export.read_text())
    data["classes"] = data["classes"][:3]
    export.write_text(json.dumps(data))
    before = (demo_dir / "tenant.json").read_text()
    r = run_cli("sync", "--config", cfg, "--dry-run", "-q", "--detail")
    assert r.exit_code == 3, r.output
    assert "> archive team" in r.stdout
    assert "breaks a safety limit" in r.stderr and "Dry run: nothing was changed" in r.stderr + r.stdout
    assert (demo_dir / "tenant.json").read_text() == before
    assert _runs(cfg)[-1] == (2, "sync (dry run)", "refused")
    r = run_cli("sync", "--config", cfg, "--dry-run", "--force", "-q")
    assert r.exit_code == 0, r.output  # forced, it would not be refused


@pytest.mark.parametrize("command", ["sync", "apply"])
def test_the_exit_codes_are_in_the_help(run_cli, command: str) -> None:
    r = run_cli(command, "--help")
    text = " ".join(r.stdout.replace("│", " ").split())
    assert (
        "Exit codes: 0 done (or nothing to do); 1 an error, or some changes failed; 3 a safety limit" in text
    )
    assert "(with --dry-run: would refuse it)" in text


_KILLED_SYNC = """
import os, signal, sys
from entra_sync.runs.history import History

kill_after = int(sys.argv[2])
settled = 0
record_result = History.record_result

def record_then_die(self, run_id, result):
    global settled
    record_result(self, run_id, result)
    settled += 1
    if settled == kill_after:  # killed right after the outcome reached the run store
        os.kill(os.getpid(), signal.SIGKILL)

History.record_result = record_then_die
from entra_sync.cli import main
sys.exit(main(["sync", "--config", sys.argv[1], "-q"]))
"""


@pytest.fixture
def served_school(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, EmulatorServer]]:
    """A school's configuration synced to an emulator served over loopback (it outlives a killed
    client): the example export, its people as users, the marker registered, nothing synced yet."""
    d = tmp_path / "school"
    d.mkdir()
    shutil.copyfile(example_export_path(), d / "realsmart-export.json")
    cfg = d / "entra-sync.toml"
    school = (
        '[source]\nkind = "realsmart"\npath = "realsmart-export.json"\n[history]\npath = "history.sqlite"\n'
    )
    cfg.write_text(school + '[sync]\nteams = true\nteams_for = ["classes"]\n')
    tenant = Tenant()
    seed_users(tenant, [SeedUser(ref) for ref in sorted(render_config(load_config(cfg)).desired.people())])
    server = EmulatorServer(tenant)
    server.start()
    url = f"http://127.0.0.1:{server.port}"
    tenant_section = f'[tenant]\ntenant_id = "contoso.onmicrosoft.com"\nclient_id = "{DEMO_CLIENT_ID}"\n'
    cfg.write_text(cfg.read_text() + tenant_section + f'graph_url = "{url}"\n')
    monkeypatch.setenv("ENTRA_SYNC_ACCESS_TOKEN", "emulator-token")
    monkeypatch.setenv("ENTRA_SYNC_CLIENT_ID", DEMO_CLIENT_ID)
    try:
        r = run_cli("setup", "--graph-url", url)
        assert r.exit_code == 0, r.output
        yield cfg, server
    finally:
        server.stop()


def _duplicates(server: EmulatorServer) -> list[str]:
    with server.engine.lock:
        tenant = server.engine.tenant
        names = Counter(g.props.get("mailNickname") for g in tenant.groups.values())
        names.update(f"au:{a.props.get('displayName')}" for a in tenant.admin_units.values())
    return sorted(str(k) for k, n in names.items() if n > 1)


@pytest.mark.parametrize("kill_after", [3, 40])
def test_a_run_killed_mid_apply_is_closed_as_interrupted_and_the_next_converges(
    run_cli, served_school: tuple[Path, EmulatorServer], kill_after: int
) -> None:
    cfg, server = served_school
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    killed = subprocess.run([sys.executable, "-c", _KILLED_SYNC, str(cfg), str(kill_after)], env=env,
                            capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    history = cfg.parent / "history.sqlite"
    with History(history) as h:
        run = h.get_run(1)
        assert run.summary.status == "running"  # nobody closed it: the process died
        settled = [c for c in run.changes if c.result is not None]
        assert len(settled) == kill_after
        created = {c.result.object_id for c in settled if c.change.action == "create" and c.result}
        assert created and set(h.created_since(0)) >= created  # its creates count as created

    r = run_cli("sync", "--config", cfg, "-q")
    assert r.exit_code == 0, r.output
    with History(history) as h:
        closed = h.get_run(1)
        assert closed.summary.status == "interrupted"
        assert f"{kill_after} of {len(closed.changes)} planned changes had settled" in (
            closed.summary.error or ""
        )
        assert [c.result for c in closed.changes if c.result is not None] == [c.result for c in settled]
        assert h.get_run(2).summary.status == "succeeded"
    with server.engine.lock:
        assert created <= set(server.engine.tenant.groups) | set(server.engine.tenant.admin_units)
    assert _duplicates(server) == []
    # Teams wait until their group is 15 minutes old (Graph's window): the catch-up run makes them
    r = run_cli("sync", "--config", cfg, "-q", "--dry-run")
    assert r.exit_code == 0 and "Plan: 0 to create" not in r.stdout, r.output
    assert all(line.lstrip().startswith("+ create team") for line in r.stdout.splitlines()
               if line.lstrip().startswith(("+", "-", "~"))), r.stdout  # fmt: skip
    age_groups(server, 16 * 60)
    assert run_cli("sync", "--config", cfg, "-q").exit_code == 0
    r = run_cli("sync", "--config", cfg, "-q", "--dry-run")
    assert r.exit_code == 0 and "No changes" in r.stdout, r.output
