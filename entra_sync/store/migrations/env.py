"""Alembic's environment: migrate the connection :func:`entra_sync.store.engine.migrate` hands over
(or, for ``alembic`` on the command line, the ``sqlalchemy.url`` of its configuration)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from entra_sync.store.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters a table by copying it
    )
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if isinstance(given, Connection):
    _run(given)
else:
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url in the alembic configuration")
    with create_engine(url).begin() as conn:
        _run(conn)
