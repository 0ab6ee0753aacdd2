from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.document.load import read_json_file, validate_document
from reconciler.document.parse import desired_to_document, document_text, parse_desired
from reconciler.model import (
    AdministrativeUnit,
    DesiredState,
    Group,
    RemovalPolicy,
    SourceInfo,
    Team,
    UserMatch,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "desired-state.example.json"


def _minimal() -> dict[str, Any]:
    return {
        "version": 1,
        "source": {"system": "oneroster"},
        "administrativeUnits": [{"key": "au:1", "displayName": "AU one"}],
        "groups": [
            {
                "key": "g:1",
                "kind": "microsoft365",
                "displayName": "Group one",
                "mailNickname": "g1",
                "owners": ["Teacher@School.Example "],
            }
        ],
        "teams": [{"key": "team:g:1", "group": "g:1"}],
    }


def test_parse_fills_defaults_and_normalises_refs() -> None:
    state = parse_desired(_minimal())
    assert state.user_match == "userPrincipalName"
    assert state.policy == RemovalPolicy("delete", "delete", "archive")
    assert state.source == SourceInfo("oneroster", None, None)
    assert state.administrative_units == (AdministrativeUnit("au:1", "AU one", None, frozenset()),)
    (group,) = state.groups
    assert group.visibility == "Private"
    assert group.owners == frozenset({"teacher@school.example"})
    assert group.members == frozenset() and group.administrative_units == frozenset()
    assert state.teams == (Team("team:g:1", "g:1", "standard"),)


def test_parse_ignores_document_order() -> None:
    doc = read_json_file(EXAMPLE)
    shuffled = json.loads(json.dumps(doc))
    rng = random.Random(7)
    for name in ("administrativeUnits", "groups", "teams"):
        rng.shuffle(shuffled[name])
    for group in shuffled["groups"]:
        rng.shuffle(group["members"])
    assert parse_desired(shuffled) == parse_desired(doc)
    keys = [g.key for g in parse_desired(shuffled).groups]
    assert keys == sorted(keys)


def test_canonical_document_shape() -> None:
    state = parse_desired(_minimal())
    doc = desired_to_document(state)
    assert list(doc) == [
        "version",
        "source",
        "userMatch",
        "administrativeUnits",
        "groups",
        "teams",
        "policy",
    ]
    assert doc["source"] == {"system": "oneroster"}
    assert "description" not in doc["administrativeUnits"][0]
    assert doc["groups"][0] == {
        "key": "g:1",
        "kind": "microsoft365",
        "displayName": "Group one",
        "mailNickname": "g1",
        "visibility": "Private",
        "owners": ["teacher@school.example"],
        "members": [],
        "administrativeUnits": [],
    }
    assert doc["policy"] == {
        "removal": {"administrativeUnits": "delete", "groups": "delete", "teams": "archive"}
    }
    assert validate_document(doc) == []


def test_example_file_is_in_canonical_form() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    canonical = json.dumps(desired_to_document(parse_desired(json.loads(text))), indent=2, ensure_ascii=False)
    assert text == canonical + "\n"


def test_things_a_document_cannot_hold_are_dropped() -> None:
    state = DesiredState(
        groups=(Group("g", "G", "g", description="", owners=frozenset({"a@b.example"})),),
        teams=(Team("team:g", "g", archived=True),),
        source=SourceInfo(system=""),
    )
    doc = desired_to_document(state)
    assert "description" not in doc["groups"][0]
    assert doc["teams"] == [{"key": "team:g", "group": "g", "template": "standard"}]
    assert doc["source"] == {"system": "unknown"}
    assert validate_document(doc) == []


def test_same_state_same_bytes() -> None:
    state = parse_desired(read_json_file(EXAMPLE))
    first = json.dumps(desired_to_document(state), indent=2)
    again = json.dumps(desired_to_document(parse_desired(json.loads(first))), indent=2)
    assert first == again


# ------------------------------------------------------------------------ property: round trip

_key = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9:_.\-]{0,29}", fullmatch=True)
_word = st.text(st.characters(categories=("L", "N", "P", "S")), min_size=1, max_size=12)
_name = st.lists(_word, min_size=1, max_size=4).map(" ".join)
_nickname = st.from_regex(r"[A-Za-z0-9_\-!#$%&'*+/=?^`{|}~]{1,64}", fullmatch=True)
_upn = st.builds(
    "{}@{}.example".format,
    st.from_regex(r"[a-z0-9_'\-][a-z0-9._'\-]{0,11}", fullmatch=True),
    st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True),
)
_employee_id = st.from_regex(r"[a-z0-9\-]{1,16}", fullmatch=True)


