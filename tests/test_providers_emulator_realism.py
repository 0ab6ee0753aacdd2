"""Realism behaviours, each shown on and off: throttling, replication lag, documented errors,
fault injection and latency."""

from __future__ import annotations

import httpx
import pytest

from providers.emulator import EmulatorTransport, FaultRule, Profile, Tenant
from reconciler.clock import VirtualClock

GRAPH = "https://graph.microsoft.com/v1.0"


def setup(
    profile: Profile, users: int = 30
) -> tuple[Tenant, httpx.Client, VirtualClock, list[str], EmulatorTransport]:
    tenant = Tenant(seed=9)
    ids = [tenant.add_user(f"u{i:02d}@oak.example") for i in range(users)]
    clock = VirtualClock()
    transport = EmulatorTransport(tenant, clock=clock, profile=profile)
    http = httpx.Client(transport=transport, base_url=GRAPH, headers={"Authorization": "Bearer t"})
    return tenant, http, clock, ids, transport


def ref(oid: str) -> dict[str, str]:
    return {"@odata.id": f"{GRAPH}/directoryObjects/{oid}"}


def group_body(nick: str, owner: str) -> dict[str, object]:
    return {
        "displayName": nick,
        "mailEnabled": True,
        "mailNickname": nick,
        "securityEnabled": False,
        "groupTypes": ["Unified"],
        "owners@odata.bind": [f"{GRAPH}/users/{owner}"],
    }


# ---- throttling -----------------------------------------------------------------------------


def test_read_quota_gives_429_with_fractional_retry_after() -> None:
    _, http, clock, _, transport = setup(Profile.ideal().with_(throttle=True, ru_per_10s=10))
    statuses = [http.get("/users").status_code for _ in range(6)]  # GET /users costs 2 RU
    assert statuses == [200] * 5 + [429]
    r = http.get("/users")
    assert r.status_code == 429 and r.json()["error"]["code"] == "TooManyRequests"
    retry = float(r.headers["Retry-After"])
    assert 0 < retry <= 2.0 and "." in r.headers["Retry-After"]
    assert r.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
    clock.advance(retry)
    assert http.get("/users").status_code == 200
    assert transport.counters.throttled == 2


def test_write_quota_per_150_seconds() -> None:
    tenant, http, clock, ids, _ = setup(Profile.ideal().with_(throttle=True, writes_per_150s=3))
    gid = tenant.add_group("g", owners=[ids[0]])
    codes = [http.post(f"/groups/{gid}/members/$ref", json=ref(u)).status_code for u in ids[1:5]]
    assert codes == [204, 204, 204, 429]
    clock.advance(50)
    assert http.post(f"/groups/{gid}/members/$ref", json=ref(ids[4])).status_code == 204


def test_quota_by_tenant_size() -> None:
    from providers.emulator.throttle import Throttle

    assert [Throttle.ru_quota(n) for n in (10, 50, 500, 501)] == [3500, 5000, 5000, 8000]


def test_resource_unit_header_costs() -> None:
    tenant, http, _, ids, _ = setup(Profile.ideal())
    gid = tenant.add_group("g", owners=[ids[0]], members=ids[1:3])
    assert http.get("/users").headers["x-ms-resource-unit"] == "2"
    assert http.get("/users", params={"$select": "id", "$top": "5"}).headers["x-ms-resource-unit"] == "1"
    assert http.get(f"/groups/{gid}/members").headers["x-ms-resource-unit"] == "3"
    assert http.get(f"/groups/{gid}", params={"$expand": "members"}).headers["x-ms-resource-unit"] == "2"


def test_batch_items_are_throttled_one_by_one() -> None:
    _, http, _, _, _ = setup(Profile.ideal().with_(throttle=True, ru_per_10s=6))
    reqs = [{"id": str(i), "method": "GET", "url": "/users"} for i in range(5)]
    r = http.post("/$batch", json={"requests": reqs})
    assert r.status_code == 200
    items = {x["id"]: x for x in r.json()["responses"]}
    assert [items[str(i)]["status"] for i in range(5)] == [200, 200, 200, 429, 429]
    assert float(items["3"]["headers"]["Retry-After"]) > 0


def test_throttling_off_never_429s() -> None:
    _, http, _, _, transport = setup(Profile.ideal())
    for _ in range(50):
        http.get("/users")
    assert transport.counters.throttled == 0


# ---- replication lag ------------------------------------------------------------------------


def test_new_object_invisible_to_list_and_filter_but_readable_by_id() -> None:
    _, http, clock, ids, _ = setup(Profile.ideal().with_(replication_lag=10.0))
    gid = http.post("/groups", json=group_body("fresh", ids[0])).json()["id"]
    assert http.get(f"/groups/{gid}").status_code == 200
    assert http.get("/groups").json()["value"] == []
    assert http.get("/groups", params={"$filter": "mailNickname eq 'fresh'"}).json()["value"] == []
    clock.advance(10)
    assert [g["id"] for g in http.get("/groups").json()["value"]] == [gid]


