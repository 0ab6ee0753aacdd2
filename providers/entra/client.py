"""The Microsoft Graph HTTP client: retries, throttling, paging, typed errors, ``$batch``.

:class:`GraphClient` wraps an injected :class:`httpx.Client` whose ``base_url`` is the Graph root
with its version (``https://graph.microsoft.com/v1.0``); tests give it the emulator or a respx router.

Retry rules (graph-facts.md §5):

- 429 and 503 are retried after ``Retry-After`` (fractional seconds honoured) or, without it,
  exponential back-off with jitter. For a non-idempotent request (POST) the client waits the same
  way and then raises :class:`~providers.entra.errors.RefusedWriteError` instead of repeating it:
  a throttled write may still have been applied (graph-facts.md §4), so the caller looks first.
- 500, 502, 504 and transport errors (timeouts, dropped connections) are retried with back-off for
  idempotent methods (GET, PUT, PATCH, DELETE). For POST the outcome is unknown, so
  :class:`~providers.entra.errors.ResponseLostError` is raised: the caller must look for the object
  before retrying. A connection that was never established (connect error/timeout) is retried for
  every method, since nothing was sent.
- 401 refreshes the token once and retries.
- Run-wide (:mod:`providers.entra.retry`, shared with ``$batch``): every re-send spends the run's
  retry budget, and outage answers in a row (503, 5xx, no response) open a circuit breaker; then
  :class:`~providers.entra.errors.GraphUnavailableError` stops the run instead of each change
  retrying for minutes.
- Collection pages are checked (:func:`page_items`): a ``value`` array of objects with string ids,
  else :class:`~providers.entra.errors.MalformedResponseError` (never read as "no objects").
- All of it within ``RetryPolicy.max_total_seconds``. ``max_attempts`` bounds the tries for errors and
  for refusals without ``Retry-After``; answers that say how long to wait (``Retry-After``) are
  followed while the time budget lasts ("keep retrying while 429s continue", graph-facts.md §5), up to
  ``max_throttled_attempts``. Every wait goes through the injected clock, so a
  :class:`~reconciler.clock.VirtualClock` never really waits.

One INFO log line per HTTP request: method, path (query values dropped), status, duration, request id.
Headers, bodies and tokens are never logged.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit

import httpx

from providers.entra.batch import BatchRequest, BatchResult, run_batch
from providers.entra.coalesce import Answer, Coalescer, Item
from providers.entra.errors import (
    GraphTransportError,
    MalformedResponseError,
    RefusedWriteError,
    ResponseLostError,
    UnexpectedResponseError,
    answer_detail,
    error_from_response,
    page_items,
    redact_path,
)
from providers.entra.pacing import Pacer, PacingPolicy
from providers.entra.retry import (
    IDEMPOTENT_METHODS,
    LOST_STATUSES,
    OUTAGE_STATUSES,
    REFUSED_STATUSES,
    RetryPolicy,
    RunHealth,
    parse_retry_after,
)
from reconciler.clock import Clock, SystemClock

__all__ = [
    "IDEMPOTENT_METHODS",
    "BatchRequest",
    "BatchResult",
    "DeltaResult",
    "GraphClient",
    "GraphResponse",
    "RefreshableTokenProvider",
    "RetryPolicy",
    "RunHealth",
    "TokenProvider",
    "encode_query",
    "log_path",
    "page_items",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

_REFUSED_STATUSES = REFUSED_STATUSES
_LOST_STATUSES = LOST_STATUSES
_QUERY_SAFE = "$,'()/:@"


class TokenProvider(Protocol):
    """Gives a bearer token for Graph; called once per request, so it must cache (MSAL does)."""

    def token(self) -> str: ...


@runtime_checkable
class RefreshableTokenProvider(Protocol):
    """A token provider that can drop its cached token (used once after a 401)."""

    def token(self) -> str: ...

    def invalidate(self) -> None: ...


@dataclass(frozen=True, slots=True)
class GraphResponse:
    """A successful (2xx/3xx) response. ``headers`` has lower-case names; ``body`` is parsed JSON or None."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None

    @property
    def request_id(self) -> str | None:
        return self.headers.get("request-id") or self.headers.get("client-request-id")

    @property
    def location(self) -> str | None:
        return self.headers.get("location")


@dataclass(frozen=True, slots=True)
class DeltaResult:
    """All items of a delta round and the ``@odata.deltaLink`` to store for the next round."""

    items: tuple[dict[str, Any], ...]
    delta_link: str | None


