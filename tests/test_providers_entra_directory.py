"""EntraDirectory end to end on the Graph emulator: every write, the ownership rule, lost responses."""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx
import pytest

from providers.emulator import EmulatorTransport, FaultRule, Profile, Tenant
from providers.entra.client import GraphClient
from providers.entra.directory import EntraDirectory, NotManagedError
from providers.entra.marker import ensure_marker, marker_name
from reconciler.clock import VirtualClock
from reconciler.model import AdministrativeUnit, DesiredState, Group
from reconciler.plan.payloads import AdministrativeUnitFields, GroupFields

APP = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
MARKER = marker_name(APP)
BASE = "https://graph.microsoft.com/v1.0"


@dataclass
class Env:
    tenant: Tenant
    clock: VirtualClock
    transport: EmulatorTransport
    directory: EntraDirectory
    users: list[str]


def make_env(profile: Profile, n_users: int = 60, in_flight: int = 4) -> Env:
    clock = VirtualClock()
    tenant = Tenant(seed=11, clock=clock)
    users = [tenant.add_user(f"u{n:03d}@oak.example") for n in range(n_users)]
    transport = EmulatorTransport(tenant, clock=clock, profile=profile)
    http = httpx.Client(transport=transport, base_url=BASE, headers={"Authorization": "Bearer test"})
    client = GraphClient(http, clock=clock, rng=random.Random(5), max_in_flight=in_flight)
    assert ensure_marker(client, APP) == MARKER
    return Env(tenant, clock, transport, EntraDirectory.for_app(client, APP), users)


def upns(env: Env, ids: list[str]) -> frozenset[str]:
    return frozenset(env.tenant.users[i].props["userPrincipalName"] for i in ids)


HARSH = Profile.realistic(seed=3).with_(
    random_429_rate=0.05,
    faults=(FaultRule(status=503, rate=0.05), FaultRule(status=504, rate=0.03),
            FaultRule(drop_rate=0.03, lost_response_rate=0.05)),
)


@pytest.mark.parametrize(("profile", "in_flight"), [(Profile.realistic(seed=2), 4), (HARSH, 1)],
                         ids=["realistic", "harsh"])
def test_every_write_converges_on_a_realistic_tenant(profile: Profile, in_flight: int) -> None:
    # one request at a time makes the harsh run's fault sequence reproducible
    env = make_env(profile, in_flight=in_flight)
    d, u = env.directory, env.users
    d.read()
    au = d.create_administrative_unit(AdministrativeUnit("au:y7", "Year 7", "Learners"), u[:25])
    g = d.create_group(Group("class:7A", "7A Maths", "7a-maths", description="Maths"), u[:3], u[3:50])
    s = d.create_group(Group("staff", "Staff", "staff", kind="security"), u[:22], [])
    assert au.failures == () and g.failures == () and s.failures == ()
    assert d.create_team(g.object_id, "educationClass").status == "deferred"  # group < 15 minutes old
    env.clock.advance(16 * 60)
    assert d.create_team(g.object_id, "educationClass").status == "created"
    assert d.add_group_members(g.object_id, u[40:60]) == []  # 40..49 are members already
    assert d.remove_group_members(g.object_id, [*u[55:60], u[0]]) == []  # u[0] is no member
    assert d.add_group_owners(g.object_id, [u[3], u[0]]) == []
    assert d.remove_group_owners(g.object_id, [u[1], u[2]]) == []
    assert d.add_administrative_unit_members(au.object_id, [g.object_id, *u[20:30]]) == []
    assert d.remove_administrative_unit_members(au.object_id, u[:5]) == []
    d.update_group(g.object_id, GroupFields(display_name="7A Maths (2026)", visibility="Public"))
    d.update_administrative_unit(au.object_id, AdministrativeUnitFields(description="Year 7 learners"))
    env.clock.advance(3600)

    state = d.read()
    group = state.groups["class:7A"]
    assert group.display_name == "7A Maths (2026)" and group.visibility == "Public"
    assert group.owners == upns(env, [u[0], u[3]])
    assert group.members == upns(env, u[3:55])
    assert group.administrative_units == {"au:y7"}
    assert state.groups["staff"].owners == upns(env, u[:22]) and state.groups["staff"].kind == "security"
    assert state.administrative_units["au:y7"].members == upns(env, u[5:30])
    assert state.administrative_units["au:y7"].description == "Year 7 learners"
    assert state.teams["class:7A"].archived is False
    assert state.ids["team:class:7A"] == g.object_id

    d.archive_team(g.object_id)
    env.clock.advance(600)
    assert d.read().teams["class:7A"].archived is True
    d.unarchive_team(g.object_id)
    d.delete_group(s.object_id)
    d.delete_administrative_unit(au.object_id)
    env.clock.advance(600)
    final = d.read()
    assert set(final.groups) == {"class:7A"} and final.administrative_units == {}
    assert final.teams["class:7A"].archived is False


