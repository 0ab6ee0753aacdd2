"""``entra-sync plan``, ``apply`` and ``export``: the commands that compare with and change Entra.

``plan`` never writes. ``apply PLAN.json`` applies exactly a saved plan and refuses a stale one;
``apply --desired FILE`` plans, shows, asks on a terminal, and applies. ``export`` writes the
managed Entra state as a desired-state document.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

import typer

from entra_sync.cli.output import (
    DETAIL_HELP,
    FORMAT_HELP,
    PlanFormat,
    pick_format,
    print_refusals,
    print_result,
    render_plan,
)
from entra_sync.cli.progress import ProgressPrinter
from entra_sync.cli.running import (
    EXIT_CODES_HELP,
    DocumentCapture,
    RecordedNote,
    confirm_on_terminal,
    print_warnings,
    render_config,
)
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
from entra_sync.pipeline import AdoptHooks, AdoptRequest, RunHooks, RunOutcome, RunRequest, make_plan
from entra_sync.run_setup import configured_pipeline
from entra_sync.steps import plan_school
from reconciler.document.load import load_desired, read_json_file
from reconciler.document.parse import desired_to_document, document_text
from reconciler.errors import InputError, SafetyError
from reconciler.model import DesiredState
from reconciler.plan.codec import load_plan_document
from reconciler.plan.model import Conflict, Plan
from reconciler.render.summary import context_from_desired

__all__ = ["PlanFormat", "print_refusals", "print_result", "register", "render_plan"]


DesiredOpt = Annotated[
    Path | None,
    typer.Option("--desired", "-d", help="Desired-state document (JSON), e.g. from `entra-sync render`."),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")]


SchoolOpt = Annotated[
    str | None,
    typer.Option("--school", help="Work on one school: only its objects are planned (its id, as in keys)."),
]
FormatOpt = Annotated[PlanFormat | None, typer.Option("--format", "-f", help=FORMAT_HELP)]
DetailOpt = Annotated[bool, typer.Option("--detail", help=DETAIL_HELP)]


def _require_desired(desired: Path | None) -> Path:
    if desired is None:
        raise InputError("give the desired state with --desired FILE (make one with `entra-sync render`)")
    return desired


def _desired_source(desired: Path | None, opts: GraphOptions) -> Callable[[], DesiredState]:
    """The desired state: the document given with --desired, else rendered from --config's source."""
    if desired is not None:
        chosen = desired
        return lambda: load_desired(chosen)
    cfg = opts.config
    if cfg is None or cfg.source is None:
        raise InputError(
            "give the desired state with --desired FILE, or a configuration with a [source] section "
            "with --config FILE (it renders the school data first)"
        )

    def rendered() -> DesiredState:
        generated = render_config(cfg)
        print_warnings(generated)
        return generated.desired

    return rendered


def plan(
    desired: DesiredOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Save the plan as JSON for `entra-sync apply PLAN`.")
    ] = None,
    fmt: FormatOpt = None,
    detail: DetailOpt = False,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode", help="Exit 0 when there are no changes, 2 when there are, 1 on error."
        ),
    ] = False,
    school: SchoolOpt = None,
    config: ConfigOpt = None,
    graph_url: GraphUrlOpt = None,
    tenant_id: TenantOpt = None,
    client_id: ClientOpt = None,
    cloud: CloudOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Show what would change in Entra to match the desired state. Never writes to Entra.

    The desired state is --desired FILE, or, with --config and no --desired, rendered from the
    configured school data first (render and plan in one).
    """
    opts = GraphOptions.build(config, graph_url, tenant_id, client_id, cloud)
    state = _desired_source(desired, opts)()
    chosen = pick_format(fmt, detail)
    progress = ProgressPrinter(enabled=not quiet)
    with open_directory(opts) as directory:
        planned = make_plan(state, directory, limits_from(opts.config), progress, school=school)
    progress.close()
    typer.echo(render_plan(planned.plan, chosen, context_from_desired(state)), nl=False)
    if out is not None:
        out.write_text(planned.plan.to_json(), encoding="utf-8")
        typer.echo(f"\nPlan saved to {out}; apply it with `entra-sync apply {out}`.", err=True)
    if chosen is not PlanFormat.json:
        print_refusals(planned.plan)
    if detailed_exitcode and not planned.plan.empty:
        raise typer.Exit(2)


def show_plan(
    plan_file: Annotated[Path, typer.Argument(help="A plan saved by `plan --out` or `sync --out`.")],
    fmt: FormatOpt = None,
    detail: DetailOpt = False,
) -> None:
    """Print a saved plan in any format (no Graph access)."""
    saved = load_plan_document(read_json_file(plan_file), file=str(plan_file))
    chosen = pick_format(fmt, detail)
    typer.echo(render_plan(saved, chosen), nl=False)
    if chosen in (PlanFormat.text, PlanFormat.brief):
        print_refusals(saved)


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
    fmt: FormatOpt = None,
    detail: DetailOpt = False,
    school: SchoolOpt = None,
    config: ConfigOpt = None,
    graph_url: GraphUrlOpt = None,
    tenant_id: TenantOpt = None,
    client_id: ClientOpt = None,
    cloud: CloudOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Change Entra to match: a saved plan (refused when stale), or a desired state (plan, show, confirm).

    With --config the run takes the run lock (refused while another run, e.g. a scheduled one,
    holds it) and is recorded in the run history with its HTML report. With --format json it
    prints the run-result document (schemas/run-result.schema.json).
    """
    if (plan_file is None) == (desired is None):
        raise InputError("give either a saved PLAN file or --desired FILE, not both or neither")
    opts = GraphOptions.build(config, graph_url, tenant_id, client_id, cloud)
    chosen = pick_format(fmt, detail)
    json_out = chosen is PlanFormat.json
    progress = ProgressPrinter(enabled=not quiet)
    note = RecordedNote(opts.config.history.target if opts.config is not None else None)
    capture = DocumentCapture()
    limits = limits_from(opts.config)
    summary = config_summary(opts.config) if opts.config is not None else None
    if plan_file is not None:
        saved_file = plan_file

        def load_saved() -> Plan:
            saved = load_plan_document(read_json_file(saved_file), file=str(saved_file))
            made_for = plan_school(saved)
            if school is not None and made_for != school:
                raise InputError(f"{saved_file} was planned for {made_for or 'every school'}, not {school}")
            return saved

        request = RunRequest("apply (saved plan)", limits=limits, force=force, config_summary=summary,
                             saved_plan=load_saved)
        hooks = RunHooks(progress=progress, recorded=note)
    else:
        desired_file = desired
        assert desired_file is not None
        state = load_desired(desired_file)

        def show(plan: Plan) -> None:
            progress.close()
            if not json_out:
                typer.echo(render_plan(plan, chosen, context_from_desired(state)), nl=False)

        request = RunRequest(
            "apply", limits=limits, force=force, config_summary=summary, school=school,
            desired=lambda: state,
        )  # fmt: skip
        hooks = RunHooks(
            progress=progress, show=show, recorded=note,
            confirm=confirm_on_terminal(auto_approve, "Apply these changes to Entra?"),
        )  # fmt: skip
    try:
        outcome = _run(opts, request, hooks, progress, note, capture)
    finally:
        if json_out:
            capture.echo()
    if outcome.result is None:
        if plan_file is not None:
            typer.echo("No changes to apply.", err=json_out)
        return
    print_result(outcome.result, summary_to_stderr=json_out)
    note.echo()
    if not outcome.result.ok:
        raise typer.Exit(1)


