"""The console's tables on SQLite and on a real PostgreSQL server: users, roles per tenant, held
plans and their approvals, sign-in attempts; and a tenant's runs are its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from entra_sync.console.jobs import TenantHistory
from entra_sync.console.queries import Filters, RunQueries
from entra_sync.console.security import check_password, hash_password
from entra_sync.console.store import ConsoleStore
from reconciler.plan.model import Plan
from reconciler.plan.operations import AddGroupMembers
from tests.postgres import postgres_database, postgres_server

__all__ = ["postgres_database", "postgres_server"]


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    return str(request.getfixturevalue("postgres_database"))


def test_users_roles_and_tenants(target: str, tmp_path: Path) -> None:
    s = ConsoleStore(target)
    s.add_tenant("oak", "Oak", tmp_path / "oak.toml")
    s.add_tenant("elm", "Elm", tmp_path / "elm.toml")
    uid = s.add_user("ada", hash_password("a long enough password"))
    s.grant(uid, "oak", "viewer")
    s.grant(uid, "oak", "approver")  # replaces
    assert s.role(uid, "oak") == "approver" and s.role(uid, "elm") is None
    assert [(t.slug, r) for t, r in s.tenants_for(uid)] == [("oak", "approver")]
    user = s.user("ada")
    assert user is not None and user.password_hash.startswith("$argon2id$")
    assert check_password(user.password_hash, "a long enough password")
    assert not check_password(user.password_hash, "a wrong password")
    assert not check_password(None, "anything at all")
    with pytest.raises(Exception, match="exists already"):
        s.add_user("ada", hash_password("another long password"))
    with pytest.raises(Exception, match="12 characters"):
        hash_password("short")
    s.close()


def test_held_plans_approvals_and_login_attempts(target: str, tmp_path: Path) -> None:
    s = ConsoleStore(target)
    s.add_tenant("oak", "Oak", tmp_path / "oak.toml")
    hid = s.hold("oak", 7, "{}", "abc", ("too many deletes",), "ada")
    assert s.held_plan("elm", hid) is None
    held = s.held_plan("oak", hid)
    assert held is not None and held.reasons == ("too many deletes",) and held.status == "held"
    assert s.claim("oak", hid) and not s.claim("oak", hid)  # one apply only
    s.decide(hid, "bob", "approved", "applied", outcome="applied", message="3 done", outcome_run_id=8)
    after = s.held_plan("oak", hid)
    assert after is not None and after.status == "applied" and after.outcome_run_id == 8
    assert [(a.approver, a.outcome) for a in s.approvals(hid)] == [("bob", "applied")]
    for ok in (False, False, True):
        s.record_login("ada", "10.0.0.1", ok)
    assert s.failed_logins("ada", "10.0.0.9", 0) == (2, 0)
    assert s.failed_logins("bob", "10.0.0.1", 0) == (0, 2)
    s.close()


def test_a_tenants_runs_are_its_own_and_the_run_page_pages(target: str) -> None:
    plan = Plan(
        changes=tuple(
            AddGroupMembers(
                f"class:SCH{i % 3 + 1}:2026-27:7A-Ma{i}", members=(f"p{i}@x", "q@x")
            )
            for i in range(120)
        )
    )
    with TenantHistory(target, "oak") as h:
        run = h.start_run("console sync")
        h.record_plan(run, plan)
        h.finish_run(run, "succeeded")
    with TenantHistory(target, "elm") as h:
        other = h.start_run("console sync")
    store = ConsoleStore(target)
    q = RunQueries(store.engine)
    assert q.run_row("elm", run) is None and q.run_row("oak", other) is None
    row = q.run_row("oak", run)
    assert row is not None
    facts = q.facts(row)
    assert facts.total == 120 and facts.memberships == 240
    assert [c.school for c in facts.counts] == ["SCH1", "SCH2", "SCH3"]
    rows, total = q.page(run, Filters(school="SCH2"))
    assert total == 40 and len(rows) == 40 and all(r.school == "SCH2" for r in rows)
    rows, total = q.page(run, Filters(page=3))
    assert total == 120 and len(rows) == 20
    rows, total = q.page(run, Filters(q="P7@X"))
    assert total == 1 and rows[0].key.endswith("Ma7")
    assert q.page(run, Filters(q="q@x"))[1] == 120
    store.close()
