"""Who may see and do what in the console: the request's user and tenant, and :func:`page`, the
wrapper of every route but sign-in (signed in; the CSRF token on a POST; 404 for a tenant the user
holds no role on; 403 for a role too small)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from entra_sync.console.jobs import Jobs
from entra_sync.console.queries import RunQueries
from entra_sync.console.security import SecretBox, same_token
from entra_sync.console.store import ConsoleStore, Role, Tenant, User, role_at_least

__all__ = ["Console", "Ctx", "page"]


@dataclass
class Console:
    """What the pages share."""

    store: ConsoleStore
    jobs: Jobs
    queries: RunQueries
    templates: Environment
    box: SecretBox

    def render(self, request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        values.setdefault("csrf", request.session.get("csrf", ""))
        html = self.templates.get_template(name).render(request=request, **values)
        return HTMLResponse(html, status_code=status)


@dataclass(frozen=True)
class Ctx:
    """The request's user, and the tenant of the route with the user's role on it."""

    request: Request
    console: Console
    user: User
    tenant: Tenant | None = None
    role: Role | None = None

    def may(self, needed: Role) -> bool:
        return role_at_least(self.role, needed)


Handler = Callable[[Ctx], Awaitable[Response]]


def page(needed: Role | None = None) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """A route for signed-in users (holding ``needed`` on the route's tenant, when it has one)."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            console: Console = request.app.state.console
            uid = request.session.get("uid")
            user = console.store.user_by_id(int(uid)) if isinstance(uid, int) else None
            if user is None or user.disabled:
                request.session.clear()
                return RedirectResponse("/login", status_code=303)
            if request.method == "POST":
                form = await request.form()
                if not same_token(str(form.get("csrf", "")), request.session.get("csrf")):
                    raise HTTPException(
                        403,
                        "the form's security token is missing or out of date; reload the page and try again",
                    )
            tenant, role = None, None
            slug = request.path_params.get("tenant")
            if slug is not None:
                role = console.store.role(user.id, slug)
                tenant = console.store.tenant(slug) if role is not None else None
                if tenant is None:
                    raise HTTPException(404, "not found")
                if needed is not None and not role_at_least(role, needed):
                    raise HTTPException(403, f"this needs the {needed} role on {tenant.display_name}")
            return await handler(Ctx(request, console, user, tenant, role))

        return endpoint

    return wrap
