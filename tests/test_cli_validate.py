from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "desired-state.example.json"


def _broken(tmp_path: Path) -> Path:
    doc = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    doc["groups"][3]["mailNickname"] = "7A Ma1"
    doc["teams"][0]["group"] = "class:SCH9:2026-27:gone"
    doc["colour"] = "blue"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


def test_example_is_valid(run_cli: Any) -> None:
    r = run_cli("validate", EXAMPLE)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"OK {EXAMPLE}: ")
    assert "8 administrative units, 11 groups, 7 teams, 30 people" in r.stdout
    assert len(r.stdout.strip().splitlines()) == 1
    assert r.stderr == ""


def test_invalid_document_lists_every_problem_one_per_line(run_cli: Any, tmp_path: Path) -> None:
    r = run_cli("validate", _broken(tmp_path))
    assert r.exit_code == 1
    lines = r.stdout.strip().splitlines()
    assert lines == [
        'groups[3].mailNickname: "7A Ma1" contains a space; use letters, digits, - or _',
        'teams[0].group: no group in groups has the key "class:SCH9:2026-27:gone"; '
        "add one or fix the reference",
        "colour: is not a field here; allowed: version, source, userMatch, administrativeUnits, groups, "
        "teams, policy",
    ]
    assert "3 problems" in r.stderr
    assert "Traceback" not in r.output


def test_json_format_for_an_invalid_document(run_cli: Any, tmp_path: Path) -> None:
    path = _broken(tmp_path)
    r = run_cli("validate", path, "--format", "json")
    assert r.exit_code == 1
    payload = json.loads(r.stdout)
    assert payload["valid"] is False
    assert payload["file"] == str(path)
    assert [f["path"] for f in payload["findings"]] == ["groups[3].mailNickname", "teams[0].group", "colour"]
    assert set(payload["findings"][1]) == {"path", "message"}
    assert payload["counts"]["groups"] == 11


def test_json_format_for_a_valid_document(run_cli: Any) -> None:
    r = run_cli("validate", "-f", "JSON", EXAMPLE)
    assert r.exit_code == 0
    payload = json.loads(r.stdout)
    assert payload == {
        "valid": True,
        "file": str(EXAMPLE),
        "findings": [],
        "counts": {"administrativeUnits": 8, "groups": 11, "teams": 7, "people": 30},
    }


@pytest.mark.parametrize(
    ("name", "content", "phrase"),
    [
        ("missing.json", None, "no such file"),
        ("empty.json", b"", "the file is empty"),
        ("bad.json", b'{\n  "version": 1,,\n}', "invalid JSON at line 2, column 16"),
        ("array.json", b"[]", "not a list ([...])"),
        ("dir", "dir", "is a directory"),
    ],
)
def test_file_errors_are_one_line_in_text_and_json(
    run_cli: Any, tmp_path: Path, name: str, content: bytes | str | None, phrase: str
) -> None:
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    r = run_cli("validate", path)
    assert r.exit_code == 1
    assert r.stdout == ""
    assert r.stderr.startswith(f"error: {path}")
    assert phrase in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.output

    j = run_cli("validate", path, "--format", "json")
    assert j.exit_code == 1
    payload = json.loads(j.stdout)
    assert payload["valid"] is False and payload["counts"] is None
    assert payload["findings"][0]["path"] == ""
    assert phrase in payload["findings"][0]["message"]


def test_help(run_cli: Any) -> None:
    r = run_cli("validate", "--help")
    assert r.exit_code == 0
    assert "desired-state" in r.stdout
    assert "--format" in r.stdout
    assert "Exit status" in r.stdout


def test_usage_errors_are_not_tracebacks(run_cli: Any) -> None:
    r = run_cli("validate", EXAMPLE, "--format", "yaml")
    assert r.exit_code == 2
    assert "Traceback" not in r.output
    bare = run_cli("validate")
    assert bare.exit_code in (0, 2)
    assert "Usage" in bare.output


def test_listed_in_main_help(run_cli: Any) -> None:
    r = run_cli("--help")
    assert "validate" in r.stdout
