"""The store's Alembic migrations (``env.py``, ``versions/``), run by :func:`entra_sync.store.engine.migrate`.

A new revision: ``versions/v000N_what.py`` with ``revision = "000N"`` (the number is the schema
version), ``down_revision`` the previous one; it ends by writing N to ``schema_version``
(:func:`set_schema_version`), then raise ``SCHEMA_VERSION`` in ``engine.py``. Migrations use
``sa`` types only (no model classes), so that they keep doing what they did when written.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

__all__ = ["set_schema_version"]


def set_schema_version(version: int) -> None:
    """Record ``version`` where entra-sync before Alembic looks, so that it refuses a newer file."""
    op.execute(sa.text("DELETE FROM schema_version"))
    op.execute(sa.text("INSERT INTO schema_version (version) VALUES (:v)").bindparams(v=version))
