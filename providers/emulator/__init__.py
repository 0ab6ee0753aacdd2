"""A stateful, realistic Microsoft Graph v1.0 emulator for tests, benchmarks and the demo.

    tenant = Tenant()
    uid = tenant.add_user("amy@oak.example", display_name="Amy")
    transport = EmulatorTransport(tenant, clock=VirtualClock(), profile=Profile.realistic(seed=1))
    http = httpx.Client(transport=transport, base_url="https://graph.microsoft.com/v1.0")

Layout: ``tenant`` (objects, save/load in ``persist``), ``engine`` (auth, faults, throttling,
dispatch), ``handlers_*`` (one per resource), ``query`` ($select/$filter/$top/tokens), ``delta``,
``batch``, ``throttle``, ``profile``, ``faults``, ``counters``, ``transport`` (httpx), ``server``.
"""

from __future__ import annotations

from providers.emulator.counters import Counters
from providers.emulator.engine import Engine
from providers.emulator.faults import FaultRule, Outage
from providers.emulator.profile import Profile
from providers.emulator.tenant import Tenant
from providers.emulator.transport import AsyncEmulatorTransport, EmulatorTransport

__all__ = [
    "AsyncEmulatorTransport",
    "Counters",
    "EmulatorTransport",
    "Engine",
    "FaultRule",
    "Outage",
    "Profile",
    "Tenant",
]
