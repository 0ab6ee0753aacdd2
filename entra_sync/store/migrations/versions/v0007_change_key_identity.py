"""Changes are found by their object's identity: ``changes.key_norm`` holds the key folded as
:class:`reconciler.identity.Key` compares it (NFC, case-folded), indexed, so that an object's
history holds its changes whatever case its key was spelled in. Existing rows are filled in.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from entra_sync.store.migrations import set_schema_version
from reconciler.identity import fold

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("changes") as batch:
        batch.add_column(sa.Column("key_norm", sa.Text))
    conn = op.get_bind()
    table = sa.table("changes", sa.column("key", sa.Text), sa.column("key_norm", sa.Text))
    keys = [str(r[0]) for r in conn.execute(sa.select(table.c.key).distinct())]
    if keys:
        conn.execute(
            sa.update(table).where(table.c.key == sa.bindparam("k")).values(key_norm=sa.bindparam("n")),
            [{"k": k, "n": fold(k)} for k in keys],
        )
    op.create_index("changes_by_key_norm", "changes", ["key_norm", "run_id"])
    set_schema_version(7)


def downgrade() -> None:
    op.drop_index("changes_by_key_norm", table_name="changes")
    with op.batch_alter_table("changes") as batch:
        batch.drop_column("key_norm")
    set_schema_version(6)
