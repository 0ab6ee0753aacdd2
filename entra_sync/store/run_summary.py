"""A run's summary kept in the store (table ``run_summaries``, migration 0006): counts by school x
kind x action (changes, memberships moved, changes that need a person), how many changes ended in
each status, what needs a person (refusals, conflicts, people not in Entra per school) and the
unresolved people's rows for their CSV; the summary model of :mod:`reconciler.render.summary`.

The plan's part is counted while the plan is recorded (the changes are in hand then:
:class:`PlanTally`), the outcome's part when the run finishes (:func:`finish_summary`: only the
statuses, by an index, and the few changes that need a person), so no page ever counts a
130,000-change run. A run recorded before this table is counted once from its rows on its first
read (:func:`run_totals`) and kept.

Must: give the same numbers whichever way the summary was made (counted at record time, or from
the rows later); never be the only copy of anything (the rows are; a summary can be made again).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, delete, exc, func, insert, select, update

from entra_sync.store.engine import writer
from entra_sync.store.tables import changes, person_changes, run_summaries, runs
from reconciler.plan.model import recorded_plan
from reconciler.render.summary import (
    NEEDS_ATTENTION,
    UNRESOLVED_CODE,
    ConflictItem,
    CountRow,
    NeedsYou,
    school_of,
    school_order,
    summarise,
)

__all__ = ["PlanTally", "RunTotals", "finish_summary", "run_totals", "store_plan_tally"]

#: the summary document's layout (a later layout makes the old ones be counted again)
_LAYOUT = 1


@dataclass(frozen=True)
class RunTotals:
    """A run's summary: counts by school x kind x action, what needs a person, statuses."""

    counts: tuple[CountRow, ...]
    needs_you: NeedsYou
    statuses: dict[str, int]
    total: int
    memberships: int
    #: (school, person, the objects that want them) per person not in Entra
    unresolved: tuple[tuple[str, str, tuple[str, ...]], ...] = field(default=())

    @property
    def schools(self) -> tuple[str, ...]:
        return tuple(sorted({r.school for r in self.counts}, key=school_order))

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(sorted({r.kind for r in self.counts}))

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(sorted({r.action for r in self.counts}))

    @property
    def deferred(self) -> int:
        return self.statuses.get("deferred", 0)

    def to_doc(self) -> dict[str, Any]:
        n = self.needs_you
        return {
            "layout": _LAYOUT,
            "counts": [
                [r.school, r.kind, r.action, r.changes, r.memberships, r.not_done] for r in self.counts
            ],
            "statuses": self.statuses,
            "total": self.total,
            "memberships": self.memberships,
            "refusals": list(n.refusals),
            "conflicts": [c.to_dict() for c in n.conflicts],
            "unresolvedBySchool": [list(u) for u in n.unresolved],
            "unresolvedPeople": n.unresolved_people,
            "unresolved": [[s, p, list(k)] for s, p, k in self.unresolved],
        }

    @classmethod
    def from_doc(cls, d: Mapping[str, Any]) -> RunTotals:
        needs = NeedsYou(
            refusals=tuple(d["refusals"]),
            conflicts=tuple(
                ConflictItem(
                    c["school"], c["kind"], c["key"], c["name"], c["field"], c["value"], c["objectId"]
                )
                for c in d["conflicts"]
            ),
            unresolved=tuple((str(s), int(n)) for s, n in d["unresolvedBySchool"]),
            unresolved_people=int(d["unresolvedPeople"]),
        )
        return cls(
            counts=tuple(CountRow(*row) for row in d["counts"]),
            needs_you=needs,
            statuses=dict(d["statuses"]),
            total=int(d["total"]),
            memberships=int(d["memberships"]),
            unresolved=tuple((s, p, tuple(k)) for s, p, k in d["unresolved"]),
        )


class PlanTally:
    """Counts a plan's changes by school x kind x action as the plan is recorded."""

    def __init__(self) -> None:
        self.tally: dict[tuple[str, str, str], list[int]] = {}

    def add(self, kind: str, action: str, key: str, memberships: int) -> None:
        t = self.tally.setdefault((school_of(key), kind, action), [0, 0])
        t[0] += 1
        t[1] += memberships

    def rows(self) -> list[list[Any]]:
        return [[s, k, a, n, m] for (s, k, a), (n, m) in sorted(self.tally.items())]


def store_plan_tally(conn: Connection, run_id: int, tally: PlanTally) -> None:
    """Keep the plan's counts (the outcome's part follows in :func:`finish_summary`)."""
    conn.execute(delete(run_summaries).where(run_summaries.c.run_id == run_id))
    conn.execute(insert(run_summaries).values(run_id=run_id, plan_counts=tally.rows(), summary=None))


def finish_summary(conn: Connection, run_id: int) -> None:
    """Complete the run's summary with its outcome (the run's status and error are recorded)."""
    run = conn.execute(select(runs).where(runs.c.id == run_id)).one()
    row = conn.execute(select(run_summaries.c.plan_counts).where(run_summaries.c.run_id == run_id)).first()
    totals = _from_plan_counts(conn, run, row[0]) if row is not None else None
    totals = totals or _count(conn, run)
    _keep(conn, run_id, totals, row is not None)


