"""Client-side pacing to Graph's quotas: on the emulator's quota profile a first sync meets almost
no 429, stays close to the time the quotas allow, and no change fails for throttling alone."""

from __future__ import annotations

import random

import httpx
import pytest

from entra_sync.pipeline import RunRequest
from providers.emulator import EmulatorTransport, Profile, Tenant
from providers.emulator.throttle import request_cost
from providers.entra.client import GraphClient
from providers.entra.directory import EntraDirectory
from providers.entra.marker import ensure_marker
from providers.entra.pacing import Pacer, PacingPolicy, estimate_cost
from reconciler.apply.executor import apply
from reconciler.clock import VirtualClock
from reconciler.model import AdministrativeUnit, DesiredState, Group
from reconciler.plan.diff import diff

APP = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def _trust(n_groups: int) -> tuple[list[str], DesiredState]:
    rng = random.Random(4)
    people = [f"p{n}@oak.example" for n in range(600)]
    groups = tuple(
        Group(f"class:S:2026-27:C{c}", f"Class {c}", f"c{c}", owners=frozenset({people[c]}),
              members=frozenset(rng.sample(people, 70)))
        for c in range(n_groups)
    )  # fmt: skip
    aus = tuple(AdministrativeUnit(f"au:S:{n}", f"Unit {n}", None, frozenset(people)) for n in range(4))
    return people, DesiredState(administrative_units=aus, groups=groups)


def _sync(
    profile: Profile, pacing: PacingPolicy | None, n_groups: int = 300
) -> tuple[int, int, int, float, int]:
    people, desired = _trust(n_groups)
    clock = VirtualClock()
    tenant = Tenant(seed=2, clock=clock)
    for p in people:
        tenant.add_user(p)
    transport = EmulatorTransport(tenant, clock=clock, profile=profile)
    http = httpx.Client(transport=transport, base_url="https://graph.microsoft.com/v1.0",
                        headers={"Authorization": "Bearer t"})  # fmt: skip
    client = GraphClient(http, clock=clock, rng=random.Random(1), pacing=pacing)
    ensure_marker(client, APP)
    d = EntraDirectory.for_app(client, APP)
    transport.counters.reset()
    t0 = clock.now()
    actual = d.read(desired)
    result = apply(diff(desired, actual), d, actual, max_workers=RunRequest.max_workers)
    c = transport.counters
    failed = result.counts["failed"] + result.counts.get("partial", 0)
    return c.total_requests - c.batch_calls, c.throttled, c.writes, clock.now() - t0, failed


def test_paced_first_sync_meets_no_429_and_stays_near_the_quota_bound() -> None:
    requests, throttled, writes, seconds, failed = _sync(Profile.quota(), None)
    assert failed == 0
    assert throttled <= requests // 100  # 429s at most 1% of requests
    bound = (writes - 3000) / 20  # the write bucket starts full, then refills at 20/s
    assert writes > 3000 and bound <= seconds <= 1.1 * bound
    # the same sync without pacing finds the limit by 429s
    _, unpaced, _, _, _ = _sync(Profile.quota(), PacingPolicy(enabled=False))
    assert unpaced > throttled


def test_no_change_fails_for_throttling_alone() -> None:
    """Another app shares the tenant's quota: random 429s on top of the quota, and no failed change
    (a 429 that says how long to wait spends none of the run's retry budget)."""
    _, throttled, _, _, failed = _sync(Profile.quota().with_(random_429_rate=0.05), None, n_groups=60)
    assert throttled > 0 and failed == 0


@pytest.mark.parametrize(
    ("method", "url", "template"),
    [
        ("GET", "/users?$select=id,userPrincipalName&$top=999", "/users"),
        ("GET", "/groups/abc/members?$select=id&$top=999", "/groups/{id}/members"),
        ("GET", "/groups/abc/members", "/groups/{id}/members"),
        ("GET", "/groups/abc/owners?$top=5", "/groups/{id}/owners"),
        ("PATCH", "/groups/abc", "/groups/{id}"),
        ("POST", "/directoryObjects/getByIds", "/directoryObjects/getByIds"),
    ],
)
def test_cost_estimate_matches_the_emulators_table(method: str, url: str, template: str) -> None:
    query = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&")) if "?" in url else {}
    assert estimate_cost(method, url) == request_cost(method, template, query)


def test_a_429_pauses_everyone_until_retry_after() -> None:
    clock = VirtualClock()
    pacer = Pacer(clock)
    t0 = clock.now()
    pacer.throttled({"x-ms-throttle-scope": "Tenant_Application/Write/ResourceUnit"}, 4.0)
    pacer.reserve("GET", "/groups/x")  # reads are not paused by a write limit
    assert clock.now() - t0 < 0.01
    pacer.reserve("PATCH", "/groups/x")
    assert clock.now() == pytest.approx(t0 + 4.0, abs=0.1)
