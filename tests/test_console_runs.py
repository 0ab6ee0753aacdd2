"""Runs reach the console whoever starts them, and are built the same way: a console "Run now"
notifies, writes the metrics textfile, reads through delta links and prunes like a CLI run; a run of
`entra-sync sync` or `entra-sync schedule` over a configuration the console knows (its history is
the console's store) is recorded under the console's tenant, and a plan a safety limit refused is
held on the console's dashboard for an approver, who applies it on the emulator."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from entra_sync.runs.history import History
from entra_sync.store.tables import delta_snapshots
from providers.emulator import Tenant
from reconciler.errors import EntraSyncError
from tests.console_support import Setup, csrf, drop_classes, make_setup, school, sign_in
from tests.local_servers import http_server

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    s = make_setup(tmp_path)
    s.user("ada", {"oak": "admin"})
    s.user("bob", {"oak": "approver"})
    yield s
    s.jobs.wait()
    s.store.close()


def _run_now(setup: Setup, slug: str = "oak") -> str:
    t = setup.store.tenant(slug)
    assert t is not None
    setup.jobs.run_now(t, "ada", dry_run=False)
    setup.jobs.wait()
    return setup.jobs.messages[slug]


def test_a_console_run_notifies_writes_metrics_reads_delta_and_prunes(setup: Setup) -> None:
    t = setup.store.tenant("oak")
    assert t is not None
    with http_server() as (url, inbox):
        (t.config_path.parent / "hook.url").write_text(url + "/hook")
        text = t.config_path.read_text().replace(
            '[history]\npath = "history.sqlite"\n', '[history]\npath = "history.sqlite"\nkeep_runs = 1\n'
        )
        t.config_path.write_text(
            text
            + '[notify]\non = ["always"]\nwebhook_url_file = "hook.url"\n[metrics]\ntextfile = "sync.prom"\n'
        )
        _run_now(setup, "elm")  # another tenant of the store: its runs are not oak's to prune
        first = _run_now(setup)
        second = _run_now(setup)
    assert "done" in first and "nothing to change" in second, (first, second)
    # notified after each run (the webhook gets the run-result document): oak's two (elm has no [notify])
    docs = [json.loads(p["body"])["run"] for p in inbox.posts]
    assert [d["status"] for d in docs] == ["succeeded", "succeeded"] and docs[0]["id"] < docs[1]["id"]
    # the metrics textfile of the last run
    metrics = (t.config_path.parent / "sync.prom").read_text()
    assert "entra_sync_last_success_timestamp_seconds" in metrics
    # the second run read through the delta links the first one kept in the console's store
    with setup.store.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(delta_snapshots)).scalar_one() >= 1
    # [history] keep_runs = 1: oak keeps its last run (and its report); elm's run is not touched
    with History(setup.store.target) as h:
        assert [r.run_id for r in h.list_runs(10, tenant="oak")] == [docs[1]["id"]]
        assert len(h.list_runs(10, tenant="elm")) == 1
    reports = sorted(p.name for p in (t.config_path.parent / "reports").iterdir())
    assert reports == [f"run-{docs[1]['id']}.html"]


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[Setup]:
    """A console whose store is the school configuration's own run history."""
    from cryptography.fernet import Fernet

    from entra_sync.console.jobs import Jobs
    from entra_sync.console.security import SecretBox
    from entra_sync.console.store import ConsoleStore

    cfg, _ = school(tmp_path / "oak")
    store = ConsoleStore(cfg.parent / "history.sqlite")
    store.add_tenant("oak", "Oak Academy", cfg)
    box = SecretBox(Fernet.generate_key())
    s = Setup(store, box, Jobs(store, box, env={}), tmp_path, {})
    s.user("ada", {"oak": "admin"})
    s.user("bob", {"oak": "approver"})
    yield s
    s.jobs.wait()
    store.close()


def _schedule_once(run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, cfg: Path) -> Any:
    """`entra-sync schedule` with its first slot due at once (then it stops)."""
    import signal

    import entra_sync.schedule as schedule

    class OneSlot:
        def __init__(self, once: Callable[[], int], *_args: Any, **_kw: Any) -> None:
            self.once = once

        def next_time(self) -> Any:
            from datetime import UTC, datetime

            return datetime.now(UTC)

        def run(self) -> None:
            try:
                self.once()
            except EntraSyncError as exc:  # as the scheduler does: logged, and the next slot follows
                print(f"slot: {exc}")

    monkeypatch.setattr(schedule, "Scheduler", OneSlot)
    monkeypatch.setattr(signal, "signal", lambda *_a: None)
    return run_cli("schedule", "--config", cfg)


