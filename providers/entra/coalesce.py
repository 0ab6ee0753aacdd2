"""Packing the requests of concurrent changes into shared ``$batch`` calls (graph-facts.md §4).

While apply runs, every change is made on its own thread, and each sends its requests one at a
time (a create, then the member PATCH, a placement, a Team). A thread that takes part
(:meth:`Coalescer.participant`, entered around each change) hands each request to the
:class:`Coalescer` instead of sending it; the requests of all participants go out together, at
most 20 to a ``POST /$batch``, as soon as every participant is waiting for an answer (or 20 are
queued, or ``window`` seconds of real time passed without that: a participant busy elsewhere never
holds the others for long). Each caller gets back its own item's answer as if it had been its own
HTTP call, so everything above (retries, refusals, lookups before a resend, lag) is unchanged:

- an item's status, headers and body are its own (a 429 item carries its own ``Retry-After``);
- a whole ``$batch`` answered with an error status gives every item that status and headers;
- a ``$batch`` whose answer was lost (a transport error) raises that error for every item;
- an item missing from the answer reads as 502 (lost).

The pacer reserves the items' tokens once per ``$batch``, on the sending thread, so one sleep
covers all of them (and the virtual clock is not advanced once per waiting thread).
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from reconciler.clock import Clock

__all__ = ["MAX_ITEMS", "Answer", "Coalescer", "Item", "item_body"]

MAX_ITEMS = 20
#: real seconds a queued request waits for the other participants before it is sent anyway
DEFAULT_WINDOW = 0.05
#: real seconds to wait, when every participant is waiting, for a change that is just starting
DEFAULT_GRACE = 0.002


@dataclass(frozen=True, slots=True)
class Item:
    """One request for a ``$batch`` item: ``url`` relative to the version root."""

    method: str
    url: str
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    #: not sent before this time (the clock's), e.g. a member bind to a group a few seconds old
    not_before: float = 0.0

    def as_json(self, item_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {"id": item_id, "method": self.method, "url": self.url}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("authorization",)}
        if self.body is not None:
            out["body"] = self.body
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"
        if headers:
            out["headers"] = headers
        return out


@dataclass(frozen=True, slots=True)
class Answer:
    """An item's answer: status, lower-case headers, parsed body (or ``None``)."""

    status: int
    headers: Mapping[str, str]
    body: Any = None

    def as_response(self) -> httpx.Response:
        """The answer as if it had been its own HTTP response (for the client's retry logic)."""
        content = b"" if self.body is None else json.dumps(self.body).encode("utf-8")
        return httpx.Response(self.status, headers=dict(self.headers), content=content)


#: sends one ``$batch`` envelope: the items as JSON -> (status, lower-case headers, parsed body);
#: raises what the transport raises
Envelope = Callable[[list[dict[str, Any]]], tuple[int, Mapping[str, str], Any]]
#: paces the items of one envelope before it is sent (returns an estimate per item), and is told
#: each item's answer headers with its estimate afterwards
Reserve = Callable[[Sequence[Item]], list[int]]
Settle = Callable[[Answer, int], None]
#: (kind, how many may share one envelope) for a rationed request (Teams routes), else None
Ration = Callable[["Item"], "tuple[int, int] | None"]


class _Call:
    """One :meth:`Coalescer.exchange` call: how many of its items are still unanswered, and the
    condition (on the coalescer's lock) its thread waits on, so that an answer wakes only it."""

    __slots__ = ("unanswered", "wake")

    def __init__(self, n: int, lock: threading.Lock) -> None:
        self.unanswered = n
        self.wake = threading.Condition(lock)


class _Ticket:
    __slots__ = ("answer", "call", "error", "item")

    def __init__(self, item: Item, call: _Call) -> None:
        self.item = item
        self.call = call
        self.answer: Answer | None = None
        self.error: BaseException | None = None


def item_body(body: Any) -> Any:
    """An item's body as JSON. Graph may send it as a JSON text or, for a non-JSON content type,
    base64; either is decoded when it holds JSON, else the body is returned unchanged."""
    if not isinstance(body, str):
        return body
    text = body.strip()
    candidates = [text]
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        candidates.append(base64.b64decode(text, validate=True).decode("utf-8"))
    for candidate in candidates:
        if candidate[:1] in ("{", "["):
            try:
                return json.loads(candidate)
            except ValueError:
                continue
    return body


