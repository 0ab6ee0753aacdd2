"""Delta queries: full sync, deltaLink rounds with members@delta and @removed, expiry."""

from __future__ import annotations

from typing import Any

import httpx

from providers.emulator import EmulatorTransport, Profile, Tenant
from reconciler.clock import VirtualClock

GRAPH = "https://graph.microsoft.com/v1.0"


def setup(profile: Profile | None = None) -> tuple[Tenant, httpx.Client, VirtualClock]:
    tenant = Tenant(seed=4)
    clock = VirtualClock()
    transport = EmulatorTransport(tenant, clock=clock, profile=profile or Profile.ideal())
    return (
        tenant,
        httpx.Client(transport=transport, base_url=GRAPH, headers={"Authorization": "Bearer t"}),
        clock,
    )


def drain(http: httpx.Client, url: str) -> tuple[list[dict[str, Any]], str]:
    items: list[dict[str, Any]] = []
    while True:
        body = http.get(url).json()
        items += body["value"]
        if "@odata.deltaLink" in body:
            return items, body["@odata.deltaLink"]
        url = body["@odata.nextLink"]


def test_user_delta_full_sync_pages_then_reports_changes() -> None:
    tenant, http, _ = setup(Profile.ideal().with_(delta_page_size=10))
    ids = [tenant.add_user(f"u{i}@oak.example") for i in range(25)]
    items, link = drain(http, "/users/delta?$select=userPrincipalName")
    assert sorted(i["id"] for i in items) == sorted(ids)
    assert set(items[0]) == {"id", "userPrincipalName"}
    items, link2 = drain(http, link)
    assert items == []
    http.patch(f"/users/{ids[0]}", json={"displayName": "Renamed"})
    http.delete(f"/users/{ids[1]}")
    items, _ = drain(http, link2)
    assert {i["id"]: i.get("@removed") for i in items} == {ids[0]: None, ids[1]: {"reason": "changed"}}


def test_group_delta_members_added_and_removed() -> None:
    tenant, http, _ = setup()
    users = [tenant.add_user(f"u{i}@oak.example") for i in range(4)]
    gid = tenant.add_group("g", owners=[users[0]], members=users[:2])
    items, link = drain(http, "/groups/delta?$select=displayName,members")
    assert len(items) == 1 and {m["id"] for m in items[0]["members@delta"]} == set(users[:2])
    http.post(f"/groups/{gid}/members/$ref", json={"@odata.id": f"{GRAPH}/directoryObjects/{users[2]}"})
    http.delete(f"/groups/{gid}/members/{users[0]}/$ref")
    items, link = drain(http, link)
    assert len(items) == 1
    delta = {m["id"]: m for m in items[0]["members@delta"]}
    assert delta[users[2]] == {"@odata.type": "#microsoft.graph.user", "id": users[2]}
    assert delta[users[0]]["@removed"] == {"reason": "deleted"}
    http.delete(f"/groups/{gid}")
    items, _ = drain(http, link)
    assert items == [{"id": gid, "@removed": {"reason": "changed"}}]


def test_admin_unit_delta_both_paths() -> None:
    tenant, http, _ = setup()
    au = tenant.add_admin_unit("Oak")
    for path in ("/administrativeUnits/delta", "/directory/administrativeUnits/delta"):
        items, link = drain(http, path)
        assert [i["id"] for i in items] == [au]
    http.patch(f"/directory/administrativeUnits/{au}", json={"description": "x"})
    items, _ = drain(http, link)
    assert [i["description"] for i in items] == ["x"]


def test_deltatoken_latest_skips_existing_state() -> None:
    tenant, http, _ = setup()
    tenant.add_user("old@oak.example")
    body = http.get("/users/delta", params={"$deltatoken": "latest"}).json()
    assert body["value"] == [] and "@odata.deltaLink" in body
    new = http.post("/users", json={"userPrincipalName": "new@oak.example", "accountEnabled": True}).json()[
        "id"
    ]
    items, _ = drain(http, body["@odata.deltaLink"])
    assert [i["id"] for i in items] == [new]


