"""`entra-sync demo`, `render`, `sync` and `history` end to end on the in-process emulator."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from entra_sync.runs.history import History
from providers.emulator import Tenant
from reconciler.document.load import validate_document
from reconciler.plan.payloads import GroupDocument

pytestmark = pytest.mark.usefixtures("clean_env")


def _groups(tenant_file: Path) -> int:
    return len(Tenant.load(tenant_file).groups)


@pytest.fixture
def demo_dir(run_cli, tmp_path: Path) -> Path:
    d = tmp_path / "demo"
    r = run_cli("demo", "--dir", d, "-q")
    assert r.exit_code == 0, r.output
    assert "done" in r.stdout and "failed" not in r.stdout
    return d


def test_demo_twice_second_run_changes_nothing(run_cli, demo_dir: Path) -> None:
    tenant = Tenant.load(demo_dir / "tenant.json")
    assert len(tenant.groups) > 50
    assert len(tenant.admin_units) > 10
    r = run_cli("demo", "--dir", demo_dir, "-q")
    assert r.exit_code == 0, r.output
    assert "No changes" in r.stdout
    assert "Applied" not in r.stdout
    assert (demo_dir / "reports" / "run-2.html").exists()


def test_render_gives_a_valid_document(run_cli, demo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "desired.json"
    r = run_cli("render", "--config", demo_dir / "entra-sync.toml", "-o", out)
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert validate_document(doc) == []
    assert all(":2026-27:" in g["key"] for g in doc["groups"] if g["key"].startswith("class:"))


def test_render_pauses_the_cycle_collector_throughout_and_restores_it(
    demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from entra_sync.cli import running
    from entra_sync.config.load import load_config

    seen: list[bool] = []
    real = running.validate_document
    monkeypatch.setattr(running, "validate_document", lambda doc: seen.append(gc.isenabled()) or real(doc))
    assert gc.isenabled()
    generated, document = running.render_document(load_config(demo_dir / "entra-sync.toml"))
    assert seen == [False] and gc.isenabled()
    assert document["groups"] and len(document["groups"]) == len(generated.desired.groups)


def test_sync_dry_run_changes_nothing(run_cli, tmp_path: Path) -> None:
    d = tmp_path / "demo"
    # the demo writes its files; then remove the tenant's managed objects by starting afresh
    assert run_cli("demo", "--dir", d, "-q").exit_code == 0
    (d / "tenant.json").unlink()
    (d / "history.sqlite").unlink()
    users = [{"userPrincipalName": ref} for ref in _people(run_cli, d, tmp_path)]
    (tmp_path / "users.json").write_text(json.dumps(users))
    assert run_cli("emulator", "seed", "--state", d / "tenant.json", tmp_path / "users.json").exit_code == 0
    r = run_cli("sync", "--config", d / "entra-sync.toml", "--dry-run", "-q", "--detail")
    assert r.exit_code == 0, r.output
    assert "Dry run" in r.stdout
    assert "+ create group" in r.stdout
    assert _groups(d / "tenant.json") == 0


def _people(run_cli, d: Path, tmp_path: Path) -> list[str]:
    out = tmp_path / "people.json"
    assert run_cli("render", "--config", d / "entra-sync.toml", "-o", out).exit_code == 0
    doc = json.loads(out.read_text())
    refs = {m for g in doc["groups"] for m in g["owners"] + g["members"]}
    refs |= {m for a in doc["administrativeUnits"] for m in a["members"]}
    return sorted(refs)


def test_sync_refuses_an_export_that_lost_most_classes(run_cli, demo_dir: Path) -> None:
    export = demo_dir / "realsmart-export.json"
    data = json.loads(export.read_text())
    data["classes"] = data["classes"][:3]
    export.write_text(json.dumps(data))
    before = _groups(demo_dir / "tenant.json")
    r = run_cli("sync", "--config", demo_dir / "entra-sync.toml", "-q", "--detail")
    assert r.exit_code == 3, r.output
    assert "safety" in r.stderr and "--force" in r.stderr
    assert "> archive team" in r.stdout  # the plan is shown before the refusal
    assert _groups(demo_dir / "tenant.json") == before
    r = run_cli("history", "list", "--config", demo_dir / "entra-sync.toml")
    assert r.exit_code == 0
    assert "refused" in r.stdout
    report = (demo_dir / "reports" / "run-2.html").read_text()
    assert "refused" in report and "safety" in report


def test_history_commands(run_cli, demo_dir: Path, tmp_path: Path) -> None:
    cfg = demo_dir / "entra-sync.toml"
    r = run_cli("history", "list", "--config", cfg)
    assert r.exit_code == 0
    assert "#1" in r.stdout and "succeeded" in r.stdout
    r = run_cli("history", "show", "--config", cfg, "1")
    assert r.exit_code == 0
    assert "create" in r.stdout and "done" in r.stdout
    key = next(
        line.split()[-1] for line in r.stdout.splitlines() if " group " in f" {line} " and "create" in line
    )
    r = run_cli("history", "object", "--config", cfg, key)
    assert r.exit_code == 0
    assert "#1" in r.stdout
    with History(demo_dir / "history.sqlite") as h:  # a person's memberships, by their UPN
        group = next(rc.change for rc in h.get_run(1).changes
                     if isinstance(rc.change.after, GroupDocument) and rc.change.after.members)
    person = group.after.members[0]
    r = run_cli("history", "object", "--config", cfg, person.upper())
    assert r.exit_code == 0
    assert any(line.startswith("#1") and "add" in line and "groupMembers" in line and "done" in line
               and line.endswith(group.key) for line in r.stdout.splitlines()), r.stdout
    html = tmp_path / "r.html"
    r = run_cli("history", "report", "--config", cfg, "1", "-o", html)
    assert r.exit_code == 0
    assert "<html" in html.read_text().lower()


def test_sync_with_a_broken_config_is_one_clear_error(run_cli, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[sync]\ngroups = "yes"\nteems = true\n')
    r = run_cli("sync", "--config", cfg)
    assert r.exit_code == 1
    assert "sync.groups" in r.stderr
    assert "teams" in r.stderr  # did-you-mean for the unknown key
    assert "Traceback" not in r.output


def test_sync_with_a_missing_source_is_an_error_not_an_empty_school(run_cli, demo_dir: Path) -> None:
    (demo_dir / "realsmart-export.json").unlink()
    before = _groups(demo_dir / "tenant.json")
    r = run_cli("sync", "--config", demo_dir / "entra-sync.toml", "-q")
    assert r.exit_code == 1
    assert "realsmart-export.json" in r.stderr
    assert _groups(demo_dir / "tenant.json") == before


def test_graph_url_flag_and_variable_win_over_the_configuration(
    run_cli, demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other-tenant.json"
    Tenant().save(other)  # no managed objects there
    cfg = demo_dir / "entra-sync.toml"
    r = run_cli("sync", "--config", cfg, "--dry-run", "-q")
    assert "No changes" in r.stdout  # the configured (demo) tenant is in step
    r = run_cli("sync", "--config", cfg, "--dry-run", "-q", "--graph-url", f"emulator:{other}", "--detail")
    assert r.exit_code == 0, r.output
    assert "+ create administrativeUnit" in r.stdout
    monkeypatch.setenv("ENTRA_SYNC_GRAPH_URL", f"emulator:{other}")
    r = run_cli("sync", "--config", cfg, "--dry-run", "-q", "--detail")
    assert "+ create administrativeUnit" in r.stdout


def test_the_directory_is_told_what_recent_runs_created(demo_dir: Path) -> None:
    # the provider's own journal (not the run history, fed by the CLI) knows what the demo created
    from entra_sync.cli.wiring import GraphOptions, open_directory
    from entra_sync.config.load import load_config

    with open_directory(GraphOptions(config=load_config(demo_dir / "entra-sync.toml"))) as directory:
        assert directory.journal is not None
        recent = directory.journal.recent_ids()
    tenant = Tenant.load(demo_dir / "tenant.json")
    assert set(recent) == set(tenant.groups) | set(tenant.admin_units)
    assert set(recent.values()) == {"group", "administrativeUnit"}


def test_schedule_waits_for_the_next_slot_and_stops_cleanly_on_sigterm(demo_dir: Path) -> None:
    import signal
    import subprocess
    import sys

    with subprocess.Popen(
        [sys.executable, "-m", "entra_sync.cli", "schedule", "--config", str(demo_dir / "entra-sync.toml")],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("ENTRA_SYNC_")},
    ) as proc:  # fmt: skip
        try:
            assert proc.stderr is not None
            first = proc.stderr.readline()
            assert "Scheduler started: runs at 04:00, 08:00, 12:00 (Europe/London)" in first
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


@pytest.mark.parametrize(
    "command",
    ["validate", "render", "sync", "schedule", "demo", "plan", "apply", "export", "adopt", "setup",
     "history", "emulator"],
)  # fmt: skip
def test_every_command_explains_itself(run_cli, command: str) -> None:
    r = run_cli(command, "--help")
    assert r.exit_code == 0
    assert "Usage" in r.stdout and len(r.stdout.splitlines()) > 5


def test_apply_with_a_configuration_is_recorded(run_cli, demo_dir: Path, tmp_path: Path) -> None:
    cfg = demo_dir / "entra-sync.toml"
    desired = tmp_path / "desired.json"
    assert run_cli("render", "--config", cfg, "-o", desired).exit_code == 0
    doc = json.loads(desired.read_text())
    doc["groups"][0]["displayName"] += " (renamed)"
    desired.write_text(json.dumps(doc))
    r = run_cli("apply", "-d", desired, "--config", cfg, "--auto-approve", "-q")
    assert r.exit_code == 0, r.output
    assert "Recorded as run 2" in r.stderr
    r = run_cli("history", "show", "--config", cfg, "2")
    assert "apply" in r.stdout and "update" in r.stdout and "done" in r.stdout
    # a refused apply is recorded as refused
    doc["groups"] = doc["groups"][:1]
    doc["teams"] = [t for t in doc["teams"] if t["group"] == doc["groups"][0]["key"]]
    desired.write_text(json.dumps(doc))
    r = run_cli("apply", "-d", desired, "--config", cfg, "--auto-approve", "-q")
    assert r.exit_code == 3
    r = run_cli("history", "list", "--config", cfg)
    newest = r.stdout.splitlines()[1]  # under the header
    assert newest.split()[0] == "#3" and "refused" in newest


def test_a_groups_mail_address_does_not_change_when_its_twin_in_another_school_goes(
    run_cli, demo_dir: Path
) -> None:
    """Class names repeat across the trust's schools; a nickname depends only on its own group's key,
    so when the twin is deleted the remaining group's nickname is still the one it has: no update,
    no warning on it."""
    export = demo_dir / "realsmart-export.json"
    data = json.loads(export.read_text())
    names = [(c["schoolId"], c["name"]) for c in data["classes"]]
    repeated = {n for _, n in names if sum(1 for _, m in names if m == n) > 1}
    assert repeated, "the example trust has class names that repeat across schools"
    second = sorted({s for s, _ in names})[-1]
    data["classes"] = [c for c in data["classes"] if not (c["schoolId"] == second and c["name"] in repeated)]
    export.write_text(json.dumps(data))
    saved = demo_dir / "plan.json"
    r = run_cli("sync", "--config", demo_dir / "entra-sync.toml", "--dry-run", "--out", saved, "-q")
    assert r.exit_code == 0, r.output
    plan = json.loads(saved.read_text())
    assert any(c["action"] == "delete" for c in plan["changes"])
    assert not [c for c in plan["changes"] if c["action"] == "update" and "mailNickname" in c["after"]]
    assert [w for w in plan["warnings"] if w["code"] == "mailNicknameKept"] == []


def test_a_sync_refuses_to_run_while_another_holds_the_lock(run_cli, demo_dir: Path) -> None:
    from entra_sync.runs.lock import RunLock

    with RunLock(demo_dir / "history.lock"):
        r = run_cli("sync", "--config", demo_dir / "entra-sync.toml", "-q")
    assert r.exit_code == 1
    assert "another entra-sync run is in progress" in r.stderr
    assert run_cli("sync", "--config", demo_dir / "entra-sync.toml", "-q").exit_code == 0
