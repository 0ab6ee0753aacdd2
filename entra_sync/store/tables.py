"""The store's tables (SQLAlchemy Core), the one description of the schema that the migrations in
:mod:`entra_sync.store.migrations` build.

Must: stay portable between SQLite and PostgreSQL (Text, Float, Integer only; JSON is kept as
text, written sorted and compact, so that both backends store the same bytes); keep a person's
reference as planned *and* casefolded (``person_norm``) so that look-ups ignore case.
Must not: hold a secret (``runs.config`` is a redacted summary; see :func:`entra_sync.store.values.redact`).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    Column,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "JSONText",
    "changes",
    "delta_notes",
    "delta_snapshots",
    "dumps",
    "metadata",
    "person_changes",
    "runs",
    "schema_version",
]


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class JSONText(TypeDecorator[Any]):
    """A JSON value kept as text (the same bytes on every backend, and in files of the old store)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else dumps(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


metadata = MetaData()

#: kept for entra-sync versions before this store: they refuse a file whose version they do not know
schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("planned_at", Float),
    Column("applied_at", Float),
    Column("finished_at", Float),
    Column("error", Text),
    Column("config", JSONText, nullable=False, server_default="{}"),
    Column("plan_summary", JSONText),
    Column("plan_checksum", Text),
    Column("warnings", JSONText, nullable=False, server_default="[]"),
    Column("conflicts", JSONText, nullable=False, server_default="[]"),
    Column("counts", JSONText),
    Column("tenant", Text),
    Index("runs_by_start", "started_at"),
    Index("runs_by_tenant", "tenant", "id"),
    Index("runs_by_status", "status"),
    sqlite_autoincrement=True,  # a pruned run's id is never given again (reports are named by it)
)

changes = Table(
    "changes",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("change_id", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("change", JSONText, nullable=False),
    Column("status", Text),
    Column("message", Text),
    Column("failures", JSONText),
    Column("object_id", Text),
    PrimaryKeyConstraint("run_id", "change_id"),
    Index("changes_by_key", "key", "run_id"),
)

#: one row per person per membership a change moves (a create or delete of a group or unit moves
#: its members too): "when was this pupil taken out of 9A Maths, by which run, and why"
person_changes = Table(
    "person_changes",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("change_id", Text, nullable=False),
    #: groupMembers, groupOwners or administrativeUnitMembers
    Column("kind", Text, nullable=False),
    #: the group's or unit's key
    Column("key", Text, nullable=False),
    #: add or remove
    Column("action", Text, nullable=False),
    Column("person", Text, nullable=False),
    Column("person_norm", Text, nullable=False),
    #: None until the change's outcome is recorded; then done, failed, skipped or deferred
    Column("status", Text),
    Column("message", Text),
    PrimaryKeyConstraint("run_id", "change_id", "kind", "person_norm"),
    Index("person_changes_by_person", "person_norm", "run_id"),
)

#: delta reads (providers.entra.delta): one last-known snapshot and its deltaLinks per scope (Graph
#: root, tenant and marker), compressed JSON
delta_snapshots = Table(
    "delta_snapshots",
    metadata,
    Column("scope", Text, primary_key=True),
    Column("snapshot", Text, nullable=False),
    Column("saved_at", Float, nullable=False),
)

#: changes this tool made that delta does not report (owners, Teams), folded into the next snapshot
delta_notes = Table(
    "delta_notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("object_id", Text, nullable=False),
    Column("value", Text, nullable=False),
    Index("delta_notes_by_scope", "scope", "id"),
    sqlite_autoincrement=True,
)
