"""``entra-sync render``, ``sync``, ``schedule``, ``history`` and ``demo``: school data to Entra.

``render`` turns the configured school data into a desired-state document; ``sync`` is the whole
job (render, plan, safety check, apply, record); ``schedule`` runs ``sync`` at the configured
times; ``history`` shows what each run changed; ``demo`` runs the whole product against a local
emulated tenant with no Azure account.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from entra_sync.cli.graph import PlanFormat, print_refusals, print_result, render_plan
from entra_sync.cli.progress import ProgressPrinter
from entra_sync.cli.wiring import (
    DEMO_CLIENT_ID,
    EMULATOR_SCHEME,
    ClientOpt,
    CloudOpt,
    GraphOptions,
    GraphUrlOpt,
    TenantOpt,
    limits_from,
    open_directory,
)
from entra_sync.config.load import config_summary, load_config, require_source
from entra_sync.pipeline import SyncOutcome, sync
from entra_sync.runs.history import History
from reconciler.document.load import validate_document
from reconciler.document.parse import desired_to_document
from reconciler.errors import DocumentError, EntraSyncError, InputError, SafetyError
from reconciler.generate.generator import Generated, generate
from reconciler.settings import Config

__all__ = ["register", "render_config", "run_sync"]

log = logging.getLogger(__name__)

ConfigArg = Annotated[
    Path,
    typer.Option("--config", "-c", envvar="ENTRA_SYNC_CONFIG", show_envvar=True,
                 help="Configuration file (TOML); see entra-sync.example.toml."),
]  # fmt: skip
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")]


def render_config(config: Config) -> Generated:
    """Read the configured source and generate the desired state; the result always validates."""
    from providers.sources import SourceOptions, read_source

    source = require_source(config)
    options = SourceOptions(
        academic_year=source.academic_year,
        ref_field=source.user_reference,
        upn_domain=source.upn_domain,
        skip_people_without_ref=source.skip_people_without_reference,
    )
    data = read_source(source.kind, source.path, options=options)
    generated = generate(data, config, generated_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    findings = validate_document(desired_to_document(generated.desired))
    if findings:  # a generator bug or a template that makes an illegal name: never apply it
        raise DocumentError(f"desired state rendered from {source.path}", findings)
    return generated


def _print_warnings(generated: Generated) -> None:
    for w in generated.warnings:
        where = w.key or w.ref
        named = bool(where) and str(where) in w.message
        text = w.message if named or not where else f"{where}: {w.message}"
        typer.echo(f"warning: {text}", err=True)


def render(
    config: ConfigArg,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the desired state here instead of stdout.")
    ] = None,
) -> None:
    """Turn the configured school data into a desired-state document (no Graph access)."""
    cfg = load_config(config)
    generated = render_config(cfg)
    _print_warnings(generated)
    text = json.dumps(desired_to_document(generated.desired), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    d = generated.desired
    typer.echo(
        f"Rendered {len(d.administrative_units)} administrative units, {len(d.groups)} groups and "
        f"{len(d.teams)} Teams for {len(d.people())} people to {output}",
        err=True,
    )


def run_sync(
    cfg: Config,
    opts: GraphOptions,
    *,
    dry_run: bool = False,
    force: bool = False,
    quiet: bool = False,
    fmt: PlanFormat = PlanFormat.text,
    kind: str = "sync",
) -> SyncOutcome:
    """One whole run, printed: render, plan, safety check, apply, record in the history."""
    generated = render_config(cfg)
    _print_warnings(generated)
    progress = ProgressPrinter(enabled=not quiet)
    history = History(cfg.history.path)
    try:
        with open_directory(opts) as directory:
            try:
                outcome = sync(
                    generated.desired, directory, limits_from(cfg), force=force, dry_run=dry_run,
                    history=history, config_summary=config_summary(cfg), progress=progress, kind=kind,
                )  # fmt: skip
            finally:
                progress.close()
    except EntraSyncError:
        latest = history.list_runs(1)
        if latest:  # the run was recorded (refused, or failed): report it too
            _write_report(cfg, history, latest[0].run_id)
        raise
    else:
        if outcome.run_id is not None:
            _write_report(cfg, history, outcome.run_id)
    finally:
        history.close()
    typer.echo(render_plan(outcome.plan, fmt), nl=False)
    if outcome.refused:  # the plan is shown first, then the refusal
        raise SafetyError(outcome.refused)
    if dry_run:
        print_refusals(outcome.plan)
    elif (
        force and outcome.result is not None and any(w.code == "safetyRefusal" for w in outcome.plan.warnings)
    ):
        typer.echo("Safety limits overridden with --force for this run.", err=True)
    if outcome.result is not None:
        print_result(outcome.result, summary_to_stderr=fmt is PlanFormat.json)
    elif dry_run:
        typer.echo("Dry run: nothing was changed in Entra.", err=fmt is PlanFormat.json)
    if outcome.run_id is not None:
        typer.echo(f"Recorded as run {outcome.run_id} in {cfg.history.path}.", err=True)
    return outcome


def _write_report(cfg: Config, history: History, run_id: int) -> Path:
    """Write the run's HTML report into ``reports/`` beside the history; say where."""
    from entra_sync.runs.report import render_run_report

    path = cfg.history.path.parent / "reports" / f"run-{run_id}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_run_report(history.get_run(run_id), tz=cfg.schedule.timezone), encoding="utf-8")
    typer.echo(f"HTML report of run {run_id}: {path}", err=True)
    return path


