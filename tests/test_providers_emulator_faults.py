"""Fault profile options, each shown on and off: throttled-but-applied writes, outage windows and
5xx storms on the virtual clock, malformed collection answers; read lag on AUs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from providers.emulator import EmulatorTransport, FaultRule, Outage, Profile, Tenant
from reconciler.clock import VirtualClock

GRAPH = "https://graph.microsoft.com/v1.0"


def setup(profile: Profile) -> tuple[Tenant, httpx.Client, VirtualClock, list[str], EmulatorTransport]:
    tenant = Tenant(seed=11)
    ids = [tenant.add_user(f"u{i:02d}@oak.example") for i in range(5)]
    tenant.add_group("old", owners=[ids[0]], members=[ids[0]])
    clock = VirtualClock()
    transport = EmulatorTransport(tenant, clock=clock, profile=profile)
    http = httpx.Client(transport=transport, base_url=GRAPH, headers={"Authorization": "Bearer t"})
    return tenant, http, clock, ids, transport


def group_body(nick: str, owner: str) -> dict[str, Any]:
    return {
        "displayName": nick,
        "mailEnabled": True,
        "mailNickname": nick,
        "securityEnabled": False,
        "groupTypes": ["Unified"],
        "owners@odata.bind": [f"{GRAPH}/users/{owner}"],
    }


# ---- throttled but applied ------------------------------------------------------------------


def test_write_answered_429_is_applied_anyway() -> None:
    rule = FaultRule(route="/groups", method="POST", applied_error_rate=1.0, applied_status=429)
    tenant, http, _, ids, transport = setup(Profile.ideal().with_(faults=(rule,)))
    r = http.post("/groups", json=group_body("ghost", ids[0]))
    assert r.status_code == 429
    err = r.json()["error"]
    assert err["code"] == "TooManyRequests" and err["innerError"]["status"] == "429"
    assert float(r.headers["Retry-After"]) > 0 and "x-ms-throttle-scope" in r.headers
    assert "ghost" in tenant.nickname_index  # Graph applied it
    assert transport.counters.applied_despite_error == 1
    again = http.post("/groups", json=group_body("ghost", ids[0]))  # a naive retry collides
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "Request_MultipleObjectsWithSameKeyValue"


def test_write_answered_503_is_applied_anyway_and_reads_are_untouched() -> None:
    rule = FaultRule(applied_error_rate=1.0, applied_status=503)
    tenant, http, _, ids, _ = setup(Profile.ideal().with_(faults=(rule,)))
    gid = next(iter(tenant.groups))
    r = http.post(f"/groups/{gid}/members/$ref", json={"@odata.id": f"{GRAPH}/directoryObjects/{ids[1]}"})
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    assert r.json()["error"]["code"] == "serviceNotAvailable"
    assert ids[1] in tenant.groups[gid].members
    assert http.get(f"/groups/{gid}").status_code == 200


def test_refused_write_is_not_applied_by_applied_error_rule() -> None:
    rule = FaultRule(route="/groups", method="POST", applied_error_rate=1.0)
    tenant, http, _, _, transport = setup(Profile.ideal().with_(faults=(rule,)))
    r = http.post("/groups", json={"displayName": "x"})
    assert r.status_code == 400  # a refusal stays a refusal
    assert transport.counters.applied_despite_error == 0 and len(tenant.groups) == 1


def test_applied_error_rate_is_a_fraction() -> None:
    rule = FaultRule(route="/groups/{id}", method="PATCH", applied_error_rate=0.25)
    tenant, http, _, _, transport = setup(Profile.ideal().with_(seed=5, faults=(rule,)))
    gid = next(iter(tenant.groups))
    statuses = [http.patch(f"/groups/{gid}", json={"description": f"d{i}"}).status_code for i in range(400)]
    hits = statuses.count(429)
    assert 60 <= hits <= 140 and set(statuses) == {204, 429}
    assert transport.counters.applied_despite_error == hits
    assert tenant.groups[gid].props["description"] == "d399"


def test_strict_profile_has_throttled_but_applied_writes_and_longer_lag() -> None:
    strict = Profile.strict(seed=1)
    assert any(f.applied_error_rate > 0 for f in strict.faults)
    assert strict.replication_lag >= 20 and strict.education_rules
    assert not any(f.applied_error_rate > 0 for f in Profile.realistic(seed=1).faults)


# ---- outages and storms ---------------------------------------------------------------------


def test_outage_window_gives_persistent_503_with_retry_after_then_recovers() -> None:
    outage = Outage(start=100.0, duration=600.0, retry_after=45.0)
    tenant, http, clock, ids, transport = setup(Profile.ideal().with_(outages=(outage,)))
    assert http.get("/groups").status_code == 200
    clock.advance(100)
    for _ in range(5):
        r = http.post("/groups", json=group_body("during", ids[0]))
        assert r.status_code == 503 and r.headers["Retry-After"] == "45"
        assert r.json()["error"]["code"] == "serviceNotAvailable"
        clock.advance(float(r.headers["Retry-After"]))
    assert "during" not in tenant.nickname_index  # nothing applied during the outage
    assert http.get("/users").status_code == 503
    clock.advance(600)
    assert http.post("/groups", json=group_body("after", ids[0])).status_code == 201
    assert transport.counters.outage_answers == 6


def test_storm_is_a_partial_outage_on_some_routes() -> None:
    storm = Outage(start=0.0, duration=1000.0, rate=0.5, status=502, route="/groups*", retry_after=2)
    _, http, _, _, transport = setup(Profile.ideal().with_(seed=3, outages=(storm,)))
    statuses = [http.get("/groups").status_code for _ in range(200)]
    assert 60 <= statuses.count(502) <= 140 and set(statuses) == {200, 502}
    assert all(http.get("/users").status_code == 200 for _ in range(20))
    assert transport.counters.outage_answers == statuses.count(502)


# ---- malformed answers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("no_value", lambda body: "value" not in body),
        ("null_items", lambda body: None in body["value"]),
        ("wrong_types", lambda body: all(isinstance(v["id"], int) for v in body["value"])),
        ("value_not_list", lambda body: isinstance(body["value"], dict)),
    ],
)
def test_malformed_collection_answers(kind: str, check: Any) -> None:
    rule = FaultRule(route="/groups", method="GET", malformed_rate=1.0, malformed=kind)
    _, http, _, _, transport = setup(Profile.ideal().with_(faults=(rule,)))
    r = http.get("/groups")
    assert r.status_code == 200 and check(r.json())
    assert transport.counters.malformed_answers == 1
    assert isinstance(http.get("/users").json()["value"], list)  # other routes untouched


def test_malformed_kind_is_checked() -> None:
    with pytest.raises(ValueError, match="malformed"):
        FaultRule(malformed="garbage")


# ---- read lag on administrative units -------------------------------------------------------


def test_new_au_invisible_to_list_and_filter_but_readable_by_id() -> None:
    _, http, clock, _, _ = setup(Profile.ideal().with_(replication_lag=20.0))
    r = http.post("/directory/administrativeUnits", json={"displayName": "Oak"})
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    assert http.get(f"/directory/administrativeUnits/{aid}").status_code == 200
    assert http.get("/directory/administrativeUnits").json()["value"] == []
    flt = {"$filter": "displayName eq 'Oak'"}
    assert http.get("/directory/administrativeUnits", params=flt).json()["value"] == []
    clock.advance(20)
    assert [a["id"] for a in http.get("/directory/administrativeUnits", params=flt).json()["value"]] == [aid]