@pytest.mark.parametrize("profile", [Profile.ideal().with_(new_group_member_lag=3.0), Profile.quota()],
                         ids=["lag", "quota"])
def test_member_add_to_brand_new_group_fails_then_works(profile: Profile) -> None:
    # Graph refuses it every time, so the quota profile (nothing random) refuses it too
    _, http, clock, ids, _ = setup(profile)
    gid = http.post("/groups", json=group_body("fresh", ids[0])).json()["id"]
    r = http.post(f"/groups/{gid}/members/$ref", json=ref(ids[1]))
    assert r.status_code == 400 and "don't exist" in r.json()["error"]["message"]
    clock.advance(3)
    assert http.post(f"/groups/{gid}/members/$ref", json=ref(ids[1])).status_code == 204


def test_no_lag_in_ideal_profile() -> None:
    _, http, _, ids, _ = setup(Profile.ideal())
    gid = http.post("/groups", json=group_body("fresh", ids[0])).json()["id"]
    assert [g["id"] for g in http.get("/groups").json()["value"]] == [gid]
    assert http.post(f"/groups/{gid}/members/$ref", json=ref(ids[1])).status_code == 204


# ---- documented errors ----------------------------------------------------------------------


@pytest.mark.parametrize(("limit", "expected"), [(20, 400), (None, 204)])
def test_more_than_20_binds_in_patch(limit: int | None, expected: int) -> None:
    tenant, http, _, ids, _ = setup(Profile.ideal().with_(max_binds=limit))
    gid = tenant.add_group("g", owners=[ids[0]])
    binds = [f"{GRAPH}/users/{u}" for u in ids[1:22]]
    assert http.patch(f"/groups/{gid}", json={"members@odata.bind": binds}).status_code == expected


def test_more_than_20_binds_at_create() -> None:
    _, http, _, ids, _ = setup(Profile.ideal())
    body = {**group_body("big", ids[0]), "members@odata.bind": [f"{GRAPH}/users/{u}" for u in ids[1:21]]}
    assert http.post("/groups", json=body).status_code == 400  # 20 members + 1 owner


def test_patch_binds_are_all_or_nothing() -> None:
    tenant, http, _, ids, _ = setup(Profile.ideal())
    gid = tenant.add_group("g", owners=[ids[0]])
    binds = [f"{GRAPH}/users/{ids[1]}", f"{GRAPH}/users/00000000-0000-4000-8000-000000000000"]
    assert http.patch(f"/groups/{gid}", json={"members@odata.bind": binds}).status_code == 404
    assert tenant.groups[gid].members == {}


@pytest.mark.parametrize("strict", [True, False])
def test_adding_an_existing_member(strict: bool) -> None:
    tenant, http, _, ids, _ = setup(Profile.ideal().with_(reject_duplicate_member=strict))
    gid = tenant.add_group("g", owners=[ids[0]], members=[ids[1]])
    r = http.post(f"/groups/{gid}/members/$ref", json=ref(ids[1]))
    if strict:
        assert r.status_code == 400
        message = r.json()["error"]["message"]
        assert message.startswith("One or more added object references already exist")
        assert message.endswith("for the following modified properties: 'members'.")
    else:
        assert r.status_code == 204


@pytest.mark.parametrize("strict", [True, False])
def test_removing_a_non_member(strict: bool) -> None:
    tenant, http, _, ids, _ = setup(Profile.ideal().with_(reject_missing_member_removal=strict))
    gid = tenant.add_group("g", owners=[ids[0]])
    status = http.delete(f"/groups/{gid}/members/{ids[1]}/$ref").status_code
    assert status == (404 if strict else 204)


