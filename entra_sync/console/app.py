"""The console's web application (Starlette): sign-in, sessions, CSRF, headers, and who may see
and do what; the pages themselves are in :mod:`entra_sync.console.pages`.

Must: require a signed-in user on every page but the sign-in page; answer 404 for a tenant the
user holds no role on (whatever the route: nothing tells another tenant exists); refuse a POST
without the session's CSRF token; limit failed sign-ins per name and per address; send security
headers on every answer (no script may run: ``script-src 'none'``).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entra_sync.console.access import Console, Ctx, page
from entra_sync.console.jobs import Jobs
from entra_sync.console.pages import routes
from entra_sync.console.queries import RunQueries
from entra_sync.console.security import SecretBox, check_password, new_token, same_token
from entra_sync.console.store import ConsoleStore

__all__ = ["create_app", "key_file_default"]

log = logging.getLogger(__name__)

#: failed sign-ins allowed per user name, and per address, in the window
MAX_FAILS_PER_USER = 5
MAX_FAILS_PER_IP = 20
WINDOW = 15 * 60.0

HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
        b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; script-src 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp, hsts: bool = False) -> None:
        self.app = app
        self.headers = [*HEADERS, *([(b"strict-transport-security", b"max-age=31536000")] if hsts else [])]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *self.headers]
            await send(message)

        await self.app(scope, receive, send_with)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "?"


async def login_page(request: Request) -> Response:
    console: Console = request.app.state.console
    request.session.setdefault("csrf", new_token())
    return console.render(request, "login.html.j2")


async def login(request: Request) -> Response:
    console: Console = request.app.state.console
    form = await request.form()
    if not same_token(str(form.get("csrf", "")), request.session.get("csrf")):
        raise HTTPException(403, "the form's security token is missing or out of date; reload the page")
    username, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
    ip = client_ip(request)
    by_user, by_ip = console.store.failed_logins(username, ip, console.store.clock.now() - WINDOW)
    if by_user >= MAX_FAILS_PER_USER or by_ip >= MAX_FAILS_PER_IP:
        log.warning("console sign-in refused for %r from %s: too many failed attempts", username, ip)
        return console.render(
            request,
            "login.html.j2",
            status=429,
            error="Too many failed sign-ins. Wait 15 minutes and try again.",
        )
    user = console.store.user(username)
    ok = (
        check_password(user.password_hash if user else None, password)
        and user is not None
        and not user.disabled
    )
    console.store.record_login(username, ip, ok)
    if not ok or user is None:
        return console.render(request, "login.html.j2", status=401, error="Wrong user name or password.")
    request.session.clear()  # a new session on sign-in (no fixation)
    request.session.update({"uid": user.id, "csrf": new_token()})
    return RedirectResponse("/", status_code=303)


@page()
async def logout(ctx: Ctx) -> Response:
    ctx.request.session.clear()
    return RedirectResponse("/login", status_code=303)


async def _error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    console: Console = request.app.state.console
    return console.render(
        request, "error.html.j2", status=exc.status_code, code=exc.status_code, message=exc.detail
    )


def create_app(
    store: ConsoleStore,
    box: SecretBox,
    *,
    session_secret: str | None = None,
    jobs: Jobs | None = None,
    https_only: bool = False,
) -> Starlette:
    templates = Environment(
        loader=PackageLoader("entra_sync.console", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    templates.filters["when"] = _when
    console = Console(store, jobs or Jobs(store, box), RunQueries(store.engine), templates, box)
    secret = session_secret or hashlib.sha256(b"entra-sync console session:" + box.key_id()).hexdigest()
    app = Starlette(
        routes=routes(login_page, login, logout),
        middleware=[
            Middleware(SecurityHeaders, hsts=https_only),
            Middleware(
                SessionMiddleware,
                secret_key=secret,
                session_cookie="entra_sync_console",
                max_age=8 * 3600,
                same_site="strict",
                https_only=https_only,
            ),
        ],
        exception_handlers={HTTPException: _error},
    )
    app.state.console = console
    return app


def _when(ts: float | None) -> str:
    from datetime import UTC, datetime

    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def key_file_default(store_target: str | Path) -> Path:
    s = str(store_target)
    base = Path(s).parent if "://" not in s and s != ":memory:" else Path.cwd()
    return base / "console.key"