class Coalescer:
    """Packs the requests of participating threads into ``$batch`` calls (thread-safe)."""

    def __init__(self, send: Envelope, reserve: Reserve, settle: Settle, clock: Clock, *,
                 ration: Ration | None = None, window: float = DEFAULT_WINDOW,
                 grace: float = DEFAULT_GRACE, max_in_flight: int = 4) -> None:  # fmt: skip
        self._send = send
        self._reserve = reserve
        self._settle = settle
        self._clock = clock
        self._sleeping = False
        self._ration: Ration = ration or (lambda item: None)
        self.window = window
        self.grace = grace
        self._lock = threading.Lock()
        #: the leader (the one caller that decides when to send) waits on this; the others on
        #: their own call's condition, so one event wakes one thread, not every participant
        self._cond = threading.Condition(self._lock)
        self._leader: _Call | None = None
        self._queue: list[_Ticket] = []
        self._participants = 0
        self._blocked = 0  # exchange calls with items still unanswered
        self._sending = 0
        self._rationed_sending = 0  # $batch calls in flight that carry rationed (Teams) requests
        self._max_in_flight = max(1, max_in_flight)
        self._local = threading.local()
        #: envelopes sent and items they carried (for logs and benchmarks)
        self.envelopes = 0
        self.items = 0

    def active(self) -> bool:
        """Whether the calling thread takes part (its requests are packed)."""
        return bool(getattr(self._local, "depth", 0))

    @contextlib.contextmanager
    def participant(self) -> Iterator[None]:
        """Around one change: the calling thread's requests are packed with the others'."""
        depth = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        if depth == 0:
            with self._cond:
                self._participants += 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0:
                with self._cond:
                    self._participants -= 1
                    self._cond.notify()  # the leader: the others may all be waiting now

    def exchange(self, items: Sequence[Item]) -> list[Answer]:
        """Send ``items`` with the other participants' requests; their answers in order. Raises
        what sending the ``$batch`` raised (for every item it carried)."""
        if not items:
            return []
        call = _Call(len(items), self._lock)
        tickets = [_Ticket(i, call) for i in items]
        with self._cond:
            self._queue.extend(tickets)
            self._blocked += 1
            self._cond.notify()  # the leader, if any, has something new to decide on
            try:
                while call.unanswered:
                    if self._leader is None:
                        self._leader = call
                    if self._leader is call:
                        self._lead()
                    else:
                        call.wake.wait(10 * self.window)  # woken when answered or to lead
            finally:
                if call.unanswered:  # left early (an exception): no longer waiting
                    call.unanswered = 0
                    self._blocked -= 1
                if self._leader is call:
                    self._hand_over()
        for t in tickets:
            if t.error is not None:
                raise t.error
        return [t.answer for t in tickets if t.answer is not None]

    # -- internals (called with the condition held) ---------------------------------------------

    def _lead(self) -> None:
        """One decision of the leader: send what can go, or wait for news."""
        due = self._due()
        if self._sending >= self._max_in_flight or not self._queue:
            self._cond.wait(self.window)
        elif due >= MAX_ITEMS:
            self._flush_locked()
        elif self._blocked >= self._participants:
            # everyone is waiting: send what is due, unless a change starting right now joins in;
            # when nothing is due yet, wait for the first that is
            if due and not self._joined(self.grace):
                self._flush_locked()
            elif not due:
                self._wait_for_due()
        elif not self._joined(self.window) and due:
            self._flush_locked()  # someone is busy elsewhere: do not hold the rest

    def _hand_over(self) -> None:
        """The leader leaves (answered, or sending): the first other caller still queued leads next."""
        leaving, self._leader = self._leader, None
        for ticket in self._queue:
            if ticket.call is not leaving and ticket.call.unanswered:
                ticket.call.wake.notify()
                return

    def _due(self) -> int:
        now = self._clock.now()
        return sum(1 for t in self._queue if t.item.not_before <= now)

    def _wait_for_due(self) -> None:
        """Sleep (on the clock) until the first queued item is due; one sleeper at a time, so a
        virtual clock moves once for everyone (the waits of all new groups overlap)."""
        if self._sleeping or self._sending:  # answers on their way may bring requests due now
            self._cond.wait(self.window)
            return
        wait = min(t.item.not_before for t in self._queue) - self._clock.now()
        if not callable(getattr(self._clock, "advance", None)):
            self._cond.wait(max(wait, 0.0))  # a real clock: anything new still wakes the leader
            return
        self._sleeping = True
        self._cond.release()
        try:
            self._clock.sleep(wait)  # a virtual clock moves once, for everyone
        finally:
            self._cond.acquire()
            self._sleeping = False

    @contextlib.contextmanager
    def not_before(self, when: float) -> Iterator[None]:
        """The calling thread's requests inside the block are not sent before ``when``."""
        previous = getattr(self._local, "not_before", 0.0)
        self._local.not_before = max(previous, when)
        try:
            yield
        finally:
            self._local.not_before = previous

    def hold(self) -> float:
        """When the calling thread's requests may be sent (see :meth:`not_before`)."""
        return float(getattr(self._local, "not_before", 0.0))

    def _joined(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a request or a participant to arrive; whether one did."""
        before = (len(self._queue), self._participants, self._sending)
        self._cond.wait(seconds)
        return (len(self._queue), self._participants, self._sending) != before

    def _take(self) -> list[_Ticket]:
        """Up to 20 queued items, in order, with no more of a rationed kind than it allows."""
        chunk: list[_Ticket] = []
        rest: list[_Ticket] = []
        used: dict[int, int] = {}
        now = self._clock.now()
        for ticket in self._queue:
            if len(chunk) >= MAX_ITEMS or ticket.item.not_before > now:
                rest.append(ticket)
                continue
            rationed = self._ration(ticket.item)
            # one $batch with rationed requests in flight at a time: the next one is paced after
            # it reached Graph, so two never arrive together
            if rationed is not None and (self._rationed_sending or used.get(rationed[0], 0) >= rationed[1]):
                rest.append(ticket)
                continue
            if rationed is not None:
                used[rationed[0]] = used.get(rationed[0], 0) + 1
            chunk.append(ticket)
        self._queue = rest
        return chunk

    def _flush_locked(self) -> None:
        chunk = self._take()
        if not chunk:  # all that is due waits for its ration (a Teams $batch in flight)
            self._cond.wait(self.window)
            return
        rationed = any(self._ration(t.item) is not None for t in chunk)
        self._rationed_sending += rationed
        self._sending += 1
        self._hand_over()  # someone else decides while this thread sends
        self._cond.release()
        try:
            self._deliver(chunk)
        finally:
            self._cond.acquire()
            self._sending -= 1
            self._rationed_sending -= rationed
            self.envelopes += 1
            self.items += len(chunk)
            for t in chunk:  # a caller whose items are all answered is no longer waiting
                if t.call.unanswered > 0:
                    t.call.unanswered -= 1
                    if t.call.unanswered == 0:
                        self._blocked -= 1
                        t.call.wake.notify()
            self._cond.notify()  # the leader: the queue may be sendable now

    def _deliver(self, chunk: list[_Ticket]) -> None:
        try:
            estimates = self._reserve([t.item for t in chunk])
            status, headers, body = self._send([t.item.as_json(str(n + 1)) for n, t in enumerate(chunk)])
        except BaseException as exc:  # every item carried by a lost $batch shares its fate
            for t in chunk:
                t.error = exc
            return
        if status >= 400:
            for t, estimate in zip(chunk, estimates, strict=True):
                t.answer = Answer(status, headers, body)
                self._settle(t.answer, estimate)
            return
        found: dict[str, dict[str, Any]] = {}
        responses = body.get("responses") if isinstance(body, dict) else None
        for entry in responses if isinstance(responses, list) else []:
            if isinstance(entry, dict) and "id" in entry:
                found[str(entry["id"]).lower()] = entry
        for n, (t, estimate) in enumerate(zip(chunk, estimates, strict=True)):
            entry = found.get(str(n + 1))
            if entry is None:
                missing = {"error": {"code": "MissingBatchResponse",
                                     "message": "Graph returned no response for this item"}}  # fmt: skip
                t.answer = Answer(502, {}, missing)
                continue
            raw = entry.get("headers")
            item_headers = {str(k).lower(): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
            try:
                item_status = int(entry.get("status", 0))
            except (TypeError, ValueError):
                item_status = 0
            t.answer = Answer(item_status, item_headers, item_body(entry.get("body")))
            self._settle(t.answer, estimate)
