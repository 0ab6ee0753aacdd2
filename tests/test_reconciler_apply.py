"""The apply engine, driven against the in-memory FakeDirectory."""

from __future__ import annotations

import random
import threading
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers.emulator import EmulatorTransport, Profile, Tenant
from providers.entra.client import GraphClient
from providers.entra.directory import EntraDirectory
from providers.entra.marker import ensure_marker
from reconciler.apply.executor import apply
from reconciler.apply.result import ApplyResult, ChangeResult
from reconciler.clock import VirtualClock
from reconciler.errors import DirectoryError
from reconciler.model import ActualState, AdministrativeUnit, DesiredState, Group, Team
from reconciler.plan.diff import diff
from reconciler.plan.model import Change, Plan
from reconciler.plan.operations import (
    ArchiveTeam,
    CreateAdministrativeUnit,
    CreateGroup,
    CreateTeam,
    DeleteAdministrativeUnit,
    DeleteGroup,
    DeleteTeam,
    UpdateAdministrativeUnit,
    UpdateGroup,
    operation,
)
from reconciler.plan.payloads import (
    AdministrativeUnitDocument,
    AdministrativeUnitFields,
    GroupDocument,
    GroupFields,
    TeamDocument,
)
from reconciler.ports import ItemFailure
from tests.fakes import FakeDirectory, FakeTeam, fake_id

AMY = "amy.learner@oak.example"
BOB = "bob.learner@oak.example"
TEA = "t.teacher@oak.example"
AU = "au:SCH1:year-7"
G1 = "class:SCH1:2026-27:7A-Ma1"
G2 = "class:SCH1:2026-27:7B-En1"


def cid(action: str, kind: str, key: str) -> str:
    return f"{action}:{kind}:{key}"


def create_au(key: str = AU, members: tuple[str, ...] = (AMY,)) -> Change:
    return CreateAdministrativeUnit(key,
                  after=AdministrativeUnitDocument("Oak Academy - Year 7", None, tuple(sorted(members))))


def create_group(key: str, owners: tuple[str, ...] = (TEA,), members: tuple[str, ...] = (AMY,)) -> Change:
    return CreateGroup(key, after=GroupDocument(
        f"Group {key}", key.replace(":", "-"), "microsoft365", visibility="Private",
        owners=tuple(sorted(owners)), members=tuple(sorted(members)),
    ))


def create_team(group_key: str, depends: tuple[str, ...] | None = None) -> Change:
    deps = depends if depends is not None else (cid("create", "group", group_key),)
    return CreateTeam("team:" + group_key,
                  after=TeamDocument(group_key, "educationClass"), depends_on=deps)


def members(action: str, kind: str, key: str, refs: tuple[str, ...], deps: tuple[str, ...] = ()) -> Change:
    return operation(action, kind)(key, members=refs, depends_on=deps)


def directory() -> FakeDirectory:
    return FakeDirectory([AMY, BOB, TEA])


def statuses(result: ApplyResult) -> dict[str, str]:
    return {r.change_id: r.status for r in result.results}


def test_creates_everything_in_dependency_order() -> None:
    d = directory()
    plan = Plan(changes=(
        create_team(G1),
        members("add", "groupAdministrativeUnits", G1, (AU,),
                (cid("create", "group", G1), cid("create", "administrativeUnit", AU))),
        create_group(G1, members=(AMY, BOB)),
        create_au(),
    ))
    result = apply(plan, d, d.read())

    assert result.ok
    assert [r.status for r in result.results] == ["done"] * 4
    assert [c[0] for c in d.writes] == [
        "create_administrative_unit", "create_group", "add_administrative_unit_members", "create_team",
    ]
    au_id, g_id = fake_id(AU), fake_id(G1)
    assert d.aus[au_id].members == {d.user_id(AMY), g_id}
    assert d.groups[g_id].owners == {d.user_id(TEA)}
    assert d.groups[g_id].members == {d.user_id(AMY), d.user_id(BOB)}
    assert d.teams[g_id].template == "educationClass"
    assert result.get(cid("create", "team", "team:" + G1)) == ChangeResult(
        cid("create", "team", "team:" + G1), "create", "team", "team:" + G1, "done", object_id=g_id)
    actual = d.read()
    assert actual.groups[G1].administrative_units == frozenset({AU})
    assert actual.ids["team:" + G1] == g_id


