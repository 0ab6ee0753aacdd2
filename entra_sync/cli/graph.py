"""``entra-sync plan``, ``apply`` and ``export``: the commands that compare with and change Entra.

``plan`` never writes. ``apply PLAN.json`` applies exactly a saved plan and refuses a stale one;
``apply --desired FILE`` plans, shows, asks on a terminal, and applies. ``export`` writes the
managed Entra state as a desired-state document.
"""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from entra_sync.cli.progress import ProgressPrinter
from entra_sync.cli.wiring import (
    ClientOpt,
    CloudOpt,
    ConfigOpt,
    GraphOptions,
    GraphUrlOpt,
    TenantOpt,
    limits_from,
    open_directory,
)
from entra_sync.config.load import config_summary
from entra_sync.pipeline import RunRecord, apply_saved, make_plan, refusals
from entra_sync.runs.history import History
from reconciler.apply.result import ApplyResult
from reconciler.document.load import load_desired, read_json_file
from reconciler.document.parse import desired_to_document
from reconciler.errors import InputError, SafetyError
from reconciler.plan.codec import load_plan_document
from reconciler.plan.model import Plan
from reconciler.render.markdown import render_markdown
from reconciler.render.text import TEXT_LIST_LIMIT, render_text

__all__ = ["register"]


class PlanFormat(enum.StrEnum):
    text = "text"
    brief = "brief"  # text, with member lists reduced to their counts
    markdown = "markdown"
    json = "json"


DesiredOpt = Annotated[
    Path | None,
    typer.Option("--desired", "-d", help="Desired-state document (JSON), e.g. from `entra-sync render`."),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")]


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


def _require_desired(desired: Path | None) -> Path:
    if desired is None:
        raise InputError("give the desired state with --desired FILE (make one with `entra-sync render`)")
    return desired


def plan(
    desired: DesiredOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Save the plan as JSON for `entra-sync apply PLAN`.")
    ] = None,
    fmt: Annotated[
        PlanFormat, typer.Option("--format", "-f", help="How to print the plan.")
    ] = PlanFormat.text,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode", help="Exit 0 when there are no changes, 2 when there are, 1 on error."
        ),
    ] = False,
    config: ConfigOpt = None,
    graph_url: GraphUrlOpt = None,
    tenant_id: TenantOpt = None,
    client_id: ClientOpt = None,
    cloud: CloudOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Show what would change in Entra to match the desired state. Never writes to Entra."""
    state = load_desired(_require_desired(desired))
    opts = GraphOptions.build(config, graph_url, tenant_id, client_id, cloud)
    progress = ProgressPrinter(enabled=not quiet)
    with open_directory(opts) as directory:
        planned = make_plan(state, directory, limits_from(opts.config), progress)
    progress.close()
    typer.echo(render_plan(planned.plan, fmt), nl=False)
    if out is not None:
        out.write_text(planned.plan.to_json(), encoding="utf-8")
        typer.echo(f"\nPlan saved to {out}; apply it with `entra-sync apply {out}`.", err=True)
    if fmt is not PlanFormat.json:
        print_refusals(planned.plan)
    if detailed_exitcode and not planned.plan.empty:
        raise typer.Exit(2)


def _confirm(auto_approve: bool, question: str = "Apply these changes to Entra?") -> None:
    """Ask on a terminal; refuse off a terminal unless ``--auto-approve``."""
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise InputError(
            "not changing Entra without confirmation: stdin is not a terminal; review first and pass "
            "--auto-approve (for schedules), or apply a saved plan file"
        )
    if not typer.confirm(question, default=False):
        raise typer.Abort()


def apply(
    plan_file: Annotated[
        Path | None, typer.Argument(help="A plan saved by `entra-sync plan --out`; applied exactly as saved.")
    ] = None,
    desired: DesiredOpt = None,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Do not ask for confirmation (for schedules).")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Apply even when a safety limit refuses the plan (this run only).")
    ] = False,
    config: ConfigOpt = None,
    graph_url: GraphUrlOpt = None,
    tenant_id: TenantOpt = None,
    client_id: ClientOpt = None,
    cloud: CloudOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Change Entra to match: a saved plan (refused when stale), or a desired state (plan, show, confirm)."""
    if (plan_file is None) == (desired is None):
        raise InputError("give either a saved PLAN file or --desired FILE, not both or neither")
    opts = GraphOptions.build(config, graph_url, tenant_id, client_id, cloud)
    limits = limits_from(opts.config)
    progress = ProgressPrinter(enabled=not quiet)
    history = History(opts.config.history.path) if opts.config is not None else None
    summary = config_summary(opts.config) if opts.config is not None else None
    kind = "apply (saved plan)" if plan_file is not None else "apply"
    record = RunRecord(history, kind, summary, interrupted_by=(KeyboardInterrupt, typer.Abort))
    try:
        with record:
            if plan_file is not None:
                saved = load_plan_document(read_json_file(plan_file), file=str(plan_file))
                record.plan(saved)
                with open_directory(opts) as directory:
                    result = apply_saved(saved, directory, limits, force=force, progress=progress)
            else:
                state = load_desired(_require_desired(desired))
                with open_directory(opts) as directory:
                    planned = make_plan(state, directory, limits, progress)
                    progress.close()
                    record.plan(planned.plan)
                    typer.echo(render_text(planned.plan), nl=False)
                    if planned.plan.empty:
                        return
                    reasons = refusals(planned.plan)
                    if reasons and not force:
                        raise SafetyError(reasons)
                    _confirm(auto_approve)
                    from reconciler.apply.executor import apply as apply_plan

                    result = apply_plan(planned.plan, directory, planned.actual, progress=progress)
            record.results(result)
    finally:
        if history is not None:
            typer.echo(f"Recorded as run {record.run_id} in {history.path}.", err=True)
            history.close()
    progress.close()
    print_result(result)
    if not result.ok:
        raise typer.Exit(1)


