"""Runs and their changes: the schema of the store before Alembic (its ``schema_version`` 1).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from entra_sync.store.migrations import set_schema_version

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    if not sa.inspect(op.get_bind()).has_table("schema_version"):
        op.create_table("schema_version", sa.Column("version", sa.Integer, nullable=False))
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("planned_at", sa.Float),
        sa.Column("applied_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("error", sa.Text),
        sa.Column("config", sa.Text, nullable=False, server_default="{}"),
        sa.Column("plan_summary", sa.Text),
        sa.Column("plan_checksum", sa.Text),
        sa.Column("warnings", sa.Text, nullable=False, server_default="[]"),
        sa.Column("conflicts", sa.Text, nullable=False, server_default="[]"),
        sa.Column("counts", sa.Text),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "changes",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("change_id", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("change", sa.Text, nullable=False),
        sa.Column("status", sa.Text),
        sa.Column("message", sa.Text),
        sa.Column("failures", sa.Text),
        sa.Column("object_id", sa.Text),
        sa.PrimaryKeyConstraint("run_id", "change_id"),
    )
    op.create_index("changes_by_key", "changes", ["key", "run_id"])
    op.create_index("runs_by_start", "runs", ["started_at"])
    set_schema_version(1)


def downgrade() -> None:
    op.drop_table("changes")
    op.drop_table("runs")
