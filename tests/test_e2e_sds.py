"""Real data, not only ours: Microsoft's School Data Sync samples (MIT, see tests/fixtures/sds/README.md)
rendered, planned and applied through the CLI against the in-process emulator.

"UK Format/100 Users" -> the 2018 UK set adds 24 learners (all in school 10002) and 168 enrolments and
removes nothing; the reverse removes exactly those.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from providers.emulator import Tenant
from tests.conftest import FIXTURES

SDS = FIXTURES / "sds"
DOMAIN = "contoso.example"


pytestmark = pytest.mark.usefixtures("clean_env")


def _config(tmp_path: Path, source: str) -> Path:
    cfg = tmp_path / f"{source}.toml"
    cfg.write_text(
        f"""
[tenant]
tenant_id = "contoso.onmicrosoft.com"
client_id = "00000000-0000-4000-8000-00000000abcd"
graph_url = "emulator:tenant.json"

[sync]
groups = true
administrative_units = true
teams = true

[source]
kind = "sds"
path = "{SDS / source}"
upn_domain = "{DOMAIN}"
academic_year = "2026-27"

[history]
path = "history.sqlite"
""",
        encoding="utf-8",
    )
    return cfg


def _render(run_cli, tmp_path: Path, source: str) -> dict[str, Any]:
    out = tmp_path / f"{source}.json"
    r = run_cli("render", "--config", _config(tmp_path, source), "-o", out)
    assert r.exit_code == 0, r.output
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc


@pytest.fixture
def tenant(run_cli, tmp_path: Path) -> str:
    """A tenant holding the accounts of everyone in both sets (users exist before the sync runs)."""
    people: set[str] = set()
    for source in ("uk-100-users", "uk-2018"):
        doc = _render(run_cli, tmp_path, source)
        people |= {m for g in doc["groups"] for m in g["owners"] + g["members"]}
        people |= {m for a in doc["administrativeUnits"] for m in a["members"]}
    t = Tenant()
    for ref in sorted(people):
        t.add_user(ref)
    t.save(tmp_path / "tenant.json")
    return "emulator:" + str(tmp_path / "tenant.json")


def _plan(run_cli, tmp_path: Path, source: str, url: str) -> dict[str, Any]:
    desired = tmp_path / f"{source}.json"
    r = run_cli("plan", "-d", desired, "--graph-url", url, "--format", "json", "-q")
    assert r.exit_code == 0, r.output
    plan: dict[str, Any] = json.loads(r.stdout)
    return plan


def _apply(run_cli, tmp_path: Path, source: str, url: str) -> None:
    r = run_cli(
        "apply", "-d", tmp_path / f"{source}.json", "--graph-url", url, "--auto-approve", "--force", "-q"
    )
    assert r.exit_code == 0, r.output


def test_uk_100_users_renders_the_documented_counts(run_cli, tmp_path: Path) -> None:
    doc = _render(run_cli, tmp_path, "uk-100-users")
    classes = [g for g in doc["groups"] if g["key"].startswith("class:")]
    assert len(classes) == 28
    # 14 section names repeat across the two schools; the display names carry the school, so every
    # class has its own name, and every group its own nickname
    assert len({g["displayName"] for g in classes}) == 28
    assert len({g["mailNickname"].lower() for g in doc["groups"]}) == len(doc["groups"])
    learner_memberships = sum(len(set(g["members"]) - set(g["owners"])) for g in classes)
    assert learner_memberships == 602
    assert sum(len(g["owners"]) for g in classes) == 28
    assert len(doc["teams"]) == 28


def test_2018_set_adds_exactly_the_new_learners_and_removes_nothing(
    run_cli, tmp_path: Path, tenant: str
) -> None:
    _apply(run_cli, tmp_path, "uk-100-users", tenant)
    plan = _plan(run_cli, tmp_path, "uk-2018", tenant)
    actions = Counter((c["action"], c["kind"]) for c in plan["changes"])
    assert set(actions) == {("add", "groupMembers"), ("add", "administrativeUnitMembers")}, actions
    added = sum(len(c["members"]) for c in plan["changes"] if c["kind"] == "groupMembers")
    assert added == 168
    new_learners = {m for c in plan["changes"] if c["kind"] == "groupMembers" for m in c["members"]}
    assert len(new_learners) == 24
    # each new learner joins their school's learners unit and their year-group unit, nothing else
    au_adds = [m for c in plan["changes"] if c["kind"] == "administrativeUnitMembers" for m in c["members"]]
    assert Counter(au_adds) == dict.fromkeys(new_learners, 2)
    assert all(":10002:" in c["key"] for c in plan["changes"])


def test_reverse_removes_exactly_those_and_is_held_by_the_safety_limit(
    run_cli, tmp_path: Path, tenant: str
) -> None:
    _render(run_cli, tmp_path, "uk-100-users")
    _apply(run_cli, tmp_path, "uk-2018", tenant)
    plan = _plan(run_cli, tmp_path, "uk-100-users", tenant)
    actions = {(c["action"], c["kind"]) for c in plan["changes"]}
    assert actions == {("remove", "groupMembers"), ("remove", "administrativeUnitMembers")}, actions
    assert sum(len(c["members"]) for c in plan["changes"] if c["kind"] == "groupMembers") == 168
    assert sum(len(c["members"]) for c in plan["changes"] if c["kind"] == "administrativeUnitMembers") == 48
    # the seven sections that lose all their learners trip the member-removal limit
    assert plan["refusals"]
    r = run_cli("apply", "-d", tmp_path / "uk-100-users.json", "--graph-url", tenant, "--auto-approve", "-q")
    assert r.exit_code == 3
    assert _plan(run_cli, tmp_path, "uk-100-users", tenant)["changes"] == plan["changes"]
