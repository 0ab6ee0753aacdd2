"""Run history: every run, its plan and its outcome, in the store (:mod:`entra_sync.store`).

A run goes ``start_run`` -> ``record_plan`` -> ``record_result`` per change as it settles (or
``record_results`` at the end) -> ``finish_run``; the CLI lists runs, shows one (and renders it as
HTML with :mod:`entra_sync.runs.report`) and answers "what happened to this object, or this person,
and when" with :meth:`History.changes_for_object` and :meth:`History.changes_for_person`.

Must: migrate the store forwards on open; commit each outcome as it is recorded (a second
connection sees it at once, and a crash loses none); take every time from the injected clock.
Must not: store a secret. Only the plan, the results and a configuration *summary* are stored, and
the summary goes through :func:`redact` first.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, exc, func, insert, select, update

from entra_sync.runs.history_read import HistoryReader
from entra_sync.store.engine import (
    SCHEMA_VERSION,
    bulk_insert,
    current_version,
    display_name,
    migrate,
    open_engine,
    writer,
)
from entra_sync.store.persons import PERSON_COLUMNS, PERSON_KINDS, failed_people, person_rows
from entra_sync.store.run_summary import PlanTally, finish_summary, store_plan_tally
from entra_sync.store.tables import changes, dumps, person_changes, run_summaries, runs
from entra_sync.store.values import (
    RUN_STATUSES,
    HistoryError,
    ObjectChange,
    PersonChange,
    RunChange,
    RunDetail,
    RunStatus,
    RunSummary,
    redact,
    run_status_for,
)
from reconciler.apply.result import ApplyResult, ChangeResult
from reconciler.clock import Clock, SystemClock
from reconciler.identity import fold
from reconciler.plan.model import REFUSAL_CODE, Plan

__all__ = [
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "History",
    "HistoryError",
    "ObjectChange",
    "PersonChange",
    "RunChange",
    "RunDetail",
    "RunStatus",
    "RunSummary",
    "redact",
    "run_status_for",
]

_PLANNED = ("run_id", "seq", "change_id", "action", "kind", "key", "key_norm", "change", "object_id")
#: the kinds of change whose outcome is each moved person's too
_MOVES_PEOPLE = frozenset(("group", "administrativeUnit", *PERSON_KINDS))

INTERRUPTED = "interrupted: the run stopped before it finished; the outcomes recorded until then are kept"


def _failures(r: ChangeResult) -> list[dict[str, str]]:
    return [{"objectId": f.object_id, "message": f.message} for f in r.failures]


class History(HistoryReader):
    """The run history at ``path``: a SQLite file (created 0600, with its folder, when missing),
    ``:memory:``, or a database URL (``postgresql+psycopg://...``)."""

    def __init__(self, path: str | Path, clock: Clock | None = None) -> None:
        #: how to name the store to people (a URL without its password)
        self.path = display_name(path)
        self._clock: Clock = clock or SystemClock()
        self._memory = str(path) == ":memory:"
        self._mutex = threading.RLock()  # one shared connection for :memory:
        try:
            self._engine = open_engine(path)
            with self._locked():
                migrate(self._engine, self.path)
        except HistoryError:
            raise
        except (exc.SQLAlchemyError, OSError) as e:
            hint = ("check that the server is up and the URL, user and password are right"
                    if "://" in str(path) else "move the file away to start a new history")
            raise HistoryError(self.path, f"cannot open the database ({_reason(e)}); {hint}") from e

    def close(self) -> None:
        self._engine.dispose()

    @property
    def engine(self) -> Engine:
        """The store's database (for the other parts of the run store kept in it: delta state)."""
        return self._engine

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if self._memory:
            with self._mutex:
                yield
        else:
            yield

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """One writing transaction, committed when the block ends."""
        with self._locked(), writer(self._engine).begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._locked(), self._engine.connect() as conn:
            yield conn

    def schema_version(self) -> int:
        with self._read() as conn:
            return current_version(conn)

    # -- writing ------------------------------------------------------------------------------

    def start_run(self, kind: str, config_summary: Mapping[str, Any] | None = None,
                  tenant: str | None = None) -> int:
        """Open a run (status ``running``) and return its id. ``config_summary`` is redacted."""
        with self._tx() as conn:
            row = conn.execute(insert(runs).values(
                kind=kind, status="running", started_at=self._clock.now(), tenant=tenant,
                config=redact(dict(config_summary or {})), warnings=[], conflicts=[],
            ).returning(runs.c.id)).one()
            return int(row[0])

    def record_plan(self, run_id: int, plan: Plan) -> None:
        """Store the plan's changes (not yet applied), summary, warnings, refusals and conflicts, and
        the people each change moves. Refusals are kept in the warnings column as plan format 1
        spelled them (code ``safetyRefusal``), so stores written before need no migration;
        :meth:`Plan.from_dict` reads them back into ``Plan.refusals``. The plan's counts by school x kind
        x action (the run's summary) are stored with it."""
        with self._tx() as conn:
            self._require(conn, run_id)
            conn.execute(update(runs).where(runs.c.id == run_id).values(
                planned_at=self._clock.now(), plan_summary=plan.summary(), plan_checksum=plan.checksum(),
                warnings=[*(w.to_dict() for w in plan.warnings),
                          *({"code": REFUSAL_CODE, "message": r} for r in plan.refusals)],
                conflicts=[c.to_dict() for c in plan.conflicts],
            ))
            conn.execute(delete(person_changes).where(person_changes.c.run_id == run_id))
            conn.execute(delete(changes).where(changes.c.run_id == run_id))
            rows: list[tuple[Any, ...]] = []
            people: list[tuple[Any, ...]] = []
            tally = PlanTally()
            for i, c in enumerate(plan.changes):
                doc = c.to_dict()
                rows.append((run_id, i, c.id, c.action, c.kind, c.key, c.key.folded, dumps(doc), c.object_id))
                moved = person_rows(run_id, doc)
                tally.add(c.kind, c.action, c.key, len(moved))
                people += moved
            bulk_insert(conn, changes, rows, _PLANNED)
            bulk_insert(conn, person_changes, people, PERSON_COLUMNS)
            store_plan_tally(conn, run_id, tally)

    def record_result(self, run_id: int, result: ChangeResult) -> None:
        """Store one change's outcome as it settles, committed before this returns (a second
        connection sees it at once; a killed process keeps it); the run's ``applied_at`` follows."""
        with self._tx() as conn:
            self._applied(conn, run_id)
            self._put(conn, run_id, result)

    def record_results(self, run_id: int, result: ApplyResult) -> None:
        """Store each change's outcome (a result for a change not in the recorded plan is added)."""
        with self._tx() as conn:
            self._applied(conn, run_id, result.counts)
            for r in result.results:
                self._put(conn, run_id, r)

    def _applied(self, conn: Connection, run_id: int, counts: Mapping[str, int] | None = None) -> None:
        values: dict[str, Any] = {"applied_at": self._clock.now()}
        if counts is not None:  # kept for readers of the file before 0002; the counts are now counted
            values["counts"] = dict(counts)
        if conn.execute(update(runs).where(runs.c.id == run_id).values(**values)).rowcount == 0:
            raise self._no_run(run_id)

    def _put(self, conn: Connection, run_id: int, r: ChangeResult) -> None:
        failures = _failures(r)
        values: dict[str, Any] = {"status": r.status, "message": r.message, "failures": failures}
        if r.object_id is not None:
            values["object_id"] = r.object_id
        where = (changes.c.run_id == run_id) & (changes.c.change_id == r.change_id)
        if conn.execute(update(changes).where(where).values(**values)).rowcount == 0:
            seq = conn.execute(select(func.coalesce(func.max(changes.c.seq) + 1, 0))
                               .where(changes.c.run_id == run_id)).scalar_one()
            stub = {"id": r.change_id, "action": r.action, "kind": r.kind, "key": r.key}
            conn.execute(insert(changes).values(
                run_id=run_id, seq=seq, change_id=r.change_id, action=r.action, kind=r.kind, key=r.key,
                key_norm=fold(r.key), change=stub, status=r.status, message=r.message, failures=failures,
                object_id=r.object_id))
            return
        if r.kind not in _MOVES_PEOPLE:
            return
        mine = (person_changes.c.run_id == run_id) & (person_changes.c.change_id == r.change_id)
        if r.status == "partial":
            conn.execute(update(person_changes).where(mine).values(status="done", message=r.message or None))
            for norm, message in failed_people(failures).items():
                conn.execute(update(person_changes).where(mine & (person_changes.c.person_norm == norm))
                             .values(status="failed", message=message))
        else:
            conn.execute(update(person_changes).where(mine)
                         .values(status=r.status, message=r.message or None))

    def finish_run(self, run_id: int, status: RunStatus, error: str | None = None) -> None:
        """Close a run and complete its summary (:mod:`entra_sync.store.run_summary`). ``error``
        is one line for people (an exception's message, never a secret)."""
        if status not in RUN_STATUSES or status == "running":
            raise ValueError(f"cannot finish a run with status {status!r}")
        with self._tx() as conn:
            self._require(conn, run_id)
            conn.execute(update(runs).where(runs.c.id == run_id).values(
                status=status, error=error, finished_at=self._clock.now()))
            finish_summary(conn, run_id)

    def close_interrupted(self, *, tenant: str | None = None) -> list[int]:
        """Mark every run still ``running`` (of ``tenant`` when given) ``interrupted``, keeping the
        outcomes it recorded; return their ids. The caller holds the run lock, so none is live."""
        with self._tx() as conn:
            query = select(runs.c.id).where(runs.c.status == "running")
            if tenant is not None:
                query = query.where(runs.c.tenant == tenant)
            ids = sorted(int(i) for i in conn.execute(query).scalars())
            for run_id in ids:
                total, settled = conn.execute(
                    select(func.count(), func.count(changes.c.status)).where(changes.c.run_id == run_id)
                ).one()
                conn.execute(update(runs).where(runs.c.id == run_id).values(
                    status="interrupted", finished_at=self._clock.now(),
                    error=func.coalesce(runs.c.error, f"{INTERRUPTED} ({settled} of {total} planned "
                                                      "changes had settled; closed by the next run)")))
                finish_summary(conn, run_id)
            return ids

    def prune(self, keep_runs: int | None = None, keep_days: float | None = None, *,
              tenant: str | None = None, dry_run: bool = False) -> list[int]:
        """Delete the runs beyond the newest ``keep_runs`` and those started more than
        ``keep_days`` ago (each limit applies on its own; of ``tenant`` when given), with their
        changes; a run still ``running`` is never deleted. Return the deleted runs' ids (their
        reports are the caller's to delete); ``dry_run``: the ids it would delete, deleting nothing."""
        if (keep_runs is not None and keep_runs < 0) or (keep_days is not None and keep_days < 0):
            raise ValueError("keep_runs and keep_days cannot be negative")
        with self._tx() as conn:
            mine = select(runs.c.id, runs.c.started_at, runs.c.status)
            if tenant is not None:
                mine = mine.where(runs.c.tenant == tenant)
            rows = conn.execute(mine.order_by(runs.c.id.desc())).all()
            cutoff = None if keep_days is None else self._clock.now() - keep_days * 86400
            gone = sorted(
                int(rid) for i, (rid, started, status) in enumerate(rows)
                if status != "running"
                and ((keep_runs is not None and i >= keep_runs) or (cutoff is not None and started < cutoff))
            )
            if dry_run:
                return gone
            for start in range(0, len(gone), 500):
                chunk = gone[start:start + 500]
                conn.execute(delete(run_summaries).where(run_summaries.c.run_id.in_(chunk)))
                conn.execute(delete(person_changes).where(person_changes.c.run_id.in_(chunk)))
                conn.execute(delete(changes).where(changes.c.run_id.in_(chunk)))
                conn.execute(delete(runs).where(runs.c.id.in_(chunk)))
            return gone


def _reason(e: BaseException) -> str:
    """The driver's own words (not SQLAlchemy's statement and parameters), first line only."""
    orig = getattr(e, "orig", None) or e
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]
