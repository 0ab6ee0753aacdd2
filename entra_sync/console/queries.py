"""What the console's pages read from the run history, at trust scale: a run's summary by school x
kind x action (the CLI's summary model, :mod:`reconciler.render.summary`), its changes page by page
with filters and search done in SQL, and the people it could not find, per school.

Must: scope every query by the tenant (a run of another tenant is not found); never load a whole
run's changes to show one page. A finished run's summary is kept in a small cache (it no longer
changes); a running one's is counted afresh.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, Text, and_, case, func, or_, select, type_coerce

from entra_sync.store.tables import changes, person_changes, runs
from reconciler.identity import group_of, user_ref
from reconciler.plan.model import recorded_plan
from reconciler.render.summary import (
    NEEDS_ATTENTION,
    UNRESOLVED_CODE,
    CountRow,
    NeedsYou,
    school_of,
    school_order,
    summarise,
)

__all__ = ["ChangeRow", "Filters", "RunFacts", "RunQueries", "unresolved_csv"]

PAGE_SIZE = 50
_SCHOOL_PREFIXES = ("au:", "class:", "mentor:", "team:class:", "team:mentor:")
_ORDER = case((changes.c.status.in_(("failed", "partial")), 0), (changes.c.status == "skipped", 1), else_=2)


@dataclass(frozen=True)
class Filters:
    status: str = ""
    school: str = ""
    kind: str = ""
    action: str = ""
    q: str = ""
    page: int = 1

    def query(self, **override: Any) -> str:
        values = {
            "status": self.status,
            "school": self.school,
            "kind": self.kind,
            "action": self.action,
            "q": self.q,
            "page": self.page,
            **override,
        }
        return "&".join(
            f"{k}={quote(str(v))}"
            for k, v in values.items()
            if v not in ("", None, 1) or (k == "page" and v != 1)
        )


@dataclass(frozen=True)
class ChangeRow:
    seq: int
    change_id: str
    action: str
    kind: str
    key: str
    school: str
    name: str
    status: str
    message: str
    members: tuple[str, ...]
    member_count: int
    failures: tuple[dict[str, str], ...]


@dataclass(frozen=True)
class RunFacts:
    """A run's summary: counts by school x kind x action, what needs a person, statuses."""

    counts: tuple[CountRow, ...]
    needs_you: NeedsYou
    statuses: dict[str, int]
    schools: tuple[str, ...]
    kinds: tuple[str, ...]
    actions: tuple[str, ...]
    total: int
    memberships: int
    unresolved: tuple[tuple[str, str, tuple[str, ...]], ...] = field(default=())

    @property
    def deferred(self) -> int:
        return self.statuses.get("deferred", 0)


def _school_clause(school: str) -> Any:
    part = quote(school, safe="")
    return or_(*(changes.c.key.like(f"{p}{part}:%") for p in _SCHOOL_PREFIXES))


