"""Route table: ``(method, template) -> handler``, matched segment by segment.

Paths are normalised first: ``/v1.0`` is stripped, OData key syntax ``groups('{id}')`` becomes
``groups/{id}`` and ``applications(appId='{appId}')`` becomes ``applications/appId={appId}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from providers.emulator.context import Emu
from providers.emulator.wire import GraphHttpError, Req, Resp

__all__ = ["Handler", "Route", "Router", "normalise_path"]

Handler = Callable[[Emu, Req], Resp]
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Handler
    write: bool | None = None  # None: by method

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS if self.write is None else self.write


def normalise_path(path: str) -> str:
    path = re.sub(r"^/+(?:v1\.0)(?=/|$)", "", "/" + path.lstrip("/"))
    path = re.sub(r"\(appId='([^']*)'\)", r"/appId=\1", path)
    path = re.sub(r"\('([^']*)'\)", r"/\1", path)
    return path.rstrip("/") or "/"


class Router:
    """Handlers modules register on a router they are given (``register(router)``); the engine
    builds one (see :mod:`providers.emulator.routes`)."""

    def __init__(self, routes: list[Route] | None = None) -> None:
        self._by_len: dict[int, list[tuple[list[str], Route]]] = {}
        self.routes: list[Route] = []
        for route in routes or ():
            self.add_route(route)

    def add(self, method: str, template: str, handler: Handler, *, write: bool | None = None) -> None:
        self.add_route(Route(method, template, handler, write))

    def add_route(self, route: Route) -> None:
        segs = route.template.strip("/").split("/")
        self._by_len.setdefault(len(segs), []).append(([s.lower() for s in segs], route))
        self.routes.append(route)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route and its parameters; 400 for an unknown path, 405 for a wrong method."""
        segs = path.strip("/").split("/")
        low = [s.lower() for s in segs]
        allowed = False
        best: tuple[int, Route, dict[str, str]] | None = None
        for pattern, route in self._by_len.get(len(segs), []):
            params: dict[str, str] = {}
            literal = 0
            for p, s, raw in zip(pattern, low, segs, strict=True):
                if p.startswith("{"):
                    params[p[1:-1]] = raw
                elif p != s:
                    break
                else:
                    literal += 1
            else:
                allowed = True
                if route.method == method and (best is None or literal > best[0]):
                    best = (literal, route, params)
        if best is not None:
            return best[1], best[2]
        if allowed:
            raise GraphHttpError(
                405,
                "Request_BadRequest",
                f"The HTTP method '{method}' is not allowed for the resource '{path}'.",
            )
        segment = next((s for s in segs if s), path)
        raise GraphHttpError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
