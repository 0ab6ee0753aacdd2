from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.document.load import load_desired, read_json_file, validate_document
from reconciler.errors import DocumentError, Finding, InputError
from reconciler.model import DesiredState

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "desired-state.example.json"

TEACHER = "t.teacher@oak.example"
AMY = "amy@oak.example"
BEN = "ben@oak.example"
MA1 = "class:SCH1:2026-27:7A-Ma1"
EN1 = "class:SCH1:2026-27:7A-En1"
MENTOR = "mentor:SCH1:2026-27:7A"


def base() -> dict[str, Any]:
    """A small valid document; each broken case below changes one thing."""
    return {
        "version": 1,
        "source": {"system": "realsmart", "generatedAt": "2026-09-01T04:00:00Z", "academicYear": "2026-27"},
        "userMatch": "userPrincipalName",
        "administrativeUnits": [
            {"key": "au:SCH1:year-7", "displayName": "Oak Academy - Year 7", "members": [AMY, BEN]},
            {"key": "au:SCH1:mentors", "displayName": "Oak Academy - Mentors", "members": [TEACHER]},
        ],
        "groups": [
            {
                "key": MA1,
                "kind": "microsoft365",
                "displayName": "Oak Academy 7A Maths 1 (2026-27)",
                "mailNickname": "SCH1-2627-7A-Ma1",
                "visibility": "Private",
                "owners": [TEACHER],
                "members": [AMY, BEN, TEACHER],
                "administrativeUnits": ["au:SCH1:year-7"],
            },
            {
                "key": MENTOR,
                "kind": "security",
                "displayName": "Oak Academy Mentor Group 7A",
                "mailNickname": "SCH1-2627-Mentor-7A",
                "owners": [TEACHER],
                "members": [AMY],
            },
            {
                "key": EN1,
                "kind": "microsoft365",
                "displayName": "Oak Academy 7A English 1 (2026-27)",
                "mailNickname": "SCH1-2627-7A-En1",
                "owners": [TEACHER],
                "members": [AMY],
            },
            {
                "key": "club:SCH1:chess",
                "kind": "microsoft365",
                "displayName": "Chess club",
                "mailNickname": "SCH1-chess",
                "description": "Thursday chess club",
                "owners": [],
                "members": [BEN],
            },
        ],
        "teams": [
            {"key": f"team:{MA1}", "group": MA1, "template": "educationClass"},
            {"key": f"team:{EN1}", "group": EN1, "template": "educationClass"},
        ],
        "policy": {"removal": {"administrativeUnits": "delete", "groups": "keep", "teams": "archive"}},
    }


Mutation = Callable[[dict[str, Any]], object]


def _set(*path: str | int, value: Any) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        target: Any = doc
        for seg in path[:-1]:
            target = target[seg]
        target[path[-1]] = value

    return mutate


def _delete(*path: str | int) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        target: Any = doc
        for seg in path[:-1]:
            target = target[seg]
        del target[path[-1]]

    return mutate


def _employee_ids(doc: dict[str, Any]) -> None:
    doc["userMatch"] = "employeeId"
    doc["administrativeUnits"][0]["members"] = ["E0001", "E0002-TOO-LONG-FOR-ENTRA"]


def _two_teams_one_group(doc: dict[str, Any]) -> None:
    doc["teams"][1] = {"key": f"team:{MA1}", "group": MA1}


def _team_from_security_group(doc: dict[str, Any]) -> None:
    doc["teams"][1] = {"key": f"team:{MENTOR}", "group": MENTOR}


