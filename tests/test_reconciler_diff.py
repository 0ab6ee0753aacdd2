"""The diff: unit tests for each rule, and hypothesis properties (convergence, order, determinism)."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.model import (
    ActualState,
    AdministrativeUnit,
    DesiredState,
    Group,
    RemovalPolicy,
    Team,
    UnmanagedObject,
)
from reconciler.plan.diff import diff
from reconciler.plan.fingerprint import fingerprint, managed_counts
from reconciler.plan.model import Change, Plan
from reconciler.plan.payloads import (
    UNSET,
    AdministrativeUnitFields,
    Fields,
    GroupFields,
    TeamDocument,
    TeamStatus,
)

USERS = {f"u{i}@oak.example": f"uid-{i}" for i in range(10)}


def fs(*refs: str) -> frozenset[str]:
    return frozenset(refs)


def group(key: str, **kw: Any) -> Group:
    kw.setdefault("display_name", key.upper())
    kw.setdefault("mail_nickname", key.replace(":", "-"))
    return Group(key=key, **kw)


def actual_state(
    aus: tuple[AdministrativeUnit, ...] = (),
    groups: tuple[Group, ...] = (),
    teams: tuple[Team, ...] = (),
    **kw: Any,
) -> ActualState:
    ids = {o.key: f"id-{o.key}" for o in (*aus, *groups)}
    ids.update({t.key: f"id-{t.group}" for t in teams})
    kw.setdefault("users", USERS)
    return ActualState(
        administrative_units={a.key: a for a in aus},
        groups={g.key: g for g in groups},
        teams={t.group: t for t in teams},
        ids=ids,
        **kw,
    )


def by_id(plan: Plan) -> dict[str, Change]:
    return {c.id: c for c in plan.changes}


# --- creates -------------------------------------------------------------------------------


def test_new_group_is_one_create_with_owners_and_members_and_a_placement() -> None:
    au = AdministrativeUnit("au:1", "Year 7", members=fs("u1@oak.example"))
    g = group("g:1", owners=fs("u0@oak.example"), members=fs("u2@oak.example", "u1@oak.example"),
              administrative_units=fs("au:1"), description="Maths")
    plan = diff(DesiredState(administrative_units=(au,), groups=(g,), teams=(Team("team:g:1", "g:1"),)),
                actual_state())
    changes = by_id(plan)
    assert sorted(changes) == sorted([
        "create:administrativeUnit:au:1", "create:group:g:1", "add:groupAdministrativeUnits:g:1",
        "create:team:team:g:1",
    ])
    assert changes["create:group:g:1"].after.to_dict() == {
        "displayName": "G:1", "mailNickname": "g-1", "kind": "microsoft365", "description": "Maths",
        "visibility": "Private", "owners": ["u0@oak.example"],
        "members": ["u1@oak.example", "u2@oak.example"],
    }
    assert changes["create:administrativeUnit:au:1"].after.to_dict() == {
        "displayName": "Year 7", "description": None, "members": ["u1@oak.example"]}
    place = changes["add:groupAdministrativeUnits:g:1"]
    assert place.members == ("au:1",)
    assert set(place.depends_on) == {"create:group:g:1", "create:administrativeUnit:au:1"}
    assert changes["create:team:team:g:1"].depends_on == ("create:group:g:1",)
    assert changes["create:team:team:g:1"].after == TeamDocument("g:1", "standard")


def test_team_on_existing_group_has_no_dependency() -> None:
    g = group("g:1", owners=fs("u0@oak.example"))
    plan = diff(DesiredState(groups=(g,), teams=(Team("team:g:1", "g:1", "educationClass"),)),
                actual_state(groups=(g,)))
    [c] = plan.changes
    assert (c.id, c.depends_on, c.after) == (
        "create:team:team:g:1", (), TeamDocument("g:1", "educationClass"))


# --- updates and memberships ---------------------------------------------------------------


def test_update_holds_only_changed_managed_fields() -> None:
    have = group("g:1", description=None, visibility="Private")
    want = dataclasses.replace(have, display_name="New", description="", visibility="Public",
                               mail_nickname="new-nick")
    plan = diff(DesiredState(groups=(want,)), actual_state(groups=(have,)))
    [c] = plan.changes
    assert (c.action, c.kind, c.object_id) == ("update", "group", "id-g:1")
    assert c.before == GroupFields(display_name="G:1", visibility="Private")
    assert c.after == GroupFields(display_name="New", visibility="Public")
    assert c.to_dict()["after"] == {"displayName": "New", "visibility": "Public"}  # only what changes
    # the mailNickname (the group's mail address) is set at creation only, and kept after
    [w] = [w for w in plan.warnings if w.code == "mailNicknameKept"]
    assert "g:1 keeps 'g-1' (desired 'new-nick')" in w.message


def test_au_update_and_equal_description_forms() -> None:
    have = AdministrativeUnit("au:1", "A", description=None)
    assert diff(DesiredState(administrative_units=(dataclasses.replace(have, description=""),)),
                actual_state(aus=(have,))).empty
    [c] = diff(DesiredState(administrative_units=(dataclasses.replace(have, description="x"),)),
               actual_state(aus=(have,))).changes
    assert (c.id, c.before, c.after) == ("update:administrativeUnit:au:1",
                                         AdministrativeUnitFields(description=None),
                                         AdministrativeUnitFields(description="x"))


def test_membership_adds_and_removes_are_one_change_per_relation_and_direction() -> None:
    have = group("g:1", owners=fs("u0@oak.example"), members=fs("u1@oak.example", "u2@oak.example",
                                                                "id:0000-dead"))
    want = dataclasses.replace(have, owners=fs("u0@oak.example", "u9@oak.example"),
                               members=fs("u1@oak.example", "u5@oak.example", "u3@oak.example"))
    changes = by_id(diff(DesiredState(groups=(want,)), actual_state(groups=(have,))))
    assert sorted(changes) == ["add:groupMembers:g:1", "add:groupOwners:g:1", "remove:groupMembers:g:1"]
    assert changes["add:groupMembers:g:1"].members == ("u3@oak.example", "u5@oak.example")
    assert changes["remove:groupMembers:g:1"].members == ("id:0000-dead", "u2@oak.example")
    assert changes["add:groupOwners:g:1"].object_id == "id-g:1"


def test_owner_removal_depends_on_owner_add_and_last_owner_is_kept() -> None:
    have = group("g:1", owners=fs("u0@oak.example"))
    swap = dataclasses.replace(have, owners=fs("u1@oak.example"))
    changes = by_id(diff(DesiredState(groups=(swap,)), actual_state(groups=(have,))))
    assert changes["remove:groupOwners:g:1"].depends_on == ("add:groupOwners:g:1",)
    unresolvable = dataclasses.replace(have, owners=fs("ghost@oak.example"))
    plan = diff(DesiredState(groups=(unresolvable,)), actual_state(groups=(have,)))
    assert plan.empty
    assert {w.code for w in plan.warnings} == {"lastOwner", "unresolvedUser"}


def test_au_members_and_placements_of_existing_group() -> None:
    aus = (AdministrativeUnit("au:1", "A", members=fs("u1@oak.example")), AdministrativeUnit("au:2", "B"))
    have = group("g:1", administrative_units=fs("au:1"))
    want = dataclasses.replace(have, administrative_units=fs("au:2", "au:3"))
    desired = DesiredState(
        administrative_units=(dataclasses.replace(aus[0], members=fs("u2@oak.example")), aus[1],
                              AdministrativeUnit("au:3", "C")),
        groups=(want,))
    changes = by_id(diff(desired, actual_state(aus=aus, groups=(have,))))
    assert changes["add:groupAdministrativeUnits:g:1"].members == ("au:2", "au:3")
    assert changes["add:groupAdministrativeUnits:g:1"].depends_on == ("create:administrativeUnit:au:3",)
    assert changes["remove:groupAdministrativeUnits:g:1"].members == ("au:1",)
    assert changes["add:administrativeUnitMembers:au:1"].members == ("u2@oak.example",)
    assert changes["remove:administrativeUnitMembers:au:1"].members == ("u1@oak.example",)


# --- removals --------------------------------------------------------------------------------


def test_delete_carries_the_whole_object() -> None:
    au = AdministrativeUnit("au:1", "A", members=fs("u1@oak.example"))
    g = group("g:1", owners=fs("u0@oak.example"), members=fs("u1@oak.example"),
              administrative_units=fs("au:1"))
    plan = diff(DesiredState(), actual_state(aus=(au,), groups=(g,)))
    changes = by_id(plan)
    assert sorted(changes) == ["delete:administrativeUnit:au:1", "delete:group:g:1"]
    assert changes["delete:group:g:1"].before.to_dict() == {
        "displayName": "G:1", "mailNickname": "g-1", "kind": "microsoft365", "description": None,
        "visibility": "Private", "owners": ["u0@oak.example"], "members": ["u1@oak.example"],
        "administrativeUnits": ["au:1"],
    }
    assert changes["delete:administrativeUnit:au:1"].before.to_dict() == {
        "displayName": "A", "description": None, "members": ["u1@oak.example"], "groups": ["g:1"]}
    assert changes["delete:group:g:1"].object_id == "id-g:1"
    assert [c.id for c in plan.changes] == ["delete:group:g:1", "delete:administrativeUnit:au:1"]


def test_a_group_with_a_team_is_never_deleted_its_team_is_archived() -> None:
    """Last year's class: deleting its group would delete the Team with its files and chats."""
    g = group("class:2025-26:7A", owners=fs("u0@oak.example"))
    actual = actual_state(groups=(g,), teams=(Team("team:class:2025-26:7A", "class:2025-26:7A"),))
    plan = diff(DesiredState(), actual)
    assert [c.id for c in plan.changes] == ["archive:team:team:class:2025-26:7A"]
    [w] = [w for w in plan.warnings if w.code == "groupKeptForTeam"]
    assert "class:2025-26:7A" in w.message
    keep = DesiredState(policy=RemovalPolicy(teams="keep"))
    assert diff(keep, actual).changes == ()


