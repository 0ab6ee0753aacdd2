"""The ``$batch`` executor (graph-facts.md §4).

- At most 20 requests per ``POST /$batch``, ids unique in the batch ("1".."20"), relative urls,
  ``Content-Type`` set on every item that has a body.
- Responses are matched by id, whatever their order; an item without a response counts as lost.
- Items answered 429 or 503 (refused) and 424 (failed dependency, or the whole batch throttled as an
  older Graph page describes) are retried alone, after the longest ``Retry-After`` among them (or
  back-off with jitter). 500/502/504 items are retried only when repeating them is safe: idempotent
  methods and ``POST .../$ref`` (a repeated add answers "already exists").
- A whole-batch 429/503 is retried by the client like any request.
- Up to ``client.max_in_flight`` batches run at once (a thread pool).
- Failed items are returned with their error, never raised; results come back in input order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from providers.entra.coalesce import Item, item_body
from providers.entra.errors import GraphError, error_from_response
from providers.entra.retry import (
    IDEMPOTENT_METHODS,
    OUTAGE_STATUSES,
    RetryPolicy,
    RunHealth,
    parse_retry_after,
)
from reconciler.clock import Clock

__all__ = ["MAX_BATCH", "BatchClient", "BatchRequest", "BatchResult", "run_batch"]

log = logging.getLogger(__name__)

MAX_BATCH = 20
_REFUSED = frozenset({424, 429, 503})
_LOST = frozenset({500, 502, 504})


class BatchClient(Protocol):
    """What the executor needs of :class:`providers.entra.client.GraphClient` (no import cycle)."""

    retry: RetryPolicy
    health: RunHealth
    clock: Clock
    max_in_flight: int

    def request(
        self, method: str, path: str, *, json: Any = None, idempotent: bool | None = None
    ) -> Any: ...

    def backoff_delay(self, attempt: int) -> float: ...


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One request inside ``$batch``. ``url`` is relative to the version root, e.g. ``/groups/{id}``."""

    method: str
    url: str
    body: Any = None
    headers: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if "://" in self.url:
            raise ValueError(f"batch urls must be relative to the Graph version root, got {self.url!r}")


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The answer to one batch item. ``headers`` has lower-case names."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    method: str = ""
    url: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 400

    @property
    def error(self) -> GraphError | None:
        if self.ok:
            return None
        return error_from_response(self.status, self.headers, self.body, self.method, self.url)


def _retry_safe(req: BatchRequest, status: int) -> bool:
    if status in _REFUSED:
        return True
    if status in _LOST:
        method = req.method.upper()
        return method in IDEMPOTENT_METHODS or (method == "POST" and req.url.split("?")[0].endswith("/$ref"))
    return False


def _item_json(item_id: str, req: BatchRequest) -> dict[str, Any]:
    return Item(req.method.upper(), req.url, req.body, dict(req.headers or {})).as_json(item_id)


def _missing(req: BatchRequest) -> BatchResult:
    body = {"error": {"code": "MissingBatchResponse", "message": "Graph returned no response for this item"}}
    return BatchResult(502, {}, body, req.method.upper(), req.url)


def _packed(client: BatchClient) -> Any:
    """The client's coalescer when the calling thread's requests are packed with others', else None."""
    coalescer = getattr(client, "coalescer", None)
    return coalescer if coalescer is not None and coalescer.active() else None


def _send_packed(coalescer: Any, reqs: Sequence[BatchRequest]) -> list[BatchResult]:
    """The requests as items of the ``$batch`` calls the coalescer sends for every change in
    progress (it paces them); a lost ``$batch`` reads as each item lost."""
    hold = coalescer.hold()
    items = [Item(r.method.upper(), r.url, r.body, dict(r.headers or {}), hold) for r in reqs]
    try:
        answers = coalescer.exchange(items)
    except httpx.TransportError:
        return [_missing(r) for r in reqs]
    return [BatchResult(a.status, dict(a.headers), a.body, r.method.upper(), r.url)
            for a, r in zip(answers, reqs, strict=True)]  # fmt: skip


