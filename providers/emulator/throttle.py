"""Throttling from the documented identity-and-access limits (graph-facts §5).

Token buckets refill continuously on the emulator's clock: resource units per 10 s for the app in
this tenant (3,500 / 5,000 / 8,000 by tenant size, under 50 / up to 500 / over 500 users), writes
per 150 s for the app in this tenant, and writes per 5 min for the whole tenant. A request that
does not fit gets 429 with a fractional ``Retry-After`` (the time until it would fit). The Teams
routes also have their per-second limits (``POST /teams`` 10/s, ``PUT /groups/{id}/team`` 6/s).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Bucket", "Throttle", "request_cost"]

_COSTS = {
    ("GET", "/users"): 2,
    ("GET", "/groups/{id}/members"): 3,
    ("GET", "/groups/{id}/transitiveMembers"): 5,
    ("POST", "/directoryObjects/getByIds"): 5,
}


def request_cost(method: str, template: str, query: dict[str, str]) -> int:
    """Resource units for one request: base cost, ``$select`` -1, ``$expand`` +1, ``$top`` < 20 -1; min 1."""
    cost = _COSTS.get((method, template), 1)
    if "$select" in query:
        cost -= 1
    if "$expand" in query:
        cost += 1
    top = query.get("$top")
    if top is not None and top.isdigit() and int(top) < 20:
        cost -= 1
    return max(cost, 1)


@dataclass
class Bucket:
    capacity: float
    window: float
    level: float = -1.0
    stamp: float = 0.0

    def _refill(self, now: float) -> None:
        if self.level < 0:
            self.level, self.stamp = self.capacity, now
            return
        rate = self.capacity / self.window
        self.level = min(self.capacity, self.level + (now - self.stamp) * rate)
        self.stamp = now

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` fits (0 when it fits now)."""
        self._refill(now)
        if self.level >= amount:
            return 0.0
        return (amount - self.level) / (self.capacity / self.window)

    def take(self, amount: float) -> None:
        self.level -= amount

    def usage(self) -> float:
        """Fraction of the bucket in use (0 before the first request)."""
        return 0.0 if self.level < 0 else 1.0 - self.level / self.capacity


#: Teams service limits per app per tenant, requests per second (graph-facts §3).
TEAMS_RPS = {
    ("POST", "/teams"): 10,
    ("PUT", "/groups/{id}/team"): 6,
    ("POST", "/teams/{id}/archive"): 30,
    ("POST", "/teams/{id}/unarchive"): 30,
}


class Throttle:
    def __init__(self, ru_per_10s: int, writes_per_150s: int, tenant_writes_per_300s: int) -> None:
        self.ru = Bucket(ru_per_10s, 10.0)
        self.writes = Bucket(writes_per_150s, 150.0)
        self.tenant_writes = Bucket(tenant_writes_per_300s, 300.0)
        self.teams = {key: Bucket(rps, 1.0) for key, rps in TEAMS_RPS.items()}

    @staticmethod
    def ru_quota(users: int) -> int:
        return 3500 if users < 50 else 5000 if users <= 500 else 8000

    def admit(
        self, cost: int, is_write: bool, now: float, route: tuple[str, str] = ("", "")
    ) -> tuple[float, str, str]:
        """Charge the request; returns ``(retry_after, scope, information)``, retry_after 0 = admitted.

        ``route`` is ``(method, template)``: the Teams routes also have their own per-second limits.
        """
        teams = self.teams.get(route)
        if teams is not None:
            wait = teams.wait_for(1, now)
            if wait > 0:
                return wait, "Tenant_Application/Teams", "TeamsRequestLimitExceeded"
        wait = self.ru.wait_for(cost, now)
        if wait > 0:
            return wait, "Tenant_Application/ReadWrite/ResourceUnit", "ResourceUnitLimitExceeded"
        if is_write:
            wait = self.writes.wait_for(1, now)
            if wait > 0:
                return wait, "Tenant_Application/Write/ResourceUnit", "WriteLimitExceeded"
            wait = self.tenant_writes.wait_for(1, now)
            if wait > 0:
                return wait, "Tenant/Write/ResourceUnit", "WriteLimitExceeded"
            self.writes.take(1)
            self.tenant_writes.take(1)
        if teams is not None:
            teams.take(1)
        self.ru.take(cost)
        return 0.0, "", ""

    def usage(self) -> float:
        return max(self.ru.usage(), self.writes.usage())