# (id, mutation, exact JSON path, key phrase of the message)
BROKEN: list[tuple[str, Mutation, str, str]] = [
    ("missing-top-level-field", _delete("groups"), "groups", "is missing; add the groups"),
    ("unknown-top-level-field", _set("colour", value="blue"), "colour", "is not a field here"),
    (
        "misspelt-field",
        _set("groups", 3, "visibilty", value="Public"),
        "groups[3].visibilty",
        'did you mean "visibility"?',
    ),
    ("wrong-version", _set("version", value=2), "version", "must be 1, not 2"),
    ("wrong-type", _set("groups", 0, "owners", value=TEACHER), "groups[0].owners", "must be a list ([...])"),
    (
        "wrong-item-type",
        _set("groups", 0, "members", 0, value=7),
        "groups[0].members[0]",
        "must be a string, not a whole number",
    ),
    ("collection-not-a-list", _set("teams", value={}), "teams", "must be a list ([...]), not an object"),
    (
        "enum-wrong-case",
        _set("groups", 0, "visibility", value="private"),
        "groups[0].visibility",
        'did you mean "Private"? case matters',
    ),
    (
        "unknown-group-kind",
        _set("groups", 1, "kind", value="distribution"),
        "groups[1].kind",
        "use one of: microsoft365, security",
    ),
    (
        "bad-user-match",
        _set("userMatch", value="upn"),
        "userMatch",
        "use one of: userPrincipalName, mail, employeeId",
    ),
    (
        "bad-removal-policy",
        _set("policy", "removal", "teams", value="delete"),
        "policy.removal.teams",
        "use one of: archive, keep",
    ),
    (
        "missing-mail-nickname",
        _delete("groups", 0, "mailNickname"),
        "groups[0].mailNickname",
        "is missing; add the mail alias",
    ),
    ("missing-source-system", _delete("source", "system"), "source.system", "is missing"),
    (
        "mail-nickname-space",
        _set("groups", 3, "mailNickname", value="7A Ma1"),
        "groups[3].mailNickname",
        '"7A Ma1" contains a space; use letters, digits, - or _',
    ),
    (
        "mail-nickname-forbidden-chars",
        _set("groups", 0, "mailNickname", value="7A(Ma).1"),
        "groups[0].mailNickname",
        'contains "(", ")" and "."',
    ),
    (
        "mail-nickname-too-long",
        _set("groups", 0, "mailNickname", value="x" * 65),
        "groups[0].mailNickname",
        "65 characters long (at most 64)",
    ),
    (
        "mail-nickname-duplicate",
        _set("groups", 2, "mailNickname", value="sch1-2627-7a-ma1"),
        "groups[2].mailNickname",
        "already the mailNickname of groups[0] (case does not matter)",
    ),
    (
        "display-name-too-long",
        _set("groups", 1, "displayName", value="M" * 257),
        "groups[1].displayName",
        "257 characters long; a displayName may have at most 256",
    ),
    (
        "display-name-blank",
        _set("administrativeUnits", 0, "displayName", value="  "),
        "administrativeUnits[0].displayName",
        "is empty",
    ),
    (
        "empty-description",
        _set("groups", 3, "description", value=""),
        "groups[3].description",
        "leave the field out",
    ),
    (
        "duplicate-group-key",
        _set("groups", 2, "key", value=MA1),
        "groups[2].key",
        "already the key of groups[0]",
    ),
    (
        "duplicate-au-key-other-case",
        _set("administrativeUnits", 1, "key", value="AU:SCH1:YEAR-7"),
        "administrativeUnits[1].key",
        "keys are compared ignoring case",
    ),
    (
        "key-with-space",
        _set("groups", 3, "key", value="club:SCH1:chess club"),
        "groups[3].key",
        "contains a space",
    ),
    ("key-too-long", _set("groups", 3, "key", value="k" * 201), "groups[3].key", "at most 200"),
    (
        "team-group-missing",
        _set("teams", 1, "group", value="class:SCH1:2026-27:7A-Fr1"),
        "teams[1].group",
        'no group in groups has the key "class:SCH1:2026-27:7A-Fr1"',
    ),
    (
        "team-group-wrong-case",
        _set("teams", 0, "group", value=MA1.lower()),
        "teams[0].group",
        "differs only in case",
    ),
    ("two-teams-one-group", _two_teams_one_group, "teams[1].group", "a group can have only one Team"),
    (
        "team-from-security-group",
        _team_from_security_group,
        "teams[1].group",
        "only a Microsoft 365 group can become a Team",
    ),
    (
        "team-key-not-from-group",
        _set("teams", 0, "key", value="team:maths"),
        "teams[0].key",
        f'must be "team:{MA1}"',
    ),
    (
        "team-group-without-owner",
        _set("groups", 0, "owners", value=[]),
        "groups[0].owners",
        "a Team needs at least one owner",
    ),
    (
        "au-reference-missing",
        _set("groups", 0, "administrativeUnits", value=["au:SCH1:year-8"]),
        "groups[0].administrativeUnits[0]",
        "no administrative unit in administrativeUnits has the key",
    ),
    (
        "au-reference-twice",
        _set("groups", 0, "administrativeUnits", value=["au:SCH1:year-7"] * 2),
        "groups[0].administrativeUnits[1]",
        "list each administrative unit once",
    ),
    (
        "member-twice",
        _set("groups", 0, "members", value=[AMY, BEN, AMY.upper()]),
        "groups[0].members[2]",
        "already listed at members[0] (case does not matter)",
    ),
    (
        "au-member-twice",
        _set("administrativeUnits", 0, "members", value=[AMY, AMY]),
        "administrativeUnits[0].members[1]",
        "list each person once",
    ),
    (
        "member-empty-string",
        _set("groups", 0, "members", value=[AMY, ""]),
        "groups[0].members[1]",
        "is empty; give the person's user principal name",
    ),
    (
        "member-too-long",
        _set("administrativeUnits", 0, "members", value=["a" * 250 + "@oak.example"]),
        "administrativeUnits[0].members[0]",
        "262 characters long",
    ),
    ("upn-without-at", _set("groups", 0, "owners", value=["t.teacher"]), "groups[0].owners[0]", "has no @"),
    (
        "upn-without-domain-dot",
        _set("groups", 1, "members", value=["amy@localhost"]),
        "groups[1].members[0]",
        "no valid domain",
    ),
    (
        "employee-id-too-long",
        _employee_ids,
        "administrativeUnits[0].members[1]",
        "an employeeId has at most 16",
    ),
    (
        "too-many-owners",
        _set("groups", 3, "owners", value=[f"t{i}@oak.example" for i in range(101)]),
        "groups[3].owners",
        "Entra allows at most 100",
    ),
    (
        "hidden-membership-security",
        _set("groups", 1, "visibility", value="HiddenMembership"),
        "groups[1].visibility",
        "only for Microsoft 365 groups",
    ),
    (
        "generated-at-no-timezone",
        _set("source", "generatedAt", value="2026-09-01T04:00:00"),
        "source.generatedAt",
        "not a date-time with a time zone",
    ),
    (
        "academic-year-format",
        _set("source", "academicYear", value="26/27"),
        "source.academicYear",
        "write it YYYY-YY",
    ),
    (
        "academic-year-two-years",
        _set("source", "academicYear", value="2026-28"),
        "source.academicYear",
        "did you mean 2026-27?",
    ),
]


