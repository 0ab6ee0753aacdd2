"""Runs name their tenant; per-person membership history (filled in for the runs recorded before).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from entra_sync.store.migrations import set_schema_version
from entra_sync.store.persons import PERSON_COLUMNS, person_rows

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BATCH = 5000


def upgrade() -> None:
    op.add_column("runs", sa.Column("tenant", sa.Text))
    op.create_index("runs_by_tenant", "runs", ["tenant", "id"])
    op.create_index("runs_by_status", "runs", ["status"])
    people = op.create_table(
        "person_changes",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("change_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("person", sa.Text, nullable=False),
        sa.Column("person_norm", sa.Text, nullable=False),
        sa.Column("status", sa.Text),
        sa.Column("message", sa.Text),
        sa.PrimaryKeyConstraint("run_id", "change_id", "kind", "person_norm"),
    )
    op.create_index("person_changes_by_person", "person_changes", ["person_norm", "run_id"])
    _fill(people)
    set_schema_version(2)


def _fill(people: sa.Table | None) -> None:
    """The people moved by the changes already recorded."""
    assert people is not None
    bind = op.get_bind()
    rows: list[dict[str, Any]] = []
    result = bind.execute(sa.text(
        "SELECT run_id, change, status, message, failures FROM changes "
        "WHERE kind IN ('group', 'administrativeUnit', 'groupMembers', 'groupOwners', "
        "'administrativeUnitMembers')"
    ))
    for run_id, change, status, message, failures in result:
        moved = person_rows(run_id, json.loads(change), status, message, json.loads(failures or "[]"))
        rows += [dict(zip(PERSON_COLUMNS, row, strict=True)) for row in moved]
        if len(rows) >= _BATCH:
            bind.execute(people.insert(), rows)
            rows = []
    if rows:
        bind.execute(people.insert(), rows)


def downgrade() -> None:
    op.drop_table("person_changes")
    op.drop_index("runs_by_status", "runs")
    op.drop_index("runs_by_tenant", "runs")
    op.drop_column("runs", "tenant")
