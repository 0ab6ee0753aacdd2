"""The console's pages: tenants, a tenant's dashboard, a run, the history of one thing, held
plans, settings, and the buttons that start runs. Who may do what is decided by :func:`page`:
viewers read; approvers also approve held plans and start runs; admins also change settings and
test the connection."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from entra_sync.console.access import Ctx, page
from entra_sync.console.queries import Filters, unresolved_csv
from entra_sync.console.settings_form import form_values, save_form
from entra_sync.runs.history import History
from entra_sync.schedule import next_run, parse_timezone
from reconciler.errors import EntraSyncError

__all__ = ["routes"]


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _back(ctx: Ctx, where: str = "") -> Response:
    assert ctx.tenant is not None
    return RedirectResponse(f"/t/{ctx.tenant.slug}{where}", status_code=303)


@page()
async def home(ctx: Ctx) -> Response:
    tenants = ctx.console.store.tenants_for(ctx.user.id)
    return ctx.console.render(ctx.request, "home.html.j2", user=ctx.user, tenants=tenants)


def _next_scheduled(ctx: Ctx) -> str:
    assert ctx.tenant is not None
    try:
        from entra_sync.config.load import load_config

        cfg = load_config(ctx.tenant.config_path)
        tz = parse_timezone(cfg.schedule.timezone)
        due = next_run(
            datetime.fromtimestamp(ctx.console.store.clock.now(), UTC), cfg.schedule.local_times(), tz
        )
        return due.strftime("%a %d %b %Y %H:%M ") + cfg.schedule.timezone
    except EntraSyncError as exc:
        return f"unknown: {exc}"


@page()
async def dashboard(ctx: Ctx) -> Response:
    t = ctx.tenant
    assert t is not None
    c = ctx.console
    recent = _recent_runs(ctx)
    held = c.store.held_plans(t.slug, status="held")
    last = c.queries.run_row(t.slug, recent[0].run_id) if recent else None
    facts = c.queries.facts(last) if last is not None else None
    failed = sum(facts.statuses.get(s, 0) for s in ("failed", "partial")) if facts else 0
    return c.render(
        ctx.request,
        "dashboard.html.j2",
        user=ctx.user,
        tenant=t,
        role=ctx.role,
        runs=recent,
        held=held,
        last=last,
        facts=facts,
        failed=failed,
        next_run=_next_scheduled(ctx),
        message=c.jobs.messages.get(t.slug),
        may_run=ctx.may("approver"),
        may_admin=ctx.may("admin"),
    )


def _recent_runs(ctx: Ctx, limit: int = 15) -> list[Any]:
    assert ctx.tenant is not None
    with History(ctx.console.store.target) as h:
        return h.list_runs(limit, tenant=ctx.tenant.slug)


def _filters(ctx: Ctx) -> Filters:
    p = ctx.request.query_params
    return Filters(
        status=p.get("status", ""),
        school=p.get("school", ""),
        kind=p.get("kind", ""),
        action=p.get("action", ""),
        q=p.get("q", "")[:200],
        page=max(1, _int(p.get("page"), 1)),
    )


def _run_values(ctx: Ctx, run_id: int) -> dict[str, Any]:
    assert ctx.tenant is not None
    c = ctx.console
    run = c.queries.run_row(ctx.tenant.slug, run_id)
    if run is None:
        raise HTTPException(404, "not found")
    f = _filters(ctx)
    rows, total = c.queries.page(run_id, f)
    prev_id, next_id = c.queries.neighbours(ctx.tenant.slug, run_id)
    pages = max(1, (total + 49) // 50)
    return {
        "user": ctx.user,
        "tenant": ctx.tenant,
        "role": ctx.role,
        "run": run,
        "facts": c.queries.facts(run),
        "rows": rows,
        "total": total,
        "filters": f,
        "pages": pages,
        "prev_id": prev_id,
        "next_id": next_id,
    }


@page()
async def run_page(ctx: Ctx) -> Response:
    values = _run_values(ctx, _int(ctx.request.path_params["run_id"], 0))
    return ctx.console.render(ctx.request, "run.html.j2", **values)


@page()
async def unresolved(ctx: Ctx) -> Response:
    assert ctx.tenant is not None
    run_id = _int(ctx.request.path_params["run_id"], 0)
    run = ctx.console.queries.run_row(ctx.tenant.slug, run_id)
    if run is None:
        raise HTTPException(404, "not found")
    body = unresolved_csv(ctx.console.queries.facts(run))
    name = f"{ctx.tenant.slug}-run-{run_id}-unresolved-people.csv"
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


@page()
async def history(ctx: Ctx) -> Response:
    assert ctx.tenant is not None
    key = ctx.request.query_params.get("key", "").strip()[:300]
    found = []
    if key:
        with History(ctx.console.store.target) as h:
            found = h.changes_for_object(key, tenant=ctx.tenant.slug)
    return ctx.console.render(
        ctx.request,
        "history.html.j2",
        user=ctx.user,
        tenant=ctx.tenant,
        key=key,
        found=found[-500:],
        more=max(0, len(found) - 500),
    )


def _held(ctx: Ctx) -> Any:
    assert ctx.tenant is not None
    held = ctx.console.store.held_plan(ctx.tenant.slug, _int(ctx.request.path_params["plan_id"], 0))
    if held is None:
        raise HTTPException(404, "not found")
    return held


@page()
async def held_page(ctx: Ctx) -> Response:
    held = _held(ctx)
    values = (
        _run_values(ctx, held.run_id) if held.run_id is not None else {"user": ctx.user, "tenant": ctx.tenant}
    )
    same = held.requested_by == ctx.user.username
    assert ctx.tenant is not None
    blocked = ctx.tenant.require_other_approver and same
    return ctx.console.render(
        ctx.request,
        "held.html.j2",
        **values,
        held=held,
        approvals=ctx.console.store.approvals(held.id),
        may_approve=ctx.may("approver") and held.status == "held" and not blocked,
        blocked=blocked,
        message=ctx.console.jobs.messages.get(ctx.tenant.slug),
    )


@page("approver")
async def approve(ctx: Ctx) -> Response:
    held = _held(ctx)
    assert ctx.tenant is not None
    if ctx.tenant.require_other_approver and held.requested_by == ctx.user.username:
        raise HTTPException(403, "this tenant needs someone other than who asked for the run to approve it")
    if held.status != "held":
        raise HTTPException(409, f"plan {held.id} is {held.status}, not held")
    try:
        ctx.console.jobs.approve(ctx.tenant, held, ctx.user.username)
    except EntraSyncError as exc:
        raise HTTPException(409, str(exc)) from None
    return _back(ctx, f"/held/{held.id}")


@page("approver")
async def reject(ctx: Ctx) -> Response:
    held = _held(ctx)
    assert ctx.tenant is not None
    try:
        ctx.console.jobs.reject(ctx.tenant, held, ctx.user.username)
    except EntraSyncError as exc:
        raise HTTPException(409, str(exc)) from None
    return _back(ctx, f"/held/{held.id}")


@page("approver")
async def run_now(ctx: Ctx) -> Response:
    assert ctx.tenant is not None
    form = await ctx.request.form()
    ctx.console.jobs.run_now(ctx.tenant, ctx.user.username, dry_run=form.get("dry_run") == "1")
    return _back(ctx)


@page("admin")
async def test_connection(ctx: Ctx) -> Response:
    assert ctx.tenant is not None
    ctx.console.jobs.test_connection(ctx.tenant)
    return _back(ctx)


def _settings(ctx: Ctx, values: dict[str, Any], errors: tuple[str, ...] = (), status: int = 200) -> Response:
    assert ctx.tenant is not None
    return ctx.console.render(
        ctx.request,
        "settings.html.j2",
        status=status,
        user=ctx.user,
        tenant=ctx.tenant,
        values=values,
        errors=errors,
        saved=ctx.request.query_params.get("saved") == "1" and not errors,
        audit=ctx.console.store.settings_changes(ctx.tenant.slug, limit=20),
    )


@page("admin")
async def settings_page(ctx: Ctx) -> Response:
    assert ctx.tenant is not None
    return _settings(ctx, form_values(ctx.tenant.config_path))


@page("admin")
async def save_settings(ctx: Ctx) -> Response:
    t = ctx.tenant
    assert t is not None
    form = await ctx.request.form()
    values: dict[str, Any] = {k: v for k, v in form.items() if k not in ("csrf", "client_secret")}
    values["teams_for"] = form.getlist("teams_for")
    secret = str(form.get("client_secret", ""))
    result = save_form(t.config_path, values, secret_given=bool(secret))
    if not result.ok:
        return _settings(ctx, {**form_values(t.config_path), **values}, result.errors, status=400)
    store = ctx.console.store
    changed = list(result.changed)
    if secret:
        store.set_secret(t.slug, ctx.console.box.encrypt(secret))
    elif result.drop_secret and t.has_secret:  # another way to sign in was chosen
        store.set_secret(t.slug, None)
        changed.append("credentials.client_secret")
    other = form.get("require_other_approver") == "on"
    if other != t.require_other_approver:
        store.set_require_other_approver(t.slug, other)
        changed.append("console.require_other_approver")
    if changed:
        store.record_settings_change(t.slug, ctx.user.username, tuple(changed))
    return _back(ctx, "/settings?saved=1")


def routes(login_page: Any, login: Any, logout: Any) -> list[Route]:
    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", home),
        Route("/t/{tenant}", dashboard),
        Route("/t/{tenant}/runs/{run_id}", run_page),
        Route("/t/{tenant}/runs/{run_id}/unresolved.csv", unresolved),
        Route("/t/{tenant}/history", history),
        Route("/t/{tenant}/held/{plan_id}", held_page),
        Route("/t/{tenant}/held/{plan_id}/approve", approve, methods=["POST"]),
        Route("/t/{tenant}/held/{plan_id}/reject", reject, methods=["POST"]),
        Route("/t/{tenant}/run", run_now, methods=["POST"]),
        Route("/t/{tenant}/test", test_connection, methods=["POST"]),
        Route("/t/{tenant}/settings", settings_page, methods=["GET"]),
        Route("/t/{tenant}/settings", save_settings, methods=["POST"]),
    ]