def test_keep_policy_keeps_and_says_so() -> None:
    g = group("g:1")
    policy = RemovalPolicy(administrative_units="keep", groups="keep", teams="keep")
    plan = diff(DesiredState(policy=policy),
                actual_state(aus=(AdministrativeUnit("au:1", "A"),), groups=(g,),
                             teams=(Team("team:g:1", "g:1"),)))
    assert plan.empty
    assert [w.code for w in plan.warnings] == ["kept", "kept", "kept"]


def test_undesired_team_is_archived_once_and_archived_desired_team_unarchived() -> None:
    g1, g2 = group("g:1", owners=fs("u0@oak.example")), group("g:2")
    teams = (Team("team:g:1", "g:1"), Team("team:g:2", "g:2", archived=True))
    plan = diff(DesiredState(groups=(g1, g2), teams=(Team("team:g:2", "g:2"),)),
                actual_state(groups=(g1, g2), teams=teams))
    assert [(c.id, c.object_id, c.after) for c in plan.changes] == [
        ("unarchive:team:team:g:2", "id-g:2", TeamStatus("g:2", archived=False)),
        ("archive:team:team:g:1", "id-g:1", TeamStatus("g:1", archived=True)),
    ]
    archived = (Team("team:g:1", "g:1", archived=True),)
    assert diff(DesiredState(groups=(g1,)), actual_state(groups=(g1,), teams=archived)).empty


