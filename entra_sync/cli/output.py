"""How the commands print plans, safety refusals and apply results.

The default (``summary``) is what reads at trust scale: counts by school × kind × action and
what needs you (:mod:`reconciler.render.summary_format`); ``text``/``brief`` are the full plan,
``markdown`` the summary as Markdown (under 65,536 characters), ``json`` the plan document.
"""

from __future__ import annotations

import enum

import typer

from reconciler.apply.result import ApplyResult
from reconciler.plan.model import Plan
from reconciler.render.summary import SummaryContext, summarise
from reconciler.render.summary_format import render_summary_markdown, render_summary_text
from reconciler.render.text import TEXT_LIST_LIMIT, render_text

__all__ = ["PlanFormat", "pick_format", "print_refusals", "print_result", "render_plan"]


class PlanFormat(enum.StrEnum):
    summary = "summary"  # counts by school × kind × action, then what needs you
    text = "text"  # every change, member lists cut at a few names
    brief = "brief"  # text, with member lists reduced to their counts
    markdown = "markdown"  # the summary as Markdown, under 65,536 characters
    json = "json"


FORMAT_HELP = (
    "How to print: summary (default: counts by school, kind and action, then what needs you), "
    "text (every change), brief (every change, member lists as counts), markdown (the summary for a "
    "pull request, under 65,536 characters) or json."
)
DETAIL_HELP = "Print every change (the same as --format text)."
#: the summary lists every change of a plan this short
SHORT_PLAN = 20
#: what the summary says about the changes it does not list: the flag every printing command has
MORE_HINT = "add --detail to list every change"


def pick_format(fmt: PlanFormat | None, detail: bool) -> PlanFormat:
    if fmt is None:
        return PlanFormat.text if detail else PlanFormat.summary
    return fmt


def render_plan(plan: Plan, fmt: PlanFormat, ctx: SummaryContext | None = None) -> str:
    if fmt is PlanFormat.markdown:
        return render_summary_markdown(summarise(plan, None, ctx))
    if fmt is PlanFormat.json:
        return plan.to_json()
    if fmt is PlanFormat.summary:
        summary = summarise(plan, None, ctx)
        short = len(summary.detail) <= SHORT_PLAN  # a few changes are listed: nobody needs a flag for two
        return render_summary_text(summary, detail_limit=SHORT_PLAN if short else 0, more_hint=MORE_HINT)
    return render_text(plan, list_limit=0 if fmt is PlanFormat.brief else TEXT_LIST_LIMIT)


def print_refusals(plan: Plan) -> None:
    reasons = plan.refusals
    if reasons:
        typer.echo("\nThis plan breaks a safety limit and will not be applied without --force:", err=True)
        for r in reasons:
            typer.echo(f"  - {r}", err=True)


def print_result(result: ApplyResult, *, summary_to_stderr: bool = False) -> None:
    """Failures on stderr, then the one-line summary (on stderr too when stdout carries JSON)."""
    for r in result.results:
        if r.status in ("failed", "partial", "skipped"):
            typer.echo(f"  {r.status}: {r.action} {r.kind} {r.key}: {r.message}", err=True)
            for f in r.failures[:10]:
                typer.echo(f"      {f.object_id}: {f.message}", err=True)
            if len(r.failures) > 10:
                typer.echo(f"      ... and {len(r.failures) - 10} more", err=True)
    typer.echo(result.summary_text(), err=summary_to_stderr)
