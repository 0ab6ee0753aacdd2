"""Adversarial review of the Entra provider: real-Graph behaviours the emulator does not show (respx)."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from providers.entra.batch import BatchRequest, run_batch
from providers.entra.client import GraphClient, RetryPolicy, parse_retry_after
from providers.entra.errors import ForbiddenError, RefusedWriteError, error_from_response, permission_for
from providers.entra.marker import marker_name
from providers.entra.read import read_actual
from providers.entra.write import EntraWriter, WritePolicy
from reconciler.clock import VirtualClock
from reconciler.model import AdministrativeUnit, Group

BASE = "https://graph.microsoft.com/v1.0"
APP = "11111111-2222-3333-4444-555555555555"
MARKER = marker_name(APP)
Handler = Callable[[httpx.Request], httpx.Response]


def uid(n: int) -> str:
    return f"00000000-0000-0000-0000-{n:012d}"


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(base_url=BASE, assert_all_called=False)


def client(router: respx.Router, clock: VirtualClock) -> GraphClient:
    http = httpx.Client(base_url=BASE, transport=httpx.MockTransport(router.handler))
    return GraphClient(http, clock=clock, rng=random.Random(0), retry=RetryPolicy(max_attempts=3))


def writer(router: respx.Router) -> tuple[EntraWriter, VirtualClock]:
    clock = VirtualClock()
    return EntraWriter(client(router, clock), MARKER, clock=clock, graph_base=BASE), clock


def err(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def batch_answers(answer: Callable[[dict[str, Any], int], tuple[int, Any]]) -> Handler:
    """A ``$batch`` handler: ``answer(item, round)`` gives each item's status and body."""
    rounds = [0]

    def handler(request: httpx.Request) -> httpx.Response:
        rounds[0] += 1
        out = []
        for item in json.loads(request.content)["requests"]:
            status, payload = answer(item, rounds[0])
            out.append({"id": item["id"], "status": status, "headers": {}, "body": payload})
        return httpx.Response(200, json={"responses": out})

    return handler


# ---- a throttled create may have been applied: look before sending it again -----------------------


def test_throttled_group_create_that_took_effect_is_not_sent_again(router: respx.Router) -> None:
    # graph-facts §4: "A throttled write may still have been applied"; a blind repeat of
    # POST /groups would make a second group with the same key
    post = router.post("/groups").mock(side_effect=[
        httpx.Response(429, headers={"Retry-After": "3"}, json=err("TooManyRequests", "throttled")),
        httpx.Response(201, json={"id": "duplicate"}),
    ])
    lookup = router.get("/groups").respond(200, json={"value": [{"id": "g1", MARKER: "class:1"}]})
    w, clock = writer(router)
    result = w.create_group(Group("class:1", "7A", "7a"), [uid(1)], [])
    assert result.object_id == "g1"
    assert post.call_count == 1 and lookup.call_count == 1
    assert clock.slept >= 3.0  # Retry-After was honoured before looking


def test_503_on_au_create_not_applied_is_sent_again_after_a_look(router: respx.Router) -> None:
    post = router.post("/directory/administrativeUnits").mock(side_effect=[
        httpx.Response(503, headers={"Retry-After": "1"}),
        httpx.Response(201, json={"id": "au1"}),
    ])
    lookup = router.get("/directory/administrativeUnits").respond(200, json={"value": []})
    w, _ = writer(router)
    assert w.create_administrative_unit(AdministrativeUnit("au:1", "Year 7"), []).object_id == "au1"
    # the resend comes only after a lookup that waited out the lag (every lookup delay) found nothing
    assert post.call_count == 2 and lookup.call_count == len(WritePolicy().lookup_delays)
    calls = [c.request.method for c in router.calls]
    assert calls.index("POST", 1) > max(i for i, m in enumerate(calls) if m == "GET")


def test_a_refused_post_raises_refused_write_after_waiting(router: respx.Router) -> None:
    route = router.post("/groups").respond(429, headers={"Retry-After": "2"})
    clock = VirtualClock()
    with pytest.raises(RefusedWriteError) as info:
        client(router, clock).post("/groups", json={})
    assert route.call_count == 1 and clock.slept == pytest.approx(2.0)
    assert "look for the object" in str(info.value)


def test_team_create_and_archive_survive_throttling(router: respx.Router) -> None:
    throttled = httpx.Response(429, headers={"Retry-After": "1"})
    router.post("/teams").mock(side_effect=[throttled, throttled, httpx.Response(202)])
    router.get("/teams/g1").respond(404, json=err("NotFound", "no team"))
    archive = router.post("/teams/g1/archive").mock(side_effect=[throttled] * 5 + [httpx.Response(202)])
    w, _ = writer(router)
    assert w.create_team("g1", "standard").status == "created"
    w.archive_team("g1")  # more throttled answers than create_attempts: still done
    assert archive.call_count == 6