def test_failed_change_skips_its_dependants_and_nothing_else() -> None:
    d = directory()
    d.fail_on("create_group", G1, DirectoryError(f"group {G1}: Graph answered 400 (mailNickname taken)"))
    plan = Plan(changes=(
        create_group(G1),
        create_group(G2),
        members("add", "groupOwners", G1, (BOB,), (cid("create", "group", G1),)),
        create_team(G1, depends=(cid("add", "groupOwners", G1),)),
        create_team(G2),
    ))
    result = apply(plan, d, d.read())

    assert statuses(result) == {
        cid("create", "group", G1): "failed",
        cid("create", "group", G2): "done",
        cid("add", "groupOwners", G1): "skipped",
        cid("create", "team", "team:" + G1): "skipped",
        cid("create", "team", "team:" + G2): "done",
    }
    assert result.get(cid("create", "group", G1)).message == (  # type: ignore[union-attr]
        f"group {G1}: Graph answered 400 (mailNickname taken)")
    assert result.get(cid("add", "groupOwners", G1)).message == (  # type: ignore[union-attr]
        f"skipped: depends on create:group:{G1}, which failed")
    assert result.get(cid("create", "team", "team:" + G1)).message == (  # type: ignore[union-attr]
        f"skipped: depends on add:groupOwners:{G1}, which was skipped")
    assert not result.ok
    assert "add_group_owners" not in d.methods_called()
    assert fake_id(G2) in d.teams


def test_unexpected_exception_fails_only_that_change() -> None:
    d = directory()
    d.seed_group(G1, owners=(TEA,))
    d.seed_group(G2, owners=(TEA,))
    d.fail_on("update_group", fake_id(G1), RuntimeError("connection reset"))
    plan = Plan(changes=(
        UpdateGroup(G1, before=GroupFields(display_name="x"), after=GroupFields(display_name="New 1")),
        UpdateGroup(G2, before=GroupFields(display_name="y"), after=GroupFields(display_name="New 2")),
    ))
    result = apply(plan, d, d.read())
    assert statuses(result) == {cid("update", "group", G1): "failed", cid("update", "group", G2): "done"}
    assert result.results[0].message == "unexpected RuntimeError: connection reset"
    assert d.groups[fake_id(G2)].display_name == "New 2"


def test_partial_and_wholly_failed_member_changes() -> None:
    d = directory()
    d.seed_group(G1, owners=(TEA,))
    d.seed_group(G2, owners=(TEA,))
    d.fail_items[d.user_id(BOB)] = "Request_BadRequest: the object is of an unsupported type"
    plan = Plan(changes=(
        members("add", "groupMembers", G1, (AMY, BOB)),
        members("add", "groupMembers", G2, (BOB,)),
    ))
    result = apply(plan, d, d.read())

    partial, failed = result.results
    assert partial.status == "partial"
    assert partial.message == "1 of 2 members added; 1 failed"
    why = f"{BOB}: Request_BadRequest: the object is of an unsupported type"
    assert partial.failures == (ItemFailure(d.user_id(BOB), why),)
    assert failed.status == "failed"
    assert failed.message == "none of the 1 members could be added"
    assert d.groups[fake_id(G1)].members == {d.user_id(AMY)}


def test_create_with_member_failures_is_partial_and_keeps_the_object() -> None:
    d = directory()
    plan = Plan(changes=(create_group(G1, members=(AMY, "ghost@oak.example")),))
    result = apply(plan, d, d.read())
    (r,) = result.results
    assert r.status == "partial"
    assert r.object_id == fake_id(G1)
    assert r.failures == (ItemFailure("ghost@oak.example", "user not found"),)
    assert d.groups[fake_id(G1)].members == {d.user_id(AMY)}