def _subset(draw: st.DrawFn, pool: list[str]) -> frozenset[str]:
    return frozenset(draw(st.lists(st.sampled_from(pool), max_size=6))) if pool else frozenset()


@st.composite
def valid_states(draw: st.DrawFn) -> DesiredState:
    match: UserMatch = draw(st.sampled_from(["userPrincipalName", "mail", "employeeId"]))
    ref = _employee_id if match == "employeeId" else _upn
    people = draw(st.lists(ref, min_size=1, max_size=10, unique=True))
    optional_text = st.none() | _name
    aus = [
        AdministrativeUnit(key, draw(_name), draw(optional_text), _subset(draw, people))
        for key in draw(st.lists(_key, max_size=4, unique_by=str.casefold))
    ]
    au_keys = [au.key for au in aus]
    group_keys = draw(st.lists(_key, max_size=6, unique_by=str.casefold))
    nicknames = draw(
        st.lists(_nickname, min_size=len(group_keys), max_size=len(group_keys), unique_by=str.casefold)
    )
    groups = []
    for key, nickname in zip(group_keys, nicknames, strict=True):
        kind = draw(st.sampled_from(["microsoft365", "security"]))
        visibilities = ["Private", "Public"] + (["HiddenMembership"] if kind == "microsoft365" else [])
        groups.append(
            Group(
                key=key,
                display_name=draw(_name),
                mail_nickname=nickname,
                kind=kind,
                description=draw(optional_text),
                visibility=draw(st.sampled_from(visibilities)),
                owners=_subset(draw, people),
                members=_subset(draw, people),
                administrative_units=_subset(draw, au_keys),
            )
        )
    team_ready = [g for g in groups if g.kind == "microsoft365" and g.owners]
    teams = [
        Team(f"team:{g.key}", g.key, draw(st.sampled_from(["standard", "educationClass"])))
        for g in team_ready
        if draw(st.booleans())
    ]
    year = draw(st.integers(2000, 2098))
    source = SourceInfo(
        system=draw(_word),
        generated_at=draw(st.none() | st.just("2026-09-01T04:00:00Z") | st.just("2026-09-01T05:00:00+01:00")),
        academic_year=draw(st.none() | st.just(f"{year}-{(year + 1) % 100:02d}")),
    )
    policy = RemovalPolicy(
        draw(st.sampled_from(["delete", "keep"])),
        draw(st.sampled_from(["delete", "keep"])),
        draw(st.sampled_from(["archive", "keep"])),
    )
    return DesiredState(
        administrative_units=tuple(sorted(aus, key=lambda a: a.key)),
        groups=tuple(sorted(groups, key=lambda g: g.key)),
        teams=tuple(sorted(teams, key=lambda t: t.key)),
        policy=policy,
        source=source,
        user_match=match,
    )


@settings(max_examples=60, deadline=None)
@given(valid_states())
def test_valid_states_round_trip_and_validate(state: DesiredState) -> None:
    doc = desired_to_document(state)
    assert validate_document(doc) == []
    through_json = json.loads(json.dumps(doc, ensure_ascii=False))
    assert parse_desired(through_json) == state
    assert desired_to_document(parse_desired(through_json)) == doc


_json_text = st.text(
    st.characters(codec="utf-8") | st.sampled_from(["\x00", "\x1f", "\x7f", '"', "\\", "\u2028"])
)
_json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | _json_text | st.just("\ud800"),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_json_text, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_json_text, _json_like, max_size=5))
def test_document_text_is_what_json_dumps_writes(document: dict[str, Any]) -> None:
    """Written by orjson where it can (a lone surrogate and a huge integer go to json): the
    same text, so a rendered file and a saved snapshot do not change with the writer."""
    assert document_text(document) == json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def test_document_text_of_a_rendered_state_is_byte_for_byte_the_json_module_s() -> None:
    document = desired_to_document(parse_desired(read_json_file(EXAMPLE)))
    assert document_text(document) == json.dumps(document, indent=2, ensure_ascii=False) + "\n"
