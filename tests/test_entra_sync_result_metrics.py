"""The run-result document validates against schemas/run-result.schema.json; the Prometheus
textfile is written atomically and parses with prometheus_client's parser."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families

from entra_sync.metrics import render_textfile, write_textfile
from entra_sync.runs.history import History
from entra_sync.runs.result_json import SCHEMA_VERSION, load_schema, run_result_from_detail
from reconciler.clock import VirtualClock
from tests.plan_samples import sample_plan
from tests.run_results import T0, applied, clean_run, partial_run, refused_run


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("build", [partial_run, refused_run, clean_run])
def test_run_results_validate_against_the_schema(build, validator) -> None:
    doc = build()
    errors = sorted(validator.iter_errors(doc), key=str)
    assert not errors, [e.message for e in errors]
    assert doc["schemaVersion"] == SCHEMA_VERSION
    json.dumps(doc)  # JSON-able


def test_schema_rejects_what_it_does_not_know(validator) -> None:
    doc = partial_run()
    doc["run"]["status"] = "sort of fine"
    assert list(validator.iter_errors(doc))
    doc = partial_run()
    doc["changes"][0]["status"] = "maybe"
    assert list(validator.iter_errors(doc))


def test_partial_run_result_says_what_happened() -> None:
    doc = partial_run()
    run = doc["run"]
    assert (run["id"], run["status"], run["startedAt"]) == (7, "partial", "2026-08-29T10:40:00Z")
    assert run["timings"] == {"planSeconds": 20.0, "applySeconds": 75.0, "totalSeconds": 95.5}
    assert run["throttledRequests"] == 4
    assert doc["summary"]["statuses"] == {"done": 15, "failed": 1, "partial": 1}
    assert {r["school"] for r in doc["summary"]["bySchool"]} == {"OAK"}
    failed = [c for c in doc["changes"] if c["status"] == "failed"]
    assert [(c["key"], c["name"], c["message"]) for c in failed] == [
        ("class:OAK:2026-27:7A-En1", "7A English | Set 1", "Graph answered 400: bad name")]
    partial = next(c for c in doc["changes"] if c["status"] == "partial")
    assert partial["failures"] == [{"objectId": "u-1", "message": "not found"}]
    assert doc["needsYou"]["unresolvedPeople"] == 1


def test_a_run_from_the_history_gives_the_same_document_shape(tmp_path: Path, validator) -> None:
    clock = VirtualClock(T0)
    history = History(tmp_path / "h.sqlite", clock=clock)
    plan = sample_plan()
    run_id = history.start_run("sync")
    history.record_plan(run_id, plan)
    clock.advance(30)
    history.record_results(run_id, applied(plan))
    history.finish_run(run_id, "partial")
    doc = run_result_from_detail(history.get_run(run_id))
    assert not list(validator.iter_errors(doc))
    assert doc["run"]["id"] == run_id and doc["summary"]["changes"] == len(plan.changes)
    assert [c["key"] for c in doc["needsYou"]["conflicts"]] == ["mentor:OAK:7R"]


def _families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        assert fam.type == "gauge"
        out[fam.name] = [(dict(s.labels), s.value) for s in fam.samples]
    return out


def test_textfile_parses_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "collector" / "entra_sync.prom"
    write_textfile(partial_run(), path)
    m = _families(path.read_text())
    assert m["entra_sync_last_run_timestamp_seconds"] == [({}, T0 + 95.5)]
    assert "entra_sync_last_success_timestamp_seconds" not in m  # never succeeded yet
    assert m["entra_sync_last_run_duration_seconds"] == [({}, 95.5)]
    status = dict((s["status"], v) for s, v in m["entra_sync_last_run_status"])
    assert status["partial"] == 1 and status["succeeded"] == 0
    planned = {(s["kind"], s["action"]): v for s, v in m["entra_sync_last_run_changes_planned"]}
    assert planned[("group", "create")] == 1 and planned[("team", "archive")] == 1
    done = {(s["kind"], s["action"]): v for s, v in m["entra_sync_last_run_changes_done"]}
    assert ("group", "create") not in done and done[("groupMembers", "add")] == 1
    assert m["entra_sync_last_run_failures"] == [({}, 2)]
    assert m["entra_sync_last_run_refusals"] == [({}, 0)]
    assert m["entra_sync_last_run_unresolved_people"] == [({}, 1)]
    assert m["entra_sync_last_run_throttled_requests"] == [({}, 4)]
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in path.parent.iterdir()] == ["entra_sync.prom"]  # no temporary file left


def test_last_success_is_carried_over_a_failed_run(tmp_path: Path) -> None:
    path = tmp_path / "entra_sync.prom"
    write_textfile(clean_run(), path)
    assert _families(path.read_text())["entra_sync_last_success_timestamp_seconds"] == [({}, T0 + 3)]
    write_textfile(refused_run(), path)
    m = _families(path.read_text())
    assert m["entra_sync_last_success_timestamp_seconds"] == [({}, T0 + 3)]
    assert m["entra_sync_last_run_refusals"] == [({}, 1)]
    assert "entra_sync_last_run_throttled_requests" not in m  # unknown is not zero


def test_textfile_is_replaced_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "entra_sync.prom"
    write_textfile(clean_run(), path)
    before = path.read_text()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_textfile(partial_run(), path)
    assert path.read_text() == before  # the old file is whole, and no temporary file is left
    assert [p.name for p in tmp_path.iterdir()] == ["entra_sync.prom"]


def test_label_values_are_escaped() -> None:
    doc = clean_run()
    doc["changes"] = [{"kind": 'gr"oup\\', "action": "create", "status": "planned"}]
    m = _families(render_textfile(doc))
    assert m["entra_sync_last_run_changes_planned"] == [({"kind": 'gr"oup\\', "action": "create"}, 1)]