def test_team_desired_archived_is_archived_even_when_new() -> None:
    g1, g2 = group("g:1", owners=fs("u0@oak.example")), group("g:2", owners=fs("u0@oak.example"))
    desired = DesiredState(groups=(g1, g2), teams=(Team("team:g:1", "g:1", archived=True),
                                                   Team("team:g:2", "g:2", archived=True)))
    plan = diff(desired, actual_state(groups=(g1,), teams=(Team("team:g:1", "g:1"),)))
    assert [(c.id, c.depends_on) for c in plan.changes] == [
        ("create:group:g:2", ()),
        ("create:team:team:g:2", ("create:group:g:2",)),
        ("archive:team:team:g:1", ()),
        ("archive:team:team:g:2", ("create:team:team:g:2",)),
    ]


def test_kept_group_with_undesired_team_gets_it_archived() -> None:
    g = group("g:1")
    plan = diff(DesiredState(policy=RemovalPolicy(groups="keep")),
                actual_state(groups=(g,), teams=(Team("team:g:1", "g:1"),)))
    assert [c.id for c in plan.changes] == ["archive:team:team:g:1"]


# --- people, conflicts, kinds ----------------------------------------------------------------


def test_unresolved_people_are_one_warning_per_reference_and_never_planned() -> None:
    g1 = group("g:1", owners=fs("u0@oak.example"), members=fs("ghost@oak.example", "u1@oak.example"))
    g2 = group("g:2", owners=fs("u0@oak.example"), members=fs("ghost@oak.example"))
    have2 = dataclasses.replace(g2, members=fs())
    plan = diff(DesiredState(groups=(g1, g2)), actual_state(groups=(have2,)))
    changes = by_id(plan)
    assert changes["create:group:g:1"].after is not None
    assert changes["create:group:g:1"].after.members == ("u1@oak.example",)
    assert "add:groupMembers:g:2" not in changes
    [w] = plan.warnings
    assert (w.code, w.ref, w.key) == ("unresolvedUser", "ghost@oak.example", None)
    assert "2 objects: g:1, g:2" in w.message


