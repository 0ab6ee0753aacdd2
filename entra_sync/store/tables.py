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
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "JSONText",
    "changes",
    "console_approvals",
    "console_held_plans",
    "console_login_attempts",
    "console_roles",
    "console_settings_changes",
    "console_tenants",
    "console_users",
    "delta_notes",
    "delta_snapshots",
    "dumps",
    "fleet_slots",
    "fleet_state",
    "fleet_tenants",
    "metadata",
    "person_changes",
    "run_summaries",
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
    #: the key's identity (reconciler.identity.Key.folded): an object's history whatever its spelling
    Column("key_norm", Text),
    Column("change", JSONText, nullable=False),
    Column("status", Text),
    Column("message", Text),
    Column("failures", JSONText),
    Column("object_id", Text),
    PrimaryKeyConstraint("run_id", "change_id"),
    Index("changes_by_key", "key", "run_id"),
    Index("changes_by_key_norm", "key_norm", "run_id"),
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

#: a run's summary (entra_sync.store.run_summary): the plan's counts by school x kind x action as
#: [school, kind, action, changes, memberships] rows, counted as the plan is recorded; the whole
#: summary (with the outcome's part) once the run has finished (None until then)
run_summaries = Table(
    "run_summaries",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("plan_counts", JSONText, nullable=False),
    Column("summary", JSONText),
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

# -- the web console (entra_sync.console): its people, tenants, held plans and approvals ---------

#: local accounts of the console (the password as an argon2 hash, never in clear)
console_users = Table(
    "console_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", Text, nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("disabled", Integer, nullable=False, server_default="0"),
)

#: a tenant is one configuration file; the fleet work adds schedule / paused / health columns
console_tenants = Table(
    "console_tenants",
    metadata,
    Column("slug", Text, primary_key=True),
    Column("display_name", Text, nullable=False),
    Column("config_path", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    #: 1: whoever approves a held plan must not be who asked for the run
    Column("require_other_approver", Integer, nullable=False, server_default="0"),
    #: the client secret typed in the console, encrypted (Fernet); never in clear
    Column("secret_enc", Text),
)

#: a role per tenant: viewer, approver or admin
console_roles = Table(
    "console_roles",
    metadata,
    Column("user_id", Integer, ForeignKey("console_users.id", ondelete="CASCADE"), nullable=False),
    Column("tenant", Text, ForeignKey("console_tenants.slug", ondelete="CASCADE"), nullable=False),
    Column("role", Text, nullable=False),
    PrimaryKeyConstraint("user_id", "tenant"),
)

#: a plan a safety limit refused, held for an approver (the plan as its JSON document)
console_held_plans = Table(
    "console_held_plans",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", Text, ForeignKey("console_tenants.slug", ondelete="CASCADE"), nullable=False),
    #: the refused run, in the tenant's run history
    Column("run_id", Integer),
    Column("plan", Text, nullable=False),
    Column("checksum", Text, nullable=False),
    Column("reasons", JSONText, nullable=False, server_default="[]"),
    Column("requested_by", Text),
    Column("created_at", Float, nullable=False),
    #: held, applied, failed, stale or rejected
    Column("status", Text, nullable=False, server_default="held"),
    #: the run that applied it
    Column("outcome_run_id", Integer),
    Column("decided_at", Float),
    Index("console_held_by_tenant", "tenant", "status"),
)

console_approvals = Table(
    "console_approvals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("held_plan_id", Integer, ForeignKey("console_held_plans.id", ondelete="CASCADE"), nullable=False),
    Column("approver", Text, nullable=False),
    Column("decided_at", Float, nullable=False),
    #: approved, rejected
    Column("decision", Text, nullable=False),
    #: the outcome of applying it: applied, failed, stale, partial ...
    Column("outcome", Text),
    Column("message", Text),
)

#: the settings audit trail: who changed which settings of a tenant, when (field names only; never a
#: value, so never a secret)
console_settings_changes = Table(
    "console_settings_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", Text, ForeignKey("console_tenants.slug", ondelete="CASCADE"), nullable=False),
    Column("username", Text, nullable=False),
    Column("at", Float, nullable=False),
    #: the names of the fields that changed (JSON list), e.g. ["credentials.kind", "schedule.times"]
    Column("fields", JSONText, nullable=False),
    Index("console_settings_by_tenant", "tenant", "id"),
)

console_login_attempts = Table(
    "console_login_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", Text, nullable=False),
    Column("ip", Text, nullable=False),
    Column("at", Float, nullable=False),
    Column("ok", Integer, nullable=False),
    Index("console_logins_by_user", "username", "at"),
    Index("console_logins_by_ip", "ip", "at"),
)

# -- the worker fleet (entra_sync.fleet): each tenant's schedule, pause and health; each slot ------

#: the fleet's side of a registered tenant (one row per console_tenants row it schedules)
fleet_tenants = Table(
    "fleet_tenants",
    metadata,
    Column("slug", Text, ForeignKey("console_tenants.slug", ondelete="CASCADE"), primary_key=True),
    #: the configuration's TOML, when stored in the store (else read from console_tenants.config_path)
    Column("config_toml", Text),
    #: how the worker signs in: "config" (the file's [credentials]), "env:NAME", "file:PATH",
    #: "certificate:PATH", "managed-identity[:CLIENT_ID]", "federated:PATH"; a reference, never a secret
    Column("credential_ref", Text, nullable=False, server_default="config"),
    #: local times "HH:MM" (JSON list) in ``timezone``; catch-up minutes after deferred Teams
    Column("times", JSONText, nullable=False),
    Column("timezone", Text, nullable=False),
    Column("catch_up_minutes", Integer, nullable=False, server_default="20"),
    Column("paused", Integer, nullable=False, server_default="0"),
    Column("paused_reason", Text),
    #: the next scheduled slot not yet dispatched (None: from the next tick on)
    Column("next_slot_at", Float),
    Column("last_run_at", Float),
    Column("last_status", Text),
    Column("last_success_at", Float),
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    #: when it became degraded (None: healthy)
    Column("degraded_at", Float),
    Column("last_error", Text),
)

#: one scheduled (or catch-up) run of one tenant: pending -> queued -> running -> done | failed | skipped
fleet_slots = Table(
    "fleet_slots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", Text, ForeignKey("fleet_tenants.slug", ondelete="CASCADE"), nullable=False),
    #: scheduled or catch-up
    Column("kind", Text, nullable=False),
    #: the slot's nominal instant; ``due_at`` adds the tenant's jitter
    Column("slot_at", Float, nullable=False),
    Column("due_at", Float, nullable=False),
    Column("state", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("run_id", Integer),
    Column("worker", Text),
    Column("queued_at", Float),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("message", Text),
    UniqueConstraint("tenant", "kind", "slot_at", name="fleet_slots_once"),
    Index("fleet_slots_by_state", "state", "due_at"),
)

#: small fleet-wide values (the last tick of beat, ...)
fleet_state = Table(
    "fleet_state",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

#: the console's run page: a run's changes by status (failed first), page by page
Index("changes_by_run_status", changes.c.run_id, changes.c.status, changes.c.seq)
#: ... and in plan order, page by page
Index("changes_by_run_seq", changes.c.run_id, changes.c.seq)
