"""Fault injection rules: 5xx answers, dropped connections and lost responses, per route."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

__all__ = ["FaultRule"]


@dataclass(frozen=True)
class FaultRule:
    """One fault source. ``route`` is a glob over route templates (``/groups/{id}/members/$ref``),
    ``method`` a method or ``*``.

    - ``rate``: probability of answering ``status`` (a 5xx) without doing anything;
    - ``drop_rate``: probability the connection drops before the request is processed
      (the transport raises ``httpx.RemoteProtocolError``);
    - ``lost_response_rate``: probability the request IS applied but the response is lost
      (the transport raises ``httpx.ReadTimeout``).
    """

    route: str = "*"
    method: str = "*"
    status: int = 503
    rate: float = 0.0
    drop_rate: float = 0.0
    lost_response_rate: float = 0.0

    def matches(self, method: str, template: str) -> bool:
        return (self.method in ("*", method)) and fnmatch.fnmatchcase(template, self.route)
