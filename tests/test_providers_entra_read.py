"""Reading a tenant into ActualState, against the Graph emulator (ideal and realistic profiles)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx
import pytest

from providers.emulator import EmulatorTransport, Profile, Tenant
from providers.entra.client import GraphClient
from providers.entra.marker import marker_name
from providers.entra.read import read_actual
from reconciler.clock import VirtualClock
from reconciler.errors import DirectoryError
from reconciler.model import AdministrativeUnit, DesiredState, Group, Team, UnmanagedObject

APP = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
MARKER = marker_name(APP)


@dataclass
class World:
    tenant: Tenant
    clock: VirtualClock
    ids: dict[str, str]


def seed(big: int = 1200) -> World:
    clock = VirtualClock()
    t = Tenant(seed=7, clock=clock)
    t.register_extension(APP, "realsmartSyncKey")
    ids = {
        "amy": t.add_user("Amy.Learner@oak.example", "Amy", mail="amy@oak.example", employee_id="E1"),
        "ben": t.add_user("ben.learner@oak.example", "Ben", mail="ben@oak.example", employee_id="E2"),
        "tom": t.add_user("t.teacher@oak.example", "Tom", mail="tom@oak.example", employee_id="T1"),
        "nomail": t.add_user("no.mail@oak.example", "No Mail"),
    }
    many = [t.add_user(f"p{n}@oak.example") for n in range(big)]
    ids["class"] = t.add_group("7A Maths", mail_nickname="7a-maths", description="Year 7",
                               owners=[ids["tom"]], members=[ids["amy"], ids["ben"], ids["nomail"]],
                               extensions={MARKER: "class:7A"})
    ids["sec"] = t.add_group("Staff", mail_nickname="staff", unified=False, owners=[ids["tom"]],
                             members=[ids["tom"], *many], extensions={MARKER: "staff"})
    ids["foreign"] = t.add_group("Chess club", mail_nickname="chess", owners=[ids["tom"]],
                                 members=[ids["amy"]])
    ids["clash"] = t.add_group("Year 8 Art", mail_nickname="8A-ART")
    ids["au"] = t.add_admin_unit("Year 7", description="Learners",
                                 members=[ids["amy"], ids["class"], ids["foreign"]],
                                 extensions={MARKER: "au:y7"})
    ids["au_foreign"] = t.add_admin_unit("Year 9")
    t.add_team(ids["class"], archived=True)
    return World(t, clock, ids)


def client_for(w: World, profile: Profile) -> GraphClient:
    transport = EmulatorTransport(w.tenant, clock=w.clock, profile=profile)
    http = httpx.Client(transport=transport, base_url="https://graph.microsoft.com/v1.0",
                        headers={"Authorization": "Bearer test"})
    return GraphClient(http, clock=w.clock, rng=random.Random(3))


DESIRED = DesiredState(
    administrative_units=(AdministrativeUnit("au:y9", "Year 9"),),
    groups=(Group("class:8A", "Year 8 Art", "8a-art"), Group("chess", "Chess", "CHESS")),
)


@pytest.fixture(scope="module")
def world() -> World:
    return seed()


def test_reads_managed_objects_with_members_owners_placements_and_teams(world: World) -> None:
    state, managed = read_actual(client_for(world, Profile.ideal()), MARKER, desired=DESIRED)
    ids = world.ids
    assert set(state.groups) == {"class:7A", "staff"} and set(state.administrative_units) == {"au:y7"}
    g = state.groups["class:7A"]
    assert g == Group(
        key="class:7A", display_name="7A Maths", mail_nickname="7a-maths", kind="microsoft365",
        description="Year 7", visibility=g.visibility, owners=frozenset({"t.teacher@oak.example"}),
        members=frozenset({"amy.learner@oak.example", "ben.learner@oak.example", "no.mail@oak.example"}),
        administrative_units=frozenset({"au:y7"}),
    )
    assert state.groups["staff"].kind == "security"
    assert len(state.groups["staff"].members) == 1201  # more than one page of 999
    au = state.administrative_units["au:y7"]
    assert au.members == frozenset({"amy.learner@oak.example"})  # groups in the AU are placements
    assert state.teams == {"class:7A": Team("team:class:7A", "class:7A", "standard", archived=True)}
    assert state.ids == {"au:y7": ids["au"], "class:7A": ids["class"], "staff": ids["sec"],
                         "team:class:7A": ids["class"]}
    assert state.users["amy.learner@oak.example"] == ids["amy"]
    assert managed.groups == {ids["class"], ids["sec"]} and managed.administrative_units == {ids["au"]}


def test_unmanaged_objects_only_reported_when_they_collide(world: World) -> None:
    state, _ = read_actual(client_for(world, Profile.ideal()), MARKER, desired=DESIRED)
    assert state.unmanaged == (
        UnmanagedObject("administrativeUnit", world.ids["au_foreign"], "Year 9"),
        UnmanagedObject("group", world.ids["foreign"], "Chess club", "chess"),
        UnmanagedObject("group", world.ids["clash"], "Year 8 Art", "8A-ART"),
    )
    alone, _ = read_actual(client_for(world, Profile.ideal()), MARKER)
    assert alone.unmanaged == ()


@pytest.mark.parametrize(("match", "ref"), [("mail", "amy@oak.example"), ("employeeId", "e1")])
def test_users_are_named_by_the_match_attribute(world: World, match: str, ref: str) -> None:
    desired = DesiredState(user_match=match)  # type: ignore[arg-type]
    state, _ = read_actual(client_for(world, Profile.ideal()), MARKER, user_match=desired.user_match)
    assert state.users[ref] == world.ids["amy"]
    members = state.groups["class:7A"].members
    assert ref in members and f"id:{world.ids['nomail']}" in members  # no mail / employeeId


def test_realistic_profile_reads_the_same_state(world: World) -> None:
    ideal, _ = read_actual(client_for(world, Profile.ideal()), MARKER, desired=DESIRED)
    real, _ = read_actual(client_for(world, Profile.realistic(seed=5)), MARKER, desired=DESIRED)
    assert real == ideal


def test_progress_is_reported_per_stage(world: World) -> None:
    seen: list[tuple[str, int, int | None]] = []
    read_actual(client_for(world, Profile.ideal()), MARKER,
                progress=lambda stage, done, total=None: seen.append((stage, done, total)))
    stages = [s for s, _, _ in seen]
    assert {"users", "administrativeUnits", "groups", "members", "teams"} <= set(stages)
    assert ("members", 5, 5) in seen  # 1 AU + 2 groups x (members, owners)


def test_never_expands_members_and_pages_with_select(world: World) -> None:
    transport = EmulatorTransport(world.tenant, clock=world.clock, profile=Profile.ideal())
    sent: list[httpx.Request] = []

    class Spy(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return transport.handle_request(request)

    http = httpx.Client(transport=Spy(), base_url="https://graph.microsoft.com/v1.0",
                        headers={"Authorization": "Bearer t"})
    read_actual(GraphClient(http, clock=world.clock), MARKER)
    urls = [str(r.url) for r in sent]
    assert not any("expand" in u.lower() for u in urls)
    first_pages = [r for r in sent if r.url.path.endswith(("/users", "/groups", "/administrativeUnits"))]
    assert all(r.url.params.get("$top") == "999" and "$select" in r.url.params for r in first_pages)


def test_two_objects_with_one_key_is_an_error() -> None:
    w = seed(big=0)
    w.tenant.add_group("Copy", mail_nickname="copy", extensions={MARKER: "class:7A"})
    with pytest.raises(DirectoryError, match="two objects in Entra carry the key 'class:7A'"):
        read_actual(client_for(w, Profile.ideal()), MARKER)


def test_two_objects_whose_keys_differ_only_in_case_are_an_error() -> None:
    w = seed(big=0)
    w.tenant.add_group("Copy", mail_nickname="copy", extensions={MARKER: "CLASS:7a"})
    with pytest.raises(DirectoryError, match="keys are compared ignoring case"):
        read_actual(client_for(w, Profile.ideal()), MARKER)


def test_an_unregistered_marker_says_to_run_setup() -> None:
    clock = VirtualClock()
    w = World(Tenant(clock=clock), clock, {})
    w.tenant.add_group("Old", mail_nickname="old")
    with pytest.raises(DirectoryError, match=r"not registered on the sync app .*run `entra-sync setup`"):
        read_actual(client_for(w, Profile.ideal()), MARKER)
