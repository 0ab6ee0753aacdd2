"""How the commands print plans, safety refusals and apply results."""

from __future__ import annotations

import enum

import typer

from entra_sync.steps import refusals
from reconciler.apply.result import ApplyResult
from reconciler.plan.model import Plan
from reconciler.render.markdown import render_markdown
from reconciler.render.text import TEXT_LIST_LIMIT, render_text

__all__ = ["PlanFormat", "print_refusals", "print_result", "render_plan"]


class PlanFormat(enum.StrEnum):
    text = "text"
    brief = "brief"  # text, with member lists reduced to their counts
    markdown = "markdown"
    json = "json"


def render_plan(plan: Plan, fmt: PlanFormat) -> str:
    if fmt is PlanFormat.markdown:
        return render_markdown(plan)
    if fmt is PlanFormat.json:
        return plan.to_json()
    return render_text(plan, list_limit=0 if fmt is PlanFormat.brief else TEXT_LIST_LIMIT)


def print_refusals(plan: Plan) -> None:
    reasons = refusals(plan)
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
