"""Opening the store: where it is, the engine, and migrating it to this version's schema.

The store is a SQLite file (a path; no server) or a PostgreSQL database (a URL,
``postgresql+psycopg://user:password@host/db``). Opening it runs the Alembic migrations shipped in
:mod:`entra_sync.store.migrations` (``upgrade head``); a file of the store before Alembic (its own
``schema_version`` table, version 1) is taken as the first revision and migrated on.

Must: create a SQLite file readable by its owner only (0600; SQLite gives its -wal and -shm files
the same mode); use WAL so that a reader never blocks the writer; take SQLite's write lock at the
start of a writing transaction (``BEGIN IMMEDIATE``) so that two writers queue instead of failing;
serialise two processes migrating one PostgreSQL database (an advisory lock).
Must not: show a URL's password (:func:`display_name`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, Table, create_engine, event, inspect, make_url, text
from sqlalchemy.pool import StaticPool

from entra_sync.store.values import HistoryError

__all__ = [
    "HEAD",
    "SCHEMA_VERSION",
    "alembic_config",
    "bulk_insert",
    "current_version",
    "display_name",
    "migrate",
    "open_engine",
    "writer",
]

#: the newest migration's number (``migrations/versions/v000N_*.py``)
SCHEMA_VERSION = 8
#: its Alembic revision
HEAD = f"{SCHEMA_VERSION:04d}"
#: the revision a file of the store before Alembic (schema_version = 1) is
_LEGACY_REVISION = "0001"
#: pg_advisory_xact_lock key held while migrating ("entra-sync store")
_PG_LOCK = 0x656E7472


def target_url(target: str | Path) -> URL:
    """The URL for a path (SQLite), ``:memory:``, or a URL (``postgresql://`` means psycopg 3)."""
    s = str(target)
    if "://" in s:
        url = make_url(s)
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        return url
    if s == ":memory:":
        return URL.create("sqlite+pysqlite")
    return URL.create("sqlite+pysqlite", database=s)


def display_name(target: str | Path) -> str:
    """How to name the store to people: the path, or the URL without its password."""
    s = str(target)
    if "://" not in s:
        return s
    try:
        return make_url(s).render_as_string(hide_password=True)
    except Exception:  # an unreadable URL is shown by its scheme only
        return s.split("://", 1)[0] + "://..."


def _private_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:  # a file of an older version may be world-readable: tighten it
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            with contextlib.suppress(OSError):
                if p.exists() and p.stat().st_mode & 0o077:
                    p.chmod(0o600)


def open_engine(target: str | Path) -> Engine:
    url = target_url(target)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if url.database:
        _private_file(Path(url.database))
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    else:
        engine = create_engine(url, connect_args={"check_same_thread": False}, poolclass=StaticPool)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we say when a transaction begins
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA journal_mode = WAL")
        # a commit is in the WAL before it returns: it survives the process being killed; after a
        # power cut the last commits may be gone (never a corrupt file), and the next run's read of
        # Entra puts right what they said. FULL would fsync every outcome (13 ms each here).
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("writer") else "BEGIN")

    return engine


def bulk_insert(conn: Connection, table: Table, rows: Sequence[Sequence[Any]],
                columns: Sequence[str] | None = None) -> None:
    """Insert many rows through the driver's ``executemany`` (no per-row work in SQLAlchemy: ten
    times faster for a plan's hundreds of thousands of people). Values go to the driver as they
    are, so JSON must be dumped already."""
    if not rows:
        return
    names = list(columns) if columns is not None else [c.name for c in table.columns]
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
        f"VALUES ({', '.join([mark] * len(names))})",
        [tuple(r) for r in rows],
    )


def writer(engine: Engine) -> Engine:
    """``engine`` for a writing transaction (SQLite takes its write lock when it begins)."""
    return engine.execution_options(writer=True)


def alembic_config() -> Any:
    """Alembic's configuration for the migrations shipped in this package."""
    from alembic.config import Config  # Alembic is imported only to migrate

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    return cfg


def _revision(conn: Connection) -> str | None:
    """The store's Alembic revision (None: not an Alembic store, or empty)."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    return None if row is None else str(row[0])


def current_version(conn: Connection) -> int:
    rev = _revision(conn)
    return 0 if rev is None else int(rev)


def _newer(display: str, version: object) -> HistoryError:
    return HistoryError(display, f"written by a newer entra-sync (schema {version}, this one knows "
                                 f"{SCHEMA_VERSION}); upgrade entra-sync")


def migrate(engine: Engine, display: str) -> None:
    """Bring the store to this version's schema (nothing to do, and no write lock, when it is)."""
    with engine.connect() as conn:
        if _revision(conn) == HEAD:
            return
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    with writer(engine).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        try:
            current = _revision(conn)
            if current is None:
                legacy = _legacy_version(conn)
                if legacy is not None and legacy > 1:
                    raise _newer(display, legacy)
                if legacy == 1:
                    command.stamp(cfg, _LEGACY_REVISION)
            else:
                try:
                    ScriptDirectory.from_config(cfg).get_revision(current)
                except CommandError:
                    raise _newer(display, current) from None
            command.upgrade(cfg, "head")
        finally:
            cfg.attributes.pop("connection", None)


def _legacy_version(conn: Connection) -> int | None:
    """The version in the old store's ``schema_version`` table (None: no such table)."""
    if not inspect(conn).has_table("schema_version"):
        return None
    row = conn.execute(text("SELECT version FROM schema_version")).first()
    return 0 if row is None else int(row[0])