def test_a_lost_create_response_never_makes_a_duplicate_group() -> None:
    # every POST /groups is applied and then its response lost; new objects stay invisible to
    # list/filter queries for 5 s, so the first marker lookup misses it
    lost = FaultRule(route="/groups", method="POST", lost_response_rate=1.0)
    env = make_env(Profile.ideal().with_(faults=(lost,), replication_lag=5.0))
    d = env.directory
    d.read()
    result = d.create_group(Group("class:7A", "7A", "7a"), env.users[:1], env.users[1:30])
    made = [g for g in env.tenant.groups.values() if g.ext.get(MARKER) == "class:7A"]
    assert [g.id for g in made] == [result.object_id]
    assert env.transport.counters.requests[("POST", "/groups")] == 1  # looked, found, not re-sent
    assert env.transport.counters.requests[("GET", "/groups")] >= 2  # a lookup missed (lag), one hit
    env.clock.advance(60)
    state = d.read()
    assert len(state.groups["class:7A"].members) == 29


def test_a_lost_au_create_response_never_makes_a_duplicate() -> None:
    lost = FaultRule(route="/directory/administrativeUnits", method="POST", lost_response_rate=1.0)
    env = make_env(Profile.ideal().with_(faults=(lost,), replication_lag=5.0))
    env.directory.read()
    result = env.directory.create_administrative_unit(AdministrativeUnit("au:1", "AU"), env.users[:3])
    made = [a.id for a in env.tenant.admin_units.values() if a.ext.get(MARKER) == "au:1"]
    assert made == [result.object_id]


def _fingerprint(tenant: Tenant, object_id: str) -> tuple[object, ...]:
    obj = tenant.groups[object_id]
    return (dict(obj.props), dict(obj.ext), sorted(obj.members), sorted(obj.owners))


def test_unmanaged_objects_are_never_modified_or_deleted() -> None:
    env = make_env(Profile.ideal())
    t, u = env.tenant, env.users
    foreign = t.add_group("Chess club", mail_nickname="chess", owners=[u[0]], members=u[1:4])
    foreign_au = t.add_admin_unit("Year 9", members=[u[0]])
    t.add_team(foreign)
    d = env.directory
    before = _fingerprint(t, foreign)
    state = d.read(DesiredState(groups=(Group("chess", "Chess", "CHESS"),)))
    assert [o.id for o in state.unmanaged] == [foreign]
    requests_before = sum(env.transport.counters.requests.values())
    attempts = [
        lambda: d.update_group(foreign, GroupFields(display_name="Mine now")),
        lambda: d.delete_group(foreign),
        lambda: d.add_group_members(foreign, u[10:12]),
        lambda: d.remove_group_members(foreign, u[1:2]),
        lambda: d.add_group_owners(foreign, u[10:11]),
        lambda: d.remove_group_owners(foreign, u[0:1]),
        lambda: d.create_team(foreign, "standard"),
        lambda: d.archive_team(foreign),
        lambda: d.unarchive_team(foreign),
        lambda: d.update_administrative_unit(foreign_au, AdministrativeUnitFields(display_name="x")),
        lambda: d.delete_administrative_unit(foreign_au),
        lambda: d.add_administrative_unit_members(foreign_au, u[5:6]),
        lambda: d.remove_administrative_unit_members(foreign_au, u[0:1]),
        lambda: d.delete_administrative_unit(foreign),  # a group id passed as an AU
    ]
    for attempt in attempts:
        with pytest.raises(NotManagedError, match="does not carry this app's ownership marker"):
            attempt()
    assert sum(env.transport.counters.requests.values()) == requests_before  # nothing was sent
    assert _fingerprint(t, foreign) == before
    assert foreign_au in t.admin_units and not t.teams[foreign].archived


