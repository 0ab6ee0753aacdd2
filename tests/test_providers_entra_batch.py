"""The $batch executor: request shapes, matching by id, per-item retries, 424, concurrency bound."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from providers.entra.batch import BatchRequest, BatchResult
from providers.entra.client import GraphClient, RetryPolicy
from providers.entra.errors import BadRequestError, ResponseLostError, ServerError, ThrottledError
from reconciler.clock import VirtualClock

BASE = "https://graph.microsoft.com/v1.0"

Handler = Callable[[list[dict[str, Any]]], tuple[int, dict[str, str], Any]]


class FakeBatchServer:
    """A $batch endpoint: records each batch's items and answers with ``handler(items)``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.batches: list[list[dict[str, Any]]] = []
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        self.delay = 0.0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "POST" and request.url.path == "/v1.0/$batch"
        assert request.headers["Authorization"] == "Bearer t"
        items = json.loads(request.content)["requests"]
        with self.lock:
            self.batches.append(items)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.delay:
                time.sleep(self.delay)
            status, headers, body = self.handler(items)
        finally:
            with self.lock:
                self.active -= 1
        return httpx.Response(status, headers=headers, json=body)


class Tok:
    def token(self) -> str:
        return "t"


def client_for(server: FakeBatchServer, clock: VirtualClock, **kw: Any) -> GraphClient:
    http = httpx.Client(base_url=BASE, transport=httpx.MockTransport(server))
    return GraphClient(http, token=Tok(), clock=clock, rng=random.Random(1), **kw)


def ok_all(items: list[dict[str, Any]]) -> tuple[int, dict[str, str], Any]:
    return 200, {}, {"responses": [{"id": i["id"], "status": 204, "body": None} for i in items]}


def test_splits_into_batches_of_20_with_unique_ids_and_content_type() -> None:
    server = FakeBatchServer(ok_all)
    reqs = [
        BatchRequest("POST", "/groups/g/members/$ref", {"@odata.id": f"{BASE}/directoryObjects/u{n}"})
        for n in range(45)
    ]
    results = client_for(server, VirtualClock()).batch(reqs)
    # the three $batch calls run concurrently, so they may reach the server in any order
    assert sorted(len(b) for b in server.batches) == [5, 20, 20]
    first = next(b for b in server.batches if b[0]["id"] == "1")
    assert [i["id"] for i in first] == [str(n) for n in range(1, 21)]
    assert first[0] == {
        "id": "1",
        "method": "POST",
        "url": "/groups/g/members/$ref",
        "body": {"@odata.id": f"{BASE}/directoryObjects/u0"},
        "headers": {"Content-Type": "application/json"},
    }
    assert len(results) == 45 and all(r.ok and r.error is None for r in results)


def test_items_without_body_carry_only_their_own_headers() -> None:
    server = FakeBatchServer(ok_all)
    client_for(server, VirtualClock()).batch(
        [
            BatchRequest("DELETE", "/groups/g/members/u1/$ref"),
            BatchRequest("GET", "/groups?$count=true", headers={"ConsistencyLevel": "eventual"}),
        ]
    )
    assert server.batches[0] == [
        {"id": "1", "method": "DELETE", "url": "/groups/g/members/u1/$ref"},
        {
            "id": "2",
            "method": "GET",
            "url": "/groups?$count=true",
            "headers": {"ConsistencyLevel": "eventual"},
        },
    ]


def test_responses_are_matched_by_id_whatever_their_order() -> None:
    def reversed_answers(items: list[dict[str, Any]]) -> tuple[int, dict[str, str], Any]:
        resp = [{"id": i["id"], "status": 200, "body": {"echo": i["url"]}} for i in items]
        return 200, {}, {"responses": list(reversed(resp))}

    server = FakeBatchServer(reversed_answers)
    reqs = [BatchRequest("GET", f"/groups/g{n}") for n in range(5)]
    results = client_for(server, VirtualClock()).batch(reqs)
    assert [r.body["echo"] for r in results] == [f"/groups/g{n}" for n in range(5)]


def test_only_throttled_items_are_retried_after_the_longest_retry_after() -> None:
    rounds: list[int] = []

    def throttle_two(items: list[dict[str, Any]]) -> tuple[int, dict[str, str], Any]:
        rounds.append(len(items))
        out = []
        for i in items:
            if len(rounds) == 1 and i["url"] in ("/groups/g1", "/groups/g3"):
                wait = "1.5" if i["url"] == "/groups/g1" else "3.25"
                out.append({"id": i["id"], "status": 429, "headers": {"Retry-After": wait}, "body": {}})
            else:
                out.append({"id": i["id"], "status": 200, "body": {"url": i["url"]}})
        return 200, {}, {"responses": out}

    server = FakeBatchServer(throttle_two)
    clock = VirtualClock()
    results = client_for(server, clock).batch([BatchRequest("GET", f"/groups/g{n}") for n in range(5)])
    assert rounds == [5, 2]
    assert [i["url"] for i in server.batches[1]] == ["/groups/g1", "/groups/g3"]
    assert [i["id"] for i in server.batches[1]] == ["1", "2"]
    assert clock.slept == pytest.approx(3.25)
    assert [r.body["url"] for r in results] == [f"/groups/g{n}" for n in range(5)]