def test_unresolved_refs_fail_alone_and_the_rest_proceeds() -> None:
    d = directory()
    d.seed_au(AU)
    plan = Plan(changes=(members("add", "administrativeUnitMembers", AU, ("AMY.Learner@oak.example",
                                                                          "nobody@oak.example", BOB)),))
    result = apply(plan, d, d.read())
    (r,) = result.results
    assert r.status == "partial"
    assert r.failures == (ItemFailure("nobody@oak.example", "user not found"),)
    assert d.aus[fake_id(AU)].members == {d.user_id(AMY), d.user_id(BOB)}
    assert d.writes == [("add_administrative_unit_members", fake_id(AU), (d.user_id(AMY), d.user_id(BOB)))]


def test_id_refs_name_objects_directly_for_removal() -> None:
    d = directory()
    d.seed_group(G1, owners=(TEA,), members=(AMY,))
    d.groups[fake_id(G1)].members.add("orphan-id")
    plan = Plan(changes=(members("remove", "groupMembers", G1, ("id:orphan-id", AMY)),))
    result = apply(plan, d, d.read())
    assert result.results[0].status == "done"
    assert d.groups[fake_id(G1)].members == set()


def test_no_write_when_every_ref_is_unresolved() -> None:
    d = directory()
    d.seed_group(G1, owners=(TEA,))
    result = apply(Plan(changes=(members("add", "groupMembers", G1, ("x@oak.example",)),)), d, d.read())
    assert result.results[0].status == "failed"
    assert d.writes == []


def test_deferred_team_and_summary_text() -> None:
    d = directory()
    d.defer_teams = True
    d.seed_group(G2, owners=(TEA,))
    d.fail_on("update_group", fake_id(G2))
    plan = Plan(changes=(
        create_group(G1),
        UpdateGroup(G2, after=GroupFields(display_name="x")),
        create_team(G1),
        members("add", "groupMembers", G1, (BOB,)),
    ))
    result = apply(plan, d, d.read())
    team = result.get(cid("create", "team", "team:" + G1))
    assert team is not None and team.status == "deferred"
    assert "too new" in team.message
    assert fake_id(G1) not in d.teams
    assert result.counts == {"done": 2, "partial": 0, "failed": 1, "skipped": 0, "deferred": 1}
    assert result.summary_text() == (
        "Applied 4 changes: 2 done, 1 failed, 1 deferred "
        "(Teams wait for new groups to replicate; they are created on the next run).")


def test_dependants_of_a_deferred_team_are_skipped_and_deferral_alone_is_ok() -> None:
    d = directory()
    d.defer_teams = {fake_id(G1)}
    plan = Plan(changes=(create_group(G1), create_team(G1)))
    result = apply(plan, d, d.read())
    assert result.ok
    assert result.summary_text().startswith("Applied 2 changes: 1 done, 1 deferred (")
    # a dependant of the deferred team (artificial but allowed) is skipped
    later = ArchiveTeam("team:" + G1, depends_on=(cid("create", "team", "team:" + G1),))
    result2 = apply(Plan(changes=(create_team(G1), later)), d, d.read())
    assert statuses(result2)[later.id] == "skipped"
    assert "was deferred" in result2.results[1].message


def test_removals_run_after_adds_and_deletes_last() -> None:
    d = directory()
    au_id = d.seed_au(AU, members=(AMY,))
    g_id = d.seed_group(G1, owners=(TEA,), members=(AMY, BOB))
    d.aus[au_id].members.add(g_id)
    d.teams[g_id] = FakeTeam(g_id)
    plan = Plan(changes=(
        DeleteAdministrativeUnit(AU, before=AdministrativeUnitDocument(AU)),
        DeleteGroup(G1, before=GroupDocument(G1, "g1")),
        ArchiveTeam("team:" + G1),
        members("remove", "groupMembers", G1, (AMY, BOB)),
        members("remove", "groupAdministrativeUnits", G1, (AU,)),
        members("add", "groupOwners", G1, (BOB,)),
        members("remove", "groupOwners", G1, (TEA,)),
    ))
    result = apply(plan, d, d.read(), max_workers=1)
    assert result.ok, result.to_dict()
    assert d.methods_called()[1:] == [
        "add_group_owners", "remove_administrative_unit_members", "remove_group_members",
        "remove_group_owners", "archive_team", "delete_group", "delete_administrative_unit",
    ]
    assert d.groups == {} and d.aus == {}


