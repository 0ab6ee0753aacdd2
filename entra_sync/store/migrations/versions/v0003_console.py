"""The web console's tables (users, tenants, roles per tenant, held plans, approvals, login
attempts) and an index for its run page (a run's changes by status).

Revision ID: 0003
Revises: 0002
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
    op.create_index("changes_by_run_status", "changes", ["run_id", "status", "seq"])
    op.create_index("changes_by_run_seq", "changes", ["run_id", "seq"])
    op.create_table(
        "console_users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.Text, nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("disabled", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "console_tenants",
        sa.Column("slug", sa.Text, primary_key=True),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("config_path", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("require_other_approver", sa.Integer, nullable=False, server_default="0"),
        sa.Column("secret_enc", sa.Text),
    )
    op.create_table(
        "console_roles",
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("console_users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "tenant", sa.Text, sa.ForeignKey("console_tenants.slug", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("role", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "tenant"),
    )
    op.create_table(
        "console_held_plans",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "tenant", sa.Text, sa.ForeignKey("console_tenants.slug", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("run_id", sa.Integer),
        sa.Column("plan", sa.Text, nullable=False),
        sa.Column("checksum", sa.Text, nullable=False),
        sa.Column("reasons", sa.Text, nullable=False, server_default="[]"),
        sa.Column("requested_by", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="held"),
        sa.Column("outcome_run_id", sa.Integer),
        sa.Column("decided_at", sa.Float),
    )
    op.create_index("console_held_by_tenant", "console_held_plans", ["tenant", "status"])
    op.create_table(
        "console_approvals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "held_plan_id",
            sa.Integer,
            sa.ForeignKey("console_held_plans.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("approver", sa.Text, nullable=False),
        sa.Column("decided_at", sa.Float, nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text),
        sa.Column("message", sa.Text),
    )
    op.create_table(
        "console_login_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("ip", sa.Text, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("ok", sa.Integer, nullable=False),
    )
    op.create_index("console_logins_by_user", "console_login_attempts", ["username", "at"])
    op.create_index("console_logins_by_ip", "console_login_attempts", ["ip", "at"])
    set_schema_version(3)


def downgrade() -> None:
    for name in (
        "console_login_attempts",
        "console_approvals",
        "console_held_plans",
        "console_roles",
        "console_tenants",
        "console_users",
    ):
        op.drop_table(name)
    op.drop_index("changes_by_run_seq", "changes")
    op.drop_index("changes_by_run_status", "changes")