def test_failed_dependency_items_are_retried() -> None:
    calls = {"n": 0}

    def first_fails(items: list[dict[str, Any]]) -> tuple[int, dict[str, str], Any]:
        calls["n"] += 1
        status = 424 if calls["n"] == 1 else 204
        return 200, {}, {"responses": [{"id": i["id"], "status": status} for i in items]}

    server = FakeBatchServer(first_fails)
    results = client_for(server, VirtualClock()).batch(
        [BatchRequest("DELETE", "/groups/g/members/u/$ref")] * 3
    )
    assert calls["n"] == 2
    assert all(r.status == 204 for r in results)


def test_whole_batch_429_is_retried() -> None:
    calls = {"n": 0}

    def throttled_once(items: list[dict[str, Any]]) -> tuple[int, dict[str, str], Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            return 429, {"Retry-After": "4"}, {"error": {"code": "TooManyRequests", "message": "slow"}}
        return ok_all(items)

    clock = VirtualClock()
    server = FakeBatchServer(throttled_once)
    results = client_for(server, clock).batch([BatchRequest("PATCH", "/groups/g", {"description": "d"})])
    assert calls["n"] == 2 and clock.slept == 4.0
    assert results[0].status == 204


def test_client_errors_are_returned_not_raised() -> None:
    def bad_second(items: list[dict[str, Any]]) -> tuple[int, dict[str, str], Any]:
        out = [{"id": i["id"], "status": 204} for i in items]
        out[1] = {
            "id": "2",
            "status": 400,
            "headers": {"Content-Type": "application/json"},
            "body": {
                "error": {
                    "code": "Request_BadRequest",
                    "message": "already exist",
                    "innerError": {"request-id": "rb"},
                }
            },
        }
        return 200, {}, {"responses": out}

    results = client_for(FakeBatchServer(bad_second), VirtualClock()).batch(
        [BatchRequest("POST", "/groups/g/members/$ref", {"@odata.id": "x"})] * 3
    )
    assert [r.status for r in results] == [204, 400, 204]
    err = results[1].error
    assert isinstance(err, BadRequestError)
    assert (err.code, err.request_id, err.method, err.path) == (
        "Request_BadRequest",
        "rb",
        "POST",
        "/groups/g/members/$ref",
    )


def test_lost_items_are_retried_only_when_safe() -> None:
    calls = {"n": 0}

    def lose_first_round(items: list[dict[str, Any]]) -> tuple[int, dict[str, str], Any]:
        calls["n"] += 1
        status = 504 if calls["n"] == 1 else 201
        return 200, {}, {"responses": [{"id": i["id"], "status": status} for i in items]}

    server = FakeBatchServer(lose_first_round)
    results = client_for(server, VirtualClock()).batch(
        [
            BatchRequest("POST", "/groups", {"displayName": "x"}),
            BatchRequest("POST", "/groups/g/owners/$ref", {}),
        ]
    )
    assert [len(b) for b in server.batches] == [2, 1]
    assert server.batches[1][0]["url"] == "/groups/g/owners/$ref"
    assert results[0].status == 504 and isinstance(results[0].error, ServerError)
    assert results[1].status == 201


def test_missing_item_response_counts_as_lost() -> None:
    def drop_one(items: list[dict[str, Any]]) -> tuple[int, dict[str, str], Any]:
        return 200, {}, {"responses": [{"id": i["id"], "status": 201} for i in items[1:]]}

    results = client_for(FakeBatchServer(drop_one), VirtualClock()).batch(
        [BatchRequest("POST", "/groups", {"a": 1}), BatchRequest("POST", "/groups", {"a": 2})]
    )
    assert [r.status for r in results] == [502, 201]
    assert results[0].error is not None and results[0].error.code == "MissingBatchResponse"


def test_lost_batch_response_with_a_create_inside_raises_response_lost() -> None:
    server = FakeBatchServer(lambda items: (504, {}, None))
    with pytest.raises(ResponseLostError):
        client_for(server, VirtualClock()).batch([BatchRequest("POST", "/groups", {"a": 1})])
    assert len(server.batches) == 1


def test_retry_budget_exhausted_returns_throttled_results() -> None:
    def always_throttled(items: list[dict[str, Any]]) -> tuple[int, dict[str, str], Any]:
        return (
            200,
            {},
            {
                "responses": [
                    {
                        "id": i["id"],
                        "status": 429,
                        "headers": {"Retry-After": "60"},
                        "body": {"error": {"code": "TooManyRequests", "message": "m"}},
                    }
                    for i in items
                ]
            },
        )

    clock = VirtualClock()
    server = FakeBatchServer(always_throttled)
    results = client_for(server, clock, retry=RetryPolicy(max_total_seconds=150)).batch(
        [BatchRequest("GET", "/groups/g")]
    )
    assert len(server.batches) == 3 and clock.slept == 120
    assert isinstance(results[0].error, ThrottledError)


def test_requests_in_flight_are_bounded() -> None:
    server = FakeBatchServer(ok_all)
    server.delay = 0.02  # real time, so that batches overlap
    results = client_for(server, VirtualClock(), max_in_flight=2).batch(
        [BatchRequest("DELETE", f"/groups/g/members/u{n}/$ref") for n in range(200)]
    )
    assert len(server.batches) == 10 and len(results) == 200
    assert 1 <= server.max_active <= 2


def test_batch_result_error_and_relative_urls() -> None:
    assert BatchResult(204).error is None
    with pytest.raises(ValueError):
        BatchRequest("GET", "https://graph.microsoft.com/v1.0/groups")