def export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the document here instead of stdout.")
    ] = None,
    config: ConfigOpt = None,
    graph_url: GraphUrlOpt = None,
    tenant_id: TenantOpt = None,
    client_id: ClientOpt = None,
    cloud: CloudOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Write the managed Entra state as a desired-state document (planning it gives no changes)."""
    from reconciler.document.snapshot import snapshot
    from reconciler.model import SourceInfo

    opts = GraphOptions.build(config, graph_url, tenant_id, client_id, cloud)
    progress = ProgressPrinter(enabled=not quiet)
    with open_directory(opts) as directory:
        actual = directory.read(None, progress)
    progress.close()
    policy = opts.config.removal if opts.config is not None else None
    state = snapshot(
        actual, user_match=opts.user_match, policy=policy, source=SourceInfo(system="entra-export")
    )
    text = json.dumps(desired_to_document(state), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(
            f"Exported {len(state.administrative_units)} administrative units, {len(state.groups)} groups "
            f"and {len(state.teams)} Teams to {output}",
            err=True,
        )


def adopt(
    keys: Annotated[
        list[str] | None,
        typer.Argument(help="Keys of the desired objects whose existing twins to take over (default: all)."),
    ] = None,
    desired: DesiredOpt = None,
    object_id: Annotated[
        str | None,
        typer.Option(
            "--object-id", help="When several existing objects collide with one key, the one to adopt."
        ),
    ] = None,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Do not ask for confirmation.")
    ] = False,
    config: ConfigOpt = None,
    graph_url: GraphUrlOpt = None,
    tenant_id: TenantOpt = None,
    client_id: ClientOpt = None,
    cloud: CloudOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Take over existing groups or administrative units that collide with desired ones.

    A desired object whose mailNickname or name is already used by an object the tool does not own
    (one School Data Sync or a person made, say) is reported as a conflict and never touched. Adopting
    stamps the desired key on the existing object; from then on it is managed, and the next plan
    brings its name, members and owners in line with the school data (safety limits apply).
    """
    state = load_desired(_require_desired(desired))
    opts = GraphOptions.build(config, graph_url, tenant_id, client_id, cloud)
    progress = ProgressPrinter(enabled=not quiet)
    with open_directory(opts) as directory:
        planned = make_plan(state, directory, limits_from(opts.config), progress)
        progress.close()
        conflicts = [c for c in planned.plan.conflicts if not keys or c.key in keys]
        unknown = sorted(set(keys or ()) - {c.key for c in planned.plan.conflicts})
        if unknown:
            raise InputError(
                f"no conflict to adopt for {', '.join(unknown)}; objects in conflict: "
                + (", ".join(sorted({c.key for c in planned.plan.conflicts})) or "none")
            )
        if object_id is not None:
            conflicts = [c for c in conflicts if c.object_id == object_id]
            if not conflicts:
                raise InputError(
                    f"{object_id} is not in conflict with {', '.join(keys or ['any desired object'])}"
                )
        by_key: dict[str, list[str]] = {}
        for c in conflicts:
            by_key.setdefault(c.key, []).append(c.object_id)
        ambiguous = {k: v for k, v in by_key.items() if len(set(v)) > 1}
        if ambiguous:
            k, ids = next(iter(sorted(ambiguous.items())))
            raise InputError(
                f"{len(set(ids))} existing objects collide with {k} ({', '.join(sorted(set(ids)))}); "
                f"choose one: entra-sync adopt {k} --object-id ID"
            )
        if not conflicts:
            typer.echo("Nothing to adopt: no desired object collides with an existing one.")
            return
        typer.echo("Adopt (take over) these existing objects:")
        for c in conflicts:
            typer.echo(f"  {c.kind} {c.object_id} as {c.key} (same {c.field} {c.value!r})")
        _confirm(auto_approve, "Take these objects over?")
        for c in conflicts:
            directory.adopt("group" if c.kind == "group" else "administrativeUnit", c.object_id, c.key)
    typer.echo(
        f"Adopted {len(conflicts)} object{'s' if len(conflicts) != 1 else ''}. Run `entra-sync plan` to see "
        "what brings them in line with the desired state."
    )


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
    app.command("apply")(apply)
    app.command("export")(export)
    app.command("adopt")(adopt)
