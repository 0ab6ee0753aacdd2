"""Typed identity end to end: a school's export whose ids change only in case is rendered and
planned through the CLI against the emulator, and plans nothing (keys and people are compared as
Entra compares them); the output keeps the spelling the source wrote."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from providers.emulator import Tenant
from providers.sources.realsmart import example_export_path

pytestmark = pytest.mark.usefixtures("clean_env")

ONEROSTER = Path(__file__).parent / "fixtures" / "oneroster" / "v1.1"


def _config(tmp_path: Path, export: Path, kind: str = "realsmart") -> Path:
    cfg = tmp_path / "sync.toml"
    cfg.write_text(
        f"""
[tenant]
tenant_id = "oakfield.onmicrosoft.com"
client_id = "00000000-0000-4000-8000-00000000abcd"
graph_url = "emulator:tenant.json"

[sync]
groups = true
administrative_units = true
teams = true

[source]
kind = "{kind}"
path = "{export}"

[history]
path = "history.sqlite"
""",
        encoding="utf-8",
    )
    return cfg


def _render(run_cli, tmp_path: Path, export: dict[str, Any], name: str) -> Path:
    path = tmp_path / f"{name}.export.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    out = tmp_path / f"{name}.desired.json"
    r = run_cli("render", "--config", _config(tmp_path, path), "-o", out)
    assert r.exit_code == 0, r.output
    return out


def _render_source(run_cli, tmp_path: Path, oneroster: Path, name: str) -> Path:  # type: ignore[no-untyped-def]
    out = tmp_path / f"{name}.desired.json"
    r = run_cli("render", "--config", _config(tmp_path, oneroster, "oneroster"), "-o", out)
    assert r.exit_code == 0, r.output
    return out


def _respelled(export: dict[str, Any], spell: Any) -> dict[str, Any]:
    """The export with every class and mentor group id (and each reference to it) respelled."""
    doc = json.loads(json.dumps(export))
    for collection in ("classes", "mentorGroups"):
        for item in doc[collection]:
            item["id"] = spell(item["id"])
    return doc


def _applied_to_new_tenant(run_cli, tmp_path: Path, document: Path, desired: dict[str, Any]) -> str:  # type: ignore[no-untyped-def]
    """A new emulator tenant holding every person ``desired`` names, with ``document`` applied to
    it; the tenant's ``--graph-url``."""
    tenant = Tenant()
    for ref in sorted({m for g in desired["groups"] for m in g["owners"] + g["members"]}
                      | {m for a in desired["administrativeUnits"] for m in a["members"]}):
        tenant.add_user(ref)
    tenant.save(tmp_path / "tenant.json")
    url = "emulator:" + str(tmp_path / "tenant.json")
    r = run_cli("apply", "-d", document, "--graph-url", url, "--auto-approve", "--force", "-q")
    assert r.exit_code == 0, r.output
    return url


def test_ids_and_upns_changed_only_in_case_plan_no_change(run_cli, tmp_path: Path) -> None:
    original = json.loads(example_export_path().read_text("utf-8"))
    first = _respelled(original, lambda s: s.upper().replace("CLS-OAK-7A-MA1", "9A-Maths"))
    first_doc = _render(run_cli, tmp_path, first, "first")
    desired = json.loads(first_doc.read_text("utf-8"))
    maths = next(g for g in desired["groups"] if g["key"].endswith(":9A-Maths"))
    url = _applied_to_new_tenant(run_cli, tmp_path, first_doc, desired)

    # the next export spells every class id in lower case (9A-Maths -> 9a-maths) and one pupil's UPN
    # and one teacher's UPN in another case
    second = _respelled(first, str.lower)
    second["learners"][0]["upn"] = second["learners"][0]["upn"].upper()
    second["staff"][0]["upn"] = second["staff"][0]["upn"].title()
    second_doc = _render(run_cli, tmp_path, second, "second")
    keys = {g["key"] for g in json.loads(second_doc.read_text("utf-8"))["groups"]}
    assert maths["key"] not in keys and maths["key"].replace("9A-Maths", "9a-maths") in keys  # respelled

    r = run_cli("plan", "-d", second_doc, "--graph-url", url, "--format", "json", "-q")
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)
    assert plan["changes"] == [], [c["id"] for c in plan["changes"]]
    assert not [w for w in plan["warnings"] if w["code"] == "unresolvedUser"]

    # a real change still plans, spelled as the second export writes the key
    second["classes"][0]["name"] = "Maths set 1"
    r = run_cli("plan", "-d", _render(run_cli, tmp_path, second, "third"), "--graph-url", url,
                "--format", "json", "-q")
    plan = json.loads(r.stdout)
    assert [(c["action"], c["kind"]) for c in plan["changes"]] == [("update", "group")], plan["changes"]
    assert plan["changes"][0]["key"].endswith(":9a-maths")



def _oneroster(tmp_path: Path, name: str, spell: Any) -> Path:
    """Our OneRoster fixture with every class sourcedId respelled (in classes and enrolments)."""
    out = tmp_path / name
    shutil.copytree(ONEROSTER, out)
    for file in ("classes.csv", "enrollments.csv"):
        text = (out / file).read_text("utf-8")
        (out / file).write_text(re.sub(r"\bcls-[a-z0-9-]+", lambda m: spell(m.group()), text), "utf-8")
    return out


def test_non_ascii_ids_changed_only_in_case_plan_no_change(run_cli, tmp_path: Path) -> None:
    # OneRoster sourcedIds may hold any letter. The generator percent-encodes them in keys
    # (%C3%89T%C3%89 and %C3%A9t%C3%A9): still one key, as Entra compares the letters
    first = _oneroster(tmp_path, "first", lambda s: s + "-\u00c9T\u00c9")
    first_doc = _render_source(run_cli, tmp_path, first, "first")
    desired = json.loads(first_doc.read_text("utf-8"))
    assert any(g["key"].endswith("-%C3%89T%C3%89") for g in desired["groups"])
    url = _applied_to_new_tenant(run_cli, tmp_path, first_doc, desired)

    second = _oneroster(tmp_path, "second", lambda s: s + "-\u00e9t\u00e9")
    second_doc = _render_source(run_cli, tmp_path, second, "second")
    second_keys = [g["key"] for g in json.loads(second_doc.read_text("utf-8"))["groups"]]
    assert any(k.endswith("-%C3%A9t%C3%A9") for k in second_keys)
    r = run_cli("plan", "-d", second_doc, "--graph-url", url, "--format", "json", "-q")
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)
    assert plan["changes"] == [], [c["id"] for c in plan["changes"]]
