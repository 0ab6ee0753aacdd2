"""Typed payloads: each operation's before/after types, their JSON round trip, what a hand-edited
plan gets told, and how the run store reads records of older versions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.apply.executor import apply
from reconciler.errors import DocumentError
from reconciler.model import ActualState, EducationClass
from reconciler.plan.codec import load_plan_document
from reconciler.plan.model import Plan
from reconciler.plan.operations import (
    OPERATIONS,
    AddGroupMembers,
    ArchiveTeam,
    Change,
    CreateGroup,
    DeleteAdministrativeUnit,
    MembershipChange,
    PayloadError,
    UpdateGroup,
)
from reconciler.plan.payloads import (
    UNSET,
    AdministrativeUnitDocument,
    AdministrativeUnitFields,
    GroupDocument,
    GroupFields,
    Payload,
    TeamDocument,
    TeamStatus,
)
from tests.fakes import FakeDirectory
from tests.plan_samples import sample_plan

PAYLOADS = (AdministrativeUnitDocument, GroupDocument, TeamDocument, TeamStatus, AdministrativeUnitFields,
            GroupFields)


def test_every_operation_names_the_payload_types_of_its_two_sides() -> None:
    for (action, kind), cls in OPERATIONS.items():
        sides = (cls.before_type, cls.after_type)
        if issubclass(cls, MembershipChange) or action == "adopt":
            assert sides == (None, None), cls
        elif action == "create":
            assert sides[0] is None and sides[1] in (AdministrativeUnitDocument, GroupDocument,
                                                     TeamDocument), cls
        elif action == "delete":
            assert sides[1] is None and sides[0] is not None, cls
        else:
            assert sides[0] is sides[1] and sides[0] in (AdministrativeUnitFields, GroupFields,
                                                         TeamStatus), (action, kind)


def test_a_change_refuses_a_payload_of_another_type() -> None:
    with pytest.raises(TypeError, match=r"CreateGroup.after must be a GroupDocument, not a dict"):
        CreateGroup("g", after={"displayName": "G", "mailNickname": "g"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"UpdateGroup.before must be a GroupFields, not a GroupDocument"):
        UpdateGroup("g", before=GroupDocument("G", "g"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"AddGroupMembers.after must be None"):
        AddGroupMembers("g", after=TeamStatus("g", True), members=("a@x",))  # type: ignore[arg-type]


def test_an_update_tells_a_field_it_leaves_alone_from_one_it_clears() -> None:
    cleared = GroupFields(description=None)
    assert cleared.to_dict() == {"description": None} and bool(cleared)
    untouched = GroupFields()
    assert untouched.to_dict() == {} and not untouched
    assert untouched.description is UNSET
    assert GroupFields.from_dict({"description": None}) == cleared
    assert GroupFields.from_dict({}) == untouched


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
_refs = st.lists(_text, max_size=4, unique=True).map(lambda xs: tuple(sorted(xs)))
_maybe = st.none() | _text
_education = st.none() | st.builds(EducationClass, _text, _text, _text, _text)
_payloads: dict[type[Payload], st.SearchStrategy[Any]] = {
    AdministrativeUnitDocument: st.builds(AdministrativeUnitDocument, _text, _maybe, _refs,
                                          st.none() | _refs),
    GroupDocument: st.builds(GroupDocument, _text, _text, st.sampled_from(["microsoft365", "security"]),
                             _maybe, st.sampled_from(["Private", "Public", "HiddenMembership"]), _refs, _refs,
                             st.none() | _refs, _education),
    TeamDocument: st.builds(TeamDocument, _text, st.sampled_from(["standard", "educationClass"])),
    TeamStatus: st.builds(TeamStatus, _text, st.booleans()),
    AdministrativeUnitFields: st.builds(AdministrativeUnitFields, st.just(UNSET) | _text,
                                        st.just(UNSET) | _maybe),
    GroupFields: st.builds(GroupFields, st.just(UNSET) | _text, st.just(UNSET) | _maybe,
                           st.just(UNSET) | st.sampled_from(["Private", "Public", "HiddenMembership"])),
}


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(PAYLOADS).flatmap(lambda cls: _payloads[cls]))
def test_every_payload_survives_its_json_round_trip(payload: Payload) -> None:
    text = json.dumps(payload.to_dict())
    assert type(payload).from_dict(json.loads(text)) == payload


def test_a_saved_plan_reads_back_into_the_same_typed_changes() -> None:
    plan = sample_plan()
    loaded = load_plan_document(json.loads(plan.to_json()))
    assert loaded.changes == plan.changes
    assert {type(c.after) for c in loaded.changes if c.after is not None} >= {GroupDocument, TeamDocument}


def _findings(data: dict[str, Any]) -> list[str]:
    with pytest.raises(DocumentError) as info:
        load_plan_document(data)
    return [str(f) for f in info.value.findings]


def _index(data: dict[str, Any], action: str, kind: str) -> int:
    return next(i for i, c in enumerate(data["changes"]) if (c["action"], c["kind"]) == (action, kind))


def test_a_hand_edited_plan_is_told_which_payload_is_wrong_and_how() -> None:
    data = sample_plan().to_dict()
    i = _index(data, "create", "group")
    del data["changes"][i]["after"]["mailNickname"]
    j = _index(data, "create", "team")
    data["changes"][j]["after"]["archived"] = True
    assert _findings(data) == [
        f"changes[{i}].after: group: mailNickname is missing; it must be a non-empty string",
        f"changes[{j}].after: Team: 'archived' is not one of its fields (group, template)",
    ]
    with pytest.raises(PayloadError, match=r"^after: a change add groupMembers has no after: remove it$"):
        Change.from_dict({"action": "add", "kind": "groupMembers", "key": "g", "members": ["a@x"],
                          "after": {"displayName": "x"}})


def test_the_run_store_reads_a_record_of_an_older_version() -> None:
    old = {"id": "create:group:g2", "action": "create", "kind": "group", "key": "g2",
           "after": {"displayName": "9B", "owners": [], "members": ["amy@oak.example"], "retired": 1}}
    with pytest.raises(PayloadError) as info:
        Change.from_dict(old)
    assert info.value.side == "after"
    change = Change.from_dict(old, strict=False)
    assert change.after == GroupDocument("9B", "", members=("amy@oak.example",))


def test_a_create_without_what_to_create_fails_and_writes_nothing() -> None:
    directory = FakeDirectory()
    result = apply(Plan(changes=(CreateGroup("g:1"),)), directory, ActualState())
    [r] = result.results
    assert (r.status, r.message) == (
        "failed", "create:group:g:1: the change says nothing of what to create (it has no after)")
    assert directory.calls == []


def test_renderings_and_json_show_the_same_fields_as_before_payloads_were_typed() -> None:
    change = DeleteAdministrativeUnit("au:1", "id-1", before=AdministrativeUnitDocument(
        "Year 7", None, ("a@x", "b@x"), groups=("g:1",)))
    assert change.to_dict()["before"] == {"displayName": "Year 7", "description": None,
                                          "members": ["a@x", "b@x"], "groups": ["g:1"]}
    archive = ArchiveTeam("team:g", "id", before=TeamStatus("g", False), after=TeamStatus("g", True))
    assert archive.to_dict()["after"] == {"group": "g", "archived": True}