def test_ids_are_managed_only_when_read_as_managed_or_created_here() -> None:
    env = make_env(Profile.ideal())
    d = env.directory
    with pytest.raises(NotManagedError):
        d.delete_group("00000000-0000-0000-0000-000000000000")
    created = d.create_group(Group("k", "K", "k"), env.users[:1], []).object_id
    d.update_group(created, GroupFields(description="mine"))  # created in this run: allowed
    other = make_env(Profile.ideal())
    other.tenant.add_group("Marked", mail_nickname="marked", extensions={MARKER: "marked"})
    marked_id = next(g.id for g in other.tenant.groups.values() if g.ext.get(MARKER) == "marked")
    with pytest.raises(NotManagedError):
        other.directory.delete_group(marked_id)  # not read yet
    other.directory.read()
    other.directory.delete_group(marked_id)  # read as managed: allowed
    assert marked_id not in other.tenant.groups


def test_group_too_young_for_a_team_is_deferred_at_once_without_waiting() -> None:
    env = make_env(Profile.ideal().with_(team_min_group_age=900.0))
    d = env.directory
    gid = d.create_group(Group("k", "K", "k"), env.users[:1], []).object_id
    start = env.clock.now()
    outcome = d.create_team(gid, "standard")
    assert outcome.status == "deferred" and "later run" in outcome.message
    assert env.clock.now() - start < 1.0  # nothing slept on
    assert gid not in env.tenant.teams
    env.clock.advance(20 * 60)  # the catch-up run 20 minutes later
    d.read()
    assert d.create_team(gid, "standard").status == "created"


def test_objects_created_by_a_recent_run_are_read_by_id_while_lists_lag() -> None:
    """A run minutes after another: the new objects are not listed yet (replication lag); without
    the run history's ids the next plan would create them a second time."""
    from reconciler.apply.executor import apply
    from reconciler.plan.diff import diff

    env = make_env(Profile.ideal().with_(replication_lag=600.0))
    refs = sorted(upns(env, env.users[:6]))
    desired = DesiredState(
        administrative_units=(AdministrativeUnit("au:y7", "Year 7", None, frozenset(refs[:3])),),
        groups=(Group("staff", "Staff", "staff", kind="security", owners=frozenset(refs[:1]),
                      members=frozenset(refs), administrative_units=frozenset({"au:y7"})),),
    )  # fmt: skip
    first = env.directory
    actual = first.read(desired)
    result = apply(diff(desired, actual), first, actual)
    assert result.ok
    created = {r.object_id: r.kind for r in result.results if r.action == "create" and r.object_id}
    assert set(created.values()) == {"administrativeUnit", "group"}

    env.clock.advance(60)  # the next run, a minute later: the lists still lag
    forgetful = EntraDirectory.for_app(first.client, APP)
    assert diff(desired, forgetful.read(desired)).summary().get("create group") == 1  # the danger
    remembering = EntraDirectory.for_app(first.client, APP, recent=created)
    assert diff(desired, remembering.read(desired)).empty
    # the same directory instance remembers what it created itself, too
    assert diff(desired, first.read(desired)).empty


def test_adopt_stamps_the_key_and_refuses_an_object_that_carries_one() -> None:
    from reconciler.errors import DirectoryError

    env = make_env(Profile.ideal())
    d = env.directory
    foreign = env.tenant.add_group("Chess club", mail_nickname="chess", owners=[env.users[0]])
    d.read()
    assert not d.is_managed("group", foreign)
    d.adopt("group", foreign, "club:chess")
    assert env.tenant.groups[foreign].ext[MARKER] == "club:chess"
    assert d.is_managed("group", foreign)
    assert "club:chess" in d.read().groups
    with pytest.raises(DirectoryError, match="already carries the key 'club:chess'"):
        d.adopt("group", foreign, "club:other")
