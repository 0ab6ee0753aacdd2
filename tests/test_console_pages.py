"""The console's pages on the in-process emulator: dashboard, a run's summary and filtered pages,
the unresolved people's CSV, the history of a person, a held plan approved and applied exactly
(and refused when stale), settings checked by the configuration's own checks and written back."""

from __future__ import annotations

import csv
import io
import json
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from entra_sync.config.load import load_config
from providers.emulator import Tenant
from tests.console_support import Setup, csrf, drop_classes, make_setup, sign_in

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    s = make_setup(tmp_path, missing=3)
    s.user("ada", {"oak": "admin"})
    s.user("bob", {"oak": "approver"})
    yield s
    s.jobs.wait()
    s.store.close()


def _sync(setup: Setup, who: str = "ada", dry_run: bool = False) -> str:
    t = setup.store.tenant("oak")
    assert t is not None
    setup.jobs.run_now(t, who, dry_run=dry_run)
    setup.jobs.wait()
    return setup.jobs.messages["oak"]


def _groups(setup: Setup) -> int:
    t = setup.store.tenant("oak")
    assert t is not None
    return len(Tenant.load(t.config_path.parent / "tenant.json").groups)


def test_dashboard_run_page_filters_search_and_unresolved_csv(setup: Setup) -> None:
    t = setup.store.tenant("oak")
    assert t is not None
    doc = json.loads((t.config_path.parent / "realsmart-export.json").read_text())
    ghost_class = doc["classes"][0]
    assert "done" in _sync(setup)
    c = setup.client()
    assert sign_in(c, "ada") == 303
    dash = c.get("/t/oak")
    assert dash.status_code == 200
    assert dash.text.index("Needs you") < dash.text.index("Last runs")
    assert "Next scheduled run" in dash.text and "Europe/London" in dash.text
    page = c.get("/t/oak/runs/1")
    assert page.status_code == 200
    assert page.text.index('id="summary"') < page.text.index('id="changes"')
    assert "Summary by school" in page.text and "<td>8804012</td>" in page.text
    # filters and search narrow the rows, server-side
    everything = c.get("/t/oak/runs/1").text
    groups = c.get("/t/oak/runs/1", params={"kind": "group", "action": "create"}).text
    assert _matches(groups) < _matches(everything)
    assert 'id="next-page"' in everything
    one = c.get("/t/oak/runs/1", params={"q": ghost_class["name"]}).text
    assert 0 < _matches(one) < _matches(groups)
    # the CSV of people without accounts (3 here) names each one's school
    assert "3 people are not in Entra" in page.text and "3 people not in Entra" in dash.text
    r = c.get("/t/oak/runs/1/unresolved.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["school", "person", "wanted by"]
    people = {row[1] for row in rows[1:]}
    assert people == set(setup.missing["oak"]) and all(
        row[0] in ("8804012", "8804013") or row[0].isdigit() for row in rows[1:]
    )


def _matches(html: str) -> int:
    import re

    m = re.search(r'id="match-count">([\d,]+) change', html)
    assert m is not None
    return int(m.group(1).replace(",", ""))


def test_history_of_one_person(setup: Setup) -> None:
    _sync(setup)
    c = setup.client()
    assert sign_in(c, "ada") == 303
    t = setup.store.tenant("oak")
    assert t is not None
    doc = json.loads((t.config_path.parent / "realsmart-export.json").read_text())
    upn = doc["learners"][0]["upn"]
    r = c.get("/t/oak/history", params={"key": upn.upper()})
    assert r.status_code == 200
    assert r.text.count("<tr>") > 2 and "done" in r.text


def test_a_held_plan_is_approved_by_another_and_applied_exactly(setup: Setup) -> None:
    _sync(setup)
    before = _groups(setup)
    drop_classes(setup.store.tenant("oak").config_path, 10)  # type: ignore[union-attr]
    assert "held as plan" in _sync(setup)
    assert _groups(setup) == before  # refused: nothing deleted
    setup.store.set_require_other_approver("oak", True)
    held = setup.store.held_plans("oak")[0]
    c = setup.client()
    assert sign_in(c, "ada") == 303
    page = c.get(f"/t/oak/held/{held.id}")
    assert "another approver" in page.text and 'id="approve"' not in page.text
    assert c.post(f"/t/oak/held/{held.id}/approve", data={"csrf": csrf(c)}).status_code == 403
    bob = setup.client()
    assert sign_in(bob, "bob") == 303
    page = bob.get(f"/t/oak/held/{held.id}")
    assert 'id="approve"' in page.text and "Refused by a safety limit" in page.text
    r = bob.post(f"/t/oak/held/{held.id}/approve", data={"csrf": csrf(bob)})
    assert r.status_code == 303
    setup.jobs.wait()
    done = setup.store.held_plan("oak", held.id)
    assert done is not None and done.status == "applied", setup.jobs.messages
    assert _groups(setup) < before
    approvals = setup.store.approvals(held.id)
    assert [(a.approver, a.decision, a.outcome) for a in approvals] == [("bob", "approved", "applied")]
    assert done.outcome_run_id is not None
    page = bob.get(f"/t/oak/held/{held.id}").text
    assert "Approved by <strong>bob</strong>" in page and f"run {done.outcome_run_id}" in page
    # a second click does not apply it again
    assert bob.post(f"/t/oak/held/{held.id}/approve", data={"csrf": csrf(bob)}).status_code == 409


def test_a_stale_held_plan_is_refused(setup: Setup) -> None:
    _sync(setup)
    drop_classes(setup.store.tenant("oak").config_path, 10)  # type: ignore[union-attr]
    _sync(setup)
    held = setup.store.held_plans("oak")[0]
    # someone takes a pupil out of a managed class in Entra meanwhile (a change Graph's delta
    # reports: console runs read through delta links, as the CLI's do)
    path = setup.store.tenant("oak").config_path.parent / "tenant.json"  # type: ignore[union-attr]
    tenant = Tenant.load(path)
    group = next(g for _, g in sorted(tenant.groups.items()) if g.ext and len(g.members) > 2)
    tenant.unlink(group, "members", sorted(m for m in group.members if m not in group.owners)[0])
    tenant.save(path)
    before = _groups(setup)
    c = setup.client()
    assert sign_in(c, "bob") == 303
    assert c.post(f"/t/oak/held/{held.id}/approve", data={"csrf": csrf(c)}).status_code == 303
    setup.jobs.wait()
    done = setup.store.held_plan("oak", held.id)
    assert done is not None and done.status == "stale"
    assert "stale plan" in (setup.store.approvals(held.id)[0].message or "")
    assert _groups(setup) == before


def test_settings_are_checked_like_the_file_and_written_back(setup: Setup) -> None:
    c = setup.client()
    assert sign_in(c, "ada") == 303
    t = setup.store.tenant("oak")
    assert t is not None
    form = {
        "csrf": csrf(c, "/t/oak/settings"),
        "tenant_id": "contoso.onmicrosoft.com",
        "client_id": "00000000-0000-4000-8000-00000000d3e0",
        "groups": "on",
        "administrative_units": "on",
        "times": "25:00",
        "timezone": "Europe/Londn",
        "max_deletes": "50",
    }
    before = t.config_path.read_text()
    r = c.post("/t/oak/settings", data=form)
    assert r.status_code == 400
    assert "must be a 24-hour local time \"HH:MM\", got '25:00'" in r.text.replace("&#34;", '"').replace(
        "&#39;", "'"
    )
    assert "did you mean" in r.text and "Europe/London" in r.text
    assert t.config_path.read_text() == before
    r = c.post(
        "/t/oak/settings",
        data={
            **form,
            "times": "06:30, 18:00",
            "timezone": "Europe/London",
            "teams": "on",
            "teams_for": ["classes", "mentor_groups"],
        },
    )
    assert r.status_code == 303
    doc = tomllib.loads(t.config_path.read_text())
    assert doc["schedule"] == {"times": ["06:30", "18:00"]}  # the default time zone is not written
    assert doc["sync"]["teams"] is True and doc["sync"]["teams_for"] == ["classes", "mentor_groups"]
    assert doc["safety"]["max_deletes"] == 50
    assert doc["source"]["kind"] == "realsmart"  # keys the page does not show are kept
    assert load_config(t.config_path).schedule.times == ("06:30", "18:00")
    assert "18:00" in c.get("/t/oak/settings").text
