"""Packing the requests of concurrent changes into shared $batch calls (providers.entra.coalesce)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from providers.entra.client import GraphClient
from providers.entra.errors import RefusedWriteError, ResponseLostError
from reconciler.clock import VirtualClock
from tests.test_providers_entra_batch import FakeBatchServer, client_for, ok_all


def _together(client: GraphClient, work: list[Callable[[], Any]]) -> list[Any]:
    """Run each function on its own thread, as apply runs changes, each inside the packing scope;
    the scope waits long enough for every thread to join (so the test does not race the threads)."""
    client.coalescer.grace = client.coalescer.window = 0.5
    results: list[Any] = [None] * len(work)
    start = threading.Barrier(len(work))

    def run(n: int) -> None:
        with client.packing():
            start.wait()
            try:
                results[n] = work[n]()
            except Exception as exc:  # returned, for the test to look at
                results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(work))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def _created(items: list[dict[str, Any]]) -> tuple[int, dict[str, str], Any]:
    return 200, {}, {"responses": [{"id": i["id"], "status": 201, "body": {"id": "g" + i["body"]["n"]}}
                                   for i in items]}  # fmt: skip


def test_requests_of_concurrent_changes_share_one_batch() -> None:
    server = FakeBatchServer(_created)
    client = client_for(server, VirtualClock())
    posts = [lambda n=n: client.post("/groups", json={"n": str(n)}) for n in range(20)]
    results = _together(client, posts)
    assert len(server.batches) == 1 and len(server.batches[0]) == 20
    assert sorted(r.body["id"] for r in results) == sorted(f"g{n}" for n in range(20))
    item = next(i for i in server.batches[0] if i["body"] == {"n": "3"})
    assert item["method"] == "POST" and item["url"] == "/groups"
    assert item["headers"] == {"Content-Type": "application/json"}  # never the token


def test_more_than_twenty_go_in_several_batches_of_at_most_twenty() -> None:
    server = FakeBatchServer(_created)
    client = client_for(server, VirtualClock())
    results = _together(client, [lambda n=n: client.post("/groups", json={"n": str(n)}) for n in range(45)])
    assert all(len(b) <= 20 for b in server.batches) and sum(map(len, server.batches)) == 45
    assert len(server.batches) <= 4
    assert all(not isinstance(r, Exception) for r in results)


def test_outside_the_scope_nothing_is_packed() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(201, json={"id": "g1"})

    http = httpx.Client(base_url="https://graph.microsoft.com/v1.0", transport=httpx.MockTransport(handler))
    client = GraphClient(http, clock=VirtualClock())
    assert client.post("/groups", json={}).body == {"id": "g1"}
    assert seen == ["/v1.0/groups"]


def test_a_throttled_item_is_handled_as_its_own_request() -> None:
    """A PATCH answered 429 inside the shared batch is sent again after its Retry-After; a POST
    answered 429 is not repeated blindly (the caller looks first), exactly as without packing."""
    calls: list[int] = []

    def throttle_first(items: list[dict[str, Any]]) -> tuple[int, dict[str, str], Any]:
        calls.append(len(items))
        out = []
        for i in items:
            if len(calls) == 1:
                out.append({"id": i["id"], "status": 429, "headers": {"Retry-After": "2"}, "body": {}})
            else:
                out.append({"id": i["id"], "status": 204})
        return 200, {}, {"responses": out}

    server = FakeBatchServer(throttle_first)
    clock = VirtualClock()
    client = client_for(server, clock)
    results = _together(client, [lambda: client.patch("/groups/a", json={"x": 1}),
                                 lambda: client.post("/groups", json={"n": "1"})])  # fmt: skip
    assert calls[0] == 2
    assert results[0].status == 204
    assert isinstance(results[1], RefusedWriteError)
    assert clock.slept >= 2


def test_a_lost_batch_is_lost_for_each_item_it_carried() -> None:
    lost = {"done": False}

    def drop_once(request: httpx.Request) -> httpx.Response:
        if not lost["done"]:
            lost["done"] = True
            raise httpx.ReadTimeout("lost", request=request)
        items = __import__("json").loads(request.content)["requests"]
        return httpx.Response(200, json={"responses": [{"id": i["id"], "status": 204} for i in items]})

    http = httpx.Client(base_url="https://graph.microsoft.com/v1.0", transport=httpx.MockTransport(drop_once))
    client = GraphClient(http, clock=VirtualClock())
    results = _together(client, [lambda: client.patch("/groups/a", json={"x": 1}),
                                 lambda: client.post("/groups", json={"n": "1"})])  # fmt: skip
    assert results[0].status == 204  # idempotent: sent again
    assert isinstance(results[1], ResponseLostError)  # a create: the caller looks before a resend


def test_a_whole_batch_refused_gives_each_item_that_answer() -> None:
    answers = iter([(503, {"Retry-After": "1"}, {"error": {"code": "x", "message": "busy"}})])

    def busy_once(items: list[dict[str, Any]]) -> tuple[int, dict[str, str], Any]:
        return next(answers, None) or ok_all(items)

    server = FakeBatchServer(busy_once)
    client = client_for(server, VirtualClock())
    results = _together(client, [lambda n=n: client.delete(f"/groups/a/members/u{n}/$ref") for n in range(3)])
    assert all(r.status == 204 for r in results)
    assert [len(b) for b in server.batches] == [3, 3]


def test_teams_requests_are_rationed_per_batch() -> None:
    """POST /teams is limited to 10 per second: a batch carries at most half of that."""
    server = FakeBatchServer(lambda items: (200, {}, {"responses": [{"id": i["id"], "status": 202}
                                                                    for i in items]}))  # fmt: skip
    client = client_for(server, VirtualClock())
    work = [lambda n=n: client.post("/teams", json={"n": str(n)}) for n in range(12)]
    work += [lambda n=n: client.patch(f"/groups/g{n}", json={"x": 1}) for n in range(8)]
    _together(client, work)
    for batch in server.batches:
        assert sum(1 for i in batch if i["url"] == "/teams") <= 5
    assert sum(map(len, server.batches)) == 20


def test_batch_requests_made_inside_the_scope_are_packed_too() -> None:
    server = FakeBatchServer(ok_all)
    client = client_for(server, VirtualClock())
    from providers.entra.batch import BatchRequest

    def placement(n: int) -> Any:
        return client.batch([BatchRequest("POST", f"/directory/administrativeUnits/a{n}/members/$ref",
                                          {"@odata.id": "x"})])  # fmt: skip

    results = _together(client, [lambda n=n: placement(n) for n in range(10)])
    assert len(server.batches) == 1 and len(server.batches[0]) == 10
    assert all(r[0].status == 204 for r in results)


@pytest.mark.parametrize("workers", [1, 20])
def test_apply_packs_a_trust_and_binds_members_only_once_a_new_group_takes_them(workers: int) -> None:
    """On an emulator that refuses member binds to a group under 3 s old (as Graph does), a first
    sync packs its requests (at most 0.2 HTTP calls per request with 20 changes at once) and sends
    no bind early: no 400."""
    import random

    from providers.emulator import EmulatorTransport, Profile, Tenant
    from providers.entra.directory import EntraDirectory
    from providers.entra.marker import ensure_marker
    from reconciler.apply.executor import apply
    from reconciler.model import DesiredState, Group, SourceInfo
    from reconciler.plan.diff import diff

    clock = VirtualClock()
    tenant = Tenant(seed=1, clock=clock)
    people = [f"p{n}@school.example" for n in range(60)]
    for ref in people:
        tenant.add_user(ref)
    lagging = Profile.ideal().with_(new_group_member_lag=3.0)
    transport = EmulatorTransport(tenant, clock=clock, profile=lagging)
    http = httpx.Client(transport=transport, base_url="https://graph.microsoft.com/v1.0",
                        headers={"Authorization": "Bearer b"})  # fmt: skip
    client = GraphClient(http, clock=clock, rng=random.Random(2))
    app = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    ensure_marker(client, app)
    groups = tuple(
        Group(key=f"class:S:2026-27:c{n}", display_name=f"C{n}", mail_nickname=f"c{n}",
              owners=frozenset({people[n]}), members=frozenset(people[n: n + 35]))
        for n in range(24)
    )  # fmt: skip
    desired = DesiredState(source=SourceInfo(system="test", academic_year="2026-27"), groups=groups)
    d = EntraDirectory.for_app(client, app)
    actual = d.read(desired)
    counters = transport.counters
    counters.reset()
    result = apply(diff(desired, actual), d, actual, max_workers=workers)
    assert result.counts["failed"] == 0 and result.counts.get("partial", 0) == 0
    assert counters.statuses[400] == 0
    assert {g.props["displayName"] for g in tenant.groups.values()} >= {f"C{n}" for n in range(24)}
    for g in tenant.groups.values():
        assert len(g.members) == 35
    if workers == 20:
        requests = counters.total_requests - counters.batch_calls
        http_calls = counters.total_requests - counters.batch_items
        assert http_calls <= 0.2 * requests
