"""The CLI's side of the one run pipeline: the run store, run lock and HTML report a configuration
names; confirmation on a terminal; the note saying where a run was recorded; and ``run_sync``,
the whole printed job shared by ``sync``, ``schedule`` and ``demo``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import typer

from entra_sync.cli.output import PlanFormat, print_refusals, print_result, render_plan
from entra_sync.cli.progress import ProgressPrinter
from entra_sync.cli.wiring import GraphOptions, limits_from, open_directory
from entra_sync.config.load import config_summary, require_source
from entra_sync.pipeline import RunHooks, RunOutcome, RunPipeline, RunRequest, html_report_writer
from entra_sync.runs.history import History
from entra_sync.runs.lock import RunLock
from reconciler.document.load import validate_document
from reconciler.document.parse import desired_to_document
from reconciler.errors import DocumentError, InputError, SafetyError
from reconciler.generate.generator import Generated, generate
from reconciler.model import DesiredState
from reconciler.plan.model import Plan
from reconciler.settings import Config

__all__ = [
    "AFTER_ERROR",
    "EXIT_CODES_HELP",
    "RecordedNote",
    "cli_pipeline",
    "confirm_on_terminal",
    "lock_path",
    "print_warnings",
    "render_config",
    "run_sync",
]

#: the exit codes of the commands that change Entra, for their --help
EXIT_CODES_HELP = (
    "Exit codes: 0 done (or nothing to do); 1 an error, or some changes failed; 3 a safety limit "
    "refused the plan (with --dry-run: would refuse it), nothing was written; 130 interrupted."
)


def lock_path(cfg: Config) -> Path:
    """The run lock beside the run history: one run at a time per history, across processes."""
    return cfg.history.path.with_suffix(".lock")


@contextmanager
def cli_pipeline(opts: GraphOptions) -> Iterator[RunPipeline]:
    """The run pipeline for these options: with a configuration, runs are locked, recorded in its
    history and reported beside it; without one, they are neither."""
    cfg = opts.config
    if cfg is None:
        yield RunPipeline(lambda: open_directory(opts))
        return
    with History(cfg.history.path) as store:
        yield RunPipeline(
            lambda: open_directory(opts),
            store=store,
            lock=RunLock(lock_path(cfg)),
            report=html_report_writer(cfg.history.path.parent / "reports", cfg.schedule.timezone),
        )


class RecordedNote:
    """Remembers where a run was recorded (the pipeline's ``recorded`` callback) and says so once."""

    def __init__(self, history: Path | None) -> None:
        self._history = history
        self.run_id: int | None = None
        self.report: Path | None = None

    def __call__(self, run_id: int, report: Path | None) -> None:
        self.run_id, self.report = run_id, report

    def lines(self) -> list[str]:
        if self.run_id is None:
            return []
        report = [f"HTML report of run {self.run_id}: {self.report}"] if self.report is not None else []
        return [*report, f"Recorded as run {self.run_id} in {self._history}."]

    def echo(self) -> None:
        for line in self.lines():
            typer.echo(line, err=True)
        self.run_id = None

    def after_error(self) -> None:
        """The run is ending with an error: say where it was recorded after the error's message."""
        AFTER_ERROR.extend(self.lines())
        self.run_id = None


AFTER_ERROR: list[str] = []
"""Lines ``main`` prints after a command's error message (then clears): the error comes first."""


def confirm_on_terminal(auto_approve: bool, question: str) -> Callable[[object], bool] | None:
    """Ask on a terminal; refuse off a terminal unless ``--auto-approve`` (then: no question)."""
    if auto_approve:
        return None

    def confirm(_what: object) -> bool:
        if not sys.stdin.isatty():
            raise InputError(
                "not changing Entra without confirmation: stdin is not a terminal; review first and pass "
                "--auto-approve (for schedules), or apply a saved plan file"
            )
        return bool(typer.confirm(question, default=False))

    return confirm


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


def print_warnings(generated: Generated) -> None:
    for w in generated.warnings:
        where = w.key or w.ref
        named = bool(where) and str(where) in w.message
        text = w.message if named or not where else f"{where}: {w.message}"
        typer.echo(f"warning: {text}", err=True)


def run_sync(
    cfg: Config,
    opts: GraphOptions,
    *,
    dry_run: bool = False,
    force: bool = False,
    quiet: bool = False,
    fmt: PlanFormat = PlanFormat.text,
    kind: str = "sync",
) -> RunOutcome:
    """One whole run, printed: render, plan, show, safety check, apply, record, report.

    Raises :class:`SafetyError` for a refused plan; exits 3 for a dry run that would be refused.
    """
    progress = ProgressPrinter(enabled=not quiet)
    note = RecordedNote(cfg.history.path)

    def desired() -> DesiredState:
        generated = render_config(cfg)
        print_warnings(generated)
        return generated.desired

    def show(plan: Plan) -> None:
        progress.close()
        typer.echo(render_plan(plan, fmt), nl=False)

    request = RunRequest(
        kind, desired=desired, limits=limits_from(cfg), force=force, dry_run=dry_run,
        config_summary=config_summary(cfg),
    )  # fmt: skip
    try:
        with cli_pipeline(opts) as pipeline:
            outcome = pipeline.run(request, RunHooks(progress=progress, show=show, recorded=note))
    except BaseException:
        progress.close()
        note.after_error()
        raise
    progress.close()
    if outcome.refused and not dry_run:  # the plan was shown first, then the refusal
        note.after_error()
        raise SafetyError(outcome.refused)
    if dry_run:
        print_refusals(outcome.plan)
    elif outcome.forced and outcome.result is not None:
        typer.echo("Safety limits overridden with --force for this run.", err=True)
    if outcome.result is not None:
        print_result(outcome.result, summary_to_stderr=fmt is PlanFormat.json)
    elif dry_run:
        typer.echo("Dry run: nothing was changed in Entra.", err=fmt is PlanFormat.json)
    note.echo()
    if outcome.refused:  # a dry run that a real run would refuse: a CI gate can tell
        raise typer.Exit(3)
    return outcome