def sync_command(
    config: ConfigArg,
    graph_url: GraphUrlOpt = None,
    tenant_id: TenantOpt = None,
    client_id: ClientOpt = None,
    cloud: CloudOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Stop after the plan; change nothing.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Apply even when a safety limit refuses the plan (this run only).")
    ] = False,
    fmt: Annotated[
        PlanFormat, typer.Option("--format", "-f", help="How to print the plan.")
    ] = PlanFormat.text,
    quiet: QuietOpt = False,
) -> None:
    """The whole job: render the school data, plan, check safety, apply, and record the run."""
    cfg = load_config(config)
    opts = GraphOptions(
        config=cfg, graph_url=graph_url, tenant_id=tenant_id, client_id=client_id, cloud=cloud
    )
    from entra_sync.runs.lock import RunLock

    with RunLock(_lock_path(cfg)):  # one run at a time, with the scheduler and cron alike
        outcome = run_sync(cfg, opts, dry_run=dry_run, force=force, quiet=quiet, fmt=fmt)
    if not outcome.ok:
        raise typer.Exit(1)


def _lock_path(cfg: Config) -> Path:
    return cfg.history.path.with_suffix(".lock")


def schedule_command(
    config: ConfigArg,
    graph_url: GraphUrlOpt = None,
    tenant_id: TenantOpt = None,
    client_id: ClientOpt = None,
    cloud: CloudOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Let every run override the safety limits.")] = False,
) -> None:
    """Run `sync` at the configured times (default 04:00, 08:00, 12:00 Europe/London) until stopped.

    One run at a time (a lock file beside the history); SIGTERM or Ctrl-C stops cleanly after the
    current run.
    """
    from entra_sync.runs.lock import RunLock
    from entra_sync.schedule import Scheduler, parse_timezone
    from reconciler.clock import SystemClock

    cfg = load_config(config)
    tz = parse_timezone(cfg.schedule.timezone)
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        log.warning("signal %d received: stopping after the current run", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    def once() -> None:
        fresh = load_config(config)  # each run picks up configuration changes
        opts = GraphOptions(
            config=fresh, graph_url=graph_url, tenant_id=tenant_id, client_id=client_id, cloud=cloud
        )
        run_sync(fresh, opts, force=force, quiet=True, kind="scheduled sync")

    lock = RunLock(_lock_path(cfg))
    scheduler = Scheduler(once, cfg.schedule.local_times(), tz, SystemClock(), stop, lock=lock)
    typer.echo(
        f"Scheduler started: runs at {', '.join(cfg.schedule.times)} ({cfg.schedule.timezone}); "
        f"next at {scheduler.next_time().isoformat(timespec='minutes')}. Stop with Ctrl-C or SIGTERM.",
        err=True,
    )
    scheduler.run()


history_app = typer.Typer(help="What each run changed: list runs, show one, find an object, HTML report.")


def _history(config: Path | Config) -> History:
    cfg = config if isinstance(config, Config) else load_config(config)
    if not cfg.history.path.exists():
        raise InputError(f"{cfg.history.path}: no run history yet; run `entra-sync sync` first")
    return History(cfg.history.path)


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@history_app.command("list")
def history_list(
    config: ConfigArg,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs, newest first.")] = 20,
) -> None:
    """List the latest runs with their outcome."""
    with _history(config) as h:
        runs = h.list_runs(limit)
    if not runs:
        typer.echo("No runs recorded yet.")
    for r in runs:
        took = f"{r.duration:.1f}s" if r.duration is not None else "-"
        counts = ", ".join(f"{v} {k}" for k, v in sorted((r.counts or {}).items()) if v) or "no changes"
        typer.echo(f"#{r.run_id:<5} {_when(r.started_at)}  {r.kind:<20} {r.status:<10} {took:>7}  {counts}")


@history_app.command("show")
def history_show(config: ConfigArg, run_id: Annotated[int, typer.Argument(help="Run number.")]) -> None:
    """Show every change of one run with its outcome."""
    with _history(config) as h:
        run = h.get_run(run_id)
    s = run.summary
    typer.echo(f"Run #{s.run_id} ({s.kind}) {s.status}, started {_when(s.started_at)}")
    if s.error:
        typer.echo(f"error: {s.error}")
    for c in run.changes:
        status = c.result.status if c.result is not None else "planned"
        typer.echo(f"  {status:<8} {c.change.action:<9} {c.change.kind:<26} {c.change.key}")
        if c.result is not None and c.result.message and status != "done":
            typer.echo(f"           {c.result.message}")


@history_app.command("object")
def history_object(
    config: ConfigArg,
    key: Annotated[str, typer.Argument(help="Object key (class:SCH1:2026-27:7A-Ma1) or a person's UPN.")],
) -> None:
    """When did this object change, in which run, and how did it go?"""
    with _history(config) as h:
        rows = h.changes_for_object(key)
    if not rows:
        typer.echo(f"No recorded change for {key}.")
    for row in rows:
        where = f"  {row.key}" if row.key != key else ""  # a person's membership: of which group or unit
        typer.echo(f"#{row.run_id:<5} {_when(row.run_started_at)}  {row.action:<9} {row.kind:<26} "
                   f"{row.status or 'planned'}{where}")  # fmt: skip


@history_app.command("report")
def history_report(
    config: ConfigArg,
    run_id: Annotated[int, typer.Argument(help="Run number.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")] = Path("report.html"),
) -> None:
    """Write a self-contained HTML report of one run."""
    from entra_sync.runs.report import render_run_report

    cfg = load_config(config)
    with _history(cfg) as h:
        run = h.get_run(run_id)
    output.write_text(render_run_report(run, tz=cfg.schedule.timezone), encoding="utf-8")
    typer.echo(f"Report of run #{run_id} written to {output}")


DEMO_CONFIG = """\
# Demo configuration written by `entra-sync demo`: the bundled example Realsmart export, synced
# to a local emulated tenant (tenant.json). Edit the export or this file and run
# `entra-sync demo` (or `entra-sync sync --config {config}`) again to see the plan change.

[tenant]
tenant_id = "contoso.onmicrosoft.com"
client_id = "{client_id}"
graph_url = "emulator:tenant.json"

[sync]
groups = true
administrative_units = true
teams = true
teams_for = ["classes"]

[source]
kind = "realsmart"
path = "realsmart-export.json"

[history]
path = "history.sqlite"
"""


def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its tenant, configuration and history.")
    ] = Path("entra-sync-demo"),
    fmt: Annotated[
        PlanFormat,
        typer.Option("--format", "-f", help="How to print the plan (brief: member lists as counts)."),
    ] = PlanFormat.brief,
    quiet: QuietOpt = False,
) -> None:
    """Run the whole product against a local emulated tenant: no Azure account needed.

    The first run creates the trust's administrative units, groups and Teams from the bundled
    example Realsmart export; a second run reports no changes.
    """
    import shutil

    from providers.emulator import Tenant
    from providers.emulator.seed import SeedUser, seed_users
    from providers.sources import example_export_path

    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "entra-sync.toml"
    export_path = directory / "realsmart-export.json"
    tenant_path = directory / "tenant.json"
    if not export_path.exists():
        shutil.copyfile(example_export_path(), export_path)
    if not config_path.exists():
        config_path.write_text(
            DEMO_CONFIG.format(config=config_path, client_id=DEMO_CLIENT_ID), encoding="utf-8"
        )
    cfg = load_config(config_path)
    if not tenant_path.exists():
        # the school's accounts exist before the sync runs (the product matches users, it does
        # not create them): seed one for every person in the export
        generated = render_config(cfg)
        tenant = Tenant()
        added, _ = seed_users(tenant, [SeedUser(ref) for ref in sorted(generated.desired.people())])
        tenant.save(tenant_path)
        typer.echo(f"Created the emulated tenant {tenant_path} with {added} user accounts.", err=True)
    opts = GraphOptions(config=cfg, graph_url=EMULATOR_SCHEME + str(tenant_path.resolve()))
    outcome = run_sync(cfg, opts, quiet=quiet, fmt=fmt, kind="demo sync")
    if not outcome.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("render")(render)
    app.command("sync")(sync_command)
    app.command("schedule")(schedule_command)
    app.command("demo")(demo)
    app.add_typer(history_app, name="history")
