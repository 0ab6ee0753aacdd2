"""What a handler may use of the engine: the :class:`Emu` protocol.

Handlers, helpers and ``$batch`` are typed against this protocol, never against
:class:`providers.emulator.engine.Engine`, so they do not import the engine that routes to them.
"""

from __future__ import annotations

import random
from typing import Protocol

from providers.emulator.counters import Counters
from providers.emulator.profile import Profile
from providers.emulator.tenant import Tenant
from providers.emulator.wire import GraphHttpError, Req, Resp

__all__ = ["Emu"]


class Emu(Protocol):
    tenant: Tenant
    profile: Profile
    counters: Counters
    rng: random.Random
    now: float

    def new_id(self) -> str: ...

    def age(self, created: float) -> float: ...

    def error(self, req: Req, exc: GraphHttpError) -> Resp: ...

    def dispatch(self, req: Req) -> Resp: ...
