"""``entra-sync render``, ``sync``, ``schedule`` and ``demo``: school data to Entra.

``render`` turns the configured school data into a desired-state document; ``sync`` is the whole
job (render, plan, safety check, apply, record); ``schedule`` runs ``sync`` at the configured
times; ``demo`` runs the whole product against a local emulated tenant with no Azure account.
``history`` is :mod:`entra_sync.cli.history`.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from entra_sync.cli.output import DETAIL_HELP, FORMAT_HELP, PlanFormat, pick_format
from entra_sync.cli.running import (
    EXIT_CODES_HELP,
    SyncOptions,
    ask_on_terminal,
    print_warnings,
    render_config,
    render_document,
    run_sync,
)
from entra_sync.cli.wiring import (
    DEMO_CLIENT_ID,
    EMULATOR_SCHEME,
    ClientOpt,
    CloudOpt,
    GraphOptions,
    GraphUrlOpt,
    TenantOpt,
)
from entra_sync.config.load import load_config
from entra_sync.pipeline import RunOutcome
from entra_sync.run_setup import reports_folder
from reconciler.document.parse import document_text
from reconciler.settings import Config

__all__ = ["register", "render_config", "run_sync"]

log = logging.getLogger(__name__)

ConfigArg = Annotated[
    Path,
    typer.Option("--config", "-c", envvar="ENTRA_SYNC_CONFIG", show_envvar=True,
                 help="Configuration file (TOML); see entra-sync.example.toml."),
]  # fmt: skip
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")]


def render(
    config: ConfigArg,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the desired state here instead of stdout.")
    ] = None,
) -> None:
    """Turn the configured school data into a desired-state document (no Graph access)."""
    from providers.sources import gc_paused

    cfg = load_config(config)
    with gc_paused():  # over the write too: the full collection it would start walks the whole render
        generated, document = render_document(cfg)
        text = document_text(document)
    print_warnings(generated)
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


SchoolOpt = Annotated[
    str | None,
    typer.Option("--school", help="Work on one school: only its objects are planned (its id, as in keys)."),
]


def sync_command(
    config: ConfigArg,
    graph_url: GraphUrlOpt = None,
    tenant_id: TenantOpt = None,
    client_id: ClientOpt = None,
    cloud: CloudOpt = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Stop after the plan; change nothing (exit 3 if a safety limit would refuse it)."
    )] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Apply even when a safety limit refuses the plan (this run only).")
    ] = False,
    fmt: Annotated[PlanFormat | None, typer.Option("--format", "-f", help=FORMAT_HELP)] = None,
    detail: Annotated[bool, typer.Option("--detail", help=DETAIL_HELP)] = False,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o",
        help="Save the plan as JSON and stop (a dry run); apply it later with `entra-sync apply PLAN`.",
    )] = None,
    detailed_exitcode: Annotated[bool, typer.Option(
        "--detailed-exitcode",
        help="Exit 0 when there are no changes, 2 when there are, 3 when refused, 1 on error.",
    )] = False,
    school: SchoolOpt = None,
    auto_approve: Annotated[bool, typer.Option(
        "--auto-approve", help="Do not ask before changing Entra (only asked on a terminal)."
    )] = False,
    quiet: QuietOpt = False,
) -> None:
    """The whole job: render the school data, plan, check safety, apply, and record the run.

    On a terminal it asks before changing Entra (--auto-approve skips the question; off a terminal,
    as under cron or the scheduler, it never asks). With --format json it prints the run-result
    document (schemas/run-result.schema.json) instead of the plan.

    One run at a time: the run lock beside the history refuses a second run (a scheduled one, an
    `apply --config`) while one is in progress. Each run is recorded in the history with its HTML
    report, also when it stops early (a missing export, no credentials, a refused sign-in).
    """
    cfg = load_config(config)
    opts = GraphOptions(
        config=cfg, graph_url=graph_url, tenant_id=tenant_id, client_id=client_id, cloud=cloud
    )
    run = SyncOptions(
        dry_run=dry_run, force=force, quiet=quiet, fmt=pick_format(fmt, detail), out=out,
        detailed_exitcode=detailed_exitcode, school=school,
        confirm=ask_on_terminal(auto_approve, "Apply these changes to Entra?"),
    )  # fmt: skip
    outcome = run_sync(cfg, opts, run)
    if not outcome.ok:
        raise typer.Exit(1)


def schedule_command(
    config: ConfigArg,
    graph_url: GraphUrlOpt = None,
    tenant_id: TenantOpt = None,
    client_id: ClientOpt = None,
    cloud: CloudOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Let every run override the safety limits.")] = False,
) -> None:
    """Run `sync` at the configured times (default 04:00, 08:00, 12:00 Europe/London) until stopped.

    One run at a time (a lock file beside the history: a slot whose lock is held is skipped); each
    slot runs at most once, whatever the wall clock does. After a run that deferred Teams (their
    groups too new for Graph), one catch-up run follows `[schedule] catch_up_minutes` later
    (default 20; 0: none). SIGTERM or Ctrl-C stops cleanly after the current run.
    """
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

    def once(kind: str = "scheduled sync") -> int:
        """One run (it takes the run lock itself); the number of changes it deferred."""
        fresh = load_config(config)  # each run picks up configuration changes
        opts = GraphOptions(
            config=fresh, graph_url=graph_url, tenant_id=tenant_id, client_id=client_id, cloud=cloud
        )
        return run_sync(fresh, opts, SyncOptions(force=force, quiet=True, kind=kind)).deferred

    scheduler = Scheduler(
        once, cfg.schedule.local_times(), tz, SystemClock(), stop,
        catch_up_minutes=cfg.schedule.catch_up_minutes, run_catch_up=lambda: once("catch-up sync"),
    )  # fmt: skip
    typer.echo(
        f"Scheduler started: runs at {', '.join(cfg.schedule.times)} ({cfg.schedule.timezone}); "
        f"next at {scheduler.next_time().isoformat(timespec='minutes')}. Stop with Ctrl-C or SIGTERM.",
        err=True,
    )
    scheduler.run()


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


DEMO_NEXT = """
What to try next:
  - edit {dir}/realsmart-export.json (move a pupil to another class) and run `entra-sync demo` again
  - `entra-sync history list --config {config}`: every run, what it planned and how it ended
  - the web console: `entra-sync console add-tenant demo --config {config}`, then
    `entra-sync console add-user admin --tenant demo --role admin`, then `entra-sync console`
    (docs/console.md)
  - the HTML report of this run: {report}
"""


def note_report(cfg: Config, outcome: RunOutcome) -> str:
    if outcome.run_id is None:
        return str(reports_folder(cfg))
    return str(reports_folder(cfg) / f"run-{outcome.run_id}.html")


def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its tenant, configuration and history.")
    ] = Path("entra-sync-demo"),
    fmt: Annotated[PlanFormat | None, typer.Option("--format", "-f", help=FORMAT_HELP)] = None,
    detail: Annotated[bool, typer.Option("--detail", help=DETAIL_HELP)] = False,
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
    outcome = run_sync(cfg, opts, SyncOptions(quiet=quiet, fmt=pick_format(fmt, detail), kind="demo sync"))
    if not outcome.ok:
        raise typer.Exit(1)
    next_steps = DEMO_NEXT.format(dir=directory, config=config_path, report=note_report(cfg, outcome))
    typer.echo(next_steps, err=True)


def register(app: typer.Typer) -> None:
    app.command("render")(render)
    app.command("sync", epilog=EXIT_CODES_HELP)(sync_command)
    app.command("schedule")(schedule_command)
    app.command("demo")(demo)