# ---- replication lag when the *referenced* object is the new one ----------------------------------


def test_placing_a_group_created_in_this_run_into_an_old_au_waits_out_lag(router: respx.Router) -> None:
    router.post("/groups").respond(201, json={"id": "gnew"})

    def answer(item: dict[str, Any], rnd: int) -> tuple[int, Any]:
        if rnd == 1:
            return 404, err("Request_ResourceNotFound", "Resource 'gnew' does not exist")
        return 204, None

    router.post("/$batch").mock(side_effect=batch_answers(answer))
    w, clock = writer(router)
    gid = w.create_group(Group("class:1", "7A", "7a"), [uid(1)], []).object_id
    assert w.add_administrative_unit_members("au-old", [gid]) == []
    assert clock.slept > 0


def test_nesting_a_new_group_in_an_old_group_waits_out_lag(router: respx.Router) -> None:
    router.post("/groups").respond(201, json={"id": "gnew"})
    patch = router.patch("/groups/old").mock(side_effect=[
        httpx.Response(400, json=err("Request_BadRequest", "One or more of the objects being referenced "
                                     "don't exist")),
        httpx.Response(204),
    ])
    w, _ = writer(router)
    gid = w.create_group(Group("sec:1", "Staff", "staff", kind="security"), [uid(1)], []).object_id
    assert w.add_group_members("old", [gid]) == []
    assert patch.call_count == 2


# ---- $batch item bodies that are not JSON objects ------------------------------------------------


def test_batch_item_bodies_sent_as_json_text_or_base64_are_decoded(router: respx.Router) -> None:
    page = {"value": [{"id": "u1"}]}
    texts = {"1": json.dumps(page), "2": base64.b64encode(json.dumps(page).encode()).decode(), "3": None}

    def handler(request: httpx.Request) -> httpx.Response:
        items = json.loads(request.content)["requests"]
        return httpx.Response(200, json={"responses": [
            {"id": i["id"], "status": 200, "body": texts[i["id"]]} for i in items]})

    router.post("/$batch").mock(side_effect=handler)
    results = run_batch(client(router, VirtualClock()), [BatchRequest("GET", f"/groups/g{n}/members")
                                                         for n in range(3)])
    assert [r.body for r in results] == [page, page, None]


def test_already_a_member_in_a_text_error_body_is_success(router: respx.Router) -> None:
    text = json.dumps(err("Request_BadRequest", "One or more added object references already exist for "
                          "the following modified properties: 'owners'."))
    router.post("/$batch").mock(side_effect=batch_answers(lambda item, rnd: (400, text)))
    # the decision is the re-read list (Graph's 400 code cannot tell), not the message text
    router.get("/groups/g1/owners").respond(200, json={"value": [{"id": uid(1)}]})
    w, _ = writer(router)
    assert w.add_group_owners("g1", [uid(1)]) == []


def test_a_400_that_says_already_a_member_is_a_failure_when_the_list_does_not_hold_it(
    router: respx.Router,
) -> None:
    text = json.dumps(err("Request_BadRequest", "One or more added object references already exist for "
                          "the following modified properties: 'owners'."))
    router.post("/$batch").mock(side_effect=batch_answers(lambda item, rnd: (400, text)))
    router.get("/groups/g1/owners").respond(200, json={"value": []})
    w, _ = writer(router)
    assert [f.object_id for f in w.add_group_owners("g1", [uid(1)])] == [uid(1)]


def test_a_member_list_with_a_null_batch_body_is_read_directly(router: respx.Router) -> None:
    # a 200 item without a body must not read as "this group has no members"
    router.get("/users").respond(200, json={"value": [{"id": "u1", "userPrincipalName": "a@x.example"}]})
    router.get("/directory/administrativeUnits").respond(200, json={"value": []})
    router.get("/groups").respond(200, json={"value": [
        {"id": "g1", "displayName": "7A", "mailNickname": "7a", "groupTypes": ["Unified"], MARKER: "c"}]})
    router.post("/$batch").mock(side_effect=batch_answers(
        lambda item, rnd: (200, None if item["url"].startswith("/groups/g1/members") else {"value": []})
    ))
    direct = router.get("/groups/g1/members").respond(200, json={"value": [{"id": "u1"}]})
    state, _ = read_actual(client(router, VirtualClock()), MARKER)
    assert state.groups["c"].members == frozenset({"a@x.example"})
    assert direct.call_count == 1


