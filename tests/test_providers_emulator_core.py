"""Core behaviour of the Graph emulator: objects, queries, paging, extensions, errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from providers.emulator import EmulatorTransport, Profile, Tenant
from reconciler.clock import VirtualClock

GRAPH = "https://graph.microsoft.com/v1.0"
APP = "11111111-2222-3333-4444-555555555555"


def client(tenant: Tenant, profile: Profile | None = None, clock: VirtualClock | None = None) -> httpx.Client:
    transport = EmulatorTransport(tenant, clock=clock or VirtualClock(), profile=profile or Profile.ideal())
    return httpx.Client(transport=transport, base_url=GRAPH, headers={"Authorization": "Bearer test"})


def bind(oid: str, kind: str = "users") -> str:
    return f"{GRAPH}/{kind}/{oid}"


def new_group(http: httpx.Client, nick: str, owner: str, **extra: Any) -> str:
    body = {
        "displayName": nick,
        "mailEnabled": True,
        "mailNickname": nick,
        "securityEnabled": False,
        "groupTypes": ["Unified"],
        "owners@odata.bind": [bind(owner)],
        **extra,
    }
    r = http.post("/groups", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture
def tenant() -> Tenant:
    t = Tenant(seed=7)
    for i in range(25):
        t.add_user(
            f"user{i:02d}@oak.example",
            display_name=f"User {i:02d}",
            mail=f"user{i:02d}@oak.example",
            employee_id=f"E{i:03d}",
        )
    return t


def test_ids_are_guids_and_reproducible_with_a_seed() -> None:
    a, b = Tenant(seed=3), Tenant(seed=3)
    ua, ub = a.add_user("x@y.example"), b.add_user("x@y.example")
    assert ua == ub and len(ua) == 36 and ua.count("-") == 4


def test_users_page_with_opaque_skiptoken(tenant: Tenant) -> None:
    http = client(tenant)
    seen: list[str] = []
    url: str | None = "/users?$top=10&$select=id,userPrincipalName"
    pages = 0
    while url:
        body = http.get(url).json()
        pages += 1
        seen += [u["id"] for u in body["value"]]
        assert all(set(u) == {"id", "userPrincipalName"} for u in body["value"])
        url = body.get("@odata.nextLink")
        if url:
            assert url.startswith(GRAPH + "/users?") and "$skiptoken=" in url and "$top=10" in url
    assert pages == 3 and len(seen) == 25 == len(set(seen))


def test_default_user_properties_exclude_employee_id_unless_selected(tenant: Tenant) -> None:
    http = client(tenant)
    first = http.get("/users").json()["value"][0]
    assert "employeeId" not in first and "userPrincipalName" in first
    picked = http.get("/users", params={"$select": "employeeId"}).json()["value"][0]
    assert set(picked) == {"id", "employeeId"}


@pytest.mark.parametrize(
    ("flt", "count"),
    [
        ("userPrincipalName eq 'USER03@oak.example'", 1),
        ("mail eq 'user04@oak.example'", 1),
        ("employeeId eq 'E005'", 1),
        ("employeeId eq 'nobody'", 0),
        ("startswith(displayName,'User 1')", 10),
        ("employeeId in ('E001','E002')", 2),
    ],
)
def test_user_filters(tenant: Tenant, flt: str, count: int) -> None:
    r = client(tenant).get("/users", params={"$filter": flt})
    assert r.status_code == 200 and len(r.json()["value"]) == count


def test_top_above_999_is_rejected(tenant: Tenant) -> None:
    r = client(tenant).get("/users", params={"$top": "1000"})
    assert r.status_code == 400


def test_group_create_members_owners_roundtrip(tenant: Tenant) -> None:
    http = client(tenant)
    users = tenant.sorted_ids("user")
    gid = new_group(http, "maths7a", users[0], **{"members@odata.bind": [bind(u) for u in users[1:4]]})
    assert (
        http.post(
            f"/groups/{gid}/members/$ref", json={"@odata.id": bind(users[5], "directoryObjects")}
        ).status_code
        == 204
    )
    r = http.patch(f"/groups/{gid}", json={"members@odata.bind": [bind(u) for u in users[6:8]]})
    assert r.status_code == 204
    members = http.get(f"/groups/{gid}/members", params={"$select": "id"}).json()["value"]
    assert {m["id"] for m in members} == set(users[1:4]) | {users[5]} | set(users[6:8])
    assert all(m["@odata.type"] == "#microsoft.graph.user" for m in members)
    assert http.delete(f"/groups/{gid}/members/{users[5]}/$ref").status_code == 204
    owners = http.get(f"/groups/{gid}/owners").json()["value"]
    assert [o["id"] for o in owners] == [users[0]]
    assert http.get(f"/groups/{gid}").json()["displayName"] == "maths7a"


def test_member_list_pages(tenant: Tenant) -> None:
    http = client(tenant)
    users = tenant.sorted_ids("user")
    gid = tenant.add_group("big", owners=[users[0]], members=users)
    ids: list[str] = []
    url: str | None = f"/groups/{gid}/members?$top=7"
    while url:
        body = http.get(url).json()
        ids += [m["id"] for m in body["value"]]
        url = body.get("@odata.nextLink")
    assert ids == sorted(users)


def test_extension_properties_on_groups_and_aus(tenant: Tenant) -> None:
    http = client(tenant)
    owner = tenant.sorted_ids("user")[0]
    r = http.post(
        f"/applications(appId='{APP}')/extensionProperties",
        json={"name": "managedBy", "dataType": "String", "targetObjects": ["Group", "AdministrativeUnit"]},
    )
    assert r.status_code == 201
    ext = r.json()["name"]
    assert ext == "extension_11111111222233334444555555555555_managedBy"
    listed = http.get(f"/applications(appId='{APP}')/extensionProperties").json()["value"]
    assert [e["name"] for e in listed] == [ext]
    gid = new_group(http, "tagged", owner, **{ext: "entra-sync"})
    new_group(http, "untagged", owner)
    assert ext not in http.get(f"/groups/{gid}").json()
    assert http.get(f"/groups/{gid}", params={"$select": f"id,{ext}"}).json()[ext] == "entra-sync"
    found = http.get("/groups", params={"$filter": f"{ext} eq 'entra-sync'", "$select": "id"}).json()["value"]
    assert [g["id"] for g in found] == [gid]
    au = http.post("/directory/administrativeUnits", json={"displayName": "Oak", ext: "entra-sync"}).json()
    assert au[ext] == "entra-sync"
    assert http.get(f"/directory/administrativeUnits/{au['id']}").json()[ext] == "entra-sync"
    hits = http.get("/directory/administrativeUnits", params={"$filter": f"{ext} eq 'entra-sync'"}).json()
    assert [a["id"] for a in hits["value"]] == [au["id"]]
    assert http.patch(f"/groups/{gid}", json={ext: None}).status_code == 204
    assert http.get(f"/groups/{gid}", params={"$select": ext}).json()[ext] is None


def test_unregistered_extension_is_rejected(tenant: Tenant) -> None:
    http = client(tenant)
    r = http.post("/directory/administrativeUnits", json={"displayName": "x", "extension_abc_nope": "1"})
    assert r.status_code == 400


def test_admin_unit_members(tenant: Tenant) -> None:
    http = client(tenant)
    users = tenant.sorted_ids("user")
    gid = tenant.add_group("sec", unified=False, owners=[users[0]])
    au = http.post("/directory/administrativeUnits", json={"displayName": "Oak"}).json()["id"]
    for oid, kind in ((users[1], "users"), (gid, "groups")):
        r = http.post(
            f"/directory/administrativeUnits/{au}/members/$ref", json={"@odata.id": bind(oid, kind)}
        )
        assert r.status_code == 204
    members = http.get(f"/directory/administrativeUnits/{au}/members").json()["value"]
    assert sorted((m["@odata.type"], m["id"]) for m in members) == sorted(
        [("#microsoft.graph.user", users[1]), ("#microsoft.graph.group", gid)]
    )
    assert http.delete(f"/directory/administrativeUnits/{au}/members/{gid}/$ref").status_code == 204
    assert http.patch(f"/directory/administrativeUnits/{au}", json={"description": "d"}).status_code == 204
    assert http.get(f"/directory/administrativeUnits/{au}").json()["description"] == "d"
    assert http.delete(f"/directory/administrativeUnits/{au}").status_code == 204
    assert http.get(f"/directory/administrativeUnits/{au}").status_code == 404


def test_missing_bearer_gets_401_with_graph_error_shape(tenant: Tenant) -> None:
    transport = EmulatorTransport(tenant, clock=VirtualClock())
    r = httpx.Client(transport=transport, base_url=GRAPH).get("/users")
    assert r.status_code == 401
    err = r.json()["error"]
    assert err["code"] == "InvalidAuthenticationToken"
    assert set(err["innerError"]) == {"date", "request-id", "client-request-id"}
    assert r.headers["request-id"] == err["innerError"]["request-id"]


def test_wrong_bearer_gets_401_when_tokens_are_pinned(tenant: Tenant) -> None:
    http = client(tenant, Profile.ideal().with_(accepted_tokens=frozenset({"right"})))
    assert http.get("/users").status_code == 401
    assert http.get("/users", headers={"Authorization": "Bearer right"}).status_code == 200


def test_unknown_path_and_property_are_400(tenant: Tenant) -> None:
    http = client(tenant)
    r = http.get("/widgets")
    assert r.status_code == 400 and "widgets" in r.json()["error"]["message"]
    assert http.get("/users", params={"$select": "shoeSize"}).status_code == 400
    owner = tenant.sorted_ids("user")[0]
    gid = new_group(http, "g1", owner)
    assert http.patch(f"/groups/{gid}", json={"shoeSize": 9}).status_code == 400
    relaxed = client(tenant, Profile.ideal().with_(reject_unknown_properties=False))
    assert relaxed.patch(f"/groups/{gid}", json={"shoeSize": 9}).status_code == 204


def test_missing_object_is_404_request_resource_not_found(tenant: Tenant) -> None:
    r = client(tenant).get("/groups/00000000-0000-4000-8000-000000000000")
    assert r.status_code == 404 and r.json()["error"]["code"] == "Request_ResourceNotFound"


def test_client_request_id_is_echoed(tenant: Tenant) -> None:
    r = client(tenant).get("/users", headers={"client-request-id": "abc"})
    assert r.headers["client-request-id"] == "abc"


def test_odata_key_syntax_and_version_prefix(tenant: Tenant) -> None:
    http = client(tenant)
    uid = tenant.sorted_ids("user")[0]
    assert http.get(f"/users('{uid}')").json()["id"] == uid
    assert http.get("/users/user01@oak.example").json()["userPrincipalName"] == "user01@oak.example"


def test_async_transport(tenant: Tenant) -> None:
    import asyncio

    from providers.emulator import AsyncEmulatorTransport

    async def go() -> int:
        transport = AsyncEmulatorTransport(tenant, clock=VirtualClock())
        async with httpx.AsyncClient(
            transport=transport, base_url=GRAPH, headers={"Authorization": "Bearer t"}
        ) as http:
            r = await http.get("/users", params={"$top": "5"})
            return len(r.json()["value"])

    assert asyncio.run(go()) == 5


def test_counters_count_requests_by_route_and_cost(tenant: Tenant) -> None:
    transport = EmulatorTransport(tenant, clock=VirtualClock())
    http = httpx.Client(transport=transport, base_url=GRAPH, headers={"Authorization": "Bearer t"})
    http.get("/users")
    r = http.get("/users", params={"$select": "id"})
    assert r.headers["x-ms-resource-unit"] == "1"
    owner = tenant.sorted_ids("user")[0]
    new_group(http, "c1", owner)
    snap = transport.counters.snapshot()
    assert snap["requests"] == {"GET /users": 2, "POST /groups": 1}
    assert snap["resource_units"] == 2 + 1 + 1 and snap["writes"] == 1


def test_filter_on_unknown_property_is_400_and_names_are_case_insensitive(tenant: Tenant) -> None:
    http = client(tenant)
    r = http.get("/users", params={"$filter": "shoeSize eq '9'"})
    assert r.status_code == 400 and "shoeSize" in r.json()["error"]["message"]
    hits = http.get("/users", params={"$filter": "EmployeeId eq 'E001'", "$select": "ID,employeeid"}).json()
    assert [set(u) for u in hits["value"]] == [{"id", "employeeId"}]


def test_lambda_any_filter_on_group_types(tenant: Tenant) -> None:
    owner = tenant.sorted_ids("user")[0]
    m365 = tenant.add_group("m", owners=[owner])
    tenant.add_group("s", unified=False)
    hits = client(tenant).get("/groups", params={"$filter": "groupTypes/any(c:c eq 'Unified')"}).json()
    assert [g["id"] for g in hits["value"]] == [m365]


def test_dynamic_group_members_cannot_be_changed(tenant: Tenant) -> None:
    http = client(tenant)
    owner, user = tenant.sorted_ids("user")[:2]
    body = {
        "displayName": "dyn",
        "mailEnabled": False,
        "mailNickname": "dyn",
        "securityEnabled": True,
        "groupTypes": ["DynamicMembership"],
        "membershipRule": 'user.department -eq "x"',
        "membershipRuleProcessingState": "On",
        "owners@odata.bind": [bind(owner)],
    }
    gid = http.post("/groups", json=body).json()["id"]
    r = http.post(f"/groups/{gid}/members/$ref", json={"@odata.id": bind(user, "directoryObjects")})
    assert r.status_code == 400


def test_m365_mail_nickname_must_be_unique(tenant: Tenant) -> None:
    http = client(tenant)
    owner = tenant.sorted_ids("user")[0]
    first = new_group(http, "science", owner)
    body = {
        "displayName": "x",
        "mailEnabled": True,
        "mailNickname": "SCIENCE",
        "securityEnabled": False,
        "groupTypes": ["Unified"],
        "owners@odata.bind": [bind(owner)],
    }
    assert http.post("/groups", json=body).status_code == 400
    assert http.patch(f"/groups/{first}", json={"mailNickname": "science2"}).status_code == 204
    assert http.post("/groups", json=body).status_code == 201


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/groups",
            {
                "displayName": "x",
                "mailEnabled": True,
                "mailNickname": "x",
                "securityEnabled": False,
                "groupTypes": "Unified",
            },
        ),
        (
            "/groups",
            {"displayName": "x", "mailEnabled": "yes", "mailNickname": "x", "securityEnabled": False},
        ),
        ("/directory/administrativeUnits", {"displayName": "a", "visibility": 5}),
        ("/groups", ["not", "an", "object"]),
    ],
)
def test_wrongly_typed_bodies_are_400(tenant: Tenant, path: str, body: Any) -> None:
    r = client(tenant).post(path, json=body)
    assert r.status_code == 400 and r.json()["error"]["message"]


def test_malformed_json_is_400(tenant: Tenant) -> None:
    r = client(tenant).post("/groups", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
