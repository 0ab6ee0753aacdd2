"""Run history: every run, its plan and its outcome, in an embedded SQLite database.

A run goes ``start_run`` -> ``record_plan`` -> ``record_result`` (each change as it settles) ->
``record_results`` -> ``finish_run``; a run whose process died on the way is closed by the next
one with :meth:`History.close_interrupted`. The CLI lists
runs, shows one (and renders it as HTML with :mod:`entra_sync.runs.report`) and answers "what happened to
this object, and when" with :meth:`History.changes_for_object`.

Must: keep the schema versioned (table ``schema_version``) and migrate forwards on open; use WAL
so that a reader never blocks the scheduler's writer; take every time from the injected clock.
Must not: store a secret. Only the plan, the results and a configuration *summary* are stored, and
any summary entry whose name looks like a secret (``secret``, ``password``, ``token``, ...) is
replaced by ``"[redacted]"`` before it is written.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from reconciler.apply.result import STATUSES, ApplyResult, ChangeResult
from reconciler.clock import Clock, SystemClock
from reconciler.errors import EntraSyncError
from reconciler.plan.model import Change, Plan

__all__ = [
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "History",
    "HistoryError",
    "ObjectChange",
    "RunChange",
    "RunDetail",
    "RunStatus",
    "RunSummary",
    "redact",
    "run_status_for",
]

RunStatus = Literal["running", "succeeded", "partial", "failed", "refused", "interrupted"]
RUN_STATUSES: tuple[RunStatus, ...] = ("running", "succeeded", "partial", "failed", "refused", "interrupted")

_SECRET_NAME = re.compile(r"secret|password|passwd|token|credential|private|assertion|certificate", re.I)

_MIGRATIONS: tuple[str, ...] = (
    # 1: runs and their changes
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at REAL NOT NULL,
        planned_at REAL,
        applied_at REAL,
        finished_at REAL,
        error TEXT,
        config TEXT NOT NULL DEFAULT '{}',
        plan_summary TEXT,
        plan_checksum TEXT,
        warnings TEXT NOT NULL DEFAULT '[]',
        conflicts TEXT NOT NULL DEFAULT '[]',
        counts TEXT
    );
    CREATE TABLE changes (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        change_id TEXT NOT NULL,
        action TEXT NOT NULL,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        change TEXT NOT NULL,
        status TEXT,
        message TEXT,
        failures TEXT,
        object_id TEXT,
        PRIMARY KEY (run_id, change_id)
    );
    CREATE INDEX changes_by_key ON changes (key, run_id);
    CREATE INDEX runs_by_start ON runs (started_at);
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)


class HistoryError(EntraSyncError):
    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"run history {path}: {message}")


@dataclass(frozen=True, slots=True)
class RunSummary:
    run_id: int
    kind: str
    status: str
    started_at: float
    finished_at: float | None
    error: str | None
    #: changes per result status (empty until results are recorded)
    counts: Mapping[str, int] = field(default_factory=dict)
    #: number of changes in the recorded plan
    change_count: int = 0

    @property
    def duration(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at


@dataclass(frozen=True, slots=True)
class RunChange:
    """One change of a run's plan and, once applied, its result."""

    seq: int
    change: Change
    result: ChangeResult | None


@dataclass(frozen=True, slots=True)
class RunDetail:
    summary: RunSummary
    planned_at: float | None
    applied_at: float | None
    config: Mapping[str, Any]
    plan_summary: Mapping[str, int]
    plan_checksum: str | None
    warnings: tuple[Mapping[str, Any], ...]
    conflicts: tuple[Mapping[str, Any], ...]
    changes: tuple[RunChange, ...]

    @property
    def run_id(self) -> int:
        return self.summary.run_id

    def durations(self) -> dict[str, float]:
        """Seconds spent reading and planning, applying, and in all (only the known ones)."""
        s = self.summary
        out: dict[str, float] = {}
        if self.planned_at is not None:
            out["plan"] = self.planned_at - s.started_at
        if self.applied_at is not None:
            began = self.planned_at if self.planned_at is not None else s.started_at
            out["apply"] = self.applied_at - began
        if s.finished_at is not None:
            out["total"] = s.finished_at - s.started_at
        return out


