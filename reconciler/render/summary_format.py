"""Text and Markdown renderings of a :class:`~reconciler.render.summary.Summary` (JSON is
:meth:`Summary.to_dict`). Pure and deterministic.

Both lead with the counts (one row per school and kind, one column per action present), then what
needs you, then the detail: in text only on request (``detail_limit``); in Markdown as much as fits
under :data:`MARKDOWN_LIMIT` characters (a pull-request comment's limit), saying what it left out.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.plan.model import ACTIONS
from reconciler.plan.operations import operation
from reconciler.render.summary import CountRow, DetailRow, NeedsYou, Summary

__all__ = ["MARKDOWN_LIMIT", "MORE_HINT", "NEEDS_LIMIT", "render_summary_markdown", "render_summary_text"]

#: GitHub's limit on a pull-request or issue comment
MARKDOWN_LIMIT = 65_536
#: what the Markdown rendering keeps free below the limit (the "left out" note, a caller's header)
_MARKDOWN_MARGIN = 2_000
#: items listed per "needs you" list before "... and N more"
NEEDS_LIMIT = 10
NOTHING = "Nothing needs you."


def _symbol(d: DetailRow) -> str:
    return operation(d.action, d.kind).symbol


def _actions(rows: Sequence[CountRow]) -> list[str]:
    present = {r.action for r in rows}
    return [a for a in ACTIONS if a in present]


def _table(summary: Summary) -> tuple[list[str], list[list[str]]]:
    """Header and rows: school, kind, a column per action present (changes), memberships."""
    actions = _actions(summary.counts)
    header = ["School", "Kind", *actions, "memberships"]
    if summary.applied:
        header.append("not done")
    grouped: dict[tuple[str, str], dict[str, CountRow]] = {}
    for r in summary.counts:
        grouped.setdefault((r.school, r.kind), {})[r.action] = r
    rows: list[list[str]] = []
    last = None
    for (school, kind), by_action in grouped.items():
        cells = [school if school != last else "", kind]
        cells += [str(by_action[a].changes) if a in by_action else "" for a in actions]
        cells.append(str(sum(r.memberships for r in by_action.values())))
        if summary.applied:
            cells.append(str(sum(r.not_done for r in by_action.values())))
        rows.append(cells)
        last = school
    total = ["Total", "", *[str(sum(r.changes for r in summary.counts if r.action == a)) for a in actions],
             str(summary.total_memberships)]
    if summary.applied:
        total.append(str(sum(r.not_done for r in summary.counts)))
    rows.append(total)
    return header, rows


def headline(summary: Summary) -> str:
    if not summary.detail:
        return "No changes. Entra matches the desired state."
    schools = len(summary.schools)
    text = (f"{summary.total_changes} change{'s' if summary.total_changes != 1 else ''} "
            f"({summary.total_memberships} memberships) across {schools} school{'s' if schools != 1 else ''}")
    if summary.applied:
        text += ": " + ", ".join(f"{n} {s}" for s, n in summary.status_counts().items())
    return text + "."


def _more(items: Sequence[str], limit: int, indent: str) -> list[str]:
    out = [f"{indent}{i}" for i in items[:limit]]
    if len(items) > limit:
        out.append(f"{indent}... and {len(items) - limit} more")
    return out


def _failure_text(f: DetailRow) -> str:
    name = f' "{f.name}"' if f.name else ""
    return f"{f.status}: {f.action} {f.kind} {f.key}{name}" + (f": {f.message}" if f.message else "")


def _needs_text(n: NeedsYou) -> list[str]:
    if n.empty:
        return [NOTHING]
    lines = ["Needs you:"]
    if n.refusals:
        lines.append(f"  Refused by a safety limit ({len(n.refusals)}); nothing was changed:")
        lines += _more(list(n.refusals), NEEDS_LIMIT, "    ")
    if n.failures:
        lines.append(f"  Not done ({len(n.failures)}); the next run tries again:")
        lines += _more([_failure_text(f) for f in n.failures], NEEDS_LIMIT, "    ")
    if n.conflicts:
        lines.append(f"  Conflicts with unmanaged objects ({len(n.conflicts)}); rename in the school data "
                     "or adopt the existing object:")
        lines += _more([f"{c.kind} {c.key}: {c.field} {c.value!r} is taken by {c.object_id}"
                        for c in n.conflicts], NEEDS_LIMIT, "    ")
    if n.unresolved_people:
        per = ", ".join(f"{s} {k}" for s, k in n.unresolved)
        lines.append(f"  People not in Entra: {n.unresolved_people} ({per}); they were left out of their "
                     "groups until they have accounts")
    return lines


def _detail_text(d: DetailRow) -> str:
    name = f' "{d.name}"' if d.name else ""
    extra = f" ({d.memberships} memberships)" if d.memberships else ""
    status = f" [{d.status}]" if d.status != "planned" else ""
    return f"  {_symbol(d)} {d.kind} {d.key}{name}{extra}{status}"


#: what the text rendering says about the detail it leaves out, unless the caller knows better
MORE_HINT = "see the full plan or the run report"


def render_summary_text(summary: Summary, *, detail_limit: int = 0, more_hint: str = MORE_HINT) -> str:
    """A compact table for a terminal, what needs you, then up to ``detail_limit`` detail rows;
    ``more_hint`` says how to see the rows left out (the caller's flag or file)."""
    lines = [headline(summary)]
    if summary.detail:
        header, rows = _table(summary)
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]

        def fmt(cells: list[str]) -> str:
            left = [c.ljust(widths[i]) for i, c in enumerate(cells[:2])]
            right = [c.rjust(widths[i + 2]) for i, c in enumerate(cells[2:])]
            return "  ".join(left + right).rstrip()

        lines += ["", fmt(header), *(fmt(r) for r in rows)]
    lines += ["", *_needs_text(summary.needs_you)]
    if summary.detail:
        shown = summary.detail[:detail_limit] if detail_limit > 0 else ()
        if shown:
            lines += ["", "Detail:", *(_detail_text(d) for d in shown)]
        left = len(summary.detail) - len(shown)
        if left:
            lines += ["", f"{left} change{'s' if left != 1 else ''} not listed here ({more_hint})."]
    return "\n".join(lines) + "\n"