def encode_query(params: Mapping[str, Any] | None) -> str:
    """Build a query string the way Graph documents it (``$select=id,displayName``, spaces as %20)."""
    if not params:
        return ""
    parts = []
    for k, v in params.items():
        if v is None:
            continue
        text = str(v).lower() if isinstance(v, bool) else str(v)
        parts.append(quote(k, safe="$") + "=" + quote(text, safe=_QUERY_SAFE))
    return "&".join(parts)


def log_path(url: str) -> str:
    """The path for logs: query parameter names kept, their values (e-mails, keys) dropped."""
    path = redact_path(url)
    query = urlsplit(url).query if "://" in url else (url.split("?", 1)[1] if "?" in url else "")
    if not query:
        return path
    names = [p.split("=", 1)[0] for p in query.split("&") if p]
    return path + "?" + "&".join(f"{n}=…" for n in names)


def _parse_error_body(resp: httpx.Response) -> Any:
    """An error answer's body: JSON, or None when it has none (the status still decides)."""
    if not resp.content:
        return None
    try:
        return resp.json()
    except ValueError:
        return None


def _parse_body(resp: httpx.Response, method: str, url: str) -> Any:
    """A 2xx answer's body: None when empty (204), else JSON. A body that is not JSON is malformed
    (never taken as "nothing"): :class:`MalformedResponseError`."""
    if not resp.content:
        return None
    try:
        return resp.json()
    except ValueError:
        raise MalformedResponseError(method, url, f"a {resp.status_code} answer that is not JSON") from None


