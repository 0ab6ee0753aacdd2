"""``$batch``: limits, unique ids, dependsOn/424, per-item status and headers, shuffled order."""

from __future__ import annotations

from typing import Any

import httpx

from providers.emulator import EmulatorTransport, Profile, Tenant
from reconciler.clock import VirtualClock

GRAPH = "https://graph.microsoft.com/v1.0"
JSON = {"Content-Type": "application/json"}


def setup(profile: Profile | None = None) -> tuple[Tenant, httpx.Client, list[str]]:
    tenant = Tenant(seed=1)
    users = [tenant.add_user(f"u{i}@oak.example") for i in range(30)]
    transport = EmulatorTransport(tenant, clock=VirtualClock(), profile=profile or Profile.ideal())
    http = httpx.Client(transport=transport, base_url=GRAPH, headers={"Authorization": "Bearer t"})
    return tenant, http, users


def batch(http: httpx.Client, requests: list[dict[str, Any]]) -> httpx.Response:
    return http.post("/$batch", json={"requests": requests})


def test_batch_runs_items_and_reports_each_status() -> None:
    tenant, http, users = setup()
    gid = tenant.add_group("g", owners=[users[0]])
    reqs = [
        {
            "id": "1",
            "method": "POST",
            "url": f"/groups/{gid}/members/$ref",
            "headers": JSON,
            "body": {"@odata.id": f"{GRAPH}/directoryObjects/{users[1]}"},
        },
        {"id": "2", "method": "GET", "url": f"/groups/{gid}/members?$select=id"},
        {"id": "3", "method": "GET", "url": "/groups/00000000-0000-4000-8000-000000000000"},
    ]
    r = batch(http, reqs)
    assert r.status_code == 200
    by_id = {x["id"]: x for x in r.json()["responses"]}
    assert by_id["1"]["status"] == 204
    assert by_id["2"]["status"] == 200 and [m["id"] for m in by_id["2"]["body"]["value"]] == [users[1]]
    assert by_id["3"]["status"] == 404 and by_id["3"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert "request-id" in by_id["3"]["headers"]


def test_more_than_20_requests_is_400() -> None:
    _, http, _ = setup()
    reqs = [{"id": str(i), "method": "GET", "url": "/users"} for i in range(21)]
    assert batch(http, reqs).status_code == 400


def test_duplicate_ids_case_insensitive_is_400() -> None:
    _, http, _ = setup()
    reqs = [{"id": "a", "method": "GET", "url": "/users"}, {"id": "A", "method": "GET", "url": "/users"}]
    assert batch(http, reqs).status_code == 400


def test_depends_on_failed_request_gives_424() -> None:
    _, http, _ = setup()
    reqs = [
        {"id": "2", "method": "GET", "url": "/users", "dependsOn": ["1"]},
        {"id": "1", "method": "GET", "url": "/groups/00000000-0000-4000-8000-000000000000"},
    ]
    by_id = {x["id"]: x["status"] for x in batch(http, reqs).json()["responses"]}
    assert by_id == {"1": 404, "2": 424}


def test_body_without_content_type_is_400_per_item() -> None:
    tenant, http, users = setup()
    gid = tenant.add_group("g", owners=[users[0]])
    reqs = [{"id": "1", "method": "PATCH", "url": f"/groups/{gid}", "body": {"description": "x"}}]
    assert batch(http, reqs).json()["responses"][0]["status"] == 400


def test_responses_are_shuffled_reproducibly_when_switched_on() -> None:
    def order(profile: Profile) -> list[str]:
        _, http, _ = setup(profile)
        reqs = [{"id": str(i), "method": "GET", "url": "/users?$top=1"} for i in range(20)]
        return [x["id"] for x in batch(http, reqs).json()["responses"]]

    plain = order(Profile.ideal())
    shuffled = order(Profile.ideal().with_(shuffle_batch_responses=True, seed=5))
    assert plain == [str(i) for i in range(20)]
    assert sorted(shuffled, key=int) == plain and shuffled != plain
    assert shuffled == order(Profile.ideal().with_(shuffle_batch_responses=True, seed=5))


def test_batch_counts_inner_requests() -> None:
    transport = EmulatorTransport(Tenant(), clock=VirtualClock())
    http = httpx.Client(transport=transport, base_url=GRAPH, headers={"Authorization": "Bearer t"})
    batch(
        http, [{"id": "1", "method": "GET", "url": "/users"}, {"id": "2", "method": "GET", "url": "/groups"}]
    )
    snap = transport.counters.snapshot()
    assert snap["batch_calls"] == 1 and snap["batch_items"] == 2
    assert snap["requests"]["GET /users"] == 1 and snap["requests"]["POST /$batch"] == 1
