"""Helpers for tests that drive a served Graph emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from providers.emulator.server import EmulatorServer

__all__ = ["age_groups"]

_GRAPH_TIME = "%Y-%m-%dT%H:%M:%SZ"


def age_groups(server: EmulatorServer, seconds: float) -> None:
    """As if ``seconds`` had passed since every group of the served tenant was created: the
    product reads the time from the system clock, so the groups are made older instead (and a
    delta read sees each group again, as it would see time pass)."""
    with server.engine.lock:
        tenant = server.engine.tenant
        for g in tenant.groups.values():
            when = datetime.strptime(str(g.props["createdDateTime"]), _GRAPH_TIME).replace(tzinfo=UTC)
            g.props["createdDateTime"] = (when - timedelta(seconds=seconds)).strftime(_GRAPH_TIME)
            tenant.log.record(tenant.clock.now(), "group", g.id, "upd")
