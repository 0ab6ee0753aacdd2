"""Exact request shapes of the Entra write layer (respx), and its handling of Graph's answers."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from providers.entra.client import GraphClient, RetryPolicy
from providers.entra.marker import MarkerSetupError, ensure_marker, marker_name
from providers.entra.write import EntraWriter, WritePolicy
from reconciler.clock import VirtualClock
from reconciler.errors import ConfigError, DirectoryError
from reconciler.model import AdministrativeUnit, Group
from reconciler.plan.payloads import AdministrativeUnitFields, GroupFields

BASE = "https://graph.microsoft.com/v1.0"
APP = "11111111-2222-3333-4444-555555555555"
MARKER = marker_name(APP)


def uid(n: int) -> str:
    return f"00000000-0000-0000-0000-{n:012d}"


def ref(n: int) -> str:
    return f"{BASE}/directoryObjects/{uid(n)}"


def owner_ref(n: int) -> str:
    return f"{BASE}/users/{uid(n)}"


def make(router: respx.Router, policy: WritePolicy | None = None) -> tuple[EntraWriter, VirtualClock]:
    clock = VirtualClock()
    http = httpx.Client(base_url=BASE, transport=httpx.MockTransport(router.handler))
    client = GraphClient(http, clock=clock, rng=random.Random(0), retry=RetryPolicy(max_attempts=3))
    return EntraWriter(client, MARKER, clock=clock, graph_base=BASE, policy=policy), clock


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)


Handler = Callable[[httpx.Request], httpx.Response]


def batch_echo(status_for: Callable[[dict[str, Any]], tuple[int, Any]]) -> Handler:
    """A ``$batch`` handler answering each item with ``status_for(item)``."""

    def handler(request: httpx.Request) -> httpx.Response:
        items = body(request)["requests"]
        assert len(items) <= 20
        out = []
        for item in items:
            status, payload = status_for(item)
            out.append({"id": item["id"], "status": status, "headers": {}, "body": payload})
        return httpx.Response(200, json={"responses": out})

    return handler


def err(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(base_url=BASE, assert_all_called=False)


def sent(router: respx.Router, method: str | None = None) -> list[httpx.Request]:
    return [c.request for c in router.calls if method is None or c.request.method == method]


def test_create_m365_group_binds_owners_first_and_at_most_20(router: respx.Router) -> None:
    router.post("/groups").respond(201, json={"id": "g1"})
    router.patch("/groups/g1").respond(204)
    w, _ = make(router)
    g = Group("class:1", "7A Maths", "7a-maths", description="Year 7", visibility="Private")
    result = w.create_group(g, [uid(1), uid(2), uid(3)], [uid(n) for n in range(100, 130)])
    assert result.object_id == "g1" and result.failures == ()
    create = body(sent(router, "POST")[0])
    assert create["groupTypes"] == ["Unified"] and create["mailEnabled"] is True
    assert create["securityEnabled"] is False and create["visibility"] == "Private"
    assert create[MARKER] == "class:1" and create["mailNickname"] == "7a-maths"
    assert create["owners@odata.bind"] == [owner_ref(1), owner_ref(2), owner_ref(3)]
    assert len(create["owners@odata.bind"]) + len(create["members@odata.bind"]) == 20
    patches = [body(r) for r in sent(router, "PATCH")]
    assert [len(p["members@odata.bind"]) for p in patches] == [13]
    bound = create["members@odata.bind"] + patches[0]["members@odata.bind"]
    assert sorted(bound) == sorted(ref(n) for n in range(100, 130))


def test_create_security_group_with_many_owners_adds_the_rest_by_ref(router: respx.Router) -> None:
    router.post("/groups").respond(201, json={"id": "g2"})
    router.post("/$batch").mock(side_effect=batch_echo(lambda item: (204, None)))
    router.patch("/groups/g2").respond(204)
    w, _ = make(router)
    g = Group("staff", "Staff", "staff", kind="security")
    w.create_group(g, [uid(n) for n in range(25)], [uid(99)])
    create = body(sent(router, "POST")[0])
    assert create["groupTypes"] == [] and create["mailEnabled"] is False and create["securityEnabled"] is True
    assert len(create["owners@odata.bind"]) == 20 and "members@odata.bind" not in create
    batch = body(next(r for r in sent(router, "POST") if r.url.path.endswith("$batch")))["requests"]
    assert [(i["method"], i["url"]) for i in batch] == [("POST", "/groups/g2/owners/$ref")] * 5
    assert {i["body"]["@odata.id"] for i in batch} == {owner_ref(n) for n in range(20, 25)}
    assert all(i["headers"]["Content-Type"] == "application/json" for i in batch)
    assert body(sent(router, "PATCH")[0]) == {"members@odata.bind": [ref(99)]}


def test_add_members_20_per_patch(router: respx.Router) -> None:
    router.patch("/groups/g").respond(204)
    w, _ = make(router)
    assert w.add_group_members("g", [uid(n) for n in range(45)]) == []
    assert [len(body(r)["members@odata.bind"]) for r in sent(router)] == [20, 20, 5]


def test_brand_new_group_member_patch_waits_out_replication_lag(router: respx.Router) -> None:
    router.post("/groups").respond(201, json={"id": "g"})
    lag = httpx.Response(400, json=err("Request_BadRequest",
                                       "One or more of the objects being referenced don't exist"))
    patches = router.patch("/groups/g").mock(side_effect=[lag, lag, httpx.Response(204)])
    w, clock = make(router)
    result = w.create_group(Group("k", "K", "k"), [uid(1)], [uid(n) for n in range(2, 40)])
    assert result.failures == () and patches.call_count == 3
    # the first bind waits until the group is 3 s old (bind_after), then 2 s, then 4 s of back-off
    assert clock.slept == pytest.approx(3.0 + 6.0)
    assert all(len(body(c.request)["members@odata.bind"]) <= 20 for c in patches.calls)


def test_rejected_patch_falls_back_to_one_by_one_refs(router: respx.Router) -> None:
    router.patch("/groups/g").respond(400, json=err(
        "Request_BadRequest",
        "One or more added object references already exist for the following modified properties: 'members'.",
    ))

    def item(i: dict[str, Any]) -> tuple[int, Any]:
        oid = i["body"]["@odata.id"]
        if oid == ref(1):
            return 400, err("Request_BadRequest", "One or more added object references already exist")
        if oid == ref(2):
            return 404, err("Request_ResourceNotFound", "Resource does not exist")
        return 204, None

    router.post("/$batch").mock(side_effect=batch_echo(item))
    router.get("/groups/g/members").respond(200, json={"value": [{"id": uid(1)}]})  # the 400 is re-read
    w, _ = make(router)
    failures = w.add_group_members("g", [uid(1), uid(2), uid(3)])
    assert [f.object_id for f in failures] == [uid(2)]
    items = body(sent(router, "POST")[0])["requests"]
    assert {(i["method"], i["url"]) for i in items} == {("POST", "/groups/g/members/$ref")}


def test_remove_members_always_by_ref_and_not_a_member_is_success(router: respx.Router) -> None:
    def item(i: dict[str, Any]) -> tuple[int, Any]:
        if i["url"].endswith(f"{uid(3)}/$ref"):
            return 404, err("Request_ResourceNotFound", "does not exist or one of its queried ...")
        return 204, None

    router.post("/$batch").mock(side_effect=batch_echo(item))
    w, _ = make(router)
    assert w.remove_group_members("g", [uid(n) for n in range(45)]) == []
    batches = [body(r)["requests"] for r in sent(router)]
    assert [len(b) for b in batches] == [20, 20, 5]
    for b in batches:
        for i in b:
            assert i["method"] == "DELETE"
            assert i["url"].startswith("/groups/g/members/") and i["url"].endswith("/$ref")
            assert "body" not in i


def test_removing_the_last_owner_is_an_item_failure(router: respx.Router) -> None:
    last = "The group must have at least one owner, hence this owner cannot be removed."
    router.post("/$batch").mock(side_effect=batch_echo(lambda i: (400, err("Request_BadRequest", last))))
    w, _ = make(router)
    [failure] = w.remove_group_owners("g", [uid(1)])
    assert failure.object_id == uid(1) and "last owner" in failure.message


def test_au_create_and_members_one_ref_each(router: respx.Router) -> None:
    router.post("/directory/administrativeUnits").respond(201, json={"id": "au1"})
    router.post("/$batch").mock(side_effect=batch_echo(lambda i: (204, None)))
    w, _ = make(router)
    result = w.create_administrative_unit(AdministrativeUnit("au:y7", "Year 7", "Learners"), [uid(1), uid(2)])
    assert result.object_id == "au1"
    create = body(sent(router, "POST")[0])
    assert create == {"displayName": "Year 7", "description": "Learners", MARKER: "au:y7"}
    items = body(sent(router, "POST")[1])["requests"]
    assert [(i["method"], i["url"], i["body"]) for i in items] == [
        ("POST", "/directory/administrativeUnits/au1/members/$ref", {"@odata.id": ref(1)}),
        ("POST", "/directory/administrativeUnits/au1/members/$ref", {"@odata.id": ref(2)}),
    ]


def test_new_au_members_retry_replication_lag(router: respx.Router) -> None:
    router.post("/directory/administrativeUnits").respond(201, json={"id": "au1"})
    answers = iter([404, 404, 204])
    router.post("/$batch").mock(side_effect=batch_echo(
        lambda i: (s := next(answers), None if s == 204 else err("Request_ResourceNotFound", "no")))
    )
    w, clock = make(router)
    result = w.create_administrative_unit(AdministrativeUnit("au:y7", "Year 7"), [uid(1)])
    assert result.failures == ()
    assert clock.slept >= 6.0  # 2 s + 4 s back-off


def test_update_sends_only_the_fields_it_changes_by_graph_names(router: respx.Router) -> None:
    router.patch("/groups/g").respond(204)
    router.patch("/directory/administrativeUnits/a").respond(204)
    w, _ = make(router)
    w.update_group("g", GroupFields(display_name="New", description=None, visibility="Public"))
    w.update_administrative_unit("a", AdministrativeUnitFields(display_name="AU"))
    assert body(sent(router)[0]) == {"description": None, "displayName": "New", "visibility": "Public"}
    assert body(sent(router)[1]) == {"displayName": "AU"}
    w.update_group("g", GroupFields())  # nothing to change: no request
    assert len(sent(router)) == 2


def test_an_update_cannot_carry_an_unmanaged_field() -> None:
    with pytest.raises(TypeError, match="securityEnabled"):
        GroupFields(securityEnabled=False)  # type: ignore[call-arg]


def test_delete_of_a_missing_object_is_success(router: respx.Router) -> None:
    router.delete("/groups/g").respond(404, json=err("Request_ResourceNotFound", "gone"))
    w, _ = make(router)
    w.delete_group("g")
    assert len(router.calls) == 1


def test_lost_create_response_finds_the_group_by_marker_and_does_not_post_again(router: respx.Router) -> None:
    posts = router.post("/groups").mock(side_effect=httpx.ReadTimeout("lost"))
    lookup = router.get("/groups").respond(200, json={"value": [{"id": "g9", MARKER: "class:1"}]})
    router.patch("/groups/g9").respond(204)
    w, _ = make(router)
    result = w.create_group(Group("class:1", "7A", "7a"), [uid(1)], [])
    assert result.object_id == "g9"
    assert posts.call_count == 1
    q = lookup.calls[0].request.url.params
    assert q["$filter"] == f"{MARKER} eq 'class:1'"


def test_lost_create_response_with_no_object_creates_once_more(router: respx.Router) -> None:
    posts = router.post("/groups").mock(
        side_effect=[httpx.ReadTimeout("lost"), httpx.Response(201, json={"id": "g"})]
    )
    router.get("/groups").respond(200, json={"value": []})
    w, clock = make(router, WritePolicy(lookup_delays=(0.0, 5.0)))
    assert w.create_group(Group("k", "K", "k"), [uid(1)], []).object_id == "g"
    assert posts.call_count == 2 and clock.slept >= 5.0


def test_create_with_a_missing_bound_user_creates_bare_then_reports_it(router: respx.Router) -> None:
    posts = router.post("/groups").mock(side_effect=[
        httpx.Response(400, json=err("Request_BadRequest", "Invalid object: resource does not exist")),
        httpx.Response(201, json={"id": "g"}),
    ])

    def item(i: dict[str, Any]) -> tuple[int, Any]:
        gone = i["body"]["@odata.id"] == owner_ref(2)
        return (404, err("Request_ResourceNotFound", "gone")) if gone else (204, None)

    router.post("/$batch").mock(side_effect=batch_echo(item))
    router.patch("/groups/g").respond(204)
    w, _ = make(router, WritePolicy(lag_delays=()))
    result = w.create_group(Group("k", "K", "k"), [uid(1), uid(2)], [uid(3)])
    assert posts.call_count == 2 and "owners@odata.bind" not in body(posts.calls[1].request)
    assert [f.object_id for f in result.failures] == [uid(2)]


def test_team_from_group_request_shape(router: respx.Router) -> None:
    teams = router.post("/teams").respond(202, headers={"Location": "/teams('g')/operations('o')"})
    w, _ = make(router)
    outcome = w.create_team("g", "educationClass")
    assert outcome.status == "created"
    assert body(teams.calls[0].request) == {
        "template@odata.bind": f"{BASE}/teamsTemplates('educationClass')",
        "group@odata.bind": f"{BASE}/groups('g')",
    }


def test_team_refused_for_lag_is_retried_once_then_deferred_without_sleeping(router: respx.Router) -> None:
    teams = router.post("/teams").respond(404, json=err("NotFound", "group not found"))
    w, clock = make(router)
    outcome = w.create_team("g", "standard")
    assert outcome.status == "deferred" and "later run" in outcome.message
    # one retry, straight away (only the Teams pacing, well under a second, is waited)
    assert teams.call_count == 2 and clock.slept < 1.0


def test_team_on_a_group_this_run_created_is_deferred_without_a_request(router: respx.Router) -> None:
    router.post("/groups").respond(201, json={"id": "g"})
    teams = router.post("/teams").respond(202)
    w, clock = make(router)
    w.create_group(Group("k", "K", "k"), [uid(1)], [])
    outcome = w.create_team("g", "standard")
    assert outcome.status == "deferred" and "no request sent" in outcome.message
    assert teams.call_count == 0 and clock.slept == 0
    clock.advance(15 * 60)  # the catch-up run, once Graph's window has passed
    assert w.create_team("g", "standard").status == "created" and teams.call_count == 1


def test_team_creation_is_paced_within_graphs_teams_limit(router: respx.Router) -> None:
    times: list[float] = []
    w, clock = make(router)

    def created(request: httpx.Request) -> httpx.Response:
        times.append(clock.now())
        return httpx.Response(202)

    router.post("/teams").mock(side_effect=created)
    for n in range(30):
        assert w.create_team(f"g{n}", "educationClass").status == "created"
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.1  # Graph allows 10 POST /teams per second per app per tenant
    assert times[-1] - times[0] < 30 * 0.5  # and no more waiting than pacing needs


def test_educationclass_template_on_a_plain_group_says_what_to_do(router: respx.Router) -> None:
    router.post("/teams").respond(400, json=err(
        "BadRequest", "Failed to execute Templates backend request CreateTeamFromGroupWithTemplateRequest. "
        "Team with template 'educationClass' can not be provisioned using a group which does not belong "
        "to a class."))
    w, _ = make(router)
    with pytest.raises(DirectoryError, match="not created as an education class"):
        w.create_team("g", "educationClass")


def test_team_conflict_counts_as_created(router: respx.Router) -> None:
    router.post("/teams").respond(409, json=err("Conflict", "Team already exists"))
    router.get("/teams/g").respond(200, json={"id": "g", "isArchived": False})
    w, _ = make(router)
    assert w.create_team("g", "standard").status == "created"


def test_archive_and_unarchive(router: respx.Router) -> None:
    a = router.post("/teams/t/archive").respond(202)
    u = router.post("/teams/t/unarchive").respond(202)
    w, _ = make(router)
    w.archive_team("t")
    w.unarchive_team("t")
    assert a.call_count == 1 and u.call_count == 1
    assert body(a.calls[0].request) == {}
    assert u.calls[0].request.content == b""


# -- the ownership marker --------------------------------------------------------------------------

EXT_PATH = f"/applications(appId='{APP}')/extensionProperties"
DEFINITION = {"name": "realsmartSyncKey", "dataType": "String", "isMultiValued": False,
              "targetObjects": ["Group", "AdministrativeUnit"]}


def marker_client(router: respx.Router) -> GraphClient:
    http = httpx.Client(base_url=BASE, transport=httpx.MockTransport(router.handler))
    return GraphClient(http, clock=VirtualClock(), rng=random.Random(0), retry=RetryPolicy(max_attempts=2))


def test_marker_name_strips_hyphens_and_rejects_non_guids() -> None:
    assert marker_name(APP.upper()) == "extension_11111111222233334444555555555555_realsmartSyncKey"
    with pytest.raises(ConfigError, match="not a GUID"):
        marker_name("realsmart-sync")


def test_ensure_marker_registers_a_missing_property(router: respx.Router) -> None:
    listed = router.get(EXT_PATH).respond(200, json={"value": []})
    created = router.post(EXT_PATH).respond(201, json={"id": "x", "name": MARKER})
    assert ensure_marker(marker_client(router), APP) == MARKER
    assert listed.call_count == 1 and body(created.calls[0].request) == DEFINITION


def test_ensure_marker_accepts_an_existing_property_without_writing(router: respx.Router) -> None:
    router.get(EXT_PATH).respond(200, json={"value": [
        {"id": "x", "name": MARKER, "dataType": "String", "targetObjects": ["Group", "AdministrativeUnit"]}]})
    post = router.post(EXT_PATH)
    assert ensure_marker(marker_client(router), APP) == MARKER
    assert post.call_count == 0


def test_ensure_marker_refuses_a_wrongly_defined_property(router: respx.Router) -> None:
    router.get(EXT_PATH).respond(200, json={"value": [
        {"id": "x", "name": MARKER, "dataType": "String", "targetObjects": ["Group"]}]})
    with pytest.raises(MarkerSetupError, match="must be String for Group, AdministrativeUnit"):
        ensure_marker(marker_client(router), APP)


def test_ensure_marker_without_permission_prints_the_manual_steps(router: respx.Router) -> None:
    router.get(EXT_PATH).respond(200, json={"value": []})
    router.post(EXT_PATH).respond(403, json=err("Authorization_RequestDenied", "Insufficient privileges"))
    with pytest.raises(MarkerSetupError) as info:
        ensure_marker(marker_client(router), APP, graph_root="https://graph.microsoft.us/v1.0")
    text = str(info.value)
    assert f"POST https://graph.microsoft.us/v1.0/applications(appId='{APP}')/extensionProperties" in text
    assert json.dumps(DEFINITION) in text
    assert "New-MgApplicationExtensionProperty" in text and "-TargetObjects Group,AdministrativeUnit" in text
    assert MARKER in text and info.value.property_name == MARKER


def test_ensure_marker_looks_again_after_a_lost_response(router: respx.Router) -> None:
    router.get(EXT_PATH).mock(side_effect=[
        httpx.Response(200, json={"value": []}),
        httpx.Response(200, json={"value": [{"id": "x", "name": MARKER, "dataType": "String",
                                             "targetObjects": ["Group", "AdministrativeUnit"]}]}),
    ])
    post = router.post(EXT_PATH).mock(side_effect=httpx.ReadTimeout("lost"))
    assert ensure_marker(marker_client(router), APP) == MARKER
    assert post.call_count == 1
