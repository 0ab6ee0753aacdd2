"""``entra-sync history``: what each run planned, changed and why it stopped; one run in full; the
history of one object or person; a run's HTML report; and pruning the history with its reports.

``list`` and ``show`` take ``--format json`` (``schemas/run-list.schema.json`` and
``schemas/run-result.schema.json``).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from entra_sync.cli.runs import ConfigArg
from entra_sync.config.load import load_config
from entra_sync.run_setup import prune_history, reports_folder
from entra_sync.runs.history import History, RunSummary
from reconciler.errors import InputError
from reconciler.settings import Config

__all__ = ["changes_cell", "history_app", "id_ranges", "reason_cell", "register"]

history_app = typer.Typer(
    help="What each run changed: list runs, show one, find an object, HTML report, prune.",
    no_args_is_help=True,
)


class ListFormat(enum.StrEnum):
    text = "text"
    json = "json"


FormatOpt = Annotated[ListFormat, typer.Option(
    "--format", "-f",
    help="text, or json (schemas/run-list.schema.json; for `show`, schemas/run-result.schema.json).",
)]  # fmt: skip


@contextmanager
def _history(config: Path | Config) -> Iterator[tuple[History, str | None]]:
    """The configuration's run history, and the console tenant its runs are recorded under when the
    history is the console's store (then only that tenant's runs are shown and pruned)."""
    from entra_sync.console.store import ConsoleStore

    cfg = config if isinstance(config, Config) else load_config(config)
    if cfg.history.url is None and not cfg.history.path.exists():
        raise InputError(f"{cfg.history.path}: no run history yet; run `entra-sync sync` first")
    with History(cfg.history.target) as h:
        console = ConsoleStore(cfg.history.target)
        try:
            tenant = console.tenant_for_config(cfg.file)
        finally:
            console.close()
        yield h, tenant


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _echo_json(doc: Any) -> None:
    typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))


def changes_cell(r: RunSummary) -> str:
    """What the run did: its results, or what it planned and did not apply, or that it had no plan."""
    results = [f"{v:,} {k}" for k, v in r.counts.items() if v]
    if results:
        applied = sum(v for v in r.counts.values())
        left = r.change_count - applied
        return ", ".join(results) + (f" ({left:,} not applied)" if left > 0 else "")
    if not r.planned:
        return "no plan"
    if r.change_count == 0:
        return "no changes"
    planned = f"{r.change_count:,} planned"
    return planned if r.dry_run else f"{planned}, none applied"


def reason_cell(r: RunSummary) -> str:
    """Why the run did not succeed, on one line (the full text is in `history show`)."""
    if not r.error:
        return ""
    lines = [line.strip() for line in r.error.splitlines() if line.strip()]
    more = f" (+{len(lines) - 1} more lines: `history show {r.run_id}`)" if len(lines) > 1 else ""
    return (lines[0] if lines else "") + more


@history_app.command("list")
def history_list(
    config: ConfigArg,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs, newest first.")] = 20,
    fmt: FormatOpt = ListFormat.text,
) -> None:
    """List the latest runs: outcome, what each applied or planned, and why it did not succeed."""
    with _history(config) as (h, tenant):
        runs = h.list_runs(limit, tenant=tenant)
        where = h.path
    if fmt is ListFormat.json:
        from entra_sync.runs.result_json import run_list

        _echo_json(run_list(runs, where))
        return
    if not runs:
        typer.echo("No runs recorded yet.")
        return
    rows = [[f"#{r.run_id}", _when(r.started_at), r.kind, r.status,
             f"{r.duration:.1f}s" if r.duration is not None else "-", changes_cell(r), reason_cell(r)]
            for r in runs]  # fmt: skip
    header = ["Run", "Started (UTC)", "Kind", "Status", "Took", "Changes", "Reason"]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [c.rjust(widths[i]) if i == 4 else c.ljust(widths[i]) for i, c in enumerate(row)]
        typer.echo("  ".join(cells).rstrip())


@history_app.command("show")
def history_show(
    config: ConfigArg,
    run_id: Annotated[int, typer.Argument(help="Run number.")],
    fmt: FormatOpt = ListFormat.text,
) -> None:
    """Show every change of one run with its outcome."""
    with _history(config) as (h, tenant):
        run = h.get_run(run_id, tenant=tenant)
    if fmt is ListFormat.json:
        from entra_sync.runs.result_json import run_result_from_detail

        _echo_json(run_result_from_detail(run))
        return
    s = run.summary
    typer.echo(f"Run #{s.run_id} ({s.kind}) {s.status}, started {_when(s.started_at)} UTC: {changes_cell(s)}")
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
    """When did this object (or this person's memberships) change, in which run, and how did it go?"""
    with _history(config) as (h, tenant):
        rows = h.changes_for_object(key, tenant=tenant)
    if not rows:
        typer.echo(f"No recorded change for {key}.")
    for row in rows:
        where = f"  {row.key}" if row.key != key else ""  # a person's membership: of which group or unit
        typer.echo(f"#{row.run_id:<5} {_when(row.run_started_at)} UTC  {row.action:<9} {row.kind:<26} "
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
    with _history(cfg) as (h, tenant):
        run = h.get_run(run_id, tenant=tenant)
    output.write_text(render_run_report(run, tz=cfg.schedule.timezone), encoding="utf-8")
    typer.echo(f"Report of run #{run_id} written to {output}")


def id_ranges(ids: list[int]) -> str:
    """``#1-#4, #7`` for [1, 2, 3, 4, 7]."""
    parts: list[str] = []
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        parts.append(f"#{ids[i]}" if i == j else f"#{ids[i]}-#{ids[j]}")
        i = j + 1
    return ", ".join(parts)


@history_app.command("prune")
def history_prune(
    config: ConfigArg,
    keep_runs: Annotated[int | None, typer.Option(
        "--keep-runs", min=1, help="Keep the newest N runs (default: [history] keep_runs).")] = None,
    keep_days: Annotated[int | None, typer.Option(
        "--keep-days", min=1,
        help="Keep the runs of the last N days (default: [history] keep_days).")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Say which runs and reports would be deleted; delete nothing.")] = False,
) -> None:
    """Delete old runs from the history, with their HTML reports (each limit applies on its own).

    Without --keep-runs/--keep-days the configuration's [history] keep_runs/keep_days apply (as
    after every run). A run still in progress is never deleted.
    """
    cfg = load_config(config)
    if keep_runs is None and keep_days is None:
        keep_runs, keep_days = cfg.history.keep_runs, cfg.history.keep_days
    if keep_runs is None and keep_days is None:
        raise InputError(f"{cfg.file}: nothing says what to keep; pass --keep-runs N or --keep-days N, or "
                         "set keep_runs or keep_days in [history]")
    limits = " and ".join([*([f"the newest {keep_runs}"] if keep_runs else []),
                           *([f"the last {keep_days} days"] if keep_days else [])])
    folder = reports_folder(cfg)
    with _history(cfg) as (h, tenant):
        total = h.count_runs(tenant=tenant)
        gone = h.prune(keep_runs, keep_days, tenant=tenant, dry_run=True)
        reports = sum(1 for i in gone if (folder / f"run-{i}.html").exists())
        if gone and not dry_run:
            gone = prune_history(h, cfg, keep_runs, keep_days, tenant=tenant)
    kept = total - len(gone)
    if not gone:
        typer.echo(f"Nothing to prune: all {total} runs in {cfg.history.target} are within {limits}.")
        return
    what = f"{len(gone)} run{'s' if len(gone) != 1 else ''} ({id_ranges(gone)}) and {reports} HTML report" + (
        "s" if reports != 1 else "")
    if dry_run:
        typer.echo(f"Would delete {what} from {cfg.history.target} and {folder}; {kept} runs ({limits}) "
                   "would be kept. Nothing was deleted (dry run).")
    else:
        typer.echo(f"Deleted {what}; {kept} runs kept ({limits}).")


def register(app: typer.Typer) -> None:
    app.add_typer(history_app, name="history")
