"""Counters for benchmarks and tests: what the client asked for and what it cost."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Counters"]


@dataclass
class Counters:
    """Request counts by ``(method, route template)`` (inner ``$batch`` requests included),
    resource units charged, writes, 429s, batch calls and injected faults."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    resource_units: int = 0
    writes: int = 0
    throttled: int = 0
    batch_calls: int = 0
    batch_items: int = 0
    faults: int = 0
    applied_despite_error: int = 0  # writes applied but answered 429/5xx (injected)
    outage_answers: int = 0  # answers given by an Outage window
    malformed_answers: int = 0  # collection answers damaged on purpose
    welcome_emails: int = 0  # welcome messages Exchange would mail to new Microsoft 365 group members

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def snapshot(self) -> dict[str, Any]:
        """A JSON-friendly copy, sorted for stable output."""
        return {
            "requests": {f"{m} {r}": n for (m, r), n in sorted(self.requests.items())},
            "statuses": {str(s): n for s, n in sorted(self.statuses.items())},
            "total_requests": self.total_requests,
            "resource_units": self.resource_units,
            "writes": self.writes,
            "throttled": self.throttled,
            "batch_calls": self.batch_calls,
            "batch_items": self.batch_items,
            "faults": self.faults,
            "applied_despite_error": self.applied_despite_error,
            "outage_answers": self.outage_answers,
            "malformed_answers": self.malformed_answers,
            "welcome_emails": self.welcome_emails,
        }

    def reset(self) -> None:
        self.requests.clear()
        self.statuses.clear()
        self.resource_units = self.writes = self.throttled = 0
        self.batch_calls = self.batch_items = self.faults = self.welcome_emails = 0
        self.applied_despite_error = self.outage_answers = self.malformed_answers = 0
