"""`entra-sync history list|show|prune`: what each run planned and why it stopped, as text and as
JSON that validates against the shipped schemas; pruning with its reports."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from entra_sync.runs.history import History
from entra_sync.runs.result_json import load_schema
from reconciler.apply.result import ApplyResult, ChangeResult
from reconciler.clock import VirtualClock
from reconciler.plan.model import Plan
from reconciler.plan.operations import AddGroupMembers, CreateGroup, RemoveGroupMembers
from reconciler.plan.payloads import GroupDocument
from tests.plan_samples import sample_plan

pytestmark = pytest.mark.usefixtures("clean_env")

STALE = ("stale plan: the managed objects in Entra have changed since this plan was made (plan made "
         "against 7da4391d86b5, now bc5bee98a00a); run `entra-sync plan` again and review the new plan")
LOCKED = ("not run: another entra-sync run is in progress: process 4242 holds the lock file "
          "/srv/entra-sync/history.lock; wait for it to finish")


def big_plan(n: int) -> Plan:
    return Plan(changes=tuple(
        CreateGroup(f"class:OAK:2026-27:C{i:05}", after=GroupDocument(f"C{i}", f"c{i}"))
        for i in range(n)))


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    """A configuration whose history holds one run of each kind an admin meets."""
    path = tmp_path / "entra-sync.toml"
    path.write_text('[history]\npath = "history.sqlite"\n')
    clock = VirtualClock(1_780_000_000.0)
    with History(tmp_path / "history.sqlite", clock=clock) as h:
        done = h.start_run("sync")  # 1: applied
        plan = sample_plan()
        h.record_plan(done, plan)
        h.record_results(done, ApplyResult(tuple(
            ChangeResult(c.id, c.action, c.kind, c.key, "failed" if i == 0 else "done", "Graph said no")
            for i, c in enumerate(plan.changes))))
        h.finish_run(done, "partial")
        clock.advance(60)
        dry = h.start_run("sync (dry run)")  # 2: a dry run that planned 4,634 changes
        h.record_plan(dry, big_plan(4634))
        h.finish_run(dry, "succeeded")
        clock.advance(60)
        stale = h.start_run("apply (saved plan)")  # 3
        h.record_plan(stale, sample_plan())
        h.finish_run(stale, "failed", STALE)
        clock.advance(60)
        h.finish_run(h.start_run("scheduled sync"), "failed", LOCKED)  # 4: the lock turned it away
        clock.advance(60)
        h.finish_run(h.start_run("sync"), "interrupted", "not confirmed: nothing was changed")  # 5
        clock.advance(60)
        h.finish_run(h.start_run("sync"), "failed",
                     "sign-in failed: AADSTS7000215: Invalid client secret provided.\nTrace ID: 1234")  # 6
        for run_id in range(1, 7):
            (tmp_path / "reports").mkdir(exist_ok=True)
            (tmp_path / "reports" / f"run-{run_id}.html").write_text("<html></html>")
    return path


def _rows(stdout: str) -> dict[int, str]:
    lines = stdout.splitlines()
    assert lines[0].split()[:3] == ["Run", "Started", "(UTC)"]
    return {int(line.split()[0][1:]): line for line in lines[1:]}


def test_list_shows_what_each_run_planned_and_every_reason(run_cli, cfg: Path) -> None:
    r = run_cli("history", "list", "--config", cfg)
    assert r.exit_code == 0, r.output
    rows = _rows(r.stdout)
    assert set(rows) == {1, 2, 3, 4, 5, 6}
    assert "failed" in rows[1] and "done" in rows[1] and "no changes" not in rows[1]
    assert "4,634 planned" in rows[2] and "no changes" not in rows[2] and "none applied" not in rows[2]
    assert "planned, none applied" in rows[3] and "stale plan" in rows[3]
    assert "another entra-sync run is in progress" in rows[4] and "no plan" in rows[4]
    assert "not confirmed" in rows[5] and "interrupted" in rows[5]
    assert "sign-in failed: AADSTS7000215" in rows[6] and "history show 6" in rows[6]  # one line each


def test_list_as_json_validates_and_carries_the_same_facts(run_cli, cfg: Path) -> None:
    r = run_cli("history", "list", "--config", cfg, "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    jsonschema.validate(doc, load_schema("run-list.schema.json"))
    runs = {run["id"]: run for run in doc["runs"]}
    assert [run["id"] for run in doc["runs"]] == [6, 5, 4, 3, 2, 1]  # newest first
    assert runs[2]["dryRun"] is True and runs[2]["plannedChanges"] == 4634 and runs[2]["results"] == {}
    assert runs[1]["results"]["failed"] == 1 and runs[1]["status"] == "partial"
    assert runs[3]["reason"] == STALE and runs[4]["planned"] is False
    assert runs[4]["startedAt"].endswith("Z")


def test_show_as_json_is_a_run_result_document(run_cli, cfg: Path) -> None:
    schema = load_schema()
    for run_id in (1, 2, 3, 4):
        r = run_cli("history", "show", "--config", cfg, str(run_id), "-f", "json")
        assert r.exit_code == 0, r.output
        doc = json.loads(r.stdout)
        jsonschema.validate(doc, schema)
        assert doc["run"]["id"] == run_id
    dry = json.loads(run_cli("history", "show", "--config", cfg, "2", "-f", "json").stdout)
    assert dry["run"]["dryRun"] is True and dry["summary"]["changes"] == 4634
    assert dry["summary"]["statuses"] == {"planned": 4634}


def test_the_schemas_reject_a_document_of_another_version(run_cli, cfg: Path) -> None:
    doc = json.loads(run_cli("history", "list", "--config", cfg, "-f", "json").stdout)
    doc["schemaVersion"] = 2
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, load_schema("run-list.schema.json"))


def test_prune_dry_run_says_what_it_would_delete_and_deletes_nothing(run_cli, cfg: Path) -> None:
    r = run_cli("history", "prune", "--config", cfg, "--keep-runs", "2", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "Would delete 4 runs (#1-#4) and 4 HTML reports" in r.stdout
    assert "Nothing was deleted" in r.stdout
    with History(cfg.parent / "history.sqlite") as h:
        assert h.count_runs() == 6
    assert len(list((cfg.parent / "reports").glob("run-*.html"))) == 6


def test_prune_deletes_the_runs_and_their_reports(run_cli, cfg: Path) -> None:
    (cfg.parent / "reports" / "run-2.html").unlink()  # a report already gone is not counted
    r = run_cli("history", "prune", "--config", cfg, "--keep-runs", "3")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == "Deleted 3 runs (#1-#3) and 2 HTML reports; 3 runs kept (the newest 3)."
    with History(cfg.parent / "history.sqlite") as h:
        assert [s.run_id for s in h.list_runs()] == [6, 5, 4]
    assert sorted(p.name for p in (cfg.parent / "reports").glob("*.html")) == [
        "run-4.html", "run-5.html", "run-6.html"]
    r = run_cli("history", "prune", "--config", cfg, "--keep-runs", "3")
    assert r.stdout.startswith("Nothing to prune: all 3 runs")


def test_prune_takes_its_limits_from_the_configuration_or_says_what_is_missing(run_cli, cfg: Path) -> None:
    r = run_cli("history", "prune", "--config", cfg)
    assert r.exit_code == 1
    assert "--keep-runs" in r.stderr and "keep_days" in r.stderr and "Traceback" not in r.output
    cfg.write_text(cfg.read_text() + "keep_runs = 5\n")
    r = run_cli("history", "prune", "--config", cfg, "--dry-run")
    assert r.exit_code == 0, r.output
    assert "Would delete 1 run (#1)" in r.stdout


def test_prune_never_deletes_a_run_in_progress(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite") as h:
        live = h.start_run("sync")
        h.finish_run(h.start_run("sync"), "succeeded")
        assert h.prune(keep_runs=1) == []
        assert h.prune(keep_days=0) == [live + 1]
        assert [s.run_id for s in h.list_runs()] == [live]


def test_history_object_finds_a_pupil_moved_between_classes(run_cli, tmp_path: Path) -> None:
    path = tmp_path / "entra-sync.toml"
    path.write_text('[history]\npath = "history.sqlite"\n')
    pupil = "26mwhite@oakfield.example"
    move = Plan(changes=(
        RemoveGroupMembers("class:OAK:2026-27:7A-Ma1", object_id="g1", members=(pupil,)),
        AddGroupMembers("class:OAK:2026-27:7B-Ma1", object_id="g2",
               members=("other@oakfield.example", pupil)),
    ))
    with History(tmp_path / "history.sqlite") as h:
        run_id = h.start_run("sync")
        h.record_plan(run_id, move)
        h.record_results(run_id, ApplyResult(tuple(
            ChangeResult(c.id, c.action, c.kind, c.key, "done") for c in move.changes)))
        h.finish_run(run_id, "succeeded")
    r = run_cli("history", "object", "--config", path, pupil.upper())
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert len(lines) == 2, r.stdout
    removed = [line for line in lines if line.endswith("class:OAK:2026-27:7A-Ma1")]
    added = [line for line in lines if line.endswith("class:OAK:2026-27:7B-Ma1")]
    assert len(removed) == 1 and " remove " in removed[0] and " done " in removed[0]
    assert len(added) == 1 and " add " in added[0] and " done " in added[0]