# ---- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "needed"), [
    ("POST", "/directory/administrativeUnits/a1/members/$ref", "AdministrativeUnit.ReadWrite.All"),
    ("GET", "/directory/administrativeUnits", "AdministrativeUnit.Read.All"),
    ("PATCH", "/groups/g1", "Group.ReadWrite.All"),
    ("POST", "/groups", "Group.Create"),
    ("DELETE", "/groups/g1/members/u1/$ref", "GroupMember.ReadWrite.All"),
    ("POST", "/groups/g1/owners/$ref", "Group.ReadWrite.All"),
    ("POST", "/teams", "Team.Create"),
    ("POST", "/teams/g1/archive", "TeamSettings.ReadWrite.All"),
    ("GET", "https://graph.microsoft.com/v1.0/users?$top=999", "User.Read.All"),
])
def test_403_names_the_missing_permission(method: str, path: str, needed: str) -> None:
    body = err("Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
    e = error_from_response(403, {}, body, method, path)
    assert isinstance(e, ForbiddenError)
    assert permission_for(method, path) == needed
    assert needed in str(e) and "Insufficient privileges" in str(e)


def test_403_on_a_member_list_mentions_hidden_membership() -> None:
    e = error_from_response(403, {}, err("Authorization_RequestDenied", "Insufficient privileges"), "GET",
                            "/directory/administrativeUnits/a1/members")
    assert "AdministrativeUnit.Read.All" in str(e) and "Member.Read.Hidden" in str(e)


def test_retry_after_http_date_without_a_zone_is_utc() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 -0000", 1445412480.0) == 10.0


# ---- a Team created in this run provisions asynchronously (emulator) ------------------------------


def test_archiving_a_team_created_in_this_run_waits_for_provisioning() -> None:
    from providers.emulator import EmulatorTransport, Profile, Tenant

    clock = VirtualClock()
    tenant = Tenant(seed=1, clock=clock)
    tenant.register_extension(APP, "realsmartSyncKey")
    owner = tenant.add_user("t.teacher@oak.example", "Tom")
    gid = tenant.add_group("7A", mail_nickname="7a", owners=[owner], extensions={MARKER: "class:7A"})
    profile = Profile.ideal().with_(team_provision_delay=60.0)
    http = httpx.Client(transport=EmulatorTransport(tenant, clock=clock, profile=profile), base_url=BASE,
                        headers={"Authorization": "Bearer test"})
    graph = GraphClient(http, clock=clock, rng=random.Random(0))
    w = EntraWriter(graph, MARKER, clock=clock, graph_base=BASE)
    assert w.create_team(gid, "standard").status == "created"
    w.archive_team(gid)  # 404 until the team is provisioned: waited for, then archived
    clock.advance(60.0)
    team = http.get(f"/teams/{gid}").json()
    assert team["isArchived"] is True


# ---- behaviours checked and found right (kept as guards) -----------------------------------------


def test_batch_item_retry_after_as_an_http_date_is_honoured(router: respx.Router) -> None:
    import email.utils

    clock = VirtualClock()
    when = email.utils.formatdate(clock.now() + 7, usegmt=True)
    calls = [0]

    def handler(request: httpx.Request) -> httpx.Response:
        calls[0] += 1
        items = json.loads(request.content)["requests"]
        if calls[0] == 1:
            out = [{"id": i["id"], "status": 429, "headers": {"Retry-After": when}} for i in items]
        else:
            out = [{"id": i["id"], "status": 204, "body": None} for i in items]
        return httpx.Response(200, json={"responses": out})

    router.post("/$batch").mock(side_effect=handler)
    results = run_batch(client(router, clock), [BatchRequest("DELETE", "/groups/g1/members/u1/$ref")])
    assert [r.status for r in results] == [204]
    assert clock.slept == pytest.approx(7.0, abs=1.0)


def test_whole_batch_503_of_ref_adds_is_retried(router: respx.Router) -> None:
    route = router.post("/$batch").mock(side_effect=[
        httpx.Response(503, headers={"Retry-After": "2"}),
        httpx.Response(200, json={"responses": [{"id": "1", "status": 204}]}),
    ])
    req = BatchRequest("POST", "/groups/g1/members/$ref", {"@odata.id": f"{BASE}/directoryObjects/u1"})
    assert [r.status for r in run_batch(client(router, VirtualClock()), [req])] == [204]
    assert route.call_count == 2