def test_unmanaged_collision_is_a_conflict_and_blocks_dependants() -> None:
    au = AdministrativeUnit("au:1", "Year 7")
    g = group("g:1", mail_nickname="Maths7", administrative_units=fs("au:1"))
    g2 = group("g:2", display_name="Science", administrative_units=fs("au:1"))
    unmanaged = (
        UnmanagedObject("group", "x1", "Something", "maths7"),
        UnmanagedObject("group", "x2", "science"),
        UnmanagedObject("administrativeUnit", "x3", "YEAR 7"),
        UnmanagedObject("administrativeUnit", "x4", "G:2"),  # another kind: no collision
    )
    g3 = group("g:3", administrative_units=fs("au:1"))
    desired = DesiredState(administrative_units=(au,), groups=(g, g2, g3), teams=(Team("team:g:1", "g:1"),))
    plan = diff(desired, actual_state(groups=(dataclasses.replace(g3, administrative_units=fs()),),
                                      unmanaged=unmanaged))
    assert [(c.kind, c.key, c.object_id, c.field, c.value) for c in plan.conflicts] == [
        ("administrativeUnit", "au:1", "x3", "displayName", "Year 7"),
        ("group", "g:1", "x1", "mailNickname", "Maths7"),
        ("group", "g:2", "x2", "displayName", "Science"),
    ]
    assert plan.empty
    assert [(w.code, w.key) for w in plan.warnings] == [
        ("blockedByConflict", "g:3"), ("blockedByConflict", "team:g:1"),
        ("conflict", "au:1"), ("conflict", "g:1"), ("conflict", "g:2")]


def test_new_group_reusing_a_managed_nickname_is_warned() -> None:
    old = group("g:2025", mail_nickname="maths7")
    new = group("g:2026", mail_nickname="Maths7")
    plan = diff(DesiredState(groups=(new,)), actual_state(groups=(old,)))
    assert [c.id for c in plan.changes] == ["create:group:g:2026", "delete:group:g:2025"]
    [w] = plan.warnings
    assert (w.code, w.key) == ("nicknameInUse", "g:2026") and "managed group g:2025" in w.message


def test_placement_in_an_undesired_au_is_not_planned() -> None:
    g = group("g:1", administrative_units=fs("au:gone", "au:1"))
    desired = DesiredState(administrative_units=(AdministrativeUnit("au:1", "A"),), groups=(g,))
    plan = diff(desired, actual_state(aus=(AdministrativeUnit("au:gone", "G"),)))
    assert by_id(plan)["add:groupAdministrativeUnits:g:1"].members == ("au:1",)
    [w] = plan.warnings
    assert (w.code, w.key) == ("unknownAdministrativeUnit", "g:1") and "au:gone" in w.message