def _send_once(client: BatchClient, reqs: Sequence[BatchRequest]) -> list[BatchResult]:
    """One ``POST /$batch``; results in the order of ``reqs``."""
    coalescer = _packed(client)
    if coalescer is not None:
        return _send_packed(coalescer, reqs)
    payload = {"requests": [_item_json(str(i + 1), r) for i, r in enumerate(reqs)]}
    safe_to_repeat = all(_retry_safe(r, 504) for r in reqs)
    pacer = getattr(client, "pacer", None)
    estimates = pacer.reserve_many([(r.method, r.url) for r in reqs]) if pacer is not None else []
    resp = client.request("POST", "/$batch", json=payload, idempotent=safe_to_repeat)
    answers: dict[str, dict[str, Any]] = {}
    responses = resp.body.get("responses") if isinstance(resp.body, dict) else None
    for item in responses if isinstance(responses, list) else []:
        if isinstance(item, dict) and "id" in item:
            answers[str(item["id"]).lower()] = item
    results = []
    for i, r in enumerate(reqs):
        item = answers.get(str(i + 1))
        if item is None:
            results.append(_missing(r))
            continue
        raw_headers = item.get("headers")
        headers = (
            {str(k).lower(): str(v) for k, v in raw_headers.items()} if isinstance(raw_headers, dict) else {}
        )
        try:
            status = int(item.get("status", 0))
        except (TypeError, ValueError):
            status = 0
        results.append(BatchResult(status, headers, item_body(item.get("body")), r.method.upper(), r.url))
        if pacer is not None:
            pacer.after(headers, estimates[i])
            if status == 429:
                pacer.throttled(headers, parse_retry_after(headers.get("retry-after"), client.clock.now()))
    return results


def _run_chunk(client: BatchClient, reqs: Sequence[BatchRequest]) -> list[BatchResult]:
    policy = client.retry
    deadline = client.clock.now() + policy.max_total_seconds
    results: list[BatchResult | None] = [None] * len(reqs)
    pending = list(range(len(reqs)))
    rounds = 0
    while pending:
        rounds += 1
        answered = _send_once(client, [reqs[i] for i in pending])
        retry: list[int] = []
        waits: list[float] = []
        for idx, res in zip(pending, answered, strict=True):
            results[idx] = res
            if _retry_safe(reqs[idx], res.status):
                retry.append(idx)
                hint = parse_retry_after(res.headers.get("retry-after"), client.clock.now())
                if hint is not None:
                    waits.append(hint)
        if not retry:
            break
        if all(res.status in OUTAGE_STATUSES for res in answered):
            # every item of the round met an outage: one more step towards the circuit breaker
            client.health.outage(client.clock.now(), f"$batch items answered {answered[0].status}")
        wait = max(waits) if waits else client.backoff_delay(rounds)
        limit = policy.max_throttled_attempts if waits else policy.max_attempts
        if rounds >= limit or client.clock.now() + wait > deadline:
            log.warning("giving up on %d batch item(s) after %d round(s)", len(retry), rounds)
            break
        if not (waits and all(getattr(results[i], "status", 0) == 429 for i in retry)):
            # throttling that says how long to wait is Graph working: no budget spent
            client.health.spend(f"$batch ({len(retry)} item(s))")
        log.debug("retrying %d of %d batch item(s) in %.3f s", len(retry), len(pending), wait)
        client.clock.sleep(wait)
        pending = retry
    return [r if r is not None else _missing(reqs[i]) for i, r in enumerate(results)]


def run_batch(client: BatchClient, requests: Sequence[BatchRequest]) -> list[BatchResult]:
    """Run ``requests`` through ``$batch``; one :class:`BatchResult` per request, in input order.

    Must not raise for a failed item (its result carries the error). May raise what
    :meth:`GraphClient.request` raises for the ``$batch`` call itself (e.g. ResponseLostError when a
    batch holding a non-repeatable POST lost its response, ThrottledError when the budget ran out).
    """
    reqs = list(requests)
    if not reqs:
        return []
    if _packed(client) is not None:  # packed with other changes' requests, 20 to a $batch
        return _run_chunk(client, reqs)
    chunks = [reqs[i: i + MAX_BATCH] for i in range(0, len(reqs), MAX_BATCH)]
    if len(chunks) == 1 or client.max_in_flight == 1:
        parts = [_run_chunk(client, c) for c in chunks]
    else:
        with ThreadPoolExecutor(max_workers=min(client.max_in_flight, len(chunks)),
                                thread_name_prefix="graph-batch") as pool:
            parts = list(pool.map(lambda c: _run_chunk(client, c), chunks))
    return [r for part in parts for r in part]
