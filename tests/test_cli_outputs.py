"""What the CLI prints for a machine and for a person: JSON run results validate against the
schema, `show` prints a saved plan, `--school` narrows a plan, `--detailed-exitcode` tells
"no changes" from "changes", and an adoption that cannot be told apart stamps nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from providers.emulator import Tenant
from reconciler.document.load import load_desired
from tests.conftest import ROOT

EXAMPLE = ROOT / "desired-state.example.json"
RUN_RESULT = json.loads((ROOT / "schemas" / "run-result.schema.json").read_text(encoding="utf-8"))

SCHOOL = re.compile(r"\bSCH\d+\b")

def schools_of(changes: list[dict[str, str]]) -> set[str]:
    return {m.group() for m in (SCHOOL.search(c["key"]) for c in changes) if m is not None}


pytestmark = pytest.mark.usefixtures("clean_env")


def seeded(path: Path, desired: Path = EXAMPLE) -> Path:
    tenant = Tenant()
    for ref in sorted(load_desired(desired).people()):
        tenant.add_user(ref)
    tenant.save(path)
    return path


def test_apply_format_json_is_a_valid_run_result(run_cli, tmp_path: Path) -> None:
    url = "emulator:" + str(seeded(tmp_path / "tenant.json"))
    r = run_cli("apply", "-d", EXAMPLE, "--graph-url", url, "--auto-approve", "--format", "json", "-q")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)  # stdout holds the document and nothing else
    jsonschema.validate(doc, RUN_RESULT)
    assert doc["run"]["dryRun"] is False
    assert doc["changes"]


def test_show_prints_a_saved_plan_in_every_format(run_cli, tmp_path: Path) -> None:
    url = "emulator:" + str(seeded(tmp_path / "tenant.json"))
    saved = tmp_path / "plan.json"
    r = run_cli("plan", "-d", EXAMPLE, "--graph-url", url, "--out", saved, "-q")
    assert r.exit_code == 0, r.output
    planned = r.stdout
    r = run_cli("show", saved)
    assert r.exit_code == 0, r.output
    assert r.stdout == planned  # the same summary, no Graph needed
    r = run_cli("show", saved, "--format", "json")
    assert json.loads(r.stdout)["changes"] == json.loads(saved.read_text())["changes"]
    r = run_cli("show", saved, "--format", "markdown")
    assert r.exit_code == 0 and r.stdout.startswith("#"), r.stdout[:200]
    r = run_cli("show", tmp_path / "missing.json")
    assert r.exit_code != 0 and "missing.json" in r.stderr


def test_school_narrows_the_plan_to_one_school(run_cli, tmp_path: Path) -> None:
    url = "emulator:" + str(seeded(tmp_path / "tenant.json"))
    every = json.loads(run_cli("plan", "-d", EXAMPLE, "--graph-url", url, "--format", "json", "-q").stdout)
    schools = schools_of(every["changes"])
    assert len(schools) > 1
    one = sorted(schools)[0]
    r = run_cli("plan", "-d", EXAMPLE, "--graph-url", url, "--format", "json", "--school", one, "-q")
    assert r.exit_code == 0, r.output
    narrowed = json.loads(r.stdout)["changes"]
    assert narrowed and len(narrowed) < len(every["changes"])
    assert schools_of(narrowed) == {one}


def test_sync_detailed_exitcode_tells_changes_from_none(run_cli, tmp_path: Path) -> None:
    d = tmp_path / "demo"
    assert run_cli("demo", "--dir", d, "-q").exit_code == 0
    cfg = d / "entra-sync.toml"
    r = run_cli("sync", "--config", cfg, "--dry-run", "--detailed-exitcode", "-q")
    assert r.exit_code == 0, r.output  # the demo converged: nothing to do
    tenant = Tenant.load(d / "tenant.json")
    victim = next(g for g in tenant.groups.values() if g.members)
    for member in list(victim.members):  # by hand in Entra: a delta read sees it
        tenant.unlink(victim, "members", member)
    tenant.save(d / "tenant.json")
    r = run_cli("sync", "--config", cfg, "--dry-run", "--detailed-exitcode", "-q")
    assert r.exit_code == 2, r.output
    assert len(Tenant.load(d / "tenant.json").groups[victim.id].members) == 0  # a dry run wrote nothing


def test_adopt_refuses_one_object_that_matches_two_schools_and_stamps_nothing(
    run_cli, tmp_path: Path
) -> None:
    doc = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    first = next(g for g in doc["groups"] if g["key"].startswith("class:SCH1:"))
    second = next(g for g in doc["groups"]
                  if g["key"].startswith("class:") and not g["key"].startswith("class:SCH1:"))
    first["displayName"] = second["displayName"] = "Year 7 Maths"  # the same name in two academies
    desired = tmp_path / "desired.json"
    desired.write_text(json.dumps(doc), encoding="utf-8")
    tenant_file = seeded(tmp_path / "tenant.json", desired)
    tenant = Tenant.load(tenant_file)
    someone = next(iter(tenant.users))
    existing = tenant.add_group("Year 7 Maths", mail_nickname="year7maths", owners=[someone],
                                members=[someone])  # fmt: skip
    tenant.save(tenant_file)
    before = {gid: (dict(g.props), dict(g.ext)) for gid, g in tenant.groups.items()}
    url = f"emulator:{tenant_file}"

    r = run_cli("adopt", "-d", desired, "--graph-url", url, "--apply", "--auto-approve", "-q")
    assert r.exit_code == 1, r.output
    assert "ambiguous adoption, nothing was stamped" in r.stderr
    assert existing in r.stderr and first["key"] in r.stderr and second["key"] in r.stderr
    assert {gid: (dict(g.props), dict(g.ext)) for gid, g in Tenant.load(tenant_file).groups.items()} == before
    # naming the one key it is (and the object) is allowed
    r = run_cli("adopt", first["key"], "--object-id", existing, "-d", desired, "--graph-url", url,
                "--apply", "--auto-approve", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "Adopted 1 object" in r.stdout
    assert Tenant.load(tenant_file).groups[existing].ext  # the adopted one carries the marker now


def test_a_30_school_first_sync_prints_a_short_summary_by_default() -> None:
    """The CLI's default output of a 30-school trust's first sync (30,000+ changes at full size:
    `python benchmarks/bench_summary.py` measures that; here 30 schools with fewer learners so it
    runs in seconds) fits a terminal and its Markdown a PR comment or a Teams card."""
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_summary import first_sync

    from entra_sync.cli.output import PlanFormat, pick_format, render_plan
    from reconciler.render.summary import context_from_desired

    desired, plan = first_sync(30, 150, 40)
    ctx = context_from_desired(desired)
    assert len(plan.changes) > 2_000
    default = render_plan(plan, pick_format(None, False), ctx)
    assert default.count("\n") < 200
    assert all(f"SCH{i}" in default for i in range(30))  # every school is named
    markdown = render_plan(plan, PlanFormat.markdown, ctx)
    assert len(markdown) < 65_536
    detail = render_plan(plan, pick_format(None, True), ctx)
    assert detail.count("\n") > default.count("\n")  # --detail lists what the summary counts


def test_the_readme_emulator_example_runs_with_the_files_it_names(run_cli, tmp_path: Path) -> None:
    """README's "against a served emulator" commands, with the in-process emulator: the users file
    it seeds from ships with the repository and holds every person the example plan needs."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    seed_line = next(line for line in readme.splitlines() if line.startswith("entra-sync emulator seed"))
    users = seed_line.split()[5]
    assert (ROOT / users).is_file(), users
    state = tmp_path / "tenant.json"
    r = run_cli("emulator", "seed", "--state", state, ROOT / users)
    assert r.exit_code == 0 and "added 30 users" in r.stdout, r.output
    r = run_cli("plan", "--desired", EXAMPLE, "--graph-url", f"emulator:{state}", "--format", "json", "-q")
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)
    assert plan["changes"] and plan["warnings"] == [], plan["warnings"]  # nobody is missing


def test_the_summary_says_how_to_see_the_changes_it_does_not_list(run_cli) -> None:
    from entra_sync.cli.output import SHORT_PLAN, PlanFormat, render_plan
    from reconciler.plan.model import Plan
    from reconciler.plan.operations import CreateGroup

    def plan(n: int) -> Plan:
        return Plan(changes=tuple(CreateGroup(f"class:SCH1:2026-27:C{i:03}") for i in range(n)))

    big = render_plan(plan(SHORT_PLAN + 5), PlanFormat.summary)
    assert f"{SHORT_PLAN + 5} changes not listed here (add --detail to list every change)." in big
    assert "Detail:" not in big
    short = render_plan(plan(2), PlanFormat.summary)  # two changes are simply listed
    assert "not listed" not in short and "+ group class:SCH1:2026-27:C001" in short
    for command in (["plan"], ["apply"], ["sync"], ["show"], ["demo"]):  # the flag the hint names exists
        r = run_cli(*command, "--help")
        assert r.exit_code == 0 and "--detail" in r.stdout, command
