"""The worker fleet's tables: each registered tenant's configuration (stored TOML), credential
reference, schedule and time zone, paused, and health (``fleet_tenants``); one row per scheduled
or catch-up run of a tenant (``fleet_slots``); fleet-wide values (``fleet_state``).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from entra_sync.store.migrations import set_schema_version

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleet_tenants",
        sa.Column(
            "slug", sa.Text, sa.ForeignKey("console_tenants.slug", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("config_toml", sa.Text),
        sa.Column("credential_ref", sa.Text, nullable=False, server_default="config"),
        sa.Column("times", sa.Text, nullable=False),
        sa.Column("timezone", sa.Text, nullable=False),
        sa.Column("catch_up_minutes", sa.Integer, nullable=False, server_default="20"),
        sa.Column("paused", sa.Integer, nullable=False, server_default="0"),
        sa.Column("paused_reason", sa.Text),
        sa.Column("next_slot_at", sa.Float),
        sa.Column("last_run_at", sa.Float),
        sa.Column("last_status", sa.Text),
        sa.Column("last_success_at", sa.Float),
        sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("degraded_at", sa.Float),
        sa.Column("last_error", sa.Text),
    )
    op.create_table(
        "fleet_slots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.Text, sa.ForeignKey("fleet_tenants.slug", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("slot_at", sa.Float, nullable=False),
        sa.Column("due_at", sa.Float, nullable=False),
        sa.Column("state", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("run_id", sa.Integer),
        sa.Column("worker", sa.Text),
        sa.Column("queued_at", sa.Float),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("message", sa.Text),
        sa.UniqueConstraint("tenant", "kind", "slot_at", name="fleet_slots_once"),
    )
    op.create_index("fleet_slots_by_state", "fleet_slots", ["state", "due_at"])
    op.create_table(
        "fleet_state",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    set_schema_version(5)


def downgrade() -> None:
    for name in ("fleet_state", "fleet_slots", "fleet_tenants"):
        op.drop_table(name)