# --- Markdown ----------------------------------------------------------------------------------

_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]#|~"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;"})


def md(text: str) -> str:
    """Text safe in a Markdown table cell (no markup, no HTML)."""
    return text.replace("\n", " ").translate(_MD_SPECIAL)


def code(text: str) -> str:
    """An inline code span safe in a table cell."""
    text = text.replace("\n", " ").replace("`", "'").replace("|", "\\|")
    return f"`{text}`"


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _needs_markdown(n: NeedsYou) -> list[str]:
    lines = ["#### Needs you", ""]
    if n.empty:
        return [*lines, NOTHING]
    if n.refusals:
        lines += [f"**Refused by a safety limit ({len(n.refusals)}); nothing was changed:**", ""]
        lines += [f"- {md(r)}" for r in n.refusals] + [""]
    if n.failures:
        lines += [f"**Not done ({len(n.failures)}); the next run tries again:**", ""]
        lines += _more([f"- {f.status}: {f.action} {f.kind} {code(f.key)} {md(f.name)}"
                        + (f": {md(f.message)}" if f.message else "") for f in n.failures],
                       NEEDS_LIMIT * 5, "")
        lines.append("")
    if n.conflicts:
        lines += [f"**Conflicts with unmanaged objects ({len(n.conflicts)}):** rename in the school data or "
                  "adopt the existing object.", ""]
        lines += _more([f"- {c.kind} {code(c.key)}: {c.field} {md(c.value)} is taken by {code(c.object_id)}"
                        for c in n.conflicts], NEEDS_LIMIT * 5, "")
        lines.append("")
    if n.unresolved_people:
        lines += [f"**People not in Entra: {n.unresolved_people}** (left out of their groups until they have "
                  "accounts)", ""]
        lines += [*_md_table(["School", "People"], [[md(s), str(k)] for s, k in n.unresolved]), ""]
    return lines[:-1] if lines[-1] == "" else lines


def _detail_block(school: str, rows: Sequence[DetailRow], applied: bool) -> list[str]:
    header = ["", "Kind", "Key", "Name", "Memberships"] + (["Status"] if applied else [])
    body = [[md(_symbol(d)), d.kind, code(d.key), md(d.name), str(d.memberships)]
            + ([md(d.status)] if applied else []) for d in rows]
    return ["", f"<details><summary>{md(school)}: {len(rows)} changes</summary>", "",
            *_md_table(header, body), "", "</details>"]


def render_summary_markdown(summary: Summary, *, limit: int = MARKDOWN_LIMIT) -> str:
    """The summary as Markdown, under ``limit`` characters: the detail is cut where it would not fit,
    and the rendering says how many changes it left out."""
    lines = ["### Entra sync summary", "", f"**{md(headline(summary))}**"]
    if summary.detail:
        header, table = _table(summary)
        lines += ["", *_md_table([md(h) for h in header], [[md(c) for c in r] for r in table])]
    lines += ["", *_needs_markdown(summary.needs_you)]
    size = sum(len(x) + 1 for x in lines)
    budget = limit - _MARKDOWN_MARGIN
    by_school: dict[str, list[DetailRow]] = {}
    for d in summary.detail:
        by_school.setdefault(d.school, []).append(d)
    left_out, left_schools = 0, 0
    if summary.detail:
        lines += ["", "#### Detail"]
    for school, rows in by_school.items():
        if left_out:
            left_out += len(rows)
            left_schools += 1
            continue
        keep: Sequence[DetailRow] = rows
        block = _detail_block(school, keep, summary.applied)
        block_size = sum(len(x) + 1 for x in block)
        while keep and size + block_size > budget:  # cut this school's rows to what fits
            keep = keep[: len(keep) // 2]
            block = _detail_block(school, keep, summary.applied)
            block_size = sum(len(x) + 1 for x in block)
        if len(keep) < len(rows):
            left_out += len(rows) - len(keep)
            left_schools += 1
        if keep:
            lines += block
            size += block_size
    if left_out:
        lines += ["", f"*{left_out} changes in {left_schools} schools left out to stay under "
                  f"{limit:,} characters; the full plan is in the plan file and the run report.*"]
    text = "\n".join(lines) + "\n"
    if len(text) >= limit:  # only when the needs-you block alone is too big: cut it hard, and say so
        note = "\n\n*Cut here to stay under the size limit; the full summary is in the run report.*\n"
        text = text[: limit - len(note) - 1] + note
    return text
