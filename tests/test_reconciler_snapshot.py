"""Export: the managed actual state as a desired state; planning it against the same state is empty."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings

from reconciler.document.load import validate_document
from reconciler.document.parse import desired_to_document, parse_desired
from reconciler.document.snapshot import snapshot, unnamed_members
from reconciler.model import ActualState, DesiredState, RemovalPolicy, SourceInfo
from reconciler.plan.diff import diff
from tests.plan_samples import sample_actual
from tests.test_reconciler_diff import states


def test_snapshot_of_sample_is_sorted_and_complete() -> None:
    actual = sample_actual()
    policy = RemovalPolicy(groups="keep")
    source = SourceInfo(system="entra-sync export", generated_at="2026-11-26T12:00:00Z")
    desired = snapshot(actual, user_match="mail", policy=policy, source=source)
    assert [g.key for g in desired.groups] == sorted(actual.groups)
    assert [a.key for a in desired.administrative_units] == sorted(actual.administrative_units)
    assert all(g == actual.groups[g.key] for g in desired.groups)
    assert (desired.policy, desired.source, desired.user_match) == (policy, source, "mail")
    # the archived Team of 8B-Sc1 is not desired: it stays archived
    assert {t.key: (t.group, t.template, t.archived) for t in desired.teams} == {
        "team:class:OAK:2025-26:6A-Ma1": ("class:OAK:2025-26:6A-Ma1", "standard", False),
        "team:class:OAK:2026-27:7A-Ma1": ("class:OAK:2026-27:7A-Ma1", "standard", False),
    }
    assert desired.people() <= set(actual.users)


def test_snapshot_defaults_and_no_unmanaged_objects() -> None:
    desired = snapshot(sample_actual())
    assert desired.policy == RemovalPolicy()
    assert desired.source.system == "entra-sync export"
    assert desired.user_match == "userPrincipalName"
    assert all(g.key != "mentor:OAK:7R" for g in desired.groups)


def test_round_trip_of_sample_is_empty_even_through_the_document() -> None:
    actual = sample_actual()
    desired = snapshot(actual)
    plan = diff(desired, actual)
    assert plan.empty and not plan.warnings and not plan.conflicts
    document = desired_to_document(desired)
    assert validate_document(document) == []
    assert diff(parse_desired(document), actual).empty


def test_unnamed_members_are_left_out_and_listed() -> None:
    actual = sample_actual()
    key = "class:OAK:2026-27:7A-Ma1"
    g = actual.groups[key]
    odd = dataclasses.replace(actual, groups={**actual.groups, key: dataclasses.replace(
        g, members=g.members | {"id:abc"}, owners=g.owners | {"id:def"})})
    assert unnamed_members(odd) == {key: ("id:abc", "id:def")}
    desired = snapshot(odd)
    assert validate_document(desired_to_document(desired)) == []
    assert [(c.id, c.members) for c in diff(desired, odd).changes] == [
        (f"remove:groupMembers:{key}", ("id:abc",)), (f"remove:groupOwners:{key}", ("id:def",))]
    assert diff(snapshot(odd, keep_unnamed=True), odd).empty


@settings(max_examples=60, deadline=None)
@given(states())
def test_round_trip_is_empty_for_any_state(pair: tuple[DesiredState, ActualState]) -> None:
    _, actual = pair
    for policy in (RemovalPolicy(), RemovalPolicy("keep", "keep", "keep")):
        assert diff(snapshot(actual, policy=policy, keep_unnamed=True), actual).empty
        for c in diff(snapshot(actual, policy=policy), actual).changes:
            assert c.action == "remove" and all(m.startswith("id:") for m in c.members), c
