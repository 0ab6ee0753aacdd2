"""Requests, responses and Graph-shaped errors inside the emulator (no HTTP library here).

The engine turns one :class:`Req` into one :class:`Resp`; handlers raise :class:`GraphHttpError`
for every documented failure and the engine renders it as Graph's error body::

    {"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "GraphHttpError",
    "Req",
    "Resp",
    "bad_request",
    "error_body",
    "iso",
    "not_found",
]


def iso(ts: float) -> str:
    """An epoch time as Graph writes it: ``2026-01-01T10:00:00Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Req:
    """One request as the engine sees it: a path below ``/v1.0`` and decoded query parameters."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None
    base: str = "https://graph.microsoft.com/v1.0"
    in_batch: bool = False
    template: str = ""
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class Resp:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class GraphHttpError(Exception):
    """A Graph error response; ``headers`` are added to the response (e.g. ``Retry-After``)."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphHttpError:
    return GraphHttpError(400, code, message)


def not_found(object_id: str) -> GraphHttpError:
    return GraphHttpError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{object_id}' does not exist or one of its queried reference-property objects "
        "are not present.",
    )


def error_body(
    code: str, message: str, request_id: str, client_request_id: str, now: float
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": iso(now),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }
