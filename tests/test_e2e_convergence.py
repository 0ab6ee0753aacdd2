"""Property tests on the Graph emulator, through the real provider: for random desired states and
random starting tenants (managed objects from an earlier desired state, plus unmanaged groups),
apply then plan again gives an empty plan, the order never puts a change before what it depends
on, a second apply sends no write request, and unmanaged objects are never touched."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers.emulator import EmulatorTransport, Profile, Tenant
from providers.entra.client import GraphClient
from providers.entra.directory import EntraDirectory
from providers.entra.marker import ensure_marker
from providers.entra.teams import TeamPolicy
from providers.entra.write import WritePolicy
from reconciler.apply.executor import apply
from reconciler.clock import VirtualClock
from reconciler.model import DesiredState, Team, TeamTemplate
from reconciler.plan.diff import diff
from tests.test_reconciler_apply import PEOPLE
from tests.test_reconciler_apply import desired_states as _programmatic_states

APP = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def desired_states() -> st.SearchStrategy[DesiredState]:
    """States a desired-state document can express: a document cannot ask for an archived Team
    (Teams are archived by the removal policy when they are no longer desired, and unarchived when
    they come back), and Graph makes an ``educationClass`` Team only on a group that is an
    education class (a plain group's Team uses ``standard``)."""
    return _programmatic_states().map(_expressible)


def _expressible(s: DesiredState) -> DesiredState:
    plain = {g.key for g in s.groups if g.education is None}

    def template(t: Team) -> TeamTemplate:
        return "standard" if t.group in plain else t.template

    return replace(s, teams=tuple(replace(t, archived=False, template=template(t)) for t in s.teams))


def _world(profile: Profile, seed: int) -> tuple[Tenant, EmulatorTransport, EntraDirectory, VirtualClock]:
    clock = VirtualClock()
    tenant = Tenant(seed=seed, clock=clock)
    for ref in PEOPLE:
        tenant.add_user(ref)
    transport = EmulatorTransport(tenant, clock=clock, profile=profile)
    http = httpx.Client(
        transport=transport,
        base_url="https://graph.microsoft.com/v1.0",
        headers={"Authorization": "Bearer test"},
    )
    client = GraphClient(http, clock=clock, rng=random.Random(seed))
    ensure_marker(client, APP)
    # the product waits for the Team window the tenant has (Graph: 15 minutes; the ideal profile: none)
    policy = WritePolicy(teams=TeamPolicy(min_group_age=profile.team_min_group_age))
    return tenant, transport, EntraDirectory.for_app(client, APP, policy=policy), clock


def _unmanaged(tenant: Tenant, names: list[str]) -> dict[str, Any]:
    """Add unmanaged groups (one a name twin of a managed class) and return their current state."""
    ids = [
        tenant.add_group(
            name, mail_nickname=f"old-{i}", owners=[next(iter(tenant.users))], members=list(tenant.users)
        )
        for i, name in enumerate(names)
    ]
    return _state_of(tenant, ids)


def _state_of(tenant: Tenant, ids: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for object_id in ids:
        obj = tenant.find(object_id)
        out[object_id] = None if obj is None else json.dumps(vars(obj), default=sorted, sort_keys=True)
    return out


def _converge(d: EntraDirectory, target: DesiredState, clock: VirtualClock, runs: int) -> None:
    """Apply up to ``runs`` times, a scheduled run's gap apart, until the plan is empty."""
    for _ in range(runs):
        actual = d.read(target)
        plan = diff(target, actual)
        if plan.empty:
            return
        position = {c.id: i for i, c in enumerate(plan.changes)}
        for c in plan.changes:  # the order never puts a change before what it depends on
            assert all(position.get(dep, -1) < position[c.id] for dep in c.depends_on), c.id
        result = apply(plan, d, actual, max_workers=4)
        bad = [(r.change_id, r.message) for r in result.results if r.status in ("failed", "partial")]
        assert not bad, bad
        clock.advance(4 * 3600)  # the next scheduled run: lag has passed, young groups are old enough


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=desired_states(),
    target=desired_states(),
    unmanaged=st.lists(st.sampled_from(["Maths", "Staff room", "English & Drama"]), max_size=3),
)
def test_apply_then_plan_is_empty_and_a_second_apply_writes_nothing(
    start: DesiredState, target: DesiredState, unmanaged: list[str]
) -> None:
    tenant, transport, d, clock = _world(
        Profile.ideal().with_(throttle=True, shuffle_batch_responses=True), 3
    )
    untouched = _unmanaged(tenant, unmanaged)
    _converge(d, start, clock, runs=1)
    _converge(d, target, clock, runs=1)
    actual = d.read(target)
    again = diff(target, actual)
    assert again.empty, again.to_dict()["changes"]
    writes = transport.counters.writes
    assert apply(again, d, actual).results == ()
    assert transport.counters.writes == writes
    assert _state_of(tenant, list(untouched)) == untouched


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=desired_states(), target=desired_states(), seed=st.integers(0, 1000))
def test_realistic_tenant_converges_within_three_runs(
    start: DesiredState, target: DesiredState, seed: int
) -> None:
    """Throttling, replication lag, Team-creation windows, 5xx and lost responses all on."""
    tenant, _, d, clock = _world(Profile.realistic(seed=seed), seed)
    untouched = _unmanaged(tenant, ["Maths"])
    _converge(d, start, clock, runs=3)
    _converge(d, target, clock, runs=3)
    assert diff(target, d.read(target)).empty
    assert _state_of(tenant, list(untouched)) == untouched