class GraphClient:
    """Graph over an injected httpx client. Thread-safe; at most ``max_in_flight`` requests at once.

    Must: send ``Authorization: Bearer <token.token()>`` on each request when ``token`` is given;
    raise a :class:`~providers.entra.errors.GraphError` subclass for error statuses; never log or
    raise with headers, bodies or tokens in the text.
    """

    def __init__(
        self,
        http: httpx.Client,
        *,
        token: TokenProvider | None = None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        max_in_flight: int = 4,
        rng: random.Random | None = None,
        close_http: bool = False,
        pacing: PacingPolicy | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.http = http
        self.token_provider = token
        self.clock: Clock = clock or SystemClock()
        self.retry = retry or RetryPolicy()
        #: the run-wide retry budget and circuit breaker (one client = one run)
        self.health = RunHealth(self.retry)
        #: paces requests to Graph's quotas (providers.entra.pacing)
        self.pacer = Pacer(self.clock, pacing)
        self.max_in_flight = max_in_flight
        self.rng = rng or random.Random()
        self._close_http = close_http
        self._slots = threading.BoundedSemaphore(max_in_flight)
        #: packs the requests of concurrent changes into shared $batch calls (providers.entra.coalesce)
        self.coalescer = Coalescer(self._send_envelope, self._reserve_items, self._settle_item, self.clock,
                                   ration=lambda i: self.pacer.ration(i.method, i.url),
                                   max_in_flight=max_in_flight)  # fmt: skip
        self._rng_lock = threading.Lock()
        base = http.base_url
        self._base_origin = (base.scheme, base.host, base.port)
        self._base_path = base.path.rstrip("/")

    def __repr__(self) -> str:
        return f"GraphClient(base_url={str(self.http.base_url)!r}, max_in_flight={self.max_in_flight})"

    # ---- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        if self._close_http:
            self.http.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- verbs ---------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> GraphResponse:
        """Send one request with retries; return the 2xx/3xx response or raise a typed error.

        ``idempotent`` overrides the method's default (e.g. True for a POST that is safe to repeat).
        """
        method = method.upper()
        url = self._relative(path)
        query = encode_query(params)
        if query:
            url += ("&" if "?" in url else "?") + query
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        return self._send(method, url, json, headers, idempotent)

    def get(
        self, path: str, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> Any:
        return self.request("GET", path, params=params, headers=headers).body

    def post(self, path: str, json: Any = None, headers: Mapping[str, str] | None = None) -> GraphResponse:
        return self.request("POST", path, json=json, headers=headers)

    def patch(self, path: str, json: Any = None, headers: Mapping[str, str] | None = None) -> GraphResponse:
        return self.request("PATCH", path, json=json, headers=headers)

    def put(self, path: str, json: Any = None, headers: Mapping[str, str] | None = None) -> GraphResponse:
        return self.request("PUT", path, json=json, headers=headers)

    def delete(self, path: str, headers: Mapping[str, str] | None = None) -> GraphResponse:
        return self.request("DELETE", path, headers=headers)

    # ---- paging --------------------------------------------------------------------------------
    def iter_pages(
        self, path: str, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield each page's ``value`` list, following ``@odata.nextLink`` to the end.

        Must re-send ``headers`` (e.g. ``ConsistencyLevel``) on every page and follow a nextLink even
        from an empty page. Empty pages are not yielded.
        """
        for page in self._pages(path, params, headers):
            value = page_items(page, "GET", path)
            if value:
                yield value

    def get_all(
        self, path: str, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        return [item for page in self.iter_pages(path, params, headers) for item in page]

    def collect_delta(
        self, path: str, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> DeltaResult:
        """Follow a delta query (a delta path or a stored deltaLink) to its ``@odata.deltaLink``."""
        items: list[dict[str, Any]] = []
        delta_link: str | None = None
        for page in self._pages(path, params, headers):
            items.extend(page_items(page, "GET", path))
            link = page.get("@odata.deltaLink")
            if isinstance(link, str):
                delta_link = link
        return DeltaResult(tuple(items), delta_link)

    def _pages(
        self, path: str, params: Mapping[str, Any] | None, headers: Mapping[str, str] | None
    ) -> Iterator[dict[str, Any]]:
        body = self.request("GET", path, params=params, headers=headers).body
        seen: set[str] = set()
        while True:
            if not isinstance(body, dict):
                raise MalformedResponseError("GET", path, "a collection page that is not a JSON object")
            yield body
            next_link = body.get("@odata.nextLink")
            if not isinstance(next_link, str) or not next_link:
                return
            if next_link in seen:
                raise UnexpectedResponseError(
                    200, "NextLinkLoop", "Graph repeated a nextLink", None, "GET", path
                )
            seen.add(next_link)
            body = self.request("GET", next_link, headers=headers).body

    # ---- batching ------------------------------------------------------------------------------
    def batch(self, requests: Sequence[BatchRequest]) -> list[BatchResult]:
        """Run requests through ``$batch`` (≤ 20 per call, up to ``max_in_flight`` calls at once).

        Returns one result per request in input order; failed items are returned, not raised.
        See :func:`providers.entra.batch.run_batch`.
        """
        return run_batch(self, requests)

    def packing(self) -> contextlib.AbstractContextManager[None]:
        """Around one change (on its thread): its requests share ``$batch`` calls with the others'."""
        return self.coalescer.participant()

    # ---- internals -----------------------------------------------------------------------------
    def _send_envelope(self, items: list[dict[str, Any]]) -> tuple[int, Mapping[str, str], Any]:
        """One ``POST /$batch`` carrying packed requests (each was paced and is retried on its own)."""
        t0 = self.clock.now()
        with self._slots:
            resp = self.http.request("POST", "/$batch", json={"requests": items}, headers=self._headers(None),
                                     timeout=self.retry.timeout_seconds)  # fmt: skip
        rheaders = {k.lower(): v for k, v in resp.headers.items()}
        rid = rheaders.get("request-id") or rheaders.get("client-request-id") or "-"
        log.info("POST /$batch (%d packed) -> %d in %.0f ms (request-id %s)", len(items), resp.status_code,
                 (self.clock.now() - t0) * 1000, rid)  # fmt: skip
        body = _parse_error_body(resp)
        return resp.status_code, rheaders, body

    def _reserve_items(self, items: Sequence[Item]) -> list[int]:
        return self.pacer.reserve_many([(i.method, i.url) for i in items])

    def _settle_item(self, answer: Answer, estimate: int) -> None:
        self.pacer.after(answer.headers, estimate)
        if answer.status == 429:
            self.pacer.throttled(answer.headers, parse_retry_after(answer.headers.get("retry-after"),
                                                                   self.clock.now()))  # fmt: skip

    def _relative(self, path: str) -> str:
        """A path relative to the base URL. A full URL (nextLink) must be on the base origin and path.

        Must not send the token to another host: a nextLink elsewhere is refused.
        """
        if "://" not in path:
            return path if path.startswith("/") else "/" + path
        parts = urlsplit(path)
        base_path = self._base_path
        if not parts.path.startswith(base_path + "/"):
            raise UnexpectedResponseError(
                0, "ForeignLink", "a link points outside the Graph base URL", None, "GET", parts.path
            )
        target = httpx.URL(path)
        if (target.scheme, target.host, target.port) != self._base_origin:
            # e.g. an emulator that writes https://graph.microsoft.com/v1.0/... links: the token is
            # only ever sent to the configured base URL.
            log.debug("rebasing a link from another origin onto the Graph base URL: %s", redact_path(path))
        rel = parts.path[len(base_path) :]
        return rel + (f"?{parts.query}" if parts.query else "")

    def backoff_delay(self, attempt: int) -> float:
        with self._rng_lock:
            return self.retry.backoff(attempt, self.rng)

    def _request_id(self) -> str:
        with self._rng_lock:
            return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _headers(self, headers: Mapping[str, str] | None) -> dict[str, str]:
        out = {"client-request-id": self._request_id()}
        if headers:
            out.update(headers)
        if self.token_provider is not None:
            out["Authorization"] = "Bearer " + self.token_provider.token()
        return out

    def _send(
        self, method: str, url: str, json: Any, headers: Mapping[str, str] | None, idempotent: bool
    ) -> GraphResponse:
        policy = self.retry
        health = self.health
        deadline = self.clock.now() + policy.max_total_seconds
        attempt = 0  # every try
        failures = 0  # tries that failed without a Retry-After (bounded by max_attempts)
        refreshed = False
        shown = log_path(url)
        while True:
            health.check()  # an open circuit: nothing more is sent in this run
            attempt += 1
            sent_headers = self._headers(headers)
            envelope = url.split("?")[0] == "/$batch"
            packed = not envelope and self.coalescer.active()
            # the $batch envelope costs nothing itself: batch.py (or the coalescer) paces its items
            estimate = self.pacer.reserve(method, url) if not (envelope or packed) else 0
            t0 = self.clock.now()
            try:
                if packed:
                    item = Item(method, url, json, headers or {}, self.coalescer.hold())
                    resp = self.coalescer.exchange([item])[0].as_response()
                else:
                    with self._slots:
                        resp = self.http.request(
                            method, url, json=json, headers=sent_headers, timeout=policy.timeout_seconds
                        )
            except httpx.TransportError as exc:
                ms = (self.clock.now() - t0) * 1000
                reason = type(exc).__name__
                log.info("%s %s -> %s in %.0f ms", method, shown, reason, ms)
                health.outage(self.clock.now(), f"{method} {shown}: {reason}")
                never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
                if not (idempotent or never_sent):
                    raise ResponseLostError(method, url, reason) from None
                failures += 1
                wait = self.backoff_delay(failures)
                if failures >= policy.max_attempts or self.clock.now() + wait > deadline:
                    raise GraphTransportError(
                        method, url, f"{reason}, gave up after {attempt} attempts"
                    ) from None
                health.spend(f"{method} {shown}: {reason}")
                self.clock.sleep(wait)
                continue
            ms = (self.clock.now() - t0) * 1000
            rheaders = {k.lower(): v for k, v in resp.headers.items()}
            rid = rheaders.get("request-id") or rheaders.get("client-request-id") or "-"
            status = resp.status_code
            log.info("%s %s -> %d in %.0f ms (request-id %s)", method, shown, status, ms, rid)
            if not packed:  # a packed item was told to the pacer by the coalescer
                self.pacer.after(rheaders, estimate)
                if status == 429:
                    told = parse_retry_after(rheaders.get("retry-after"), self.clock.now())
                    self.pacer.throttled(rheaders, told)
            if status in OUTAGE_STATUSES:
                health.outage(self.clock.now(), f"{method} {shown}: {status}")
            else:
                health.healthy()
            if status < 400:
                return GraphResponse(status, rheaders, _parse_body(resp, method, url))
            body = _parse_error_body(resp)
            if status == 401 and not refreshed and isinstance(self.token_provider, RefreshableTokenProvider):
                refreshed = True
                self.token_provider.invalidate()
                continue
            if status in _REFUSED_STATUSES and not idempotent:
                # a throttled write may still have been applied (graph-facts.md §4): wait as told,
                # then let the caller look for the object before it sends the request again
                hint = parse_retry_after(rheaders.get("retry-after"), self.clock.now())
                wait = hint if hint is not None else self.backoff_delay(attempt)
                if self.clock.now() + wait <= deadline:
                    self.clock.sleep(wait)
                    detail = answer_detail(status, rheaders, body, method, url)
                    raise RefusedWriteError(method, url, detail) from None
                raise error_from_response(status, rheaders, body, method, url)
            if status in _LOST_STATUSES and not idempotent:
                lost = answer_detail(status, rheaders, body, method, url)
                raise ResponseLostError(method, url, lost) from None
            if status in _REFUSED_STATUSES or status in _LOST_STATUSES:
                hint = (
                    parse_retry_after(rheaders.get("retry-after"), self.clock.now())
                    if status in _REFUSED_STATUSES
                    else None
                )
                if hint is None:
                    failures += 1
                    wait, allowed = self.backoff_delay(failures), failures < policy.max_attempts
                else:
                    wait, allowed = hint, attempt < policy.max_throttled_attempts
                if allowed and self.clock.now() + wait <= deadline:
                    if not (status == 429 and hint is not None):
                        # throttling that says how long to wait is Graph working: no budget spent
                        health.spend(f"{method} {shown}: {status}")
                    log.debug("retrying %s %s in %.3f s (attempt %d)", method, shown, wait, attempt + 1)
                    self.clock.sleep(wait)
                    continue
            raise error_from_response(status, rheaders, body, method, url)