def test_existing_object_is_never_a_conflict() -> None:
    g = group("g:1")
    unmanaged = (UnmanagedObject("group", "x1", g.display_name, g.mail_nickname),)
    plan = diff(DesiredState(groups=(g,)), actual_state(groups=(g,), unmanaged=unmanaged))
    assert plan.empty and not plan.conflicts


def test_kind_and_hidden_membership_are_not_converted() -> None:
    have = group("g:1", kind="security", visibility="HiddenMembership")
    want = dataclasses.replace(have, kind="microsoft365", visibility="Private", description="d")
    plan = diff(DesiredState(groups=(want,)), actual_state(groups=(have,)))
    [c] = plan.changes
    assert c.after == GroupFields(description="d")
    assert sorted(w.code for w in plan.warnings) == ["kindMismatch", "visibilityImmutable"]


# --- fingerprint and counts -------------------------------------------------------------------


def test_fingerprint_covers_managed_state_only() -> None:
    g = group("g:1", members=fs("u1@oak.example"))
    base = actual_state(groups=(g,))
    assert fingerprint(base) == fingerprint(actual_state(groups=(g,)))
    assert fingerprint(base) != fingerprint(actual_state(groups=(dataclasses.replace(g, members=fs()),)))
    assert fingerprint(base) != fingerprint(actual_state(groups=(g,), teams=(Team("team:g:1", "g:1"),)))
    other = dataclasses.replace(base, users={}, unmanaged=(UnmanagedObject("group", "x", "y"),))
    assert fingerprint(other) == fingerprint(base)
    plan = diff(DesiredState(groups=(g,)), base)
    assert plan.actual_fingerprint == fingerprint(base)
    assert plan.managed_counts == managed_counts(base)
    assert plan.managed_counts["group"] == 1 and plan.managed_counts["groupMembers"] == 1


# --- properties --------------------------------------------------------------------------------

REFS = [*USERS, "ghost@oak.example", "id:0000-dead"]
AU_KEYS = ["au:1", "au:2", "au:3"]
GROUP_KEYS = ["g:1", "g:2", "g:3", "g:4"]
names = st.sampled_from(["Alpha", "Beta", "Gamma"])
refs = st.frozensets(st.sampled_from(REFS), max_size=5)


@st.composite
def states(draw: st.DrawFn) -> tuple[DesiredState, ActualState]:
    def au(key: str) -> AdministrativeUnit:
        return AdministrativeUnit(key, draw(names), draw(st.sampled_from([None, "", "d"])), draw(refs))

    def grp(key: str, au_keys: list[str]) -> Group:
        return Group(key, draw(names), draw(st.sampled_from(["n1", "n2", key.replace(":", "")])),
                     draw(st.sampled_from(["microsoft365", "security"])), draw(st.sampled_from([None, "d"])),
                     draw(st.sampled_from(["Private", "Public", "HiddenMembership"])), draw(refs), draw(refs),
                     draw(st.frozensets(st.sampled_from(au_keys), max_size=2)) if au_keys else frozenset())

    def teams(group_keys: list[str]) -> tuple[Team, ...]:
        keys = draw(st.lists(st.sampled_from(group_keys), unique=True)) if group_keys else []
        return tuple(Team("team:" + k, k, "standard", draw(st.booleans())) for k in sorted(keys))

    d_aus = sorted(draw(st.sets(st.sampled_from(AU_KEYS))))
    d_groups = sorted(draw(st.sets(st.sampled_from(GROUP_KEYS))))
    a_aus = sorted(draw(st.sets(st.sampled_from(AU_KEYS))))
    a_groups = sorted(draw(st.sets(st.sampled_from(GROUP_KEYS))))
    removal = st.sampled_from(["delete", "keep"])
    policy = RemovalPolicy(draw(removal), draw(removal), draw(st.sampled_from(["archive", "keep"])))
    desired = DesiredState(tuple(au(k) for k in d_aus), tuple(grp(k, d_aus) for k in d_groups),
                           teams(d_groups), policy)
    unmanaged = tuple(
        UnmanagedObject(draw(st.sampled_from(["group", "administrativeUnit"])), f"x{i}", draw(names),
                        draw(st.sampled_from([None, "n1"])))
        for i in range(draw(st.integers(0, 2)))
    )
    a_groups_objs = tuple(grp(k, a_aus) for k in a_groups)
    actual = actual_state(aus=tuple(au(k) for k in a_aus), groups=a_groups_objs, teams=teams(a_groups),
                          unmanaged=unmanaged)
    return desired, actual


