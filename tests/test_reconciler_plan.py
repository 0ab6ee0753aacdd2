"""Plan: ordering, JSON round trip, the plan schema and loading a saved plan."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from jsonschema import Draft202012Validator

from reconciler.apply.executor import _Engine
from reconciler.errors import DocumentError
from reconciler.model import ActualState, DesiredState
from reconciler.plan.codec import json_path, load_plan_document, loads_plan, plan_schema
from reconciler.plan.diff import diff
from reconciler.plan.model import Plan
from reconciler.plan.operations import (
    OPERATIONS,
    AddGroupMembers,
    Change,
    CreateAdministrativeUnit,
    CreateGroup,
    CreateTeam,
    DeleteAdministrativeUnit,
    DeleteGroup,
    MembershipChange,
    RemoveGroupMembers,
    operation,
)
from reconciler.plan.payloads import AdministrativeUnitDocument, GroupDocument, TeamDocument
from tests.plan_samples import sample_plan
from tests.test_reconciler_diff import states


def test_schema_is_a_valid_2020_12_schema() -> None:
    Draft202012Validator.check_schema(plan_schema())


def test_sample_plan_validates_and_round_trips() -> None:
    plan = sample_plan()
    data = plan.to_dict()
    assert list(Draft202012Validator(plan_schema()).iter_errors(data)) == []
    loaded = load_plan_document(json.loads(plan.to_json()))
    assert loaded.to_json() == plan.to_json()
    assert loaded.checksum() == plan.checksum()
    assert loads_plan(plan.to_json()).changes == plan.changes


@settings(max_examples=40, deadline=None)
@given(states())
def test_every_diffed_plan_matches_the_schema(pair: tuple[DesiredState, ActualState]) -> None:
    plan = diff(*pair)
    assert load_plan_document(json.loads(plan.to_json())).to_json() == plan.to_json()


def test_plan_sorts_changes_by_phase_and_removals_run_in_reverse() -> None:
    changes = (
        DeleteAdministrativeUnit("au:1", "a", before=AdministrativeUnitDocument("A")),
        RemoveGroupMembers("g:1", "g", members=("x",)),
        CreateTeam("team:g:2", after=TeamDocument("g:2")),
        DeleteGroup("g:3", "c", before=GroupDocument("C", "c")),
        AddGroupMembers("g:1", "g", members=("y",)),
        CreateGroup("g:2", after=GroupDocument("B", "b")),
        CreateAdministrativeUnit("au:2", after=AdministrativeUnitDocument("A2")),
    )
    assert [c.id for c in Plan(changes=changes).changes] == [
        "create:administrativeUnit:au:2", "create:group:g:2", "add:groupMembers:g:1", "create:team:team:g:2",
        "remove:groupMembers:g:1", "delete:group:g:3", "delete:administrativeUnit:au:1",
    ]
    assert Plan(changes=changes).to_json() == Plan(changes=tuple(reversed(changes))).to_json()


def test_empty_plan() -> None:
    plan = Plan()
    assert plan.empty
    assert load_plan_document(plan.to_dict()).empty


def _doc() -> dict[str, Any]:
    return json.loads(sample_plan().to_json())  # type: ignore[no-any-return]


def _findings(data: Any) -> list[str]:
    with pytest.raises(DocumentError) as info:
        load_plan_document(data, file="plan.json")
    assert info.value.file == "plan.json"
    return [str(f) for f in info.value.findings]


def test_schema_errors_name_json_paths() -> None:
    data = _doc()
    data["changes"][0]["action"] = "explode"
    del data["changes"][2]["key"]
    data["formatVersion"] = 3
    found = _findings(data)
    assert any(f.startswith("changes[0].action: 'explode' is not one of") for f in found)
    assert "changes[2]: 'key' is a required property" in found
    assert any(f.startswith("formatVersion:") for f in found)


def test_action_and_kind_must_fit() -> None:
    data = _doc()
    data["changes"].append({"id": "add:group:g:9", "action": "add", "kind": "group", "key": "g:9",
                            "members": ["x"]})
    assert any(f.startswith(f"changes[{len(data['changes']) - 1}].action") for f in _findings(data))


def test_semantic_errors_ids_dependencies_summary() -> None:
    data = _doc()
    first = data["changes"][0]
    first["id"] = "update:administrativeUnit:au:OTHER"
    dependent = next(i for i, c in enumerate(data["changes"]) if c.get("dependsOn"))
    data["changes"][dependent]["dependsOn"] = ["create:group:nowhere"]
    found = _findings(data)
    assert found[0].startswith("changes[0].id: is 'update:administrativeUnit:au:OTHER'")
    assert found[1] == (f"changes[{dependent}].dependsOn[0]: 'create:group:nowhere' "
                        "is not a change in this plan")
    data = _doc()
    data["summary"]["create group"] = 7
    assert _findings(data) == [
        "summary: does not match the changes; the plan was edited by hand: make a new one"]
    data = _doc()
    data["changes"].append(dict(data["changes"][0]))
    assert "appears twice" in _findings(data)[0]


def test_invalid_json_text() -> None:
    with pytest.raises(DocumentError) as info:
        loads_plan("{not json", file="p.json")
    assert "line 1, column 2: not valid JSON" in str(info.value)


def test_json_path() -> None:
    assert json_path(["changes", 3, "members", 0]) == "changes[3].members[0]"
    assert json_path([]) == ""


# -- typed operations and refusals ------------------------------------------------------------------


def test_every_action_and_kind_pair_is_one_class_with_its_phase_noun_symbol_and_handler() -> None:
    assert len(OPERATIONS) == 20 and len(set(OPERATIONS.values())) == 20
    for (action, kind), cls in OPERATIONS.items():
        assert (cls.action, cls.kind) == (action, kind) and operation(action, kind) is cls
        # an adoption is recorded by an adopt run, never applied from a plan
        assert cls.symbol in "+~-><=" and cls.noun
        assert (action == "adopt") != hasattr(_Engine, "_" + cls.handler)
        change = cls("g:1", members=("a@x",) if issubclass(cls, MembershipChange) else ())
        assert change.id == f"{action}:{kind}:g:1" == cls.id_for("g:1")
        assert Change.from_dict(change.to_dict()) == change
    assert [OPERATIONS[("remove", "groupOwners")].phase, OPERATIONS[("add", "groupOwners")].phase] == [5, 2]
    with pytest.raises(ValueError, match="no change 'add' on 'group'"):
        operation("add", "group")
    with pytest.raises(TypeError, match="abstract"):
        Change("g:1")


def test_refusals_are_a_field_of_the_plan_and_survive_the_json_round_trip() -> None:
    plan = replace(sample_plan(), refusals=("3 groups would be deleted, more than the limit of 2",))
    data = json.loads(plan.to_json())
    assert data["formatVersion"] == 2 and data["refusals"] == list(plan.refusals)
    assert all(w["code"] != "safetyRefusal" for w in data["warnings"])
    assert load_plan_document(data).refusals == plan.refusals


def test_a_format_1_plan_with_refusals_as_warnings_is_still_read() -> None:
    data = _doc()
    data["formatVersion"] = 1
    del data["refusals"]
    data["warnings"].append({"code": "safetyRefusal", "message": "too many deletes"})
    plan = load_plan_document(data)
    assert plan.refusals == ("too many deletes",)
    assert all(w.code != "safetyRefusal" for w in plan.warnings)
    assert plan.changes == sample_plan().changes
