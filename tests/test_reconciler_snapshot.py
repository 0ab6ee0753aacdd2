"""Export: the managed actual state as a desired state; planning it against the same state is empty."""

from __future__ import annotations

from hypothesis import given, settings
from plan_samples import sample_actual
from test_reconciler_diff import states

from reconciler.diff import diff
from reconciler.model import ActualState, DesiredState, RemovalPolicy, SourceInfo
from reconciler.snapshot import snapshot


def test_snapshot_of_sample_is_sorted_and_complete() -> None:
    actual = sample_actual()
    policy = RemovalPolicy(groups="keep")
    source = SourceInfo(system="entra-sync export", generated_at="2026-11-26T12:00:00Z")
    desired = snapshot(actual, user_match="mail", policy=policy, source=source)
    assert [g.key for g in desired.groups] == sorted(actual.groups)
    assert [a.key for a in desired.administrative_units] == sorted(actual.administrative_units)
    assert desired.groups[2] == actual.groups[desired.groups[2].key]
    assert (desired.policy, desired.source, desired.user_match) == (policy, source, "mail")
    assert {t.key: (t.group, t.template, t.archived) for t in desired.teams} == {
        "team:class:OAK:2025-26:6A-Ma1": ("class:OAK:2025-26:6A-Ma1", "standard", False),
        "team:class:OAK:2026-27:7A-Ma1": ("class:OAK:2026-27:7A-Ma1", "standard", False),
        "team:class:OAK:2026-27:8B-Sc1": ("class:OAK:2026-27:8B-Sc1", "standard", True),
    }
    assert desired.people() <= set(actual.users)


def test_snapshot_defaults_and_no_unmanaged_objects() -> None:
    desired = snapshot(sample_actual())
    assert desired.policy == RemovalPolicy()
    assert desired.source.system == "entra-sync export"
    assert desired.user_match == "userPrincipalName"
    assert all(g.key != "mentor:OAK:7R" for g in desired.groups)


def test_snapshot_keeps_members_the_users_index_cannot_name() -> None:
    actual = sample_actual()
    g = next(iter(actual.groups.values()))
    odd = ActualState(groups={g.key: g.__class__(g.key, g.display_name, g.mail_nickname,
                                                   members=g.members | {"id:abc"})},
                      ids={g.key: "1"}, users=actual.users)
    desired = snapshot(odd)
    assert "id:abc" in desired.groups[0].members
    assert diff(desired, odd).empty


def test_round_trip_of_sample_is_empty() -> None:
    actual = sample_actual()
    plan = diff(snapshot(actual), actual)
    assert plan.empty and not plan.warnings and not plan.conflicts


@settings(max_examples=60, deadline=None)
@given(states())
def test_round_trip_is_empty_for_any_state(pair: tuple[DesiredState, ActualState]) -> None:
    _, actual = pair
    for policy in (RemovalPolicy(), RemovalPolicy("keep", "keep", "keep")):
        assert diff(snapshot(actual, policy=policy), actual).empty

