"""An id the generator percent-encoded in a key has the identity of the letters it encodes
(``%C3%89COLE`` and ``%C3%A9cole`` are one key, :func:`reconciler.identity.fold`): the
``changes.key_norm`` of existing rows whose key holds an escape is folded again.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

from entra_sync.store.migrations import set_schema_version
from reconciler.identity import fold

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _refold(fold)
    set_schema_version(8)


def _refold(folding: Callable[[str], str]) -> None:
    conn = op.get_bind()
    table = sa.table("changes", sa.column("key", sa.Text), sa.column("key_norm", sa.Text))
    keys = [str(r[0]) for r in conn.execute(
        sa.select(table.c.key).where(table.c.key.contains("%", autoescape=True)).distinct())]
    if keys:
        conn.execute(
            sa.update(table).where(table.c.key == sa.bindparam("k")).values(key_norm=sa.bindparam("n")),
            [{"k": k, "n": folding(k)} for k in keys],
        )


def _fold_0007(text: str) -> str:
    """The folding of 0007 (escapes compared as they are spelled)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


def downgrade() -> None:
    _refold(_fold_0007)
    set_schema_version(7)
