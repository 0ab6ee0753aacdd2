"""The console's access rules, through Starlette's TestClient: sign-in on every route, roles per
tenant, 404 for another tenant, CSRF on every POST, the sign-in rate limit, security headers,
escaping, and the client secret never in clear (pages, logs, reports, the database)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from entra_sync.console.app import MAX_FAILS_PER_USER
from tests.console_support import Setup, csrf, drop_classes, make_setup, sign_in

pytestmark = pytest.mark.usefixtures("clean_env")

GETS = [
    "/t/{t}",
    "/t/{t}/runs/{r}",
    "/t/{t}/runs/{r}/unresolved.csv",
    "/t/{t}/history?key=x",
    "/t/{t}/held/{h}",
    "/t/{t}/settings",
]
POSTS = ["/t/{t}/held/{h}/approve", "/t/{t}/held/{h}/reject", "/t/{t}/run", "/t/{t}/test", "/t/{t}/settings"]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    s = make_setup(tmp_path)
    s.user("ada", {"oak": "admin"})
    s.user("vic", {"oak": "viewer"})
    s.user("eve", {"elm": "admin"})
    yield s
    s.jobs.wait()
    s.store.close()


def _a_run_and_a_held_plan(setup: Setup) -> tuple[int, int]:
    """Run 1 syncs oak; run 2 (half the classes gone) is refused and held."""
    t = setup.store.tenant("oak")
    assert t is not None
    setup.jobs.run_now(t, "ada", dry_run=False)
    setup.jobs.wait()
    drop_classes(t.config_path, 10)
    setup.jobs.run_now(t, "ada", dry_run=False)
    setup.jobs.wait()
    held = setup.store.held_plans("oak")
    assert len(held) == 1 and held[0].status == "held", setup.jobs.messages
    assert held[0].run_id is not None
    return held[0].run_id, held[0].id


def _paths(templates: list[str], tenant: str, run: int, held: int) -> list[str]:
    return [p.format(t=tenant, r=run, h=held) for p in templates]


def test_every_route_without_a_session_goes_to_sign_in(setup: Setup) -> None:
    run, held = _a_run_and_a_held_plan(setup)
    c = setup.client()
    for path in ["/", *_paths(GETS, "oak", run, held)]:
        r = c.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/login", path
    for path in ["/logout", *_paths(POSTS, "oak", run, held)]:
        r = c.post(path, data={"csrf": "x"})
        assert r.status_code == 303 and r.headers["location"] == "/login", path
    assert setup.store.held_plans("oak")[0].status == "held"


def test_a_user_of_another_tenant_gets_404_on_every_route(setup: Setup) -> None:
    run, held = _a_run_and_a_held_plan(setup)
    c = setup.client()
    assert sign_in(c, "eve") == 303
    token = csrf(c)
    for path in _paths(GETS, "oak", run, held) + _paths(GETS, "nope", run, held):
        assert c.get(path).status_code == 404, path
    for path in _paths(POSTS, "oak", run, held):
        assert c.post(path, data={"csrf": token}).status_code == 404, path
    # and elm's own pages do not show oak's run or held plan
    assert c.get(f"/t/elm/runs/{run}").status_code == 404
    assert c.get(f"/t/elm/held/{held}").status_code == 404
    assert "Oak Academy" not in c.get("/").text
    assert setup.store.held_plans("oak")[0].status == "held"


def test_a_viewer_reads_but_cannot_approve_run_or_change_settings(setup: Setup) -> None:
    run, held = _a_run_and_a_held_plan(setup)
    c = setup.client()
    assert sign_in(c, "vic") == 303
    assert c.get(f"/t/oak/runs/{run}").status_code == 200
    page = c.get(f"/t/oak/held/{held}")
    assert page.status_code == 200 and 'id="approve"' not in page.text
    token = csrf(c)
    before = setup.store.tenant("oak").config_path.read_text()  # type: ignore[union-attr]
    for path in _paths(POSTS, "oak", run, held):
        assert c.post(path, data={"csrf": token, "times": "09:00"}).status_code == 403, path
    assert c.get("/t/oak/settings").status_code == 403
    assert setup.store.held_plans("oak")[0].status == "held"
    assert setup.store.tenant("oak").config_path.read_text() == before  # type: ignore[union-attr]


def test_a_post_without_the_csrf_token_is_refused(setup: Setup) -> None:
    run, held = _a_run_and_a_held_plan(setup)
    c = setup.client()
    assert sign_in(c, "ada") == 303
    for path in [*_paths(POSTS, "oak", run, held), "/logout"]:
        assert c.post(path, data={}).status_code == 403, path
        assert c.post(path, data={"csrf": "forged"}).status_code == 403, path
    assert setup.store.held_plans("oak")[0].status == "held"
    # sign-in itself needs the token of the sign-in page
    fresh = setup.client()
    r = fresh.post("/login", data={"username": "ada", "password": "correct horse battery staple"})
    assert r.status_code == 403


def test_sign_in_is_rate_limited_and_wrong_passwords_are_refused(setup: Setup) -> None:
    c = setup.client()
    assert sign_in(c, "ada", "wrong password!!") == 401
    for _ in range(MAX_FAILS_PER_USER - 1):
        assert sign_in(c, "ada", "wrong password!!") == 401
    assert sign_in(c, "ada") == 429  # even the right password, until the window passes
    assert c.get("/").status_code == 303


def test_security_headers_and_a_fresh_session_on_sign_in(setup: Setup) -> None:
    c = setup.client()
    r = c.get("/login")
    assert "script-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    before = c.cookies.get("entra_sync_console")
    assert sign_in(c, "ada") == 303
    assert c.cookies.get("entra_sync_console") != before
    assert "samesite=strict" in c.get("/").headers.get("set-cookie", "samesite=strict").lower()


def test_a_class_named_like_a_script_is_shown_escaped(setup: Setup) -> None:
    t = setup.store.tenant("oak")
    assert t is not None
    export = t.config_path.parent / "realsmart-export.json"
    import json

    doc = json.loads(export.read_text())
    doc["classes"][0]["name"] = "<script>alert(1)</script>"
    export.write_text(json.dumps(doc))
    setup.jobs.run_now(t, "ada", dry_run=True)
    setup.jobs.wait()
    run = setup.store.engine.connect().execute(text("SELECT max(id) FROM runs")).scalar_one()
    c = setup.client()
    assert sign_in(c, "ada") == 303
    page = c.get(f"/t/oak/runs/{run}", params={"q": "<script>alert(1)</script>"})
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_the_secret_never_appears_in_clear(setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    secret = "Zq8~s3cr3t-VALUE-never-shown"
    caplog.set_level(logging.DEBUG)
    c = setup.client()
    assert sign_in(c, "ada") == 303
    r = c.post(
        "/t/oak/settings",
        data={
            "csrf": csrf(c, "/t/oak/settings"),
            "tenant_id": "contoso.onmicrosoft.com",
            "client_id": "00000000-0000-4000-8000-00000000d3e0",
            "client_secret": secret,
            "groups": "on",
            "administrative_units": "on",
            "times": "04:00",
            "timezone": "Europe/London",
        },
    )
    assert r.status_code == 303, r.text
    t = setup.store.tenant("oak")
    assert t is not None and t.has_secret
    setup.jobs.run_now(t, "ada", dry_run=False)
    setup.jobs.wait()
    pages = [c.get(p).text for p in ("/", "/t/oak", "/t/oak/settings", "/t/oak/runs/1")]
    assert "stored (encrypted)" in pages[2]
    files = [p.read_bytes() for p in setup.root.rglob("*") if p.is_file()]
    with setup.store.engine.connect() as conn:
        cells = [
            str(v)
            for table in ("runs", "changes", "console_tenants", "console_users")
            for row in conn.execute(text(f"SELECT * FROM {table}"))
            for v in row
        ]
    assert cells and files
    for haystack in [*pages, caplog.text, *cells]:
        assert secret not in haystack
    for blob in files:  # the database file, the configuration, reports, the emulator's tenant
        assert secret.encode() not in blob
    assert "ENTRA_SYNC_CLIENT_SECRET" in t.config_path.read_text()  # the file names the variable only
    assert setup.box.decrypt(setup.store.encrypted_secret("oak") or "") == secret