def run_totals(engine: Engine, run: Any) -> RunTotals:
    """The summary of ``run`` (a row of ``runs``): kept when finished; a running run's outcome part
    is counted afresh (by an index); a run recorded before summaries were kept is counted once."""
    with engine.connect() as c:
        row = c.execute(
            select(run_summaries.c.plan_counts, run_summaries.c.summary).where(
                run_summaries.c.run_id == run.id
            )
        ).first()
        if row is not None and row[1] is not None and row[1].get("layout") == _LAYOUT:
            return RunTotals.from_doc(row[1])
        totals = _from_plan_counts(c, run, row[0]) if row is not None else None
        totals = totals or _count(c, run)
    if run.finished_at is not None:  # backfill: a finished run no longer changes
        try:
            with writer(engine).begin() as w:
                _keep(w, run.id, totals, row is not None)
        except exc.IntegrityError:  # another page kept it first: the same numbers
            pass
    return totals


def _keep(conn: Connection, run_id: int, totals: RunTotals, exists: bool) -> None:
    if exists:
        conn.execute(
            update(run_summaries).where(run_summaries.c.run_id == run_id).values(summary=totals.to_doc())
        )
        return
    plan_counts = [[r.school, r.kind, r.action, r.changes, r.memberships] for r in totals.counts]
    conn.execute(
        insert(run_summaries).values(run_id=run_id, plan_counts=plan_counts, summary=totals.to_doc())
    )


def _from_plan_counts(conn: Connection, run: Any, plan_counts: list[list[Any]]) -> RunTotals | None:
    """The plan's counts, and the outcome read by the index on (run, status); None when the
    changes are not the plan's (an outcome recorded for a change the plan did not have)."""
    statuses: dict[str, int] = {}
    for status, n in conn.execute(
        select(changes.c.status, func.count()).where(changes.c.run_id == run.id).group_by(changes.c.status)
    ):
        statuses[status or "planned"] = int(n)
    if sum(statuses.values()) != sum(int(r[3]) for r in plan_counts):
        return None
    not_done: dict[tuple[str, str, str], int] = {}
    for kind, action, key in conn.execute(
        select(changes.c.kind, changes.c.action, changes.c.key).where(
            changes.c.run_id == run.id, changes.c.status.in_(NEEDS_ATTENTION)
        )
    ):
        k = (school_of(key), kind, action)
        not_done[k] = not_done.get(k, 0) + 1
    counts = [
        (str(s), str(k), str(a), int(n), int(m), not_done.get((s, k, a), 0)) for s, k, a, n, m in plan_counts
    ]
    return _totals(run, counts, statuses)


def _count(conn: Connection, run: Any) -> RunTotals:
    """Count the run's summary from its rows (a run recorded before summaries were kept)."""
    rows = conn.execute(
        select(changes.c.change_id, changes.c.kind, changes.c.action, changes.c.key, changes.c.status).where(
            changes.c.run_id == run.id
        )
    ).all()
    moved: dict[str, int] = dict(
        conn.execute(
            select(person_changes.c.change_id, func.count())
            .where(person_changes.c.run_id == run.id)
            .group_by(person_changes.c.change_id)
        ).all()
    )
    tally: dict[tuple[str, str, str], list[int]] = {}
    statuses: dict[str, int] = {}
    for change_id, kind, action, key, status in rows:
        t = tally.setdefault((school_of(key), kind, action), [0, 0, 0])
        t[0] += 1
        t[1] += moved.get(change_id, 0)
        t[2] += status in NEEDS_ATTENTION
        s = status or "planned"
        statuses[s] = statuses.get(s, 0) + 1
    return _totals(run, [(s, k, a, t[0], t[1], t[2]) for (s, k, a), t in tally.items()], statuses)


def _totals(
    run: Any, counts: Iterable[tuple[str, str, str, int, int, int]], statuses: dict[str, int]
) -> RunTotals:
    rows = tuple(CountRow(*c) for c in sorted(counts, key=lambda t: (school_order(t[0]), t[1], t[2])))
    warnings = list(run.warnings or [])
    plan = recorded_plan(warnings, run.conflicts or [])
    needs = summarise(plan).needs_you
    refusals = plan.refusals or ((run.error,) if run.status == "refused" and run.error else ())
    return RunTotals(
        counts=rows,
        needs_you=NeedsYou(
            refusals=refusals,
            conflicts=needs.conflicts,
            unresolved=needs.unresolved,
            unresolved_people=needs.unresolved_people,
        ),
        statuses=dict(sorted(statuses.items())),
        total=sum(r.changes for r in rows),
        memberships=sum(r.memberships for r in rows),
        unresolved=_unresolved_rows(warnings),
    )


def _unresolved_rows(warnings: list[dict[str, Any]]) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(school, person, the objects that want them) per unresolved person and school."""
    out: dict[tuple[str, str], set[str]] = {}
    for w in warnings:
        if w.get("code") != UNRESOLVED_CODE:
            continue
        ref = str(w.get("ref") or w.get("message"))
        keys = [w["key"]] if w.get("key") else _keys_in(str(w.get("message", "")))
        for k in keys or [""]:
            out.setdefault((school_of(k), ref), set()).add(k)
    return tuple(
        (s, p, tuple(sorted(k for k in ks if k)))
        for (s, p), ks in sorted(out.items(), key=lambda t: (school_order(t[0][0]), t[0][1]))
    )


def _keys_in(message: str) -> list[str]:
    _, sep, tail = message.partition(": ")
    if not sep:
        return []
    tail = tail.split(" and ", 1)[0] if " more" in tail else tail
    return [k.strip() for k in tail.split(", ") if k.strip()]