def simulate_apply(actual: ActualState, plan: Plan) -> ActualState:
    """Apply a plan to an actual state in memory, as a perfect directory would."""
    aus = dict(actual.administrative_units)
    groups = dict(actual.groups)
    teams = dict(actual.teams)
    ids = dict(actual.ids)
    seen: set[str] = set()
    for c in plan.changes:
        assert set(c.depends_on) <= seen, f"{c.id} runs before {c.depends_on}"
        seen.add(c.id)
        after = c.after
        members = frozenset(c.members)
        if c.kind == "administrativeUnit":
            if c.action == "create":
                aus[c.key] = after.unit(c.key)
                ids[c.key] = "new-" + c.key
            elif c.action == "update":
                aus[c.key] = dataclasses.replace(aus[c.key], **_changed(after))
            else:
                del aus[c.key]
                for k, g in groups.items():
                    groups[k] = dataclasses.replace(g, administrative_units=g.administrative_units - {c.key})
        elif c.kind == "group":
            if c.action == "create":
                groups[c.key] = after.group(c.key)
                ids[c.key] = "new-" + c.key
            elif c.action == "update":
                groups[c.key] = dataclasses.replace(groups[c.key], **_changed(after))
            else:
                del groups[c.key]
                teams.pop(c.key, None)
        elif c.kind == "team":
            group_key = after.group
            if c.action == "create":
                teams[group_key] = Team("team:" + group_key, group_key)
            else:
                teams[group_key] = dataclasses.replace(teams[group_key], archived=after.archived)
        else:
            sign = 1 if c.action == "add" else -1
            relation = {"administrativeUnitMembers": "members", "groupMembers": "members",
                        "groupOwners": "owners", "groupAdministrativeUnits": "administrative_units"}[c.kind]
            objects: dict[str, Any] = aus if c.kind == "administrativeUnitMembers" else groups  # type: ignore[assignment]
            old = getattr(objects[c.key], relation)
            objects[c.key] = dataclasses.replace(objects[c.key], **{
                relation: old | members if sign > 0 else old - members})
    return dataclasses.replace(actual, administrative_units=aus, groups=groups, teams=teams, ids=ids)


def _changed(fields: Fields) -> dict[str, Any]:
    """An update's after as the model's attributes it changes."""
    return {attr: getattr(fields, attr) for attr, _ in fields.names if getattr(fields, attr) is not UNSET}


@settings(max_examples=60, deadline=None)
@given(states())
def test_apply_then_diff_again_is_empty_and_order_respects_dependencies(
    pair: tuple[DesiredState, ActualState],
) -> None:
    desired, actual = pair
    plan = diff(desired, actual)
    ids = {c.id for c in plan.changes}
    assert len(ids) == len(plan.changes)
    for c in plan.changes:
        assert set(c.depends_on) <= ids, c
    after = simulate_apply(actual, plan)
    again = diff(desired, after)
    assert again.empty, again.to_json()


@settings(max_examples=60, deadline=None)
@given(states())
def test_same_inputs_give_identical_json(pair: tuple[DesiredState, ActualState]) -> None:
    desired, actual = pair
    shuffled = dataclasses.replace(
        actual, groups=dict(reversed(list(actual.groups.items()))),
        unmanaged=tuple(reversed(actual.unmanaged)))
    assert diff(desired, actual).to_json() == diff(desired, shuffled).to_json()
