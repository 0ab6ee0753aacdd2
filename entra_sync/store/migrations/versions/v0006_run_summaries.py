"""A run's summary kept beside it (``run_summaries``: the plan's counts by school x kind x action,
then the whole summary once the run has finished), so that a run page never counts a big run; and
the console's settings audit trail (``console_settings_changes``: who changed which fields, when).

Runs recorded before this revision get their summary on their first read (lazily: counting every
old run here would make the upgrade as slow as all their first page views together).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from entra_sync.store.migrations import set_schema_version

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_summaries",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("plan_counts", sa.Text, nullable=False),
        sa.Column("summary", sa.Text),
    )
    op.create_table(
        "console_settings_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "tenant", sa.Text, sa.ForeignKey("console_tenants.slug", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("fields", sa.Text, nullable=False),
    )
    op.create_index("console_settings_by_tenant", "console_settings_changes", ["tenant", "id"])
    set_schema_version(6)


def downgrade() -> None:
    op.drop_index("console_settings_by_tenant", "console_settings_changes")
    op.drop_table("console_settings_changes")
    op.drop_table("run_summaries")
    set_schema_version(5)
