"""The console's tables on SQLite and on a real PostgreSQL server: users, roles per tenant, held
plans and their approvals, sign-in attempts; and a tenant's runs are its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from entra_sync.console.queries import Filters, RunQueries
from entra_sync.console.security import check_password, hash_password
from entra_sync.console.store import ConsoleStore
from entra_sync.runs.history import History
from entra_sync.store.engine import writer
from entra_sync.store.tables import run_summaries
from reconciler.apply.result import ApplyResult, ChangeResult
from reconciler.plan.model import Conflict, Plan, Warning
from reconciler.plan.operations import AddGroupMembers, CreateGroup
from reconciler.plan.payloads import GroupDocument
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
    with History(target) as h:
        run = h.start_run("console sync", tenant="oak")
        h.record_plan(run, plan)
        h.finish_run(run, "succeeded")
    with History(target) as h:
        other = h.start_run("console sync", tenant="elm")
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
    assert q.page(run, Filters(school="sch2"))[1] == 40  # a school is its key's identity: any case
    assert q.page(run, Filters(school="SCH_"))[1] == 0  # "_" is a character, not a LIKE wildcard
    rows, total = q.page(run, Filters(page=3))
    assert total == 120 and len(rows) == 20
    rows, total = q.page(run, Filters(q="P7@X"))
    assert total == 1 and rows[0].key.endswith("Ma7")
    assert q.page(run, Filters(q="q@x"))[1] == 120
    store.close()


def test_a_school_filter_matches_its_id_as_the_generator_spells_it_in_keys(target: str) -> None:
    keys = ("class:St%20Mary's:2026-27:7A", "class:%C3%89cole:2026-27:7A", "class:StXMary's:2026-27:7A")
    with History(target) as h:
        run = h.start_run("console sync", tenant="oak")
        h.record_plan(run, Plan(changes=tuple(AddGroupMembers(k, members=("a@x",)) for k in keys)))
        h.finish_run(run, "succeeded")
    store = ConsoleStore(target)
    q = RunQueries(store.engine)
    assert [r.key for r in q.page(run, Filters(school="St Mary's"))[0]] == [keys[0]]
    assert [r.key for r in q.page(run, Filters(school="\u00c9COLE"))[0]] == [keys[1]]  # any case
    store.close()


def _mixed_run(target: str) -> tuple[int, Plan]:
    """A finished run of oak: two schools' changes, one failed, with an unresolved person and a
    conflict."""
    changes = (
        *(
            AddGroupMembers(f"class:SCH{i % 2 + 1}:2026-27:7A-Ma{i}", members=(f"p{i}@x", "q@x")
            )
            for i in range(30)
        ),
        CreateGroup("class:SCH1:2026-27:8B", after=GroupDocument("8B", "8b", members=("a@x",))),
    )
    plan = Plan(
        changes=changes,
        warnings=(Warning("unresolvedUser", "nobody@x is not in Entra: class:SCH2:2026-27:7A-Ma1",
                          "class:SCH2:2026-27:7A-Ma1", "nobody@x"),),
        conflicts=(Conflict("group", "class:SCH1:2026-27:9C", "g-1", "mailNickname", "9c"),),
    )  # fmt: skip
    bad = "class:SCH2:2026-27:7A-Ma3"
    results = tuple(
        ChangeResult(c.id, c.action, c.kind, c.key, "failed" if c.key == bad else "done")
        for c in plan.changes
    )
    with History(target) as h:
        run = h.start_run("console sync", tenant="oak")
        h.record_plan(run, plan)
        h.record_results(run, ApplyResult(results))
        h.finish_run(run, "partial")
    return run, plan


def test_a_runs_summary_is_kept_when_it_finishes_and_made_once_for_an_old_run(target: str) -> None:
    run, _plan = _mixed_run(target)
    store = ConsoleStore(target)
    with store.engine.connect() as c:
        kept = c.execute(select(run_summaries.c.summary).where(run_summaries.c.run_id == run)).scalar_one()
    assert kept is not None  # made as the run finished, not by the page
    q = RunQueries(store.engine)
    row = q.run_row("oak", run)
    stored = q.facts(row)
    assert stored.total == 31 and stored.memberships == 61
    assert stored.statuses == {"done": 30, "failed": 1}
    by = {(r.school, r.kind, r.action): r for r in stored.counts}
    assert (
        by[("SCH2", "groupMembers", "add")].not_done == 1
        and by[("SCH2", "groupMembers", "add")].changes == 15
    )
    assert by[("SCH1", "group", "create")].memberships == 1
    assert stored.needs_you.unresolved == (("SCH2", 1),) and len(stored.needs_you.conflicts) == 1
    assert stored.unresolved == (("SCH2", "nobody@x", ("class:SCH2:2026-27:7A-Ma1",)),)
    # a run recorded before summaries were kept: counted from its rows on its first read, the same
    with writer(store.engine).begin() as w:
        w.execute(delete(run_summaries))
    assert q.facts(row) == stored
    with store.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(run_summaries)).scalar_one() == 1
    assert q.facts(row) == stored
    store.close()


def test_a_running_runs_summary_follows_its_outcomes(target: str) -> None:
    plan = Plan(changes=tuple(AddGroupMembers(f"class:SCH1:2026-27:{i}", members=("a@x",))
                              for i in range(4)))  # fmt: skip
    with History(target) as h:
        run = h.start_run("console sync", tenant="oak")
        h.record_plan(run, plan)
        c0 = plan.changes[0]
        h.record_result(run, ChangeResult(c0.id, c0.action, c0.kind, c0.key, "skipped", "not needed"))
        store = ConsoleStore(target)
        q = RunQueries(store.engine)
        facts = q.facts(q.run_row("oak", run))
        assert facts.statuses == {"planned": 3, "skipped": 1} and facts.counts[0].not_done == 1
        with store.engine.connect() as c:  # not kept while the run goes on
            assert c.execute(select(run_summaries.c.summary)).scalar_one() is None
        assert h.prune(keep_runs=0) == []  # a run in progress is never pruned
        h.finish_run(run, "succeeded")
        h.prune(keep_runs=0)
    with store.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(run_summaries)).scalar_one() == 0
    store.close()
