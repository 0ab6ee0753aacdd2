"""GraphClient: exact request shapes, retries, paging and typed errors (respx router as transport)."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator

import httpx
import pytest
import respx

from providers.entra.client import GraphClient, GraphResponse, RetryPolicy, encode_query, parse_retry_after
from providers.entra.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    GraphTransportError,
    NotFoundError,
    RefusedWriteError,
    ResponseLostError,
    ServerError,
    ThrottledError,
    UnauthorizedError,
    UnexpectedResponseError,
)
from reconciler.clock import VirtualClock
from reconciler.errors import DirectoryError

BASE = "https://graph.microsoft.com/v1.0"
TOKEN = "tok-SECRET-abc123"


class FakeToken:
    def __init__(self) -> None:
        self.calls = 0
        self.invalidated = 0

    def token(self) -> str:
        self.calls += 1
        return f"{TOKEN}-{self.invalidated}"

    def invalidate(self) -> None:
        self.invalidated += 1


@pytest.fixture
def router() -> Iterator[respx.Router]:
    r = respx.Router(base_url=BASE, assert_all_called=False)
    yield r


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


def make(router: respx.Router, clock: VirtualClock, **kw: object) -> GraphClient:
    http = httpx.Client(base_url=BASE, transport=httpx.MockTransport(router.handler))
    kw.setdefault("token", FakeToken())
    return GraphClient(http, clock=clock, rng=random.Random(7), **kw)  # type: ignore[arg-type]


def err_body(code: str, message: str = "boom", rid: str = "rid-1") -> dict[str, object]:
    return {"error": {"code": code, "message": message, "innerError": {"request-id": rid}}}


# ---- shapes -----------------------------------------------------------------------------------


def test_get_sends_bearer_token_and_graph_style_query(router: respx.Router, clock: VirtualClock) -> None:
    route = router.get("/users").mock(return_value=httpx.Response(200, json={"value": [{"id": "1"}]}))
    client = make(router, clock)
    body = client.get("/users", params={"$select": "id,displayName", "$filter": "mail eq 'a@b.org'"})
    assert body == {"value": [{"id": "1"}]}
    req = route.calls.last.request
    assert req.headers["Authorization"] == f"Bearer {TOKEN}-0"
    assert req.url.raw_path.decode() == "/v1.0/users?$select=id,displayName&$filter=mail%20eq%20'a@b.org'"
    assert req.url.params["$filter"] == "mail eq 'a@b.org'"
    assert req.extensions["timeout"]["read"] == RetryPolicy().timeout_seconds


def test_post_returns_response_with_lowercase_headers(router: respx.Router, clock: VirtualClock) -> None:
    route = router.post("/groups").mock(
        return_value=httpx.Response(201, json={"id": "g1"}, headers={"Request-Id": "r9", "Location": "/x"})
    )
    resp = make(router, clock).post("/groups", json={"displayName": "7A"})
    assert resp == GraphResponse(201, resp.headers, {"id": "g1"})
    assert resp.request_id == "r9"
    assert resp.location == "/x"
    assert json.loads(route.calls.last.request.content) == {"displayName": "7A"}


def test_no_token_provider_sends_no_authorization(router: respx.Router, clock: VirtualClock) -> None:
    route = router.delete("/groups/g1").mock(return_value=httpx.Response(204))
    resp = make(router, clock, token=None).delete("/groups/g1")
    assert resp.status == 204 and resp.body is None
    assert "Authorization" not in route.calls.last.request.headers


def test_encode_query_and_retry_after_parsing() -> None:
    assert encode_query({"$top": 999, "$count": True, "x": None}) == "$top=999&$count=true"
    assert parse_retry_after("2.128", 0.0) == 2.128
    assert parse_retry_after("junk", 0.0) is None
    assert parse_retry_after("-1", 0.0) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", 1445412480.0) == 10.0


# ---- retries ----------------------------------------------------------------------------------


def test_fractional_retry_after_is_slept_exactly(router: respx.Router, clock: VirtualClock) -> None:
    route = router.get("/groups").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "2.128"}, json=err_body("TooManyRequests")),
            httpx.Response(200, json={"value": []}),
        ]
    )
    make(router, clock).get("/groups")
    assert route.call_count == 2
    assert clock.slept == pytest.approx(2.128)


def test_429_without_retry_after_backs_off_with_jitter(router: respx.Router, clock: VirtualClock) -> None:
    route = router.get("/groups").mock(
        side_effect=[httpx.Response(429), httpx.Response(429), httpx.Response(200, json={})]
    )
    make(router, clock, retry=RetryPolicy(base_delay=1.0, jitter=0.5)).get("/groups")
    assert route.call_count == 3
    # attempt 1: 1 s minus up to 50 %; attempt 2: 2 s minus up to 50 %; the same seed, the same waits
    rng = random.Random(7)
    expected = 0.0
    for delay in (1.0, 2.0):
        rng.getrandbits(128)  # the client-request-id of the request before the wait
        expected += delay * (1 - 0.5 * rng.random())
    assert clock.slept == pytest.approx(expected)
    assert 1.5 <= clock.slept <= 3.0


def test_post_refused_with_503_or_lost_with_504_is_not_repeated(
    router: respx.Router, clock: VirtualClock
) -> None:
    # a throttled write may still have been applied (graph-facts §4): wait, then let the caller look
    refused = router.post("/groups").mock(
        side_effect=[httpx.Response(503, headers={"Retry-After": "1"}), httpx.Response(201, json={"id": "g"})]
    )
    with pytest.raises(RefusedWriteError):
        make(router, clock).post("/groups", json={})
    assert refused.call_count == 1 and clock.slept == pytest.approx(1.0)

    lost = router.post("/administrativeUnits").mock(
        return_value=httpx.Response(504, json=err_body("GatewayTimeout"))
    )
    with pytest.raises(ResponseLostError) as info:
        make(router, clock).post("/administrativeUnits", json={})
    assert lost.call_count == 1
    assert info.value.method == "POST" and info.value.path == "/administrativeUnits"
    assert "look for the object" in str(info.value)


def test_lost_post_after_read_timeout_is_not_retried(router: respx.Router, clock: VirtualClock) -> None:
    route = router.post("/groups").mock(side_effect=httpx.ReadTimeout("timed out"))
    with pytest.raises(ResponseLostError):
        make(router, clock).post("/groups", json={"displayName": "x"})
    assert route.call_count == 1


def test_post_is_retried_when_the_connection_never_opened(router: respx.Router, clock: VirtualClock) -> None:
    route = router.post("/groups").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(201, json={"id": "g"})]
    )
    assert make(router, clock).post("/groups", json={}).body == {"id": "g"}
    assert route.call_count == 2


def test_get_retried_after_timeout_and_5xx(router: respx.Router, clock: VirtualClock) -> None:
    route = router.get("/groups/g1").mock(
        side_effect=[
            httpx.ReadTimeout("t"),
            httpx.Response(502),
            httpx.Response(504),
            httpx.Response(200, json={"id": "g1"}),
        ]
    )
    assert make(router, clock).get("/groups/g1") == {"id": "g1"}
    assert route.call_count == 4
    assert clock.slept > 0


def test_patch_is_idempotent_and_retried_on_500(router: respx.Router, clock: VirtualClock) -> None:
    route = router.patch("/groups/g1").mock(side_effect=[httpx.Response(500), httpx.Response(204)])
    assert make(router, clock).patch("/groups/g1", json={"description": "d"}).status == 204
    assert route.call_count == 2


def test_total_time_budget_exceeded_raises_throttled(router: respx.Router, clock: VirtualClock) -> None:
    route = router.get("/groups").mock(
        return_value=httpx.Response(
            429, headers={"Retry-After": "100"}, json=err_body("TooManyRequests", rid="r-429")
        )
    )
    client = make(router, clock, retry=RetryPolicy(max_total_seconds=250))
    with pytest.raises(ThrottledError) as info:
        client.get("/groups")
    assert route.call_count == 3  # waits 100 + 100; a third wait would end past 250 s
    assert clock.slept == pytest.approx(200)
    err = info.value
    assert (err.status, err.code, err.request_id, err.method, err.path) == (
        429,
        "TooManyRequests",
        "r-429",
        "GET",
        "/groups",
    )
    assert isinstance(err, DirectoryError)


def test_max_attempts_bounds_transport_retries(router: respx.Router, clock: VirtualClock) -> None:
    route = router.get("/groups").mock(side_effect=httpx.ReadTimeout("t"))
    with pytest.raises(GraphTransportError) as info:
        make(router, clock, retry=RetryPolicy(max_attempts=3)).get("/groups")
    assert not isinstance(info.value, ResponseLostError)
    assert route.call_count == 3


def test_503_exhausted_is_a_server_error(router: respx.Router, clock: VirtualClock) -> None:
    route = router.get("/groups").mock(return_value=httpx.Response(503, headers={"Retry-After": "1"}))
    with pytest.raises(ServerError):
        make(router, clock, retry=RetryPolicy(max_throttled_attempts=4)).get("/groups")
    assert route.call_count == 4


def test_errors_without_retry_after_are_bounded_by_max_attempts(
    router: respx.Router, clock: VirtualClock
) -> None:
    route = router.get("/groups").mock(return_value=httpx.Response(504))
    with pytest.raises(ServerError):
        make(router, clock, retry=RetryPolicy(max_attempts=3)).get("/groups")
    assert route.call_count == 3


def test_401_refreshes_the_token_once(router: respx.Router, clock: VirtualClock) -> None:
    route = router.get("/groups").mock(side_effect=[httpx.Response(401), httpx.Response(200, json={})])
    tok = FakeToken()
    make(router, clock, token=tok).get("/groups")
    assert tok.invalidated == 1
    assert [c.request.headers["Authorization"] for c in route.calls] == [
        f"Bearer {TOKEN}-0",
        f"Bearer {TOKEN}-1",
    ]

    router.get("/users").mock(return_value=httpx.Response(401, json=err_body("InvalidAuthenticationToken")))
    with pytest.raises(UnauthorizedError) as info:
        make(router, clock, token=tok).get("/users")
    assert tok.invalidated == 2
    assert TOKEN not in str(info.value)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (403, ForbiddenError),
        (404, NotFoundError),
        (409, ConflictError),
        (501, ServerError),
    ],
)
def test_error_statuses_become_typed_errors(
    router: respx.Router, clock: VirtualClock, status: int, cls: type[Exception]
) -> None:
    route = router.get("/groups/g1").mock(
        return_value=httpx.Response(
            status, json=err_body("Code", "text", "rid-x"), headers={"request-id": "h"}
        )
    )
    with pytest.raises(cls) as info:
        make(router, clock).get("/groups/g1", params={"$select": "mail"})
    assert route.call_count == 1
    err = info.value
    assert err.status == status and err.code == "Code" and err.request_id == "rid-x"  # type: ignore[attr-defined]
    assert str(err).startswith("GET /groups/g1: Graph returned")
    assert "mail" not in str(err)


# ---- paging -----------------------------------------------------------------------------------


def test_paging_follows_next_links_through_empty_pages(router: respx.Router, clock: VirtualClock) -> None:
    pages = [
        {"value": [{"id": "1"}], "@odata.nextLink": f"{BASE}/groups?$skiptoken=A%3D%3D&$top=2"},
        {"value": [], "@odata.nextLink": f"{BASE}/groups?$skiptoken=B"},
        {"value": [{"id": "2"}, {"id": "3"}]},
    ]
    route = router.get("/groups").mock(side_effect=[httpx.Response(200, json=p) for p in pages])
    client = make(router, clock)
    got = client.get_all(
        "/groups", params={"$count": "true", "$top": 2}, headers={"ConsistencyLevel": "eventual"}
    )
    assert [g["id"] for g in got] == ["1", "2", "3"]
    assert route.call_count == 3
    assert all(c.request.headers["ConsistencyLevel"] == "eventual" for c in route.calls)
    assert str(route.calls[1].request.url) == f"{BASE}/groups?$skiptoken=A%3D%3D&$top=2"
    assert "$count" not in str(route.calls[2].request.url)


def test_delta_returns_the_delta_link(router: respx.Router, clock: VirtualClock) -> None:
    router.get("/groups/delta").mock(
        side_effect=[
            httpx.Response(
                200, json={"value": [{"id": "1"}], "@odata.nextLink": f"{BASE}/groups/delta?$skiptoken=x"}
            ),
            httpx.Response(
                200, json={"value": [{"id": "2"}], "@odata.deltaLink": f"{BASE}/groups/delta?$deltatoken=d"}
            ),
        ]
    )
    res = make(router, clock).collect_delta("/groups/delta", params={"$select": "id"})
    assert [i["id"] for i in res.items] == ["1", "2"]
    assert res.delta_link == f"{BASE}/groups/delta?$deltatoken=d"


def test_next_link_outside_the_base_is_refused(router: respx.Router, clock: VirtualClock) -> None:
    router.get("/groups").mock(
        return_value=httpx.Response(200, json={"value": [], "@odata.nextLink": "https://evil.example/steal"})
    )
    with pytest.raises(UnexpectedResponseError):
        make(router, clock).get_all("/groups")


def test_next_link_from_another_host_is_rebased(clock: VirtualClock) -> None:
    local = "http://127.0.0.1:8080/v1.0"
    r = respx.Router(base_url=local, assert_all_called=False)
    route = r.get("/users").mock(
        side_effect=[
            httpx.Response(
                200, json={"value": [{"id": "1"}], "@odata.nextLink": f"{BASE}/users?$skiptoken=2"}
            ),
            httpx.Response(200, json={"value": [{"id": "2"}]}),
        ]
    )
    http = httpx.Client(base_url=local, transport=httpx.MockTransport(r.handler))
    got = GraphClient(http, token=FakeToken(), clock=clock).get_all("/users")
    assert [u["id"] for u in got] == ["1", "2"]
    assert str(route.calls[1].request.url) == f"{local}/users?$skiptoken=2"


# ---- logging ----------------------------------------------------------------------------------


def test_one_info_line_per_request_without_query_values_or_token(
    router: respx.Router, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    router.get("/users").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0.5", "request-id": "r1"}),
            httpx.Response(200, json={}, headers={"request-id": "r2"}),
        ]
    )
    with caplog.at_level(logging.DEBUG, logger="providers.entra.client"):
        make(router, clock).get("/users", params={"$filter": "mail eq 'amy@oak.example'"})
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert info == [
        "GET /users?$filter=… -> 429 in 0 ms (request-id r1)",
        "GET /users?$filter=… -> 200 in 0 ms (request-id r2)",
    ]
    text = caplog.text
    assert "amy@oak.example" not in text and TOKEN not in text


# ---- errors -----------------------------------------------------------------------------------


def test_error_from_response_reads_body_then_headers() -> None:
    from providers.entra.errors import GraphError, error_from_response, redact_path

    err = error_from_response(418, {"Request-Id": "hdr-1"}, "not json", "get", "/x?$filter=a")
    assert type(err) is GraphError and err.request_id == "hdr-1" and err.code is None
    assert str(err) == "GET /x: Graph returned 418 (request-id hdr-1)"
    assert redact_path("https://graph.microsoft.com/v1.0/groups?$skiptoken=abc") == "/v1.0/groups"


def test_error_messages_never_carry_tokens_from_graph_text() -> None:
    from providers.entra.errors import error_from_response

    jwt = "eyJ0eXAiOiJKV1QiLCJhbGciOi.eyJhdWQiOiJodHRwczovL2dyYXBo.c2lnbmF0dXJl"
    body = {"error": {"code": "InvalidAuthenticationToken", "message": f"token {jwt} is bad; Bearer abc"}}
    err = error_from_response(401, {}, body, "GET", "/me")
    assert jwt not in str(err) and "abc" not in str(err) and "[redacted]" in str(err)


def test_errors_survive_pickling() -> None:
    import pickle

    from providers.entra.errors import AuthError

    err = NotFoundError(404, "Request_ResourceNotFound", "gone", "r1", "GET", "/groups/g")
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is NotFoundError and str(again) == str(err) and again.request_id == "r1"
    auth = AuthError("refused", tenant_id="t", client_id="c", error="invalid_client", hint="check it")
    assert (
        str(pickle.loads(pickle.dumps(auth)))
        == str(auth)
        == "refused (tenant t, client c): invalid_client; check it"
    )
    lost = pickle.loads(pickle.dumps(ResponseLostError("POST", "/groups", "ReadTimeout")))
    assert isinstance(lost, ResponseLostError) and lost.path == "/groups"


def test_a_post_marked_idempotent_is_retried_after_a_timeout(
    router: respx.Router, clock: VirtualClock
) -> None:
    route = router.post("/groups/g/members/$ref").mock(
        side_effect=[httpx.ReadTimeout("t"), httpx.Response(204)]
    )
    client = make(router, clock)
    resp = client.request("POST", "/groups/g/members/$ref", json={"@odata.id": "x"}, idempotent=True)
    assert resp.status == 204 and route.call_count == 2
