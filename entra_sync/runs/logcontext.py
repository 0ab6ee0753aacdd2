"""The run a log line belongs to: the pipeline sets :data:`RUN_ID` while a recorded run is open,
and the CLI's log formatter (:mod:`entra_sync.cli.logs`) adds it to each line. A context variable,
so runs in the web console's threads each see their own."""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["RUN_ID"]

RUN_ID: ContextVar[int | None] = ContextVar("entra_sync_run_id", default=None)
