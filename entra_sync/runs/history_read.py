"""The reading half of :class:`entra_sync.runs.history.History`: runs, one run, and the history of
one object or one person. Every query takes ``tenant`` and then sees that tenant's runs only."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, Select, func, select

from entra_sync.store.tables import changes, person_changes, runs
from entra_sync.store.values import HistoryError, ObjectChange, PersonChange, RunChange, RunDetail, RunSummary
from reconciler.apply.result import STATUSES, ChangeResult
from reconciler.identity import fold, user_ref
from reconciler.plan.model import Change

__all__ = ["HistoryReader"]

_COUNT = select(func.count()).where(changes.c.run_id == runs.c.id).scalar_subquery()
_SUMMARY_COLUMNS = (runs.c.id, runs.c.kind, runs.c.status, runs.c.started_at, runs.c.finished_at,
                    runs.c.error, _COUNT, runs.c.tenant, runs.c.planned_at)


def _summary(row: Any, counts: dict[str, int] | None) -> RunSummary:
    return RunSummary(
        run_id=row[0], kind=row[1], status=row[2], started_at=row[3], finished_at=row[4], error=row[5],
        counts=counts or {}, change_count=row[6], tenant=row[7], planned=row[8] is not None,
    )


def _counts(conn: Connection, run_ids: list[int]) -> dict[int, dict[str, int]]:
    """Changes per result status of each run that has results (every status present)."""
    out: dict[int, dict[str, int]] = {}
    query = (select(changes.c.run_id, changes.c.status, func.count())
             .where(changes.c.run_id.in_(run_ids), changes.c.status.is_not(None))
             .group_by(changes.c.run_id, changes.c.status))
    for run_id, status, n in conn.execute(query):
        out.setdefault(int(run_id), dict.fromkeys(STATUSES, 0))[str(status)] = int(n)
    return out


def _tenant(query: Select[Any], tenant: str | None) -> Select[Any]:
    return query if tenant is None else query.where(runs.c.tenant == tenant)


class HistoryReader:
    path: str

    def _read(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _no_run(self, run_id: int) -> HistoryError:
        return HistoryError(self.path, f"no run {run_id}; `entra-sync history list` shows the runs")

    def _require(self, conn: Connection, run_id: int) -> None:
        if conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is None:
            raise self._no_run(run_id)

    def list_runs(self, limit: int = 20, *, kind: str | None = None,
                  tenant: str | None = None) -> list[RunSummary]:
        """The newest ``limit`` runs (of ``kind``, of ``tenant``, when given), newest first."""
        query = _tenant(select(*_SUMMARY_COLUMNS), tenant)
        if kind is not None:
            query = query.where(runs.c.kind == kind)
        with self._read() as conn:
            rows = conn.execute(query.order_by(runs.c.id.desc()).limit(limit)).all()
            counts = _counts(conn, [int(r[0]) for r in rows])
        return [_summary(r, counts.get(int(r[0]))) for r in rows]

    def count_runs(self, *, tenant: str | None = None) -> int:
        with self._read() as conn:
            return int(conn.execute(_tenant(select(func.count()).select_from(runs), tenant)).scalar_one())

    def get_run(self, run_id: int, *, tenant: str | None = None) -> RunDetail:
        """One run with its changes (a run of another tenant than ``tenant`` is not found)."""
        extra = (runs.c.applied_at, runs.c.config, runs.c.plan_summary,
                 runs.c.plan_checksum, runs.c.warnings, runs.c.conflicts)
        with self._read() as conn:
            row = conn.execute(_tenant(select(*_SUMMARY_COLUMNS, *extra), tenant)
                               .where(runs.c.id == run_id)).first()
            if row is None:
                raise self._no_run(run_id)
            rows = conn.execute(
                select(changes.c.seq, changes.c.change, changes.c.status, changes.c.message,
                       changes.c.failures, changes.c.object_id, changes.c.change_id, changes.c.action,
                       changes.c.kind, changes.c.key)
                .where(changes.c.run_id == run_id).order_by(changes.c.seq)
            ).all()
        out = []
        counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
        for seq, change, status, message, failures, object_id, change_id, action, kind, key in rows:
            result = None
            if status is not None:
                result = ChangeResult.from_dict({
                    "id": change_id, "action": action, "kind": kind, "key": key, "status": status,
                    "message": message or "", "failures": failures or [], "objectId": object_id,
                })
            out.append(RunChange(seq, Change.from_dict(change, strict=False), result))
            if status is not None:
                counts[status] = counts.get(status, 0) + 1
        applied_at, config, plan_summary, checksum, warnings, conflicts = row[len(_SUMMARY_COLUMNS):]
        planned_at = row[8]
        return RunDetail(
            summary=_summary(row, counts if any(counts.values()) else None),
            planned_at=planned_at, applied_at=applied_at, config=config,
            plan_summary=plan_summary or {}, plan_checksum=checksum, warnings=tuple(warnings),
            conflicts=tuple(conflicts), changes=tuple(out),
        )

    def created_since(self, since: float, *, tenant: str | None = None) -> dict[str, str]:
        """Object id -> kind (``administrativeUnit`` or ``group``) of every object a run started at or
        after ``since`` created. The next read looks these up by id, because a new object can stay
        invisible to list queries for a while (replication lag) and must not be created twice."""
        query = _tenant(
            select(changes.c.object_id, changes.c.kind).join(runs, runs.c.id == changes.c.run_id).where(
                changes.c.action == "create", changes.c.kind.in_(("administrativeUnit", "group")),
                changes.c.status.in_(("done", "partial")), changes.c.object_id.is_not(None),
                runs.c.started_at >= since,
            ), tenant)
        with self._read() as conn:
            rows = conn.execute(query.order_by(changes.c.object_id)).all()
        return {str(r[0]): str(r[1]) for r in rows}

    def changes_for_object(self, key: str, *, applied_only: bool = False,
                           tenant: str | None = None) -> list[ObjectChange]:
        """Every change to the object ``key`` (and its memberships), oldest first; when ``key`` is a
        person, every membership of theirs a change moved (see :class:`ObjectChange`)."""
        own = _tenant(
            select(changes.c.run_id, runs.c.kind, runs.c.started_at, changes.c.change_id, changes.c.action,
                   changes.c.kind, changes.c.key, changes.c.status, changes.c.message, changes.c.change,
                   changes.c.seq)
            .join(runs, runs.c.id == changes.c.run_id).where(changes.c.key_norm == fold(key)), tenant)
        if applied_only:
            own = own.where(changes.c.status.is_not(None))
        found: list[tuple[tuple[float, int, int, int], ObjectChange]] = []
        with self._read() as conn:
            for r in conn.execute(own).all():
                found.append(((r[2], r[0], r[10], 0), ObjectChange(
                    run_id=r[0], run_kind=r[1], run_started_at=r[2], change_id=r[3], action=r[4], kind=r[5],
                    key=r[6], status=r[7], message=r[8], members=tuple(r[9].get("members", ())))))
            for seq, p in self._people(conn, user_ref(key), tenant, applied_only):
                found.append(((p.run_started_at, p.run_id, seq, 1), ObjectChange(
                    run_id=p.run_id, run_kind=p.run_kind, run_started_at=p.run_started_at,
                    change_id=p.change_id, action=p.action, kind=p.kind, key=p.key, status=p.status,
                    message=p.message, members=(p.person,))))
        return [c for _, c in sorted(found, key=lambda t: t[0])]

    def changes_for_person(self, ref: str, *, applied_only: bool = False,
                           tenant: str | None = None) -> list[PersonChange]:
        """Every membership of the person ``ref`` (any case) that a run planned or moved, oldest first."""
        with self._read() as conn:
            return [p for _, p in self._people(conn, user_ref(ref), tenant, applied_only)]

    @staticmethod
    def _people(conn: Connection, norm: str, tenant: str | None,
                applied_only: bool) -> list[tuple[int, PersonChange]]:
        p = person_changes
        query = _tenant(
            select(p.c.run_id, runs.c.kind, runs.c.status, runs.c.started_at, p.c.change_id, p.c.kind,
                   p.c.key, p.c.action, p.c.person, p.c.status, p.c.message, runs.c.tenant, changes.c.seq)
            .join(runs, runs.c.id == p.c.run_id)
            .join(changes, (changes.c.run_id == p.c.run_id) & (changes.c.change_id == p.c.change_id))
            .where(p.c.person_norm == norm), tenant)
        if applied_only:
            query = query.where(p.c.status.is_not(None))
        query = query.order_by(runs.c.started_at, p.c.run_id, changes.c.seq, p.c.kind)
        return [
            (r[12], PersonChange(run_id=r[0], run_kind=r[1], run_status=r[2], run_started_at=r[3],
                                 change_id=r[4], kind=r[5], key=r[6], action=r[7], person=r[8], status=r[9],
                                 message=r[10], tenant=r[11]))
            for r in conn.execute(query).all()
        ]