def _unresolved_rows(warnings: list[dict[str, Any]]) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(school, person, the objects that want them) per unresolved person and school."""
    out: dict[tuple[str, str], set[str]] = {}
    for w in warnings:
        if w.get("code") != UNRESOLVED_CODE:
            continue
        ref = str(w.get("ref") or w.get("message"))
        keys = [w["key"]] if w.get("key") else _keys_in(str(w.get("message", "")))
        for k in keys or [""]:
            out.setdefault((school_of(k) if k else school_of(""), ref), set()).add(k)
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


def unresolved_csv(facts: RunFacts) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["school", "person", "wanted by"])
    for school, person, keys in facts.unresolved:
        # a spreadsheet must not run a cell as a formula
        w.writerow([_cell(school), _cell(person), _cell(" ".join(keys))])
    return buf.getvalue()


def _cell(v: str) -> str:
    return "'" + v if v[:1] in ("=", "+", "-", "@", "\t", "\r") else v


class RunQueries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cache: OrderedDict[tuple[int, float], RunFacts] = OrderedDict()
        self._mutex = threading.Lock()

    def run_row(self, tenant: str, run_id: int) -> Any | None:
        with self.engine.connect() as c:
            return c.execute(select(runs).where(runs.c.id == run_id, runs.c.tenant == tenant)).first()

    def neighbours(self, tenant: str, run_id: int) -> tuple[int | None, int | None]:
        with self.engine.connect() as c:
            prev = c.execute(
                select(func.max(runs.c.id)).where(runs.c.tenant == tenant, runs.c.id < run_id)
            ).scalar()
            nxt = c.execute(
                select(func.min(runs.c.id)).where(runs.c.tenant == tenant, runs.c.id > run_id)
            ).scalar()
        return prev, nxt

    def warm(self, tenant: str, run_id: int) -> None:
        """Summarise a run that has just ended (its page then opens without counting)."""
        run = self.run_row(tenant, run_id)
        if run is not None:
            self.facts(run)

    def facts(self, run: Any) -> RunFacts:
        key = (int(run.id), float(run.finished_at or -1))
        if run.finished_at is not None:
            with self._mutex:
                if key in self._cache:
                    self._cache.move_to_end(key)
                    return self._cache[key]
        facts = self._facts(run)
        if run.finished_at is not None:
            with self._mutex:
                self._cache[key] = facts
                while len(self._cache) > 16:
                    self._cache.popitem(last=False)
        return facts

    def _facts(self, run: Any) -> RunFacts:
        with self.engine.connect() as c:
            rows = c.execute(
                select(
                    changes.c.change_id, changes.c.kind, changes.c.action, changes.c.key, changes.c.status
                ).where(changes.c.run_id == run.id)
            ).all()
            moved: dict[str, int] = dict(
                c.execute(
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
        counts = tuple(
            CountRow(s, k, a, *tally[(s, k, a)])
            for s, k, a in sorted(tally, key=lambda t: (school_order(t[0]), t[1], t[2]))
        )
        # what needs a person: the summary model over the run's warnings and conflicts
        warnings = list(run.warnings or [])
        plan = recorded_plan(warnings, run.conflicts or [])
        needs = summarise(plan).needs_you
        refusals = plan.refusals or ((run.error,) if run.status == "refused" and run.error else ())
        needs = NeedsYou(
            refusals=refusals,
            failures=(),
            conflicts=needs.conflicts,
            unresolved=needs.unresolved,
            unresolved_people=needs.unresolved_people,
        )
        return RunFacts(
            counts=counts,
            needs_you=needs,
            statuses=dict(sorted(statuses.items())),
            schools=tuple(sorted({r.school for r in counts}, key=school_order)),
            kinds=tuple(sorted({r.kind for r in counts})),
            actions=tuple(sorted({r.action for r in counts})),
            total=len(rows),
            memberships=sum(r.memberships for r in counts),
            unresolved=_unresolved_rows(warnings),
        )

    def page(self, run_id: int, f: Filters, size: int = PAGE_SIZE) -> tuple[list[ChangeRow], int]:
        """One page of the run's changes (failed first, then in plan order) and how many match.

        Two index walks, never a sort of the whole run: the few changes that need attention
        (by status), then the others in plan order."""
        attention = changes.c.status.in_(NEEDS_ATTENTION)
        rest = or_(changes.c.status.is_(None), changes.c.status.not_in(NEEDS_ATTENTION))
        offset = (max(1, f.page) - 1) * size
        with self.engine.connect() as c:
            cond = and_(*self._where(c, run_id, f))
            total = int(c.execute(select(func.count()).select_from(changes).where(cond)).scalar_one())
            first = int(
                c.execute(select(func.count()).select_from(changes).where(cond, attention)).scalar_one()
            )
            rows: list[Any] = []
            if offset < first:
                rows += c.execute(
                    self._columns()
                    .where(cond, attention)
                    .order_by(_ORDER, changes.c.seq)
                    .limit(size)
                    .offset(offset)
                ).all()
            if len(rows) < size:
                rows += c.execute(
                    self._columns()
                    .where(cond, rest)
                    .order_by(changes.c.seq)
                    .limit(size - len(rows))
                    .offset(max(0, offset - first))
                ).all()
            names = self._names(c, run_id, {r.key for r in rows})
        return [self._row(r, names) for r in rows], total

    @staticmethod
    def _columns() -> Any:
        return select(
            changes.c.seq,
            changes.c.change_id,
            changes.c.action,
            changes.c.kind,
            changes.c.key,
            changes.c.change,
            changes.c.status,
            changes.c.message,
            changes.c.failures,
        )

    @staticmethod
    def _where(c: Any, run_id: int, f: Filters) -> list[Any]:
        where = [changes.c.run_id == run_id]
        if f.status:
            where.append(
                changes.c.status.is_(None) if f.status == "planned" else changes.c.status == f.status
            )
        if f.kind:
            where.append(changes.c.kind == f.kind)
        if f.action:
            where.append(changes.c.action == f.action)
        if f.school:
            where.append(_school_clause(f.school))
        q = f.q.strip()
        if q:
            like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            by_key = changes.c.key.like(like, escape="\\")
            if "@" in q:  # a person: their memberships (by the person's index), not a scan of every text
                mine = c.execute(
                    select(person_changes.c.run_id, person_changes.c.change_id).where(
                        person_changes.c.person_norm == user_ref(q)
                    )
                ).all()
                ids = sorted({str(cid) for rid, cid in mine if rid == run_id})
                where.append(or_(by_key, changes.c.change_id.in_(ids)) if ids else by_key)
            else:  # a class or unit: its key or its name
                where.append(or_(by_key, type_coerce(changes.c.change, Text).like(like, escape="\\")))
        return where

    @staticmethod
    def _row(r: Any, names: dict[str, str]) -> ChangeRow:
        doc = r.change if isinstance(r.change, dict) else json.loads(r.change)
        members = tuple(doc.get("members", ()))
        after = doc.get("after") or {}
        if not members and r.action == "create":
            members = tuple(after.get("members") or ()) + tuple(after.get("owners") or ())
        return ChangeRow(
            seq=r.seq,
            change_id=r.change_id,
            action=r.action,
            kind=r.kind,
            key=r.key,
            school=school_of(r.key),
            name=names.get(r.key, ""),
            status=r.status or "planned",
            message=r.message or "",
            members=members[:8],
            member_count=len(members),
            failures=tuple(r.failures or ())[:8],
        )

    @staticmethod
    def _names(c: Any, run_id: int, keys: set[str]) -> dict[str, str]:
        """Display names of these objects, from the newest change of theirs up to this run."""
        if not keys:
            return {}
        wanted = {str(group_of(k)) for k in keys} | keys
        rows = c.execute(
            select(changes.c.key, changes.c.change)
            .where(
                changes.c.key.in_(sorted(wanted)),
                changes.c.run_id <= run_id,
                changes.c.kind.in_(("group", "administrativeUnit", "team")),
            )
            .order_by(changes.c.run_id.desc())
        ).all()
        found: dict[str, str] = {}
        for key, doc in rows:
            d = doc if isinstance(doc, dict) else json.loads(doc)
            for side in (d.get("after"), d.get("before")):
                if side and side.get("displayName") and key not in found:
                    found[key] = str(side["displayName"])
        return {k: found.get(k) or found.get(str(group_of(k)), "") for k in keys}
