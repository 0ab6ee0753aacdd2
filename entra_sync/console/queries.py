"""What the console's pages read from the run history, at trust scale: a run's summary by school x
kind x action (the CLI's summary model, :mod:`reconciler.render.summary`), its changes page by page
with filters and search done in SQL, and the people it could not find, per school.

Must: scope every query by the tenant (a run of another tenant is not found); never load a whole
run's changes to show one page, nor count a run's summary (the store keeps it).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, Text, and_, case, func, or_, select, type_coerce

from entra_sync.store.run_summary import RunTotals, run_totals
from entra_sync.store.tables import changes, person_changes, runs
from reconciler.generate.generator import key_part
from reconciler.identity import fold, group_of, user_ref
from reconciler.plan.operations import AnyChange, Change
from reconciler.render.common import display_name
from reconciler.render.summary import NEEDS_ATTENTION, school_of

__all__ = ["ChangeRow", "Filters", "RunQueries", "unresolved_csv"]

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


def _school_clause(school: str) -> Any:
    """The changes of a school's objects: by their keys' identity (any case, on every database)."""
    part = key_part(school)  # spelled as the generator spells it in keys
    return or_(*(changes.c.key_norm.like(_like_escaped(fold(f"{p}{part}:")) + "%", escape="\\")
                 for p in _SCHOOL_PREFIXES))


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def unresolved_csv(facts: RunTotals) -> str:
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

    def facts(self, run: Any) -> RunTotals:
        """The run's summary, kept in the store (:mod:`entra_sync.store.run_summary`)."""
        return run_totals(self.engine, run)

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
            like = "%" + _like_escaped(q) + "%"
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
        change = _change(r.change)
        members = change.members
        if not members and change.action == "create" and change.after is not None:
            members = change.after.people()
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
            name = display_name(_change(doc)) if key not in found else ""
            if name:
                found[key] = name
        return {k: found.get(k) or found.get(str(group_of(k)), "") for k in keys}


def _change(doc: Any) -> AnyChange:
    """A change as the store keeps it (a JSON column: a dict, or its text), typed; a row an older
    version wrote still reads (see ``Change.from_dict``)."""
    return Change.from_dict(doc if isinstance(doc, dict) else json.loads(doc), strict=False)
