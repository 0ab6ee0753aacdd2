"""The emulator's core: one request in, one Graph response out, under one lock.

Order of work for each request: bearer check, route match, fault injection, throttling, the
handler, then the common headers (``request-id``, ``client-request-id``, ``x-ms-resource-unit``).
Transports (httpx, the HTTP server) only translate; they share this class.

Must-not: read the wall clock (all time comes from ``clock``); use unseeded randomness.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from providers.emulator.counters import Counters
from providers.emulator.injection import inject_status, malform, outage_error, throttled_after_apply
from providers.emulator.profile import Profile
from providers.emulator.router import Route, normalise_path
from providers.emulator.routes import build_router
from providers.emulator.teams_ops import settle
from providers.emulator.tenant import Tenant
from providers.emulator.throttle import Throttle, request_cost
from providers.emulator.wire import GraphHttpError, Req, Resp, error_body
from reconciler.clock import Clock

__all__ = ["Engine", "Outcome"]

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What the transport must do: send ``resp``; or fail with ``drop`` = ``"before"`` (nothing was
    done) or ``"after"`` (the request was applied, the response is lost); then wait ``delay``."""

    resp: Resp | None
    drop: str | None = None
    delay: float = 0.0


class Engine:
    def __init__(self, tenant: Tenant, clock: Clock | None = None, profile: Profile | None = None) -> None:
        self.tenant = tenant
        self.clock: Clock = clock or tenant.clock
        tenant.clock = self.clock
        self.profile = profile or Profile.ideal()
        self.rng = random.Random(self.profile.seed)
        self.counters = Counters()
        self.lock = threading.RLock()
        self.router = build_router()
        self.now = self.clock.now()
        self.started = self.now
        self._throttle: Throttle | None = None
        if self.profile.replication_lag > 0:
            # Objects created over HTTP while hidden by lag must reach a later delta round, so the
            # change log must already hold their creation when the first full sync runs.
            tenant.log.activate()

    # ---- helpers for handlers ---------------------------------------------------------------
    def new_id(self) -> str:
        """A fresh object id (never one in use), from the profile's seeded random."""
        return self.tenant.new_id(self.rng)

    def age(self, created: float) -> float:
        """Seconds since ``created``. An object "from the future" can only come from a tenant file
        written under another clock (e.g. served on the real clock, then loaded on a virtual one):
        treat it as old rather than hide it for months."""
        age = self.now - created
        return age if age >= 0 else float("inf")

    def request_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    @property
    def throttle(self) -> Throttle:
        if self._throttle is None:
            p = self.profile
            ru = p.ru_per_10s or Throttle.ru_quota(len(self.tenant.users))
            self._throttle = Throttle(ru, p.writes_per_150s, p.tenant_writes_per_300s)
        return self._throttle

    # ---- entry points -----------------------------------------------------------------------
    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any, base: str
    ) -> Outcome:
        """Serve one top-level request. ``headers`` keys must be lower-case."""
        with self.lock:
            self.now = self.clock.now()
            settle(self.tenant, self.now)
            req = Req(method.upper(), normalise_path(path), dict(query), headers, body, base)
            delay = 0.0
            lo, hi = self.profile.latency
            if hi > 0:
                delay = self.rng.uniform(lo, hi)
            auth = self._check_auth(req)
            if auth is not None:
                return Outcome(auth, None, delay)
            drop = self._pick_drop(req)
            if drop == "before":
                self.counters.faults += 1
                return Outcome(None, "before", delay)
            if req.method == "POST" and req.path == "/$batch":
                from providers.emulator.batch import run_batch

                resp = self._finish(req, run_batch(self, req), 0)
            else:
                resp = self.dispatch(req)
            if drop == "after":
                self.counters.faults += 1
            return Outcome(resp, drop, delay)

    def dispatch(self, req: Req) -> Resp:
        """Route, fault, throttle and run one request (top-level or inside ``$batch``)."""
        cost = 0
        try:
            route, params = self.router.match(req.method, req.path)
            req.template, req.params = route.template, params
            self.counters.requests[(req.method, route.template)] += 1
            outage_error(self, req, self.now - self.started)
            inject_status(self, req)
            cost = request_cost(req.method, route.template, req.query)
            throttled = self._check_throttle(route, cost)
            if throttled is not None:
                return self._finish(req, throttled, cost)
            self.counters.resource_units += cost
            if route.is_write:
                self.counters.writes += 1
            resp = route.handler(self, req)
            resp = throttled_after_apply(self, req, resp, route.is_write)
            resp = malform(self, req, resp)
        except GraphHttpError as exc:
            if not req.template:
                self.counters.requests[(req.method, "(unknown)")] += 1
            resp = self.error(req, exc)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # A request shape the handlers did not foresee: answer like a service bug, keep serving.
            log.exception("emulator: %s %s failed", req.method, req.path)
            resp = self.error(
                req, GraphHttpError(500, "generalException", f"Emulator error: {type(exc).__name__}.")
            )
        return self._finish(req, resp, cost)

    # ---- pieces -----------------------------------------------------------------------------
    def error(self, req: Req, exc: GraphHttpError) -> Resp:
        rid = self.request_id()
        crid = req.headers.get("client-request-id", rid)
        body = error_body(exc.code, exc.message, rid, crid, self.now)
        return Resp(exc.status, body, {"request-id": rid, **exc.headers})

    def _finish(self, req: Req, resp: Resp, cost: int) -> Resp:
        rid = resp.headers.get("request-id") or self.request_id()
        resp.headers["request-id"] = rid
        resp.headers["client-request-id"] = req.headers.get("client-request-id", rid)
        if cost:
            resp.headers["x-ms-resource-unit"] = str(cost)
        if self.profile.throttle and self._throttle is not None and self._throttle.usage() >= 0.8:
            resp.headers["x-ms-throttle-limit-percentage"] = f"{self._throttle.usage():.1f}"
        if resp.body is not None:
            resp.headers.setdefault("Content-Type", "application/json")
            resp.headers.setdefault("OData-Version", "4.0")
        resp.headers.setdefault("Cache-Control", "no-cache")
        self.counters.statuses[resp.status] += 1
        if resp.status == 429:
            self.counters.throttled += 1
        return resp

    def _check_auth(self, req: Req) -> Resp | None:
        if not self.profile.require_bearer:
            return None
        value = req.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        token = token.strip()
        ok = scheme.lower() == "bearer" and bool(token)
        accepted = self.profile.accepted_tokens
        if ok and accepted is not None and token not in accepted:
            ok = False
        if ok:
            return None
        exc = GraphHttpError(
            401,
            "InvalidAuthenticationToken",
            "Access token is empty." if not token else "Access token validation failure.",
        )
        self.counters.requests[(req.method, "(unauthenticated)")] += 1
        return self._finish(req, self.error(req, exc), 0)

    def _pick_drop(self, req: Req) -> str | None:
        for rule in self.profile.faults:
            if rule.drop_rate <= 0 and rule.lost_response_rate <= 0:
                continue
            if not rule.matches(req.method, self._template_of(req)):
                continue
            roll = self.rng.random()
            if roll < rule.drop_rate:
                return "before"
            if roll < rule.drop_rate + rule.lost_response_rate:
                return "after"
        return None

    def _template_of(self, req: Req) -> str:
        try:
            return self.router.match(req.method, req.path)[0].template
        except GraphHttpError:
            return req.path

    def _check_throttle(self, route: Route, cost: int) -> Resp | None:
        p = self.profile
        if not p.throttle:
            return None
        wait, scope, info = self.throttle.admit(
            cost, route.is_write, self.now, (route.method, route.template)
        )
        if wait <= 0 and p.random_429_rate > 0 and self.rng.random() < p.random_429_rate:
            wait, scope, info = self.rng.uniform(0.5, 3.0), "Tenant_Application/ReadWrite", "Unspecified"
        if wait <= 0:
            return None
        retry = f"{max(wait, 0.001):.3f}"
        rid = self.request_id()
        body = {
            "error": {
                "code": "TooManyRequests",
                "message": "Please retry again later.",
                "innerError": {
                    "code": "429",
                    "date": _iso(self.now),
                    "message": "Please retry after",
                    "request-id": rid,
                    "status": "429",
                },
            }
        }
        return Resp(
            429,
            body,
            {
                "Retry-After": retry,
                "request-id": rid,
                "x-ms-throttle-scope": scope,
                "x-ms-throttle-information": info,
            },
        )


def _iso(ts: float) -> str:
    from providers.emulator.wire import iso

    return iso(ts)
