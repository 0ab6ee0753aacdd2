"""The transport is used from several threads at once; and a retrying reader gets a consistent
answer from the fully realistic profile."""

from __future__ import annotations

import threading

import httpx

from providers.emulator import EmulatorTransport, Profile, Tenant
from reconciler.clock import VirtualClock

GRAPH = "https://graph.microsoft.com/v1.0"


def test_parallel_member_adds_from_threads() -> None:
    tenant = Tenant(seed=3)
    users = [tenant.add_user(f"u{i}@oak.example") for i in range(80)]
    gid = tenant.add_group("g", owners=[users[0]])
    transport = EmulatorTransport(tenant, clock=VirtualClock())
    http = httpx.Client(transport=transport, base_url=GRAPH, headers={"Authorization": "Bearer t"})
    errors: list[int] = []

    def work(chunk: list[str]) -> None:
        for uid in chunk:
            r = http.post(
                f"/groups/{gid}/members/$ref", json={"@odata.id": f"{GRAPH}/directoryObjects/{uid}"}
            )
            if r.status_code != 204:
                errors.append(r.status_code)

    threads = [threading.Thread(target=work, args=(users[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and set(tenant.groups[gid].members) == set(users)
    assert transport.counters.requests[("POST", "/groups/{id}/members/$ref")] == 80


def get_with_retries(http: httpx.Client, clock: VirtualClock, url: str) -> httpx.Response:
    for _ in range(100):
        try:
            r = http.get(url)
        except httpx.TransportError:
            clock.sleep(1)
            continue
        if r.status_code in (429, 503, 504):
            clock.sleep(float(r.headers.get("Retry-After", "1")))
            continue
        return r
    raise AssertionError("no answer after 100 tries")


def test_retrying_reader_pages_all_users_under_realistic_profile() -> None:
    tenant = Tenant(seed=8)
    ids = {tenant.add_user(f"u{i}@oak.example") for i in range(600)}
    clock = VirtualClock()
    profile = Profile.realistic(seed=8).with_(ru_per_10s=40)  # tight, so throttling really happens
    transport = EmulatorTransport(tenant, clock=clock, profile=profile)
    http = httpx.Client(transport=transport, base_url=GRAPH, headers={"Authorization": "Bearer t"})
    seen: list[str] = []
    url: str | None = "/users?$top=10&$select=id"
    while url:
        body = get_with_retries(http, clock, url).json()
        seen += [u["id"] for u in body["value"]]
        url = body.get("@odata.nextLink")
    assert sorted(seen) == sorted(ids)
    assert transport.counters.throttled > 0 and clock.slept > 0
