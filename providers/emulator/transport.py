"""httpx transports over the emulator engine (sync and async).

Faults surface as httpx exceptions: a dropped connection raises ``httpx.RemoteProtocolError``
before anything is applied; a lost response raises ``httpx.ReadTimeout`` after the request WAS
applied. Latency advances the clock (a virtual clock just moves on).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qsl

import httpx

from providers.emulator.counters import Counters
from providers.emulator.engine import Engine, Outcome
from providers.emulator.profile import Profile
from providers.emulator.tenant import Tenant
from reconciler.clock import Clock

__all__ = ["AsyncEmulatorTransport", "EmulatorTransport"]


class _Base:
    def __init__(self, tenant: Tenant, *, clock: Clock | None = None, profile: Profile | None = None) -> None:
        self.engine = Engine(tenant, clock, profile)
        self.tenant = tenant

    @property
    def counters(self) -> Counters:
        return self.engine.counters

    @property
    def profile(self) -> Profile:
        return self.engine.profile

    def _run(self, request: httpx.Request, content: bytes) -> tuple[Outcome, httpx.Request]:
        body: Any = None
        if content:
            try:
                body = json.loads(content)
            except ValueError:
                body = _Invalid()
        headers = {k.lower(): v for k, v in request.headers.items()}
        url = request.url
        query = dict(parse_qsl(url.query.decode(), keep_blank_values=True))
        base = f"{url.scheme}://{url.netloc.decode()}/v1.0"
        if isinstance(body, _Invalid):
            from providers.emulator.wire import GraphHttpError, Req

            req = Req(request.method, url.path, query, headers, None, base)
            exc = GraphHttpError(400, "BadRequest", "Unable to read JSON request payload.")
            with self.engine.lock:
                return Outcome(self.engine._finish(req, self.engine.error(req, exc), 0)), request
        return self.engine.handle(request.method, url.path, query, headers, body, base), request

    def _advance(self, seconds: float) -> None:
        if seconds <= 0:
            return
        advance = getattr(self.engine.clock, "advance", None)
        if callable(advance):
            advance(seconds)
        else:
            self.engine.clock.sleep(seconds)

    @staticmethod
    def _response(outcome: Outcome, request: httpx.Request) -> httpx.Response:
        if outcome.drop == "before":
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        if outcome.drop == "after":
            raise httpx.ReadTimeout(
                "The read operation timed out (the request was applied).", request=request
            )
        resp = outcome.resp
        assert resp is not None
        content = b"" if resp.body is None else json.dumps(resp.body).encode()
        return httpx.Response(resp.status, headers=resp.headers, content=content, request=request)


class _Invalid:
    pass


class EmulatorTransport(_Base, httpx.BaseTransport):
    """``httpx.Client(transport=EmulatorTransport(tenant, clock=clock, profile=Profile.ideal()))``."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        outcome, request = self._run(request, request.read())
        self._advance(outcome.delay)
        return self._response(outcome, request)


class AsyncEmulatorTransport(_Base, httpx.AsyncBaseTransport):
    """The same emulator for ``httpx.AsyncClient``."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        content = await request.aread()
        outcome, request = self._run(request, content)
        if outcome.delay > 0 and not callable(getattr(self.engine.clock, "advance", None)):
            await asyncio.sleep(outcome.delay)  # a real clock: do not block the event loop
        else:
            self._advance(outcome.delay)
        return self._response(outcome, request)