def test_delta_token_expires_after_seven_days() -> None:
    tenant, http, clock = setup()
    tenant.add_user("a@oak.example")
    _, link = drain(http, "/users/delta")
    clock.advance(7 * 86400 + 1)
    r = http.get(link)
    assert r.status_code == 410 and r.json()["error"]["code"] == "syncStateNotFound"
    assert r.headers["Location"].endswith("/users/delta")


def test_delta_token_expiry_is_switchable() -> None:
    tenant, http, clock = setup(Profile.ideal().with_(delta_token_ttl=None))
    tenant.add_user("a@oak.example")
    _, link = drain(http, "/users/delta")
    clock.advance(30 * 86400)
    assert http.get(link).status_code == 200


def test_delta_hides_changes_younger_than_replication_lag() -> None:
    _, http, clock = setup(Profile.ideal().with_(replication_lag=30.0))
    _, link = drain(http, "/users/delta")
    new = http.post("/users", json={"userPrincipalName": "n@oak.example"}).json()["id"]
    items, _ = drain(http, link)
    assert items == []
    clock.advance(31)
    items, _ = drain(http, link)
    assert [i["id"] for i in items] == [new]


def test_object_hidden_during_first_full_sync_arrives_in_next_round() -> None:
    _, http, clock = setup(Profile.ideal().with_(replication_lag=30.0))
    new = http.post("/users", json={"userPrincipalName": "n@oak.example"}).json()["id"]
    items, link = drain(http, "/users/delta")
    assert items == []
    clock.advance(31)
    items, _ = drain(http, link)
    assert [i["id"] for i in items] == [new]


def test_delta_replay_converges_to_the_tenant_state() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    ops = st.lists(
        st.tuples(
            st.sampled_from(["add", "remove", "delete", "restore"]), st.integers(0, 1), st.integers(0, 5)
        ),
        max_size=25,
    )

    @settings(max_examples=60, deadline=None)
    @given(ops, st.integers(0, 3))
    def run(steps: list[tuple[str, int, int]], rounds_every: int) -> None:
        tenant, http, _ = setup()
        users = [tenant.add_user(f"u{i}@oak.example") for i in range(6)]
        groups = [tenant.add_group(f"g{i}", members=users[: i + 1]) for i in range(2)]
        model: dict[str, set[str]] = {}

        def apply_delta(link: str) -> str:
            items, new_link = drain(http, link)
            for item in items:
                if "@removed" in item:
                    model.pop(item["id"], None)
                    continue
                members = model.setdefault(item["id"], set())
                for ref in item.get("members@delta", []):
                    (members.discard if "@removed" in ref else members.add)(ref["id"])
            return new_link

        link = apply_delta("/groups/delta?$select=displayName,members")
        for n, (op, g, u) in enumerate(steps):
            gid, uid = groups[g], users[u]
            if op == "add":
                http.post(
                    f"/groups/{gid}/members/$ref", json={"@odata.id": f"{GRAPH}/directoryObjects/{uid}"}
                )
            elif op == "remove":
                http.delete(f"/groups/{gid}/members/{uid}/$ref")
            elif op == "delete":
                http.delete(f"/groups/{gid}")
            else:
                http.post(f"/directory/deletedItems/{gid}/restore")
            if rounds_every and n % rounds_every == 0:
                link = apply_delta(link)
        apply_delta(link)
        assert model == {gid: set(g.members) for gid, g in tenant.groups.items()}

    run()


def test_restored_group_reports_its_members_again() -> None:
    tenant, http, _ = setup()
    user = tenant.add_user("u@oak.example")
    gid = tenant.add_group("g", members=[user])
    _, link = drain(http, "/groups/delta?$select=displayName,members")
    http.delete(f"/groups/{gid}")
    items, link = drain(http, link)
    assert items == [{"id": gid, "@removed": {"reason": "changed"}}]
    http.post(f"/directory/deletedItems/{gid}/restore")
    items, _ = drain(http, link)
    assert [m["id"] for m in items[0]["members@delta"]] == [user]