def test_missing_ids_fail_clearly() -> None:
    d = directory()
    plan = Plan(changes=(
        UpdateAdministrativeUnit(AU, after=AdministrativeUnitFields(display_name="x")),
        create_team(G1, depends=()),
        members("add", "groupAdministrativeUnits", G2, (AU,)),
    ))
    result = apply(plan, d, d.read())
    assert [r.status for r in result.results] == ["failed", "failed", "failed"]
    assert result.results[0].message == (
        f"{AU} has no object id: it is not in Entra and was not created in this run")
    team = result.get(cid("create", "team", "team:" + G1))
    assert team is not None and team.message.startswith(f"the group {G1} of team:{G1} is not in Entra")


def test_placement_with_unknown_au_is_an_item_failure() -> None:
    d = directory()
    d.seed_group(G1, owners=(TEA,))
    d.seed_au(AU)
    plan = Plan(changes=(members("add", "groupAdministrativeUnits", G1, (AU, "au:SCH1:missing")),))
    result = apply(plan, d, d.read())
    (r,) = result.results
    assert r.status == "partial"
    assert r.failures == (ItemFailure("au:SCH1:missing", "administrative unit not found"),)
    assert fake_id(G1) in d.aus[fake_id(AU)].members


def test_delete_team_is_refused_not_crashed() -> None:
    d = directory()
    result = apply(Plan(changes=(DeleteTeam("team:" + G1, object_id="x"),)), d, d.read())
    assert result.results[0].status == "failed"
    assert "archive it" in result.results[0].message
    assert d.writes == []


def test_dependencies_outside_the_plan_are_satisfied_and_later_ones_skip() -> None:
    d = directory()
    d.seed_group(G1, owners=(TEA,))
    plan = Plan(changes=(
        members("add", "groupMembers", G1, (AMY,), deps=(cid("create", "group", G1),)),  # not in plan
        members("add", "groupOwners", G1, (BOB,), deps=(cid("delete", "group", G2),)),  # later phase
        DeleteGroup(G2, object_id="whatever"),
    ))
    result = apply(plan, d, d.read())
    s = statuses(result)
    assert s[cid("add", "groupMembers", G1)] == "done"
    assert s[cid("add", "groupOwners", G1)] == "skipped"
    assert "orders after it" in result.get(cid("add", "groupOwners", G1)).message  # type: ignore[union-attr]


def test_in_phase_dependencies_wait_and_cycles_are_skipped() -> None:
    d = directory()
    d.seed_group(G1, owners=(TEA,))
    d.seed_group(G2, owners=(TEA,))
    owners = members("add", "groupOwners", G1, (BOB,))
    mem = members("add", "groupMembers", G1, (BOB,), deps=(owners.id,))
    a = members("add", "groupMembers", G2, (AMY,), deps=(cid("add", "groupOwners", G2),))
    b = members("add", "groupOwners", G2, (AMY,), deps=(a.id,))
    d.fail_on("add_group_owners", fake_id(G1))
    result = apply(Plan(changes=(mem, owners, a, b)), d, d.read(), max_workers=2)
    s = statuses(result)
    assert s[owners.id] == "failed" and s[mem.id] == "skipped"
    assert s[a.id] == s[b.id] == "skipped"
    assert "cycle" in result.get(a.id).message  # type: ignore[union-attr]


def _many_changes(n: int) -> Plan:
    changes = []
    for i in range(n):
        key = f"class:SCH1:2026-27:G{i:02d}"
        changes.append(create_group(key, members=(AMY, BOB) if i % 3 else (AMY, "ghost@oak.example")))
        changes.append(members("add", "groupOwners", key, (BOB,), (cid("create", "group", key),)))
        changes.append(create_team(key))
    return Plan(changes=tuple(changes))


