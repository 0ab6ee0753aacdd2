"""What a notification says, from the run-result document: a subject line and a short text body
(the run, what needs you, the counts), and the events it reports. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["LIST_LIMIT", "events", "facts", "subject", "text_body"]

#: items listed per list in a message before "... and N more"
LIST_LIMIT = 10


def events(doc: Mapping[str, Any]) -> frozenset[str]:
    """The events a run-result reports: failed, partial, refused, unresolved, conflicts."""
    run, needs = doc["run"], doc["needsYou"]
    out: set[str] = set()
    if run["status"] in ("failed", "interrupted"):
        out.add("failed")
    if run["status"] == "partial" or needs["failures"]:
        out.add("partial")
    if run["status"] == "refused" or needs["refusals"]:
        out.add("refused")
    if needs["unresolvedPeople"]:
        out.add("unresolved")
    if needs["conflicts"]:
        out.add("conflicts")
    return frozenset(out)


def _run_name(doc: Mapping[str, Any]) -> str:
    run = doc["run"]
    return f"run {run['id']}" if run["id"] is not None else f"{run['kind']} run"


def subject(doc: Mapping[str, Any]) -> str:
    run, needs = doc["run"], doc["needsYou"]
    parts = []
    if needs["refusals"]:
        parts.append(f"{len(needs['refusals'])} safety refusal{'s' if len(needs['refusals']) != 1 else ''}")
    if needs["failures"]:
        parts.append(f"{len(needs['failures'])} changes not done")
    if needs["unresolvedPeople"]:
        parts.append(f"{needs['unresolvedPeople']} people not in Entra")
    if needs["conflicts"]:
        parts.append(f"{len(needs['conflicts'])} conflicts")
    tail = f": {', '.join(parts)}" if parts else ""
    return f"Entra Sync {_run_name(doc)} {run['status']}{tail}"


def facts(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(title, value)`` pairs: the run's facts for a card or a message header."""
    run, summary = doc["run"], doc["summary"]
    dry = run["dryRun"] and not run["kind"].endswith(" (dry run)")  # the pipeline names a dry run so
    out = [("Status", run["status"]), ("Kind", run["kind"] + (" (dry run)" if dry else "")),
           ("Started", run["startedAt"] or "")]
    if run["finishedAt"]:
        out.append(("Finished", run["finishedAt"]))
    statuses = ", ".join(f"{n} {s}" for s, n in summary["statuses"].items()) or "none"
    out.append(("Changes", f"{summary['changes']} ({statuses})"))
    return out


def _more(items: list[str], indent: str = "  ") -> list[str]:
    lines = [f"{indent}{i}" for i in items[:LIST_LIMIT]]
    if len(items) > LIST_LIMIT:
        lines.append(f"{indent}... and {len(items) - LIST_LIMIT} more")
    return lines


def needs_lines(doc: Mapping[str, Any]) -> list[str]:
    needs = doc["needsYou"]
    lines: list[str] = []
    if doc["run"]["error"]:
        lines += ["Error:", f"  {doc['run']['error']}"]
    if needs["refusals"]:
        lines += ["Refused by a safety limit (nothing was changed):", *_more(list(needs["refusals"]))]
    if needs["failures"]:
        lines += [f"Not done ({len(needs['failures'])}); the next run tries again:",
                  *_more([f"{f['status']}: {f['action']} {f['kind']} {f['key']}"
                          + (f" ({f['name']})" if f["name"] else "")
                          + (f": {f['message']}" if f.get("message") else "") for f in needs["failures"]])]
    if needs["conflicts"]:
        lines += [f"Conflicts with unmanaged objects ({len(needs['conflicts'])}):",
                  *_more([f"{c['kind']} {c['key']}: {c['field']} {c['value']!r} is taken by {c['objectId']}"
                          for c in needs["conflicts"]])]
    if needs["unresolvedPeople"]:
        per = ", ".join(f"{u['school']} {u['people']}" for u in needs["unresolvedBySchool"])
        lines.append(f"People not in Entra: {needs['unresolvedPeople']} ({per})")
    return lines


def text_body(doc: Mapping[str, Any], report_url: str | None = None) -> str:
    lines = [subject(doc), ""]
    lines += [f"{t}: {v}" for t, v in facts(doc)]
    needs = needs_lines(doc)
    if needs:
        lines += ["", *needs]
    if report_url:
        lines += ["", f"Report: {report_url}"]
    return "\n".join(lines) + "\n"