def test_adding_a_missing_object_is_404() -> None:
    tenant, http, _, ids, _ = setup(Profile.ideal())
    gid = tenant.add_group("g", owners=[ids[0]])
    r = http.post(f"/groups/{gid}/members/$ref", json=ref("00000000-0000-4000-8000-000000000000"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "Request_ResourceNotFound"


@pytest.mark.parametrize("strict", [True, False])
def test_removing_the_last_owner(strict: bool) -> None:
    tenant, http, _, ids, _ = setup(Profile.ideal().with_(protect_last_owner=strict))
    gid = tenant.add_group("g", owners=[ids[0]])
    status = http.delete(f"/groups/{gid}/owners/{ids[0]}/$ref").status_code
    assert status == (400 if strict else 204)


@pytest.mark.parametrize(("cap", "expected"), [(20, 20), (None, 25)])
def test_expand_members_is_capped(cap: int | None, expected: int) -> None:
    tenant, http, _, ids, _ = setup(Profile.ideal().with_(expand_cap=cap))
    gid = tenant.add_group("g", owners=[ids[0]], members=ids[:25])
    body = http.get(f"/groups/{gid}", params={"$expand": "members"}).json()
    assert len(body["members"]) == expected and "members@odata.nextLink" not in body


def test_m365_group_takes_users_only() -> None:
    tenant, http, _, ids, _ = setup(Profile.ideal())
    gid = tenant.add_group("g", owners=[ids[0]])
    other = tenant.add_group("h", unified=False)
    r = http.post(f"/groups/{gid}/members/$ref", json={"@odata.id": f"{GRAPH}/groups/{other}"})
    assert r.status_code == 400


@pytest.mark.parametrize("deletes", [True, False])
def test_delete_member_without_ref_deletes_the_user(deletes: bool) -> None:
    tenant, http, _, ids, _ = setup(Profile.ideal().with_(delete_member_without_ref_deletes_object=deletes))
    gid = tenant.add_group("g", owners=[ids[0]], members=[ids[1]])
    assert http.delete(f"/groups/{gid}/members/{ids[1]}").status_code == 204
    assert (ids[1] in tenant.users) is not deletes
    assert tenant.groups[gid].members == {}
    if deletes:
        deleted = http.get("/directory/deletedItems/microsoft.graph.user").json()["value"]
        assert [u["id"] for u in deleted] == [ids[1]]


# ---- faults and latency ---------------------------------------------------------------------


def test_5xx_rate_per_route_is_reproducible() -> None:
    def run(seed: int) -> list[int]:
        profile = Profile.ideal().with_(seed=seed, faults=(FaultRule(route="/users", status=503, rate=0.5),))
        _, http, _, _, _ = setup(profile)
        codes = [http.get("/users").status_code for _ in range(40)]
        assert http.get("/groups").status_code == 200  # another route is untouched
        return codes

    codes = run(1)
    assert set(codes) == {200, 503} and codes == run(1)


def test_dropped_connection_applies_nothing() -> None:
    profile = Profile.ideal().with_(faults=(FaultRule(route="/groups", method="POST", drop_rate=1.0),))
    tenant, http, _, ids, _ = setup(profile)
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/groups", json=group_body("g", ids[0]))
    assert tenant.groups == {}


def test_lost_response_applies_the_write() -> None:
    profile = Profile.ideal().with_(
        faults=(FaultRule(route="/groups", method="POST", lost_response_rate=1.0),)
    )
    tenant, http, _, ids, transport = setup(profile)
    with pytest.raises(httpx.ReadTimeout):
        http.post("/groups", json=group_body("g", ids[0]))
    assert len(tenant.groups) == 1 and transport.counters.faults == 1


def test_latency_advances_the_virtual_clock() -> None:
    _, http, clock, _, _ = setup(Profile.ideal().with_(latency=(0.5, 0.5)))
    start = clock.now()
    for _ in range(4):
        http.get("/users")
    assert clock.now() - start == pytest.approx(2.0)


def test_realistic_profile_switches_everything_on() -> None:
    p = Profile.realistic(seed=3)
    assert p.throttle and p.replication_lag > 0 and p.new_group_member_lag > 0
    assert p.team_min_group_age == 900.0 and p.faults and p.latency[1] > 0 and p.shuffle_batch_responses
    ideal = Profile.ideal()
    assert (
        not ideal.throttle and ideal.replication_lag == 0 and not ideal.faults and ideal.latency == (0.0, 0.0)
    )


def test_put_team_has_its_own_per_second_limit() -> None:
    tenant, http, clock, ids, _ = setup(Profile.ideal().with_(throttle=True))
    groups = [tenant.add_group(f"g{i}", owners=[ids[0]]) for i in range(7)]
    codes = [http.put(f"/groups/{g}/team", json={}).status_code for g in groups]
    assert codes == [201] * 6 + [429]
    clock.advance(1)
    assert http.put(f"/groups/{groups[6]}/team", json={}).status_code == 201


def test_throttle_limit_percentage_header_near_the_limit() -> None:
    _, http, _, _, _ = setup(Profile.ideal().with_(throttle=True, ru_per_10s=10))
    headers = [http.get("/users").headers for _ in range(4)]  # 2 RU each: 20 %, 40 %, 60 %, 80 % used
    assert "x-ms-throttle-limit-percentage" not in headers[2]
    assert "x-ms-throttle-limit-percentage" in headers[3]


def test_faults_hit_batch_items_one_by_one() -> None:
    profile = Profile.ideal().with_(seed=2, faults=(FaultRule(route="/users", status=504, rate=0.5),))
    _, http, _, _, _ = setup(profile)
    reqs = [{"id": str(i), "method": "GET", "url": "/users?$top=1"} for i in range(20)]
    statuses = {x["status"] for x in http.post("/$batch", json={"requests": reqs}).json()["responses"]}
    assert statuses == {200, 504}