@dataclass(frozen=True, slots=True)
class ObjectChange:
    """One change to one object in one run: the answer to "when did this change, and why"."""

    run_id: int
    run_kind: str
    run_started_at: float
    change_id: str
    action: str
    kind: str
    key: str
    #: None when the run planned the change but did not apply it (plan only, refused, crashed)
    status: str | None
    message: str | None
    members: tuple[str, ...]


def redact(value: Any) -> Any:
    """A copy of ``value`` (JSON-like) with every entry whose name looks like a secret replaced."""
    if isinstance(value, Mapping):
        return {
            str(k): "[redacted]" if _SECRET_NAME.search(str(k)) and v not in (None, "") else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def run_status_for(result: ApplyResult) -> RunStatus:
    """``succeeded`` when everything was done (or deferred), ``failed`` when nothing was done and
    something failed, ``partial`` otherwise."""
    if result.ok:
        return "succeeded"
    counts = result.counts
    if counts["done"] == 0 and counts["partial"] == 0:
        return "failed"
    return "partial"


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class History:
    """The run history database at ``path`` (created, with its folder, when missing)."""

    def __init__(self, path: str | Path, clock: Clock | None = None) -> None:
        self.path = str(path)
        self._clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise HistoryError(self.path, f"cannot open the database ({exc}); move the file away to "
                                          "start a new history") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT version FROM schema_version").fetchone()
            version = 0 if row is None else int(row[0])
            if version > SCHEMA_VERSION:
                raise HistoryError(
                    self.path,
                    f"written by a newer entra-sync (schema {version}, this one knows {SCHEMA_VERSION}); "
                    "upgrade entra-sync",
                )
            for script in _MIGRATIONS[version:]:
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
            if row is None:
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            elif version != SCHEMA_VERSION:
                db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    def schema_version(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT version FROM schema_version").fetchone()[0])

    # -- writing ------------------------------------------------------------------------------

    def start_run(self, kind: str, config_summary: Mapping[str, Any] | None = None) -> int:
        """Open a run (status ``running``) and return its id. ``config_summary`` is redacted."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO runs (kind, status, started_at, config) VALUES (?, 'running', ?, ?)",
                (kind, self._clock.now(), _dumps(redact(dict(config_summary or {})))),
            )
            assert cur.lastrowid is not None
            return int(cur.lastrowid)

    def record_plan(self, run_id: int, plan: Plan) -> None:
        """Store the plan's changes (not yet applied), summary, warnings and conflicts."""
        with self._tx() as db:
            self._require(db, run_id)
            db.execute(
                "UPDATE runs SET planned_at = ?, plan_summary = ?, plan_checksum = ?, warnings = ?, "
                "conflicts = ? WHERE id = ?",
                (self._clock.now(), _dumps(plan.summary()), plan.checksum(),
                 _dumps([w.to_dict() for w in plan.warnings]), _dumps([c.to_dict() for c in plan.conflicts]),
                 run_id),
            )
            db.execute("DELETE FROM changes WHERE run_id = ?", (run_id,))
            db.executemany(
                "INSERT INTO changes (run_id, seq, change_id, action, kind, key, change, object_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, i, c.id, c.action, c.kind, c.key, _dumps(c.to_dict()), c.object_id)
                 for i, c in enumerate(plan.changes)],
            )

    def record_result(self, run_id: int, result: ChangeResult) -> None:
        """Store one change's outcome as it settles (so a run killed mid-apply keeps what it did)."""
        with self._tx() as db:
            self._require(db, run_id)
            self._store_result(db, run_id, result)

    def record_results(self, run_id: int, result: ApplyResult) -> None:
        """Store each change's outcome (a result for a change not in the recorded plan is added)."""
        with self._tx() as db:
            self._require(db, run_id)
            for r in result.results:
                self._store_result(db, run_id, r)
            db.execute("UPDATE runs SET applied_at = ?, counts = ? WHERE id = ?",
                       (self._clock.now(), _dumps(result.counts), run_id))

    @staticmethod
    def _store_result(db: sqlite3.Connection, run_id: int, r: ChangeResult) -> None:
        failures = _dumps([{"objectId": f.object_id, "message": f.message} for f in r.failures])
        cur = db.execute(
            "UPDATE changes SET status = ?, message = ?, failures = ?, "
            "object_id = COALESCE(?, object_id) WHERE run_id = ? AND change_id = ?",
            (r.status, r.message, failures, r.object_id, run_id, r.change_id),
        )
        if cur.rowcount == 0:
            (next_seq,) = db.execute("SELECT COUNT(*) FROM changes WHERE run_id = ?", (run_id,)).fetchone()
            stub = {"id": r.change_id, "action": r.action, "kind": r.kind, "key": r.key}
            db.execute(
                "INSERT INTO changes (run_id, seq, change_id, action, kind, key, change, status, "
                "message, failures, object_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, next_seq, r.change_id, r.action, r.kind, r.key, _dumps(stub), r.status,
                 r.message, failures, r.object_id),
            )

    def close_interrupted(self) -> list[int]:
        """Close every run still marked ``running`` as ``interrupted``, keeping the outcomes it
        recorded (its counts are made from them); return their ids, oldest first.

        Call only while holding the run lock: then no run of this store is really running, so a
        run still marked ``running`` is one whose process died (killed, power cut)."""
        with self._tx() as db:
            ids = [int(r[0]) for r in db.execute("SELECT id FROM runs WHERE status = 'running' ORDER BY id")]
            for run_id in ids:
                rows = db.execute(
                    "SELECT status, COUNT(*) FROM changes WHERE run_id = ? GROUP BY status", (run_id,)
                ).fetchall()
                settled = {str(status): int(n) for status, n in rows if status is not None}
                total = sum(int(n) for _, n in rows)
                counts = {s: settled.get(s, 0) for s in STATUSES} if settled else None
                error = (
                    "interrupted: the process stopped before the run finished "
                    f"({sum(settled.values())} of {total} planned changes had settled); "
                    "closed by the next run"
                )
                db.execute(
                    "UPDATE runs SET status = 'interrupted', error = ?, counts = COALESCE(?, counts) "
                    "WHERE id = ?",
                    (error, _dumps(counts) if counts is not None else None, run_id),
                )
            return ids

    def finish_run(self, run_id: int, status: RunStatus, error: str | None = None) -> None:
        """Close a run. ``error`` is one line for people (an exception's message, never a secret)."""
        if status not in RUN_STATUSES or status == "running":
            raise ValueError(f"cannot finish a run with status {status!r}")
        with self._tx() as db:
            self._require(db, run_id)
            db.execute("UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                       (status, error, self._clock.now(), run_id))

    def prune(self, keep: int) -> int:
        """Delete all but the newest ``keep`` runs; return how many were deleted."""
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM runs WHERE id NOT IN (SELECT id FROM runs ORDER BY id DESC LIMIT ?)", (keep,)
            )
            return cur.rowcount

    def _require(self, db: sqlite3.Connection, run_id: int) -> None:
        if db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise HistoryError(self.path, f"no run {run_id}; `entra-sync runs list` shows the runs")

    # -- reading ------------------------------------------------------------------------------

    _SUMMARY_SQL = (
        "SELECT r.id, r.kind, r.status, r.started_at, r.finished_at, r.error, r.counts, "
        "(SELECT COUNT(*) FROM changes c WHERE c.run_id = r.id) FROM runs r"
    )

    @staticmethod
    def _summary(row: tuple[Any, ...]) -> RunSummary:
        return RunSummary(
            run_id=row[0], kind=row[1], status=row[2], started_at=row[3], finished_at=row[4], error=row[5],
            counts=json.loads(row[6]) if row[6] else {}, change_count=row[7],
        )

    def list_runs(self, limit: int = 20, *, kind: str | None = None) -> list[RunSummary]:
        """The newest ``limit`` runs (of ``kind`` when given), newest first."""
        where, args = (" WHERE r.kind = ?", (kind, limit)) if kind is not None else ("", (limit,))
        sql = self._SUMMARY_SQL + where + " ORDER BY r.id DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [self._summary(r) for r in rows]

    def get_run(self, run_id: int) -> RunDetail:
        with self._lock:
            row = self._db.execute(self._SUMMARY_SQL + " WHERE r.id = ?", (run_id,)).fetchone()
            if row is None:
                raise HistoryError(self.path, f"no run {run_id}; `entra-sync runs list` shows the runs")
            extra = self._db.execute(
                "SELECT planned_at, applied_at, config, plan_summary, plan_checksum, warnings, conflicts "
                "FROM runs WHERE id = ?", (run_id,),
            ).fetchone()
            rows = self._db.execute(
                "SELECT seq, change, status, message, failures, object_id, change_id, action, kind, key "
                "FROM changes WHERE run_id = ? ORDER BY seq", (run_id,),
            ).fetchall()
        changes = []
        for seq, change, status, message, failures, object_id, change_id, action, kind, key in rows:
            result = None
            if status is not None:
                result = ChangeResult.from_dict({
                    "id": change_id, "action": action, "kind": kind, "key": key, "status": status,
                    "message": message or "", "failures": json.loads(failures or "[]"), "objectId": object_id,
                })
            changes.append(RunChange(seq, Change.from_dict(json.loads(change)), result))
        return RunDetail(
            summary=self._summary(row),
            planned_at=extra[0],
            applied_at=extra[1],
            config=json.loads(extra[2]),
            plan_summary=json.loads(extra[3]) if extra[3] else {},
            plan_checksum=extra[4],
            warnings=tuple(json.loads(extra[5])),
            conflicts=tuple(json.loads(extra[6])),
            changes=tuple(changes),
        )

    def created_since(self, since: float) -> dict[str, str]:
        """Object id -> kind (``administrativeUnit`` or ``group``) of every object a run started at or
        after ``since`` created. The next read looks these up by id, because a new object can stay
        invisible to list queries for a while (replication lag) and must not be created twice."""
        sql = (
            "SELECT c.object_id, c.kind FROM changes c JOIN runs r ON r.id = c.run_id "
            "WHERE c.action = 'create' AND c.kind IN ('administrativeUnit', 'group') "
            "AND c.status IN ('done', 'partial') AND c.object_id IS NOT NULL AND r.started_at >= ?"
        )
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY c.object_id", (since,)).fetchall()
        return {str(r[0]): str(r[1]) for r in rows}

    def changes_for_object(self, key: str, *, applied_only: bool = False) -> list[ObjectChange]:
        """Every change to the object ``key`` (and its memberships), oldest first."""
        sql = (
            "SELECT c.run_id, r.kind, r.started_at, c.change_id, c.action, c.kind, c.key, c.status, "
            "c.message, c.change FROM changes c JOIN runs r ON r.id = c.run_id WHERE c.key = ?"
        )
        if applied_only:
            sql += " AND c.status IS NOT NULL"
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY r.started_at, c.run_id, c.seq", (key,)).fetchall()
        return [
            ObjectChange(
                run_id=r[0], run_kind=r[1], run_started_at=r[2], change_id=r[3], action=r[4], kind=r[5],
                key=r[6], status=r[7], message=r[8], members=tuple(json.loads(r[9]).get("members", ())),
            )
            for r in rows
        ]