def _run(
    opts: GraphOptions, request: RunRequest, hooks: RunHooks, progress: ProgressPrinter, note: RecordedNote,
    capture: DocumentCapture,
) -> RunOutcome:
    """Run through the pipeline; a refused or declined plan ends the command (after the note)."""
    try:
        with configured_pipeline(opts, observers=[capture]) as pipeline:
            outcome = pipeline.run(request, hooks)
    except BaseException:
        progress.close()
        note.after_error()
        raise
    progress.close()
    if outcome.refused:
        note.after_error()
        raise SafetyError(outcome.refused)
    if outcome.declined:
        note.echo()
        raise typer.Abort()
    if outcome.result is None:
        note.echo()
    return outcome


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
    text = document_text(desired_to_document(state))
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
    apply_it: Annotated[
        bool, typer.Option("--apply", help="Stamp the objects (without it: a dry run that only lists them).")
    ] = False,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Do not ask for confirmation.")
    ] = False,
    school: SchoolOpt = None,
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

    A dry run unless --apply. One existing object becomes at most one desired object: when it
    matches several (the same "Year 7" name in two schools), the ambiguity is reported and nothing
    is stamped. With --config the run is recorded in the history.
    """
    opts = GraphOptions.build(config, graph_url, tenant_id, client_id, cloud)
    source = _desired_source(desired, opts)
    progress = ProgressPrinter(enabled=not quiet)
    note = RecordedNote(opts.config.history.target if opts.config is not None else None)
    verb = "Adopt (take over)" if apply_it else "Would adopt (dry run; --apply stamps them)"

    def show(conflicts: Sequence[Conflict]) -> None:
        progress.close()
        typer.echo(f"{verb} these existing objects:")
        for c in conflicts:
            typer.echo(f"  {c.kind} {c.object_id} as {c.key} (same {c.field} {c.value!r})")

    request = AdoptRequest(
        desired=source, keys=tuple(keys or ()), object_id=object_id, apply=apply_it, school=school,
        limits=limits_from(opts.config),
        config_summary=config_summary(opts.config) if opts.config is not None else None,
    )  # fmt: skip
    hooks = AdoptHooks(
        progress=progress, show=show, recorded=note,
        confirm=confirm_on_terminal(auto_approve, "Take these objects over?"),
    )  # fmt: skip
    try:
        with configured_pipeline(opts) as pipeline:
            outcome = pipeline.adopt(request, hooks)
    except BaseException:
        progress.close()
        note.after_error()
        raise
    progress.close()
    note.echo()
    if outcome.declined:
        raise typer.Abort()
    if outcome.dry_run:
        if not outcome.adopted:
            typer.echo("Nothing to adopt: no desired object collides with an existing one.")
        else:
            typer.echo("Dry run: nothing was stamped. Run again with --apply to take them over.")
        return
    for r in outcome.failed:
        typer.echo(f"  {r.status}: adopt {r.kind} {r.key} ({r.object_id}): {r.message}", err=True)
    if not outcome.adopted and not outcome.failed:
        typer.echo("Nothing to adopt: no desired object collides with an existing one.")
        return
    n = len(outcome.adopted)
    typer.echo(f"Adopted {n} object{'s' if n != 1 else ''}" + (
        f" ({', '.join(c.key for c in outcome.adopted)})" if outcome.failed else "") + ".")
    if outcome.failed:
        typer.echo(f"{len(outcome.failed)} not adopted (see above); run adopt again for them.", err=True)
        raise typer.Exit(1)
    typer.echo("Run `entra-sync plan` to see what brings them in line with the desired state.")


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
    app.command("show")(show_plan)
    app.command("apply", epilog=EXIT_CODES_HELP)(apply)
    app.command("export")(export)
    app.command("adopt")(adopt)