def test_base_document_is_valid() -> None:
    assert validate_document(base()) == []


def test_at_least_fifteen_kinds_of_broken_document() -> None:
    assert len({case[0] for case in BROKEN}) == len(BROKEN) >= 15


@pytest.mark.parametrize(("mutate", "path", "phrase"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_broken_document_is_rejected_naming_the_path(mutate: Mutation, path: str, phrase: str) -> None:
    doc = base()
    mutate(doc)
    findings = validate_document(doc)
    matching = [f for f in findings if f.path == path]
    assert matching, f"no finding at {path}; got {[str(f) for f in findings]}"
    assert any(phrase in f.message for f in matching), [str(f) for f in matching]
    assert str(matching[0]).startswith(f"{path}: ")


def test_every_problem_is_reported_once_in_document_order() -> None:
    doc = base()
    doc["teams"][0]["group"] = "nope"
    doc["groups"][3]["mailNickname"] = "7A Ma1"
    doc["version"] = 3
    doc["administrativeUnits"][0]["members"].append("bad")
    findings = validate_document(doc)
    assert [f.path for f in findings] == [
        "version",
        "administrativeUnits[0].members[2]",
        "groups[3].mailNickname",
        "teams[0].group",
    ]


def test_schema_and_semantic_wording_is_not_duplicated() -> None:
    doc = base()
    doc["groups"][0]["mailNickname"] = "a b"
    findings = validate_document(doc)
    assert findings == [
        Finding("groups[0].mailNickname", '"a b" contains a space; use letters, digits, - or _')
    ]


def test_no_reference_noise_when_a_collection_is_missing() -> None:
    doc = base()
    del doc["groups"]
    assert [f.path for f in validate_document(doc)] == ["groups"]


def test_non_object_document() -> None:
    assert validate_document([1]) == [
        Finding("", "the document must be a JSON object ({...}), not a list ([...])")
    ]


def test_example_document_validates() -> None:
    data = read_json_file(EXAMPLE)
    assert validate_document(data) == []


def test_minimal_document_is_valid() -> None:
    doc = {
        "version": 1,
        "source": {"system": "realsmart"},
        "administrativeUnits": [],
        "groups": [],
        "teams": [],
    }
    assert validate_document(doc) == []


def test_ref_format_follows_user_match() -> None:
    doc = base()
    doc["userMatch"] = "employeeId"
    for au in doc["administrativeUnits"]:
        au["members"] = ["E1"]
    for group in doc["groups"]:
        group["owners"] = ["E2"] if group["owners"] else []
        group["members"] = ["E1", "E2"]
    assert validate_document(doc) == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "key",
                    "group",
                    "groups",
                    "teams",
                    "owners",
                    "members",
                    "kind",
                    "mailNickname",
                    "administrativeUnits",
                    "displayName",
                    "userMatch",
                    "x",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_validate_never_raises_on_any_json(data: Any) -> None:
    findings = validate_document(data)
    assert all(isinstance(f, Finding) for f in findings)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["groups", "teams", "administrativeUnits"]), json_values)
