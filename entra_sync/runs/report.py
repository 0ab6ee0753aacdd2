"""The HTML report of one run. It leads with the summary (counts by school × kind × action, from
:mod:`reconciler.render.summary`, the same model as the terminal and Markdown), then what needs
you (safety refusals, people not in Entra per school, changes not done), then the changes by
outcome, grouped by school, with the done ones collapsed per school; then the plan's warnings and
conflicts, and how long it took.

One self-contained page (inline CSS, no scripts, no external resources) rendered with Jinja2 from
``reconciler/templates/report.html.j2``. Autoescaping is on: names come from school data and may
contain ``<`` or ``&``.

Must: render only what the history holds (the history never holds a secret).
Must not: perform I/O other than reading the packaged template.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, tzinfo
from functools import lru_cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from entra_sync import __version__
from entra_sync.runs.history import RunChange, RunDetail
from entra_sync.runs.result_json import detail_plan
from reconciler.apply.result import STATUSES, ApplyResult, ChangeResult
from reconciler.plan.operations import AnyChange, MembershipChange
from reconciler.render.common import display_name, document
from reconciler.render.summary import Summary, school_of, school_order, summarise
from reconciler.render.summary_format import headline

__all__ = ["MAX_MEMBERS_SHOWN", "format_duration", "render_run_report"]

#: members listed per change in the report; the rest are counted
MAX_MEMBERS_SHOWN = 200

_SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("failed", "Failed", "These changes were not made. The message says why; the next run tries again."),
    ("partial", "Partly done", "The object was changed, but some members, owners or placements failed."),
    ("skipped", "Skipped", "Not attempted because a change they depend on failed or was deferred."),
    ("deferred", "Deferred", "Teams wait for new groups to replicate; they are created on the next run."),
    ("planned", "Planned, not applied", "This run planned these changes but did not apply them."),
    ("done", "Done", ""),
)


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    source = (
        resources.files("entra_sync.runs.templates").joinpath("report.html.j2").read_text(encoding="utf-8")
    )
    return env.from_string(source)


def format_duration(seconds: float) -> str:
    """``0.4 s``, ``12.5 s``, ``2 min 3 s``, ``1 h 2 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def _time(ts: float | None, tz: tzinfo) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def _name(rc: RunChange) -> str:
    return display_name(rc.change)


def _fields(rc: RunChange) -> list[str]:
    change = rc.change
    if change.action == "create" and change.after:
        after = document(change.after)
        out = [_count(len(after[n]), n) for n in ("owners", "members") if isinstance(after.get(n), list)]
        if after.get("template"):
            out.append(f"template {after['template']}")
        return out
    if change.action != "update" or not change.after:
        return []
    before = document(change.before)
    return [
        f"{name}: {before.get(name)!r} → {value!r}"
        for name, value in sorted(document(change.after).items())
        if before.get(name) != value
    ]


def _members(rc: RunChange) -> list[str]:
    members = list(rc.change.members)
    if len(members) > MAX_MEMBERS_SHOWN:
        rest = len(members) - MAX_MEMBERS_SHOWN
        members = [*members[:MAX_MEMBERS_SHOWN], f"… and {rest} more"]
    return members


def _noun(change: AnyChange) -> str:
    return change.noun if isinstance(change, MembershipChange) else "members"


def _count(n: int, plural: str) -> str:
    return f"{n} {plural if n != 1 else plural.removesuffix('s')}"


def _row(rc: RunChange) -> dict[str, Any]:
    result: ChangeResult | None = rc.result
    return {
        "school": school_of(rc.change.key),
        "action": rc.change.action,
        "kind": rc.change.kind,
        "key": rc.change.key,
        "name": _name(rc),
        "object_id": (result.object_id if result else None) or rc.change.object_id or "",
        "fields": _fields(rc),
        "members": _members(rc),
        "count": _count(len(rc.change.members), _noun(rc.change)),
        "status": result.status if result else "planned",
        "message": result.message if result else "",
        "failures": list(result.failures) if result else [],
    }


def _flatten(config: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, value in sorted(config.items()):
        path = f"{prefix}{name}"
        if isinstance(value, Mapping) and value:
            out += _flatten(value, path + ".")
        else:
            out.append((path, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)))
    return out


def _by_school(rows: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Rows grouped by school (schools sorted, the rows of one school in plan order)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["school"], []).append(row)
    return sorted(groups.items(), key=lambda kv: school_order(kv[0]))


def _school_table(summary: Summary) -> dict[str, Any]:
    """The summary's counts as a table: a row per school and kind, a column per action present."""
    actions = [a for a in ("create", "update", "delete", "add", "remove", "archive", "unarchive")
               if any(r.action == a for r in summary.counts)]
    grouped: dict[tuple[str, str], dict[str, int]] = {}
    for r in summary.counts:
        cell = grouped.setdefault((r.school, r.kind), {"memberships": 0, "not_done": 0})
        cell[r.action] = r.changes
        cell["memberships"] += r.memberships
        cell["not_done"] += r.not_done
    rows = [{"school": s, "kind": k, "cells": [c.get(a, "") for a in actions],
             "memberships": c["memberships"], "not_done": c["not_done"]} for (s, k), c in grouped.items()]
    return {"actions": actions, "rows": rows, "applied": summary.applied}


def render_run_report(run: RunDetail, *, tz: tzinfo | str = "Europe/London") -> str:
    """The run as one self-contained HTML page; times shown in ``tz`` (the school's time zone)."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    plan, result = detail_plan(run)
    summary = summarise(plan, result)
    rows = [_row(rc) for rc in run.changes]
    by_status: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_status.setdefault(row["status"], []).append(row)
    sections = [
        {"id": status, "title": title, "note": note, "count": len(by_status[status]),
         "schools": _by_school(by_status[status]), "collapsed": status == "done"}
        for status, title, note in _SECTIONS
        if by_status.get(status)
    ]
    needs = summary.needs_you
    counts = [(s, len(by_status[s])) for s in (*STATUSES, "planned") if by_status.get(s)]
    results = tuple(rc.result for rc in run.changes if rc.result is not None)
    s = run.summary
    title = f"Entra Sync run {s.run_id}"
    return _template().render(
        title=title,
        tz=str(zone),
        version=__version__,
        run={
            "status": s.status,
            "kind": s.kind,
            "started": _time(s.started_at, zone),
            "finished": _time(s.finished_at, zone),
            "error": s.error or "",
            "checksum": run.plan_checksum or "",
        },
        durations=[(name, format_duration(v)) for name, v in run.durations().items()],
        summary_text=ApplyResult(results).summary_text() if results else "",
        headline=headline(summary),
        school_table=_school_table(summary),
        needs={"refusals": list(needs.refusals), "unresolved": list(needs.unresolved),
               "unresolved_people": needs.unresolved_people, "conflicts": len(needs.conflicts),
               "not_done": [(s, len(by_status.get(s, ()))) for s in ("failed", "partial", "skipped")
                            if by_status.get(s)],
               "empty": needs.empty},
        counts=counts,
        sections=sections,
        warnings=[dict(w) | {"key": w.get("key"), "ref": w.get("ref")} for w in run.warnings],
        conflicts=list(run.conflicts),
        config=_flatten(run.config),
    )
