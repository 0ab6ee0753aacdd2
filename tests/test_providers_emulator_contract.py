"""Contract tests: the emulator's responses have the field names and JSON types of the documented
example responses copied into ``tests/fixtures/graph-docs`` (see the README there for origins and
licences: Microsoft Graph docs, CC BY 4.0; graph-mocks, MIT).

Rule: every field of the documented body must be in the emulator's body; where both values are
non-null their JSON types must agree (recursively; for arrays, the first items are compared).
Extra fields in the emulator are allowed. Fields the emulator does not model are listed per case.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from providers.emulator import EmulatorTransport, Profile, Tenant
from reconciler.clock import VirtualClock

FIX = Path(__file__).resolve().parent / "fixtures" / "graph-docs"
GRAPH = "https://graph.microsoft.com/v1.0"
APP = "fd918e4b-c821-4efb-b50a-5eddd23afc6f"


def doc_response(name: str, index: int) -> Any:
    """The body of the ``index``-th parsed response (or json block) in ``name``.examples.json."""
    data = json.loads((FIX / f"{name}.examples.json").read_text())
    blocks = [e for e in data["examples"] if e["kind"] in ("response", "json") and e.get("body_parsed")]
    return blocks[index]["body"]


def doc_headers(name: str, index: int) -> dict[str, str]:
    data = json.loads((FIX / f"{name}.examples.json").read_text())
    return [e for e in data["examples"] if e["kind"] == "response"][index]["headers"]


def mock(method: str, url_suffix: str) -> dict[str, Any]:
    data = json.loads((FIX / "graph-mocks-extract.json").read_text())
    for m in data["mocks"]:
        if m["request"].get("method", "GET") == method and m["request"]["url"].endswith(url_suffix):
            return dict(m["response"])
    raise AssertionError(f"no mock {method} {url_suffix}")


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    return type(v).__name__


def shape_problems(doc: Any, emu: Any, path: str = "$", ignore: frozenset[str] = frozenset()) -> list[str]:
    if doc is None or emu is None:
        return []
    if _kind(doc) != _kind(emu):
        return [f"{path}: documented {_kind(doc)}, emulator {_kind(emu)}"]
    if isinstance(doc, dict):
        problems = []
        for key, value in doc.items():
            if key in ignore:
                continue
            if key not in emu:
                problems.append(f"{path}.{key}: missing in emulator")
            else:
                problems += shape_problems(value, emu[key], f"{path}.{key}", ignore)
        return problems
    if isinstance(doc, list) and doc and emu:
        return shape_problems(doc[0], _closest(doc[0], emu), f"{path}[0]", ignore)
    return []


def _closest(doc: Any, items: list[Any]) -> Any:
    """The emulator item that best matches a documented one (most shared keys), e.g. the removed
    member in ``members@delta`` when the docs show a removal first."""
    if not isinstance(doc, dict):
        return items[0]
    return max(items, key=lambda e: len(set(doc) & set(e)) if isinstance(e, dict) else -1)


def assert_shape(doc: Any, emu: Any, ignore: frozenset[str] = frozenset()) -> None:
    assert shape_problems(doc, emu, ignore=ignore) == []


class World:
    def __init__(self, profile: Profile | None = None) -> None:
        self.tenant = Tenant(seed=11)
        self.clock = VirtualClock()
        t = self.tenant
        self.users = [
            t.add_user(f"user{i}@contoso.com", f"User {i}", f"user{i}@contoso.com", f"E{i}") for i in range(3)
        ]
        for uid in self.users:
            t.users[uid].props.update(
                givenName="Given",
                surname="Sur",
                jobTitle="Teacher",
                mobilePhone="+1 425",
                officeLocation="Oak",
                preferredLanguage="en-GB",
                businessPhones=["+1 425"],
            )
        self.group = t.add_group(
            "Library Assist",
            mail_nickname="library",
            description="d",
            owners=[self.users[0]],
            members=self.users,
        )
        t.groups[self.group].props.update(
            classification="General",
            preferredDataLocation="EUR",
            onPremisesSyncEnabled=False,
            isAssignableToRole=False,
            renewedDateTime="2026-01-01T00:00:00Z",
            theme="Teal",
            expirationDateTime="2027-01-01T00:00:00Z",
        )
        self.au = t.add_admin_unit("Seattle", description="d", members=[self.users[0]])
        t.admin_units[self.au].props.update(visibility="HiddenMembership")
        transport = EmulatorTransport(t, clock=self.clock, profile=profile or Profile.ideal())
        self.transport = transport
        self.http = httpx.Client(transport=transport, base_url=GRAPH, headers={"Authorization": "Bearer t"})

    def get(self, url: str, **kw: Any) -> Any:
        r = self.http.get(url, **kw)
        assert r.status_code == 200, r.text
        return r.json()


EVENTUAL = {"ConsistencyLevel": "eventual"}


def test_group_create() -> None:
    w = World()
    body = {
        "description": "Self help community for library",
        "displayName": "Library Assist",
        "groupTypes": ["Unified"],
        "mailEnabled": True,
        "mailNickname": "library2",
        "securityEnabled": False,
    }
    r = w.http.post("/groups", json=body)
    assert r.status_code == 201
    assert_shape(doc_response("group-post-groups", 0), r.json())


def test_group_get_and_list() -> None:
    w = World()
    assert_shape(doc_response("group-get", 0), w.get(f"/groups/{w.group}"))
    assert_shape(doc_response("group-list", 0), w.get("/groups"))
    assert_shape(
        doc_response("group-list", 1), w.get("/groups?$select=id,displayName&$count=true", headers=EVENTUAL)
    )


def test_group_members_and_owners() -> None:
    w = World()
    assert_shape(doc_response("group-list-members", 0), w.get(f"/groups/{w.group}/members"))
    assert_shape(
        doc_response("group-list-members", 1),
        w.get(f"/groups/{w.group}/members?$count=true&$select=displayName,id", headers=EVENTUAL),
    )
    assert_shape(doc_response("group-list-owners", 0), w.get(f"/groups/{w.group}/owners"))


def test_users_list() -> None:
    w = World()
    assert_shape(doc_response("user-list", 4), w.get("/users?$count=true", headers=EVENTUAL))
    selected = w.get(
        "/users?$select=displayName,mail,mailNickname,otherMails,proxyAddresses,userPrincipalName"
    )
    assert_shape(doc_response("user-list", 0), selected)


def test_users_delta_pages() -> None:
    w = World(Profile.ideal().with_(delta_page_size=1))
    first = w.get("/users/delta")
    assert_shape(doc_response("user-delta", 0), first)
    assert_shape(
        doc_response("delta-query-users", 0), w.get("/users/delta?$select=displayName,givenName,surname")
    )
    link = first["@odata.nextLink"]
    while "@odata.nextLink" in (page := w.get(link)):
        link = page["@odata.nextLink"]
    assert_shape(doc_response("delta-query-users", 2), page)


def test_groups_delta_with_members() -> None:
    w = World(Profile.ideal().with_(delta_page_size=1))
    w.tenant.add_group("Second", owners=[w.users[0]], members=w.users[:2])
    first = w.get("/groups/delta?$select=displayName,description,members")
    assert_shape(doc_response("delta-query-groups", 0), first)
    assert_shape(doc_response("group-delta", 0), w.get("/groups/delta"))
    page = first
    while "@odata.nextLink" in page:
        page = w.get(page["@odata.nextLink"])
    assert_shape(doc_response("delta-query-groups", 2), page)
    w.http.delete(f"/groups/{w.group}/members/{w.users[2]}/$ref")
    w.http.post(
        f"/groups/{w.group}/members/$ref", json={"@odata.id": f"{GRAPH}/directoryObjects/{w.users[2]}"}
    )
    w.http.delete(f"/groups/{w.group}/members/{w.users[1]}/$ref")
    changes = w.get(page["@odata.deltaLink"])
    assert_shape(doc_response("delta-query-groups", 4), changes)
    mocked = mock("GET", "/groups/delta")["body"]
    assert_shape(mocked, w.get("/groups/delta"))


def test_admin_units() -> None:
    w = World()
    r = w.http.post(
        "/directory/administrativeUnits",
        json={
            "displayName": "Seattle District Technical Schools",
            "description": "x",
            "visibility": "HiddenMembership",
        },
    )
    assert r.status_code == 201
    assert_shape(doc_response("administrativeunit-post-administrativeunits", 0), r.json())
    assert_shape(mock("POST", "/directory/administrativeUnits")["body"], r.json())
    assert_shape(doc_response("administrativeunit-get", 0), w.get(f"/directory/administrativeUnits/{w.au}"))
    assert_shape(doc_response("administrativeunit-list", 0), w.get("/directory/administrativeUnits"))


def test_team_put_get_and_post() -> None:
    w = World()
    r = w.http.put(f"/groups/{w.group}/team", json={})
    assert r.status_code == 201
    assert_shape(doc_response("team-put-teams", 0), r.json())
    assert_shape(mock("PUT", "/groups/*/team")["body"], r.json())
    assert_shape(doc_response("team-get", 0), w.get(f"/teams/{w.group}"))
    other = w.tenant.add_group("Other", owners=[w.users[0]])
    r = w.http.post(
        "/teams",
        json={
            "template@odata.bind": f"{GRAPH}/teamsTemplates('standard')",
            "group@odata.bind": f"{GRAPH}/groups('{other}')",
        },
    )
    assert r.status_code == 202
    documented = {h.lower() for h in doc_headers("team-post", 0)}
    assert documented <= {h.lower() for h in r.headers}
    archive = w.http.post(f"/teams/{w.group}/archive")
    assert archive.status_code == mock("POST", "/teams/*/archive")["statusCode"]
    assert {h["name"].lower() for h in mock("POST", "/teams/*/archive")["headers"]} <= set(archive.headers)


def test_extension_properties() -> None:
    w = World()
    r = w.http.post(
        f"/applications(appId='{APP}')/extensionProperties",
        json={"name": "jobGroup", "dataType": "String", "targetObjects": ["User"]},
    )
    assert r.status_code == 201
    assert_shape(mock("POST", "/applications/*/extensionProperties")["body"], r.json())
    assert_shape(
        mock("GET", "/applications/*/extensionProperties")["body"],
        w.get(f"/applications(appId='{APP}')/extensionProperties"),
    )


def test_deleted_items_and_restore() -> None:
    w = World()
    w.http.delete(f"/groups/{w.group}")
    listed = w.get("/directory/deletedItems/microsoft.graph.group")
    assert_shape(mock("GET", "/directory/deletedItems/microsoft.graph.group")["body"], listed)
    selected = w.get(
        "/directory/deletedItems/microsoft.graph.group?$count=true&$select=id,DisplayName,deletedDateTime",
        headers=EVENTUAL,
    )
    assert_shape(mock("GET", "deletedDateTime asc&$select=id,DisplayName,deletedDateTime")["body"], selected)
    assert_shape(
        mock("GET", "/directory/deletedItems/*")["body"], w.get(f"/directory/deletedItems/{w.group}")
    )
    r = w.http.post(f"/directory/deletedItems/{w.group}/restore")
    assert_shape(mock("POST", "/directory/deletedItems/*/restore")["body"], r.json())


def test_batch_response() -> None:
    w = World()
    r = w.http.post(
        "/$batch",
        json={
            "requests": [
                {"id": "1", "method": "GET", "url": f"/groups/{w.group}/members?$top=1"},
                {"id": "2", "method": "GET", "url": "/groups/00000000-0000-4000-8000-000000000000"},
            ]
        },
    )
    documented = doc_response("json-batching-2025", 0)
    emulated = r.json()
    ok = {x["id"]: x for x in emulated["responses"]}
    role_fields = frozenset(
        {"deletedDateTime", "description", "roleTemplateId"}
    )  # a directoryRole, not a user
    assert_shape(documented["responses"][0], ok["1"], ignore=role_fields)
    assert_shape(
        documented["responses"][1],
        ok["2"],
        ignore=frozenset({"X-ProxyCluster", "X-OfficeCluster", "X-Tasks-CorrelationId"}),
    )
    planner_headers = frozenset({"X-ProxyCluster", "X-OfficeCluster", "X-Tasks-CorrelationId"})
    assert_shape(documented, emulated, ignore=planner_headers | role_fields)


def test_error_and_throttling_bodies() -> None:
    w = World(Profile.ideal().with_(throttle=True, ru_per_10s=3))
    missing = w.http.get("/groups/00000000-0000-4000-8000-000000000000")
    batch_error = doc_response("json-batching-2025", 0)["responses"][1]["body"]
    assert_shape(batch_error, missing.json())
    assert set(doc_response("errors", 0)["error"]) - {"innerError"} <= set(missing.json()["error"])
    while (r := w.http.get("/users")).status_code != 429:
        pass
    assert_shape(doc_response("throttling", 0), r.json())
    assert set(doc_headers("throttling", 0)) <= set(r.headers.keys()) | {"Content-Type", "Retry-After"}
    assert "retry-after" in r.headers


def test_shape_checker_catches_differences() -> None:
    assert shape_problems({"a": 1, "b": [{"c": "x"}]}, {"a": "1", "b": [{"d": 1}]}) == [
        "$.a: documented number, emulator str",
        "$.b[0].c: missing in emulator",
    ]


@pytest.mark.parametrize("name", sorted(p.name for p in FIX.glob("*.json")))
def test_fixture_files_name_their_licence(name: str) -> None:
    data = json.loads((FIX / name).read_text())
    assert "licence" in data and ("CC" in data["licence"] or "MIT" in data["licence"])


# ---- the v1.0 CSDL: every field the emulator returns exists, with a matching JSON type ---------

_EDM_KIND = {
    "Edm.String": "str",
    "Edm.Boolean": "boolean",
    "Edm.Int32": "number",
    "Edm.Int64": "number",
    "Edm.DateTimeOffset": "str",
    "Edm.Guid": "str",
    "Edm.Binary": "str",
    "Edm.Double": "number",
}


def csdl_properties(type_name: str) -> dict[str, str]:
    """Property name -> JSON kind (``str``, ``boolean``, ``number``, ``list``, ``dict``) incl. base types."""
    import xml.etree.ElementTree as ET

    ns = "{http://docs.oasis-open.org/odata/ns/edm}"
    root = ET.parse(FIX / "csdl-extract.xml").getroot()
    types = {e.get("Name"): e for e in root.iter(f"{ns}EntityType")}
    props: dict[str, str] = {}
    current: str | None = type_name
    while current:
        element = types[current]
        for p in element.iter(f"{ns}Property"):
            edm = p.get("Type", "")
            kind = "list" if edm.startswith("Collection(") else _EDM_KIND.get(edm, "enum-or-complex")
            props[str(p.get("Name"))] = kind
        base = element.get("BaseType")
        current = base.split(".")[-1] if base else None
    return props


# In documented responses (group-post-groups and group-get; team-get) but not in the 2026 v1.0 CSDL.
DOCUMENTED_NOT_IN_CSDL = frozenset({"creationOptions", "discoverySettings"})


def csdl_problems(type_name: str, body: dict[str, Any]) -> list[str]:
    props = csdl_properties(type_name)
    problems = []
    for key, value in body.items():
        if key.startswith(("@odata.", "extension_")) or key in DOCUMENTED_NOT_IN_CSDL:
            continue
        if key not in props:
            problems.append(f"{key}: not a property of {type_name}")
            continue
        expected = props[key]
        if value is None or expected == "enum-or-complex":
            if expected == "enum-or-complex" and value is not None and not isinstance(value, str | dict):
                problems.append(f"{key}: {_kind(value)} for an enum or complex type")
            continue
        if _kind(value) != expected:
            problems.append(f"{key}: CSDL {expected}, emulator {_kind(value)}")
    return problems


def test_csdl_covers_every_emulated_field() -> None:
    w = World()
    ext = w.tenant.register_extension(APP, "tag")
    w.http.patch(f"/groups/{w.group}", json={ext: "x"})
    w.http.put(f"/groups/{w.group}/team", json={})
    user_fields = (
        "id,displayName,userPrincipalName,mail,employeeId,accountEnabled,givenName,surname,otherMails,"
    )
    user_fields += (
        "proxyAddresses,mailNickname,userType,createdDateTime,businessPhones,usageLocation,department"
    )
    assert csdl_problems("user", w.get(f"/users/{w.users[0]}")) == []
    assert csdl_problems("user", w.get(f"/users/{w.users[0]}?$select={user_fields}")) == []
    assert csdl_problems("group", w.get(f"/groups/{w.group}")) == []
    assert csdl_problems("administrativeUnit", w.get(f"/directory/administrativeUnits/{w.au}")) == []
    assert csdl_problems("team", w.get(f"/teams/{w.group}")) == []
    definition = w.get(f"/applications(appId='{APP}')/extensionProperties")["value"][0]
    assert csdl_problems("extensionProperty", definition) == []


def test_teams_async_operation_has_exactly_the_csdl_fields() -> None:
    w = World()
    w.http.put(f"/groups/{w.group}/team", json={})
    op = w.get(w.http.post(f"/teams/{w.group}/archive").headers["Location"])
    assert csdl_problems("teamsAsyncOperation", op) == []
    assert set(csdl_properties("teamsAsyncOperation")) == {k for k in op if not k.startswith("@odata.")}
