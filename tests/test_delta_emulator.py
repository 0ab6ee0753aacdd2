"""The emulator's delta queries against the Graph docs' examples and Graph's query rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from providers.emulator import EmulatorTransport, Profile, Tenant
from reconciler.clock import VirtualClock

GRAPH = "https://graph.microsoft.com/v1.0"
DOCS = Path(__file__).parent / "fixtures" / "graph-docs"


def setup(profile: Profile | None = None) -> tuple[Tenant, httpx.Client, VirtualClock]:
    tenant = Tenant(seed=7)
    clock = VirtualClock()
    transport = EmulatorTransport(tenant, clock=clock, profile=profile or Profile.ideal())
    http = httpx.Client(transport=transport, base_url=GRAPH, headers={"Authorization": "Bearer t"})
    return tenant, http, clock


def drain(http: httpx.Client, url: str) -> tuple[list[dict[str, Any]], str]:
    items: list[dict[str, Any]] = []
    while True:
        r = http.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["value"]
        if "@odata.deltaLink" in body:
            return items, body["@odata.deltaLink"]
        url = body["@odata.nextLink"]


def _doc_examples(name: str) -> list[dict[str, Any]]:
    return list(json.loads((DOCS / name).read_text(encoding="utf-8"))["examples"])


def test_group_delta_answers_in_the_docs_shape() -> None:
    """The docs' ``/groups/delta?$select=displayName,description,members`` round: same keys on the
    page, on each group and on each ``members@delta`` entry, additions and removals alike."""
    examples = _doc_examples("delta-query-groups.examples.json")
    first = next(e for e in examples if e["kind"] == "response" and "@odata.nextLink" in e.get("body", {}))
    removal = next(
        e for e in examples
        if e["kind"] == "response" and any("@removed" in str(v) for v in e.get("body", {}).get("value", []))
    )  # fmt: skip
    doc_group = first["body"]["value"][0]
    doc_refs = removal["body"]["value"][0]["members@delta"]

    tenant, http, _ = setup(Profile.ideal().with_(delta_page_size=1))
    users = [tenant.add_user(f"u{i}@oak.example") for i in range(3)]
    gid = tenant.add_group("TestGroup1", owners=[users[0]], members=users[:2])
    tenant.add_group("TestGroup2")
    page = http.get("/groups/delta", params={"$select": "displayName,description,members"}).json()
    assert set(page) == set(first["body"])  # @odata.context, @odata.nextLink, value
    ours = next(g for g in drain(http, "/groups/delta?$select=displayName,description,members")[0]
                if g["id"] == gid)  # fmt: skip
    assert set(ours) == set(doc_group)
    assert all(set(m) == {"@odata.type", "id"} for m in ours["members@delta"])

    _, link = drain(http, "/groups/delta?$select=displayName,description,members")
    http.delete(f"/groups/{gid}/members/{users[1]}/$ref")
    http.post(f"/groups/{gid}/members/$ref", json={"@odata.id": f"{GRAPH}/directoryObjects/{users[2]}"})
    items, _ = drain(http, link)
    refs = {m["id"]: m for m in items[0]["members@delta"]}
    assert set(refs[users[1]]) == set(next(r for r in doc_refs if "@removed" in r))
    assert refs[users[1]]["@removed"] == {"reason": "deleted"}
    assert set(refs[users[2]]) == set(next(r for r in doc_refs if "@removed" not in r))


def test_user_delta_answers_in_the_docs_shape() -> None:
    examples = _doc_examples("delta-query-users.examples.json")
    pages = [e["body"] for e in examples if e["kind"] == "response" and isinstance(e.get("body"), dict)]
    tenant, http, _ = setup()
    tenant.add_user("a@oak.example")
    body = http.get("/users/delta", params={"$select": "displayName,jobTitle,mobilePhone"}).json()
    last = next(p for p in pages if "@odata.deltaLink" in p)
    assert set(body) == set(last)


@pytest.mark.parametrize(
    "query",
    [
        {"$expand": "members"},
        {"$top": "10"},
        {"$orderby": "displayName"},
        {"$count": "true"},
        {"$search": '"displayName:a"'},
        {"$filter": "displayName eq 'x'"},
        {"$filter": "startswith(displayName,'x')"},
    ],
)
def test_delta_refuses_query_options_graph_refuses(query: dict[str, str]) -> None:
    tenant, http, _ = setup()
    tenant.add_group("g")
    for path in ("/groups/delta", "/users/delta", "/directory/administrativeUnits/delta"):
        r = http.get(path, params=query)
        assert r.status_code == 400, (path, query)
        assert r.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_delta_filter_by_ids_and_its_limit() -> None:
    tenant, http, _ = setup()
    gids = [tenant.add_group(f"g{i}") for i in range(3)]
    flt = f"id eq '{gids[0]}' or id eq '{gids[2]}'"
    items, link = drain(http, "/groups/delta?$filter=" + flt)
    assert sorted(i["id"] for i in items) == sorted([gids[0], gids[2]])
    http.patch(f"/groups/{gids[1]}", json={"description": "not tracked"})
    http.patch(f"/groups/{gids[2]}", json={"description": "tracked"})
    items, _ = drain(http, link)
    assert [i["id"] for i in items] == [gids[2]]  # the filter is carried in the token
    many = " or ".join(f"id eq '{i:08d}-0000-0000-0000-000000000000'" for i in range(51))
    r = http.get("/groups/delta", params={"$filter": many})
    assert r.status_code == 400


def test_owners_are_not_tracked_by_delta() -> None:
    """Graph v1.0 delta tracks ``members`` only: ``owners`` may be selected, nothing comes of it."""
    tenant, http, _ = setup()
    users = [tenant.add_user(f"u{i}@oak.example") for i in range(2)]
    gid = tenant.add_group("g", owners=[users[0]])
    items, link = drain(http, "/groups/delta?$select=displayName,owners,members")
    assert "owners@delta" not in items[0] and "owners" not in items[0]
    http.post(f"/groups/{gid}/owners/$ref", json={"@odata.id": f"{GRAPH}/directoryObjects/{users[1]}"})
    items, _ = drain(http, link)
    assert items == []


def test_admin_unit_delta_tracks_members() -> None:
    tenant, http, _ = setup()
    user = tenant.add_user("u@oak.example")
    au = tenant.add_admin_unit("Oak")
    items, link = drain(http, "/directory/administrativeUnits/delta?$select=displayName,members")
    assert items[0].get("members@delta") is None
    r = http.post(f"/directory/administrativeUnits/{au}/members/$ref",
                  json={"@odata.id": f"{GRAPH}/users/{user}"})  # fmt: skip
    assert r.status_code == 204
    items, _ = drain(http, link)
    assert items[0]["members@delta"] == [{"@odata.type": "#microsoft.graph.user", "id": user}]


def test_delta_link_expiry_is_configurable_on_the_virtual_clock() -> None:
    tenant, http, clock = setup(Profile.ideal().with_(delta_token_ttl=3600.0))
    tenant.add_group("g")
    _, link = drain(http, "/groups/delta?$select=displayName,members")
    clock.advance(3599)
    _, link = drain(http, link)  # a round renews the link
    clock.advance(3599)
    assert http.get(link).status_code == 200
    clock.advance(3601)
    r = http.get(link)
    assert r.status_code == 410
    assert r.json()["error"]["code"] == "syncStateNotFound"
    assert r.headers["Location"].endswith("/groups/delta")
