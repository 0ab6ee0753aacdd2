"""The one store: run history now, and (later) the console's and the fleet's data, in one database
through SQLAlchemy, its schema migrated by Alembic. SQLite (a file) by default; PostgreSQL with the
same code. ``tables`` is the schema, ``engine`` opens and migrates, ``persons`` derives per-person
membership rows, ``values`` the frozen values handed out; :class:`entra_sync.runs.history.History`
is the run history on top."""