def test_scheduled_runs_reach_the_console_and_a_refusal_is_held_there(
    shared: Setup, run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    t = shared.store.tenant("oak")
    assert t is not None
    cfg = t.config_path
    r = run_cli("sync", "--config", cfg, "--auto-approve", "-q")
    assert r.exit_code == 0, r.stderr
    created = len(Tenant.load(cfg.parent / "tenant.json").groups)
    drop_classes(cfg, 10)  # the export loses most classes: the next plan deletes most groups
    r = _schedule_once(run_cli, monkeypatch, cfg)
    assert "refused" in r.stdout, (r.stdout, r.stderr)
    assert len(Tenant.load(cfg.parent / "tenant.json").groups) == created  # nothing deleted
    # both runs are the console tenant's, and the refused plan waits on its dashboard
    with History(shared.store.target) as h:
        runs = h.list_runs(10, tenant="oak")
    assert [(r.kind, r.status) for r in runs] == [("scheduled sync", "refused"), ("sync", "succeeded")]
    held = shared.store.held_plans("oak", status="held")
    assert len(held) == 1 and held[0].run_id == runs[0].run_id and held[0].requested_by == "scheduled sync"
    c = shared.client()
    assert sign_in(c, "bob") == 303
    page = c.get("/t/oak").text
    assert f'href="/t/oak/held/{held[0].id}"' in page and "asked by scheduled sync" in page
    assert f'href="/t/oak/runs/{runs[0].run_id}"' in page
    # an approver applies exactly that plan on the emulator
    assert c.post(f"/t/oak/held/{held[0].id}/approve", data={"csrf": csrf(c)}).status_code == 303
    shared.jobs.wait()
    done = shared.store.held_plan("oak", held[0].id)
    assert done is not None and done.status == "applied", shared.jobs.messages
    assert len(Tenant.load(cfg.parent / "tenant.json").groups) < created
    # the CLI's history commands show this tenant's runs only (the store is shared)
    with History(shared.store.target) as h:
        other = h.start_run("console sync", tenant="elm")
        h.finish_run(other, "succeeded")
    listed = run_cli("history", "list", "--config", cfg).stdout
    assert (
        f"#{done.outcome_run_id}" in listed and f"#{runs[0].run_id}" in listed and f"#{other}" not in listed
    )
    r = run_cli("history", "show", "--config", cfg, str(other))
    assert r.exit_code != 0 and f"no run {other}" in r.stderr


def test_sync_says_where_the_refused_plan_is_held(shared: Setup, run_cli: Callable[..., Any]) -> None:
    t = shared.store.tenant("oak")
    assert t is not None
    assert run_cli("sync", "--config", t.config_path, "--auto-approve", "-q").exit_code == 0
    drop_classes(t.config_path, 10)
    r = run_cli("sync", "--config", t.config_path, "--auto-approve", "-q")
    assert r.exit_code == 3
    held = shared.store.held_plans("oak")
    assert len(held) == 1 and f"held as plan {held[0].id} for an approver" in r.stderr
    # a dry run that would be refused holds nothing
    assert run_cli("sync", "--config", t.config_path, "--dry-run", "-q").exit_code == 3
    assert len(shared.store.held_plans("oak")) == 1


def test_the_cli_and_the_console_take_one_lock_per_tenant_of_a_shared_store(
    shared: Setup, run_cli: Callable[..., Any]
) -> None:
    from entra_sync.runs.lock import RunLock

    t = shared.store.tenant("oak")
    assert t is not None
    other_cfg, _ = school(shared.root / "elm")  # a second tenant with the same store as its history
    other_cfg.write_text(
        other_cfg.read_text().replace('path = "history.sqlite"', f'path = "{shared.store.target}"')
    )
    shared.store.add_tenant("elm", "Elm", other_cfg)
    with RunLock(t.config_path.parent / "history.oak.lock"):  # as a run of oak in another process
        assert "another run of this tenant is in progress" in _run_now(shared)
        r = run_cli("sync", "--config", t.config_path, "--auto-approve", "-q")
        assert r.exit_code != 0 and "lock" in r.stderr.lower()
        # elm's runs, in the same store, are not held up by oak's
        assert "done" in _run_now(shared, "elm")
        assert run_cli("sync", "--config", other_cfg, "--auto-approve", "-q").exit_code == 0
    assert "done" in _run_now(shared)
