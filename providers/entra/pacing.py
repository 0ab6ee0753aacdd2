"""Client-side pacing to Graph's documented quotas (graph-facts §3, §5), so that a 429 is rare
instead of the way the client finds the limit.

The :class:`Pacer` keeps the same token buckets Graph does, on the client's clock (full at the
start, as Graph's are), refilling a little below the documented rates (``margin``):

- writes per app and tenant: 3,000 per 150 s (every POST, PATCH, PUT and DELETE; each request
  inside ``$batch`` counts, the ``$batch`` envelope does not);
- resource units per app and tenant per 10 s: 3,500 / 5,000 / 8,000 by tenant size (under 50,
  up to 500, more users), told by :meth:`Pacer.tenant_users` once the users are read (3,500 until
  then); a request's cost is estimated with Graph's cost table before it is sent and corrected by
  the ``x-ms-resource-unit`` header of the answer;
- the Teams routes' own per-second limits (``POST /teams`` 10/s, ``PUT /groups/{id}/team`` 6/s,
  archive and unarchive 30/s).

Every request is counted from the first; the pacer starts *waiting* once Graph says the quota
matters: the first answer carrying ``x-ms-throttle-limit-percentage`` (Graph sends it from 80 % of
a limit on) or the first 429 arms it, and brings the local buckets down to the usage Graph
reported. From then on a request reserves its tokens before it is sent and sleeps until they are
there; concurrent senders queue behind each other's reservations. So a small run never waits, and
a service that enforces no quota (the emulator's ideal profile) is never paced. A 429 that happens
anyway (another app of the tenant, a quota lower than documented) pauses the bucket named by
``x-ms-throttle-scope`` for everyone until its ``Retry-After`` has passed. Pacing never refuses a
request: it only waits.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from reconciler.clock import Clock

__all__ = ["Pacer", "PacingPolicy", "estimate_cost"]

log = logging.getLogger(__name__)

_WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_GUID = r"[^/?]+"
_COSTS = (
    (re.compile(r"^/users/?$"), 2),
    (re.compile(rf"^/groups/{_GUID}/members/?$"), 3),
    (re.compile(rf"^/groups/{_GUID}/transitiveMembers/?$"), 5),
)
_TEAMS = (
    ("POST", re.compile(r"^/teams/?$"), 10),
    ("PUT", re.compile(rf"^/groups/{_GUID}/team/?$"), 6),
    ("POST", re.compile(rf"^/teams/{_GUID}/(?:archive|unarchive)/?$"), 30),
)


def _number(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def estimate_cost(method: str, url: str) -> int:
    """Graph's resource-unit cost of a request (graph-facts §5): base cost, ``$select`` -1,
    ``$expand`` +1, ``$top`` under 20 -1, at least 1."""
    parts = urlsplit(url)
    path = parts.path
    cost = 1
    if method == "GET":
        cost = next((c for pattern, c in _COSTS if pattern.match(path)), 1)
    elif method == "POST" and path.rstrip("/").endswith("/directoryObjects/getByIds"):
        cost = 5
    query = parts.query
    if "$select=" in query:
        cost -= 1
    if "$expand=" in query:
        cost += 1
    m = re.search(r"\$top=(\d+)", query)
    if m and int(m.group(1)) < 20:
        cost -= 1
    return max(cost, 1)


@dataclass(frozen=True, slots=True)
class PacingPolicy:
    """The quotas paced to; ``margin`` is the fraction of each documented refill rate used."""

    enabled: bool = True
    writes_per_150s: int = 3000
    ru_small: int = 3500
    ru_medium: int = 5000
    ru_large: int = 8000
    margin: float = 0.99

    def ru_for(self, users: int) -> int:
        return self.ru_small if users < 50 else self.ru_medium if users <= 500 else self.ru_large


class _Bucket:
    """A token bucket that hands out reservations: ``reserve`` says when the tokens are there."""

    def __init__(self, capacity: float, window: float, margin: float = 1.0) -> None:
        self.capacity = capacity
        self.rate = capacity * margin / window
        self.level = capacity
        self.stamp: float | None = None
        self.paused_until = 0.0

    def _refill(self, now: float) -> None:
        if self.stamp is not None and now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        if self.stamp is None or now > self.stamp:
            self.stamp = now

    def reserve(self, amount: float, now: float) -> float:
        self._refill(now)
        self.level -= amount
        ready = now if self.level >= 0 else now + (-self.level) / self.rate
        return max(ready, self.paused_until)

    def adjust(self, amount: float) -> None:
        self.level -= amount

    def resize(self, capacity: float, window: float, margin: float, now: float) -> None:
        self._refill(now)
        used = self.capacity - self.level
        self.capacity, self.rate = capacity, capacity * margin / window
        self.level = capacity - used

    def at_least_used(self, usage: float, now: float) -> None:
        self._refill(now)
        self.level = min(self.level, (1.0 - usage) * self.capacity)

    def pause_until(self, when: float) -> None:
        """Nothing more until ``when``."""
        self.paused_until = max(self.paused_until, when)


class Pacer:
    """Paces one client's requests (thread-safe). ``before`` waits for a request's tokens;
    ``after`` corrects the estimate; ``throttled`` pauses a bucket after a 429."""

    def __init__(self, clock: Clock, policy: PacingPolicy | None = None) -> None:
        self.clock = clock
        self.policy = policy or PacingPolicy()
        m = self.policy.margin
        self._lock = threading.Lock()
        self._writes = _Bucket(self.policy.writes_per_150s, 150.0, m)
        self._ru = _Bucket(self.policy.ru_small, 10.0, m)
        self._teams = {name: _Bucket(rps, 1.0, m) for name, (_, _, rps) in enumerate(_TEAMS)}
        #: seconds slept for pacing (for benchmarks and logs)
        self.waited = 0.0
        #: waiting starts once Graph has said a quota is close (or answered 429)
        self.armed = False

    def tenant_users(self, users: int) -> None:
        """The tenant's size sets its resource-unit quota."""
        with self._lock:
            self._ru.resize(self.policy.ru_for(users), 10.0, self.policy.margin, self.clock.now())

    def reserve(self, method: str, url: str) -> int:
        """Reserve one request's tokens and wait for them; returns the estimated cost."""
        method = method.upper()
        cost = estimate_cost(method, url)
        if not self.policy.enabled:
            return cost
        path = urlsplit(url).path
        with self._lock:
            now = self.clock.now()
            ready = self._ru.reserve(cost, now)
            if method in _WRITES:
                ready = max(ready, self._writes.reserve(1, now))
            teams = self._team_route(method, path)
            if teams is not None:
                ready = max(ready, self._teams[teams].reserve(1, now))
            armed = self.armed
        if armed or teams is not None:  # the Teams limits are per second: always paced
            self._wait_until(ready)
        return cost

    @staticmethod
    def _team_route(method: str, path: str) -> int | None:
        for n, (verb, pattern, _) in enumerate(_TEAMS):
            if verb == method and pattern.match(path):
                return n
        return None

    def ration(self, method: str, url: str) -> tuple[int, int] | None:
        """For a request on a Teams route: (route, how many may share one ``$batch``): half its
        per-second limit, so a batch never holds more than Graph takes at once."""
        route = self._team_route(method.upper(), urlsplit(url).path)
        if route is None:
            return None
        return route, max(1, _TEAMS[route][2] // 2)

    def reserve_many(self, items: list[tuple[str, str]]) -> list[int]:
        """Reserve the requests of one ``$batch`` at once (each inner request counts)."""
        return [self.reserve(method, url) for method, url in items]

    def after(self, headers: Mapping[str, str], estimated: int) -> None:
        """Correct the resource units by what Graph says the request cost; arm the pacer when Graph
        says a limit is close (``x-ms-throttle-limit-percentage``)."""
        if not self.policy.enabled:
            return
        usage = _number(headers.get("x-ms-throttle-limit-percentage"))
        if usage is not None:
            self._arm(min(max(usage if usage <= 1 else usage / 100, 0.0), 1.0))
        raw = headers.get("x-ms-resource-unit")
        if raw is None or not estimated:
            return
        try:
            actual = float(raw)
        except ValueError:
            return
        if actual != estimated:
            with self._lock:
                self._ru.adjust(actual - estimated)

    def throttled(self, headers: Mapping[str, str], retry_after: float | None) -> None:
        """A 429 came anyway: pause what its ``x-ms-throttle-scope`` names until ``Retry-After``."""
        if retry_after is None or retry_after <= 0 or not self.policy.enabled:
            return
        scope = headers.get("x-ms-throttle-scope", "")
        self._arm(1.0)
        with self._lock:
            now = self.clock.now()
            if "Teams" in scope:
                buckets = list(self._teams.values())
            else:
                buckets = [self._writes if "/Write" in scope else self._ru]
            for bucket in buckets:
                bucket.pause_until(now + retry_after)

    def _arm(self, usage: float) -> None:
        """Start waiting; the local buckets are at least as used as Graph says its are."""
        with self._lock:
            now = self.clock.now()
            if not self.armed:
                log.info("pacing to Graph's quotas from now on (usage %.0f%%)", usage * 100)
            self.armed = True
            for bucket in (self._writes, self._ru):
                # the header is rounded (one decimal): our own count decides within that
                bucket.at_least_used(max(usage - 0.05, 0.0), now)

    def _wait_until(self, when: float) -> None:
        wait = when - self.clock.now()
        if wait > 0:
            self.clock.sleep(wait)
            with self._lock:
                self.waited += wait
