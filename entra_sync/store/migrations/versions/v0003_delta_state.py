"""Delta reads: the last-known snapshot and deltaLinks per scope, and the notes of changes delta
does not report (owners, Teams) made since.

Revision ID: 0003
Revises: 0002 (the console's 0003 and the fleet's 0004 are written in parallel; chained at merge)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from entra_sync.store.migrations import set_schema_version

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delta_snapshots",
        sa.Column("scope", sa.Text, primary_key=True),
        sa.Column("snapshot", sa.Text, nullable=False),
        sa.Column("saved_at", sa.Float, nullable=False),
    )
    op.create_table(
        "delta_notes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("object_id", sa.Text, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("delta_notes_by_scope", "delta_notes", ["scope", "id"])
    set_schema_version(3)


def downgrade() -> None:
    op.drop_index("delta_notes_by_scope", "delta_notes")
    op.drop_table("delta_notes")
    op.drop_table("delta_snapshots")
