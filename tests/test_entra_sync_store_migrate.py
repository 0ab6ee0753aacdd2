"""The store's SQLite file: opening a file of the store before Alembic (made here with that
store's own DDL), WAL, the file's mode, a garbage file, a file of a newer version; and that the
migrations build exactly the schema of ``entra_sync.store.tables`` (on PostgreSQL too)."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from entra_sync.runs.history import SCHEMA_VERSION, History, HistoryError
from entra_sync.store.engine import target_url
from entra_sync.store.tables import metadata
from reconciler.clock import VirtualClock
from reconciler.plan.model import Plan
from reconciler.plan.operations import AddGroupMembers
from tests.postgres import postgres_database, postgres_server

__all__ = ["postgres_database", "postgres_server"]  # fixtures, used by name

#: the DDL of the hand-written SQLite store (entra_sync/runs/history.py before the store), schema 1
OLD_DDL = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    planned_at REAL,
    applied_at REAL,
    finished_at REAL,
    error TEXT,
    config TEXT NOT NULL DEFAULT '{}',
    plan_summary TEXT,
    plan_checksum TEXT,
    warnings TEXT NOT NULL DEFAULT '[]',
    conflicts TEXT NOT NULL DEFAULT '[]',
    counts TEXT
);
CREATE TABLE changes (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    change_id TEXT NOT NULL,
    action TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    change TEXT NOT NULL,
    status TEXT,
    message TEXT,
    failures TEXT,
    object_id TEXT,
    PRIMARY KEY (run_id, change_id)
);
CREATE INDEX changes_by_key ON changes (key, run_id);
CREATE INDEX runs_by_start ON runs (started_at);
INSERT INTO schema_version (version) VALUES (1);
"""

G1 = "class:SCH1:2026-27:9A-Ma1"
AMY, BEN = "amy.learner@oak.example", "ben.learner@oak.example"


def _old_file(path: Path) -> None:
    """A history as the old store wrote it: one finished run that removed two pupils from a class
    (one removal failed) and created a group with a member."""
    db = sqlite3.connect(path)
    db.executescript(OLD_DDL)
    db.execute(
        "INSERT INTO runs (kind, status, started_at, planned_at, applied_at, finished_at, config, "
        "plan_summary, plan_checksum, counts) VALUES ('sync', 'partial', 1000.0, 1001.0, 1002.0, 1003.0, "
        "?, ?, 'abc', ?)",
        (json.dumps({"tenantId": "t-1", "clientSecret": "[redacted]"}),
         json.dumps({"remove groupMembers": 1}),
         json.dumps({"done": 1, "partial": 1, "failed": 0, "skipped": 0, "deferred": 0})),
    )
    removal = {"id": f"remove:groupMembers:{G1}", "action": "remove", "kind": "groupMembers", "key": G1,
               "members": [AMY, BEN]}
    create = {"id": "create:group:g2", "action": "create", "kind": "group", "key": "g2",
              "after": {"displayName": "9B", "owners": [], "members": [AMY]}}
    db.execute(
        "INSERT INTO changes VALUES (1, 0, ?, 'remove', 'groupMembers', ?, ?, 'partial', "
        "'1 of 2 members removed', ?, 'gid-1')",
        (removal["id"], G1, json.dumps(removal), json.dumps([{"objectId": "uid-ben", "message":
                                                              f"{BEN}: not a member"}])),
    )
    db.execute("INSERT INTO changes VALUES (1, 1, 'create:group:g2', 'create', 'group', 'g2', ?, 'done', "
               "'', '[]', 'gid-2')", (json.dumps(create),))
    db.commit()
    db.close()


def test_a_file_of_the_old_store_opens_and_migrates(tmp_path: Path) -> None:
    old = tmp_path / "history.sqlite"
    _old_file(old)
    old.chmod(0o644)
    with History(old, VirtualClock(start=5000.0)) as h:
        assert h.schema_version() == SCHEMA_VERSION
        (run,) = h.list_runs()
        assert (run.run_id, run.status, run.tenant, run.change_count) == (1, "partial", None, 2)
        detail = h.get_run(1)
        assert detail.config == {"tenantId": "t-1", "clientSecret": "[redacted]"}
        assert [rc.result.status for rc in detail.changes if rc.result] == ["partial", "done"]
        # the people the old runs moved are filled in: who was removed, who failed and why
        people = [(p.key, p.action, p.status, p.message) for p in h.changes_for_person(BEN.upper())]
        assert people == [(G1, "remove", "failed", f"{BEN}: not a member")]
        assert [(p.key, p.kind, p.action, p.status) for p in h.changes_for_person(AMY)] == [
            (G1, "groupMembers", "remove", "done"), ("g2", "groupMembers", "add", "done")]
        # the old rows' keys get their identity: the object's history ignores the key's case
        assert [c.run_id for c in h.changes_for_object(G1.upper())] == [1]
        new = h.start_run("sync", tenant="oak")
        assert new == 2
    assert stat.S_IMODE(old.stat().st_mode) == 0o600  # personal data: the owner's only
    db = sqlite3.connect(old)
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    db.close()