def test_concurrency_really_happens_and_results_are_deterministic() -> None:
    plan = _many_changes(8)
    barrier = threading.Barrier(4, timeout=10)

    def meet(method: str, args: tuple[Any, ...]) -> None:
        if method == "create_group" and args[0] < "class:SCH1:2026-27:G04":
            barrier.wait()  # the first four creates must be in flight at the same time

    concurrent = directory()
    concurrent.hook = meet
    concurrent.fail_on("create_group", "class:SCH1:2026-27:G05")
    seen: list[tuple[str, int, int | None]] = []
    result = apply(plan, concurrent, concurrent.read(), max_workers=4,
                   progress=lambda stage, done, total=None: seen.append((stage, done, total)))

    serial = directory()
    serial.fail_on("create_group", "class:SCH1:2026-27:G05")
    expected = apply(plan, serial, serial.read(), max_workers=1)

    assert result == expected
    assert result.to_dict() == expected.to_dict()
    assert [r.change_id for r in result.results] == [c.id for c in plan.changes]
    assert result.counts == {"done": 18, "partial": 3, "failed": 1, "skipped": 2, "deferred": 0}
    assert seen == [("apply", i, 24) for i in range(25)]
    assert sorted(concurrent.writes) == sorted(serial.writes)


def test_progress_advances_while_a_phase_is_still_running() -> None:
    d = directory()
    first_settled = threading.Event()
    waited: list[bool] = []

    def hold_second(method: str, args: tuple[Any, ...]) -> None:
        if method == "create_group" and args[0] == G2:
            waited.append(first_settled.wait(timeout=10))  # released by the progress callback

    def progress(stage: str, done: int, total: int | None = None) -> None:
        if done == 1:
            first_settled.set()

    d.hook = hold_second
    result = apply(Plan(changes=(create_group(G1), create_group(G2))), d, d.read(), progress=progress,
                   max_workers=2)
    assert result.ok
    assert waited == [True]


def test_applying_twice_is_harmless_and_converges() -> None:
    d = directory()
    plan = Plan(changes=(
        create_au(members=(AMY, BOB)),
        create_group(G1, members=(AMY, BOB)),
        members("add", "groupMembers", G1, (AMY,)),
        members("add", "groupAdministrativeUnits", G1, (AU,)),
        create_team(G1),
    ))
    first = apply(plan, d, d.read())
    state = d.read()
    second = apply(plan, d, d.read())
    assert first.ok and second.ok
    assert first == second
    assert d.read() == state


def test_result_round_trips_through_dict() -> None:
    d = directory()
    d.defer_teams = True
    result = apply(Plan(changes=(create_group(G1, members=("ghost@x",)), create_team(G1))), d, d.read())
    again = ApplyResult.from_dict(result.to_dict())
    assert again == result
    assert again.to_dict()["counts"]["partial"] == 1


def test_empty_plan() -> None:
    d = directory()
    calls: list[tuple[str, int, int | None]] = []
    result = apply(Plan(), d, ActualState(), progress=lambda s, n, t=None: calls.append((s, n, t)))
    assert result.results == () and result.ok
    assert result.summary_text() == "No changes to apply."
    assert calls == [("apply", 0, 0)]


def test_unknown_status_in_dict_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown change status"):
        ChangeResult.from_dict(
            {"id": "x", "action": "add", "kind": "groupMembers", "key": "k", "status": "meh"})


# -- with the real diff: apply converges ------------------------------------------------------

PEOPLE = tuple(f"p{i}@oak.example" for i in range(6))
AU_KEYS = ("au:SCH1:learners", "au:SCH1:year-7", "au:SCH1:year-8")
GROUP_KEYS = tuple(f"class:SCH1:2026-27:C{i}" for i in range(5))