def test_validate_never_raises_on_odd_items(name: str, item: Any) -> None:
    doc = base()
    doc[name].append(copy.deepcopy(item))
    assert validate_document(doc) != [] or isinstance(item, dict)


good_refs = st.sampled_from([AMY, BEN, AMY.upper(), "Ben@Oak.Example"])
person_lists = st.one_of(
    st.lists(good_refs, max_size=4),  # good references, some of one person in another case
    st.lists(
        st.one_of(good_refs, st.sampled_from(["", "no-at-sign", " amy@oak.example", 5, None, [AMY]])),
        max_size=6,
    ),
)


@settings(max_examples=200, deadline=None)
@given(person_lists, person_lists, person_lists, st.sampled_from(["userPrincipalName", "employeeId"]))
def test_person_lists_checked_a_set_at_a_time_find_what_the_item_walk_finds(
    members: list[Any], owners: list[Any], au_members: list[Any], match: str
) -> None:
    """A list of good references is checked as a set; any other list is walked item by item.
    Both ways give the same findings as walking every list."""
    from reconciler.document import checks

    doc = base()
    doc["userMatch"] = match
    doc["groups"][0]["members"], doc["groups"][0]["owners"] = members, owners
    doc["groups"][1]["members"] = members[::-1]
    doc["administrativeUnits"][0]["members"] = au_members
    found = validate_document(doc)
    with mock.patch.object(checks._Refs, "all_fine", lambda self, items: False):
        assert found == validate_document(doc)


# ---------------------------------------------------------------------------------- load_desired


def test_load_example() -> None:
    state = load_desired(EXAMPLE)
    assert isinstance(state, DesiredState)
    assert state.source.academic_year == "2026-27"
    assert len(state.teams) >= 1 and state.groups


def test_load_normalises_refs(tmp_path: Path) -> None:
    doc = base()
    doc["groups"][0]["owners"] = ["T.Teacher@OAK.example"]
    path = tmp_path / "d.json"
    path.write_text(json.dumps(doc))
    state = load_desired(path)
    ma1 = next(g for g in state.groups if g.key == MA1)
    assert ma1.owners == frozenset({TEACHER})


def test_load_invalid_document_raises_with_every_finding(tmp_path: Path) -> None:
    doc = base()
    doc["groups"][3]["mailNickname"] = "7A Ma1"
    doc["teams"][1]["group"] = "gone"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DocumentError) as info:
        load_desired(path)
    assert info.value.file == str(path)
    assert [f.path for f in info.value.findings] == ["groups[3].mailNickname", "teams[1].group"]
    assert str(info.value).startswith(f"{path}: 2 problems")


def _write(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "doc.json"
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        (b"", "the file is empty"),
        (b"  \n\t\n", "the file is empty"),
        (b'{\n  "version": 1,\n  "groups": [,]\n}', "invalid JSON at line 3, column 14"),
        (b'{"version": 1', "invalid JSON at line 1, column 14"),
        (b'{"version": NaN}', "NaN is not valid JSON"),
        (b'{"version": 1, "version": 1}', 'the property "version" appears twice in one object'),
        (b'{"name": "\xff\xfe"}', "is not UTF-8 text"),
        (b"[1, 2]", "the top-level value is a list ([...])"),
        (b'"desired"', "the top-level value is a string"),
        (b"null", "the top-level value is null"),
    ],
    ids=[
        "empty",
        "blank",
        "bad-json",
        "truncated",
        "nan",
        "duplicate-property",
        "not-utf8",
        "array",
        "string",
        "null",
    ],
)
def test_file_errors_are_one_clear_line(tmp_path: Path, content: bytes, phrase: str) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(InputError) as info:
        load_desired(path)
    message = str(info.value)
    assert phrase in message
    assert message.startswith(str(path))
    assert "\n" not in message
    assert not isinstance(info.value, DocumentError)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing\.json: no such file; check the path$"):
        load_desired(tmp_path / "missing.json")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory; give the path of a JSON file"):
        load_desired(tmp_path)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, b"{}")
    path.chmod(0)
    if os.geteuid() == 0:  # root reads any file: make the read fail as it does for everyone else

        def denied(self: Path) -> bytes:
            raise PermissionError(13, "Permission denied", str(self))

        monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(InputError, match="permission denied"):
        read_json_file(path)


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = _write(tmp_path, b"\xef\xbb\xbf" + json.dumps(base()).encode())
    assert load_desired(path).version == 1
