"""Fault injection rules: 5xx answers, dropped connections, lost responses, writes answered with an
error that Graph applied anyway, outage windows and malformed answers, per route."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

__all__ = ["MALFORMED_KINDS", "FaultRule", "Outage"]

MALFORMED_KINDS = ("no_value", "null_items", "wrong_types", "value_not_list")


@dataclass(frozen=True)
class FaultRule:
    """One fault source. ``route`` is a glob over route templates (``/groups/{id}/members/$ref``),
    ``method`` a method or ``*``.

    - ``rate``: probability of answering ``status`` (a 5xx) without doing anything;
    - ``drop_rate``: probability the connection drops before the request is processed
      (the transport raises ``httpx.RemoteProtocolError``);
    - ``lost_response_rate``: probability the request IS applied but the response is lost
      (the transport raises ``httpx.ReadTimeout``);
    - ``applied_error_rate``: probability a write (POST/PATCH/PUT/DELETE) that succeeded is answered
      ``applied_status`` (429 with ``Retry-After`` or 503) anyway: Graph throttled the answer but
      applied the write;
    - ``malformed_rate``: probability a collection answer (a ``GET`` with ``value``) is damaged as
      ``malformed`` says: ``no_value`` (the ``value`` key is missing), ``null_items`` (``null``
      among the items), ``wrong_types`` (``id``/``displayName`` are numbers, lists are strings),
      ``value_not_list`` (``value`` is an object).
    """

    route: str = "*"
    method: str = "*"
    status: int = 503
    rate: float = 0.0
    drop_rate: float = 0.0
    lost_response_rate: float = 0.0
    applied_error_rate: float = 0.0
    applied_status: int = 429
    malformed_rate: float = 0.0
    malformed: str = "no_value"

    def __post_init__(self) -> None:
        if self.malformed not in MALFORMED_KINDS:
            raise ValueError(f"FaultRule.malformed must be one of {', '.join(MALFORMED_KINDS)}")
        if self.applied_status not in (429, 500, 502, 503, 504):
            raise ValueError("FaultRule.applied_status must be 429 or a 5xx")

    def matches(self, method: str, template: str) -> bool:
        return (self.method in ("*", method)) and fnmatch.fnmatchcase(template, self.route)


@dataclass(frozen=True)
class Outage:
    """A window of virtual time, ``start`` seconds after the engine started and ``duration`` long,
    during which a ``rate`` share (1.0: all) of matching requests get ``status`` with
    ``Retry-After: retry_after`` and nothing is applied: an outage (rate 1) or a 5xx storm (< 1)."""

    start: float
    duration: float
    status: int = 503
    retry_after: float = 30.0
    rate: float = 1.0
    route: str = "*"
    method: str = "*"

    def active(self, elapsed: float, method: str, template: str) -> bool:
        return (
            self.start <= elapsed < self.start + self.duration
            and self.method in ("*", method)
            and fnmatch.fnmatchcase(template, self.route)
        )