@st.composite
def desired_states(draw: st.DrawFn) -> DesiredState:
    people = st.frozensets(st.sampled_from(PEOPLE))
    aus = tuple(
        AdministrativeUnit(k, draw(st.sampled_from(["Learners", "Year <7>", "Year 8"])), None, draw(people))
        for k in sorted(draw(st.frozensets(st.sampled_from(AU_KEYS))))
    )
    groups = []
    for k in sorted(draw(st.frozensets(st.sampled_from(GROUP_KEYS)))):
        groups.append(Group(
            key=k, display_name=draw(st.sampled_from(["Maths", "English & Drama"])),
            mail_nickname=k.rsplit(":", 1)[1].lower(), description=draw(st.sampled_from([None, "a class"])),
            owners=draw(st.frozensets(st.sampled_from(PEOPLE), min_size=1)), members=draw(people),
            administrative_units=draw(st.frozensets(st.sampled_from([a.key for a in aus])))
            if aus else frozenset(),
        ))
    teams = tuple(
        Team("team:" + g.key, g.key, "educationClass", archived=draw(st.booleans()))
        for g in groups if draw(st.booleans())
    )
    return DesiredState(administrative_units=aus, groups=tuple(groups), teams=teams)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=desired_states(), target=desired_states())
def test_apply_of_a_diff_converges_and_a_second_run_writes_nothing(start: DesiredState,
                                                                    target: DesiredState) -> None:
    d = FakeDirectory(PEOPLE)
    assert apply(diff(start, d.read()), d, d.read()).ok
    assert diff(start, d.read()).empty

    plan = diff(target, d.read())
    position = {c.id: i for i, c in enumerate(plan.changes)}
    for c in plan.changes:  # the order never puts a change before what it depends on
        assert all(position.get(dep, -1) < position[c.id] for dep in c.depends_on)
    result = apply(plan, d, d.read(), max_workers=3)
    assert result.ok, result.to_dict()
    again = diff(target, d.read())
    assert again.empty, again.to_dict()["changes"]
    writes = len(d.writes)
    assert apply(again, d, d.read()).results == ()
    assert len(d.writes) == writes


# -- on the Graph emulator, through the real provider -----------------------------------------

def test_apply_on_the_emulator_converges_and_defers_young_teams() -> None:
    app = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    clock = VirtualClock()
    tenant = Tenant(seed=7, clock=clock)
    refs = [f"u{n:02d}@oak.example" for n in range(30)]
    for ref in refs:
        tenant.add_user(ref)
    transport = EmulatorTransport(tenant, clock=clock, profile=Profile.realistic(seed=4))
    http = httpx.Client(transport=transport, base_url="https://graph.microsoft.com/v1.0",
                        headers={"Authorization": "Bearer test"})
    client = GraphClient(http, clock=clock, rng=random.Random(1))
    ensure_marker(client, app)
    d = EntraDirectory.for_app(client, app)

    aus = (AdministrativeUnit("au:SCH1:year-7", "Oak <Year 7>", None, frozenset(refs[:20])),)
    groups = tuple(
        Group(f"class:SCH1:2026-27:C{i}", f"Class {i}", f"c{i}-2026", owners=frozenset(refs[i:i + 1]),
              members=frozenset(refs[i:i + 12]), administrative_units=frozenset({"au:SCH1:year-7"}))
        for i in range(4)
    )
    teams = tuple(Team("team:" + g.key, g.key, "educationClass") for g in groups[:2])
    desired = DesiredState(administrative_units=aus, groups=groups, teams=teams)

    actual = d.read(desired)
    first = apply(diff(desired, actual), d, actual, max_workers=4)
    assert first.counts["failed"] == first.counts["partial"] == first.counts["skipped"] == 0
    assert first.counts["deferred"] == 2  # the groups are minutes old
    actual = d.read(desired)
    pending = diff(desired, actual)
    assert [c.id for c in pending.changes] == [f"create:team:{t.key}" for t in teams]

    clock.advance(16 * 60)
    second = apply(pending, d, actual)
    assert second.ok and second.counts["done"] == 2
    clock.advance(600)  # Teams provision asynchronously
    assert diff(desired, d.read(desired)).empty