def test_a_key_with_escaped_letters_is_found_by_its_identity_after_the_0008_migration(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    key = "class:SCH1:2026-27:%C3%89COLE-7"  # the generator's spelling of "ÉCOLE-7"
    with History(path, VirtualClock()) as h:
        run_id = h.start_run("sync")
        h.record_plan(run_id, Plan(changes=(AddGroupMembers(key, "gid-1", members=(AMY,)),)))
        h.finish_run(run_id, "succeeded")
    db = sqlite3.connect(path)  # as a store at version 7 left it: the escapes folded as spelled
    db.execute("UPDATE changes SET key_norm = ?", ("class:sch1:2026-27:%c3%89cole-7",))
    db.execute("UPDATE alembic_version SET version_num = '0007'")
    db.execute("UPDATE schema_version SET version = 7")
    db.commit()
    db.close()
    with History(path, VirtualClock()) as h:
        assert h.schema_version() == SCHEMA_VERSION
        # the class's id later spelled in lower case ("école-7") finds the same history
        assert [c.run_id for c in h.changes_for_object("class:SCH1:2026-27:%C3%A9cole-7")] == [run_id]
        assert [c.run_id for c in h.changes_for_object("class:sch1:2026-27:\u00e9cole-7")] == [run_id]


def test_a_new_file_is_the_owners_only(tmp_path: Path) -> None:
    path = tmp_path / "state" / "h.db"
    with History(path, VirtualClock()) as h:
        h.start_run("sync")
        files = sorted(p.name for p in path.parent.iterdir())
        assert files == ["h.db", "h.db-shm", "h.db-wal"]
        assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()} == dict.fromkeys(
            files, 0o600)


def test_schema_version_wal_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with History(path, VirtualClock()) as h:
        assert h.schema_version() == SCHEMA_VERSION
        h.start_run("sync")
    with History(path, VirtualClock()) as again:  # reopening migrates nothing and keeps the runs
        assert len(again.list_runs()) == 1
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    db.close()


def test_old_database_is_migrated_and_newer_refused(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    db = sqlite3.connect(old)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (0)")
    db.commit()
    db.close()
    with History(old, VirtualClock()) as h:
        assert h.schema_version() == SCHEMA_VERSION
        assert h.list_runs() == []

    newer = tmp_path / "newer.db"
    db = sqlite3.connect(newer)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    with pytest.raises(HistoryError, match="newer entra-sync"):
        History(newer, VirtualClock())


def test_garbage_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database, just some text " * 100)
    with pytest.raises(HistoryError, match=r"bad\.db: cannot open the database"):
        History(bad, VirtualClock())



def test_newer_alembic_revision_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    History(path, VirtualClock()).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE alembic_version SET version_num = '0099'")
    db.commit()
    db.close()
    with pytest.raises(HistoryError, match=r"newer entra-sync \(schema 0099"):
        History(path, VirtualClock())


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrations_build_the_tables_schema(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    target = str(tmp_path / "h.db")
    if backend == "postgresql":
        target = str(request.getfixturevalue("postgres_database"))
    History(target, VirtualClock()).close()
    engine = create_engine(target_url(target))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def test_schema_version_is_the_newest_migration() -> None:
    from alembic.script import ScriptDirectory

    from entra_sync.store.engine import HEAD, alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [HEAD]
    assert [r.revision for r in script.walk_revisions()] == [f"{n:04d}" for n in range(SCHEMA_VERSION, 0, -1)]


def test_postgres_that_cannot_be_had_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests import postgres

    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL is required in CI: no server here"):
        postgres._unavailable("no server here")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="no PostgreSQL server: no server here"):
        postgres._unavailable("no server here")
