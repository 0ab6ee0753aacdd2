"""The CLI's side of the one run pipeline (built by :func:`entra_sync.run_setup.configured_pipeline`):
confirmation on a terminal; the note saying where a run was recorded; and ``run_sync``, the whole
printed job shared by ``sync``, ``schedule`` and ``demo``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from entra_sync.cli.output import PlanFormat, print_refusals, print_result, render_plan
from entra_sync.cli.progress import ProgressPrinter
from entra_sync.cli.wiring import GraphOptions, limits_from
from entra_sync.config.load import config_summary, require_source
from entra_sync.pipeline import RunHooks, RunOutcome, RunRequest
from entra_sync.run_setup import configured_pipeline
from reconciler.document.load import validate_document
from reconciler.document.parse import desired_to_document
from reconciler.errors import DocumentError, InputError, SafetyError
from reconciler.generate.generator import Generated, generate
from reconciler.model import DesiredState
from reconciler.plan.model import Plan
from reconciler.render.summary import SummaryContext, context_from_desired
from reconciler.settings import Config

log = logging.getLogger(__name__)

__all__ = [
    "AFTER_ERROR",
    "EXIT_CODES_HELP",
    "DocumentCapture",
    "RecordedNote",
    "SyncOptions",
    "ask_on_terminal",
    "confirm_on_terminal",
    "print_warnings",
    "render_config",
    "render_document",
    "run_sync",
]

#: the exit codes of the commands that change Entra, for their --help
EXIT_CODES_HELP = (
    "Exit codes: 0 done (or nothing to do); 1 an error, or some changes failed; 3 a safety limit "
    "refused the plan (with --dry-run: would refuse it), nothing was written; 130 interrupted; "
    "with --detailed-exitcode, 2: the plan has changes."
)


class DocumentCapture:
    """An observer that keeps the last run-result document, and prints it as JSON on request."""

    def __init__(self) -> None:
        self.document: Mapping[str, Any] | None = None

    def __call__(self, doc: Mapping[str, Any]) -> None:
        self.document = doc

    def echo(self) -> None:
        if self.document is not None:
            typer.echo(json.dumps(self.document, indent=2, ensure_ascii=False))
            self.document = None


class RecordedNote:
    """Remembers where a run was recorded (the pipeline's ``recorded`` callback) and says so once."""

    def __init__(self, history: str | Path | None) -> None:
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
    return render_document(config)[0]


def render_document(config: Config) -> tuple[Generated, dict[str, Any]]:
    """:func:`render_config`, and the desired state as the document it was validated as (what
    ``render`` writes: made once, not again for the output)."""
    from providers.sources import SourceOptions, gc_paused, read_source

    source = require_source(config)
    options = SourceOptions(
        academic_year=source.academic_year,
        ref_field=source.user_reference,
        upn_domain=source.upn_domain,
        skip_people_without_ref=source.skip_people_without_reference,
    )
    # the cycle collector paused for the whole render, not only the read: each full collection
    # walks the millions of objects the read made, and a trust's render would take three (0.45 s
    # of 4); the render makes no cyclic garbage worth collecting early
    with gc_paused():
        data = read_source(source.kind, source.path, options=options)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        generated = generate(data, config, generated_at=now)
        document = desired_to_document(generated.desired)
        findings = validate_document(document)
    if findings:  # a generator bug or a template that makes an illegal name: never apply it
        raise DocumentError(f"desired state rendered from {source.path}", findings)
    return generated, document


def print_warnings(generated: Generated) -> None:
    for w in generated.warnings:
        where = w.key or w.ref
        named = bool(where) and str(where) in w.message
        text = w.message if named or not where else f"{where}: {w.message}"
        typer.echo(f"warning: {text}", err=True)


def ask_on_terminal(auto_approve: bool, question: str) -> Callable[[object], bool] | None:
    """Ask when a person is at a terminal (stdin and stdout); off a terminal (cron, CI, a service)
    or with ``--auto-approve``, no question."""
    if auto_approve or not (sys.stdin.isatty() and sys.stdout.isatty()):
        return None
    return lambda _what: bool(typer.confirm(question, default=False))


@dataclass(frozen=True)
class SyncOptions:
    """How one printed ``sync`` runs (``schedule`` and ``demo`` use the defaults they need)."""

    dry_run: bool = False
    force: bool = False
    quiet: bool = False
    fmt: PlanFormat = PlanFormat.summary
    kind: str = "sync"
    #: save the plan here (the run then stops after the plan, as a dry run)
    out: Path | None = None
    #: exit 0 no changes, 2 changes, 3 refused, 1 error
    detailed_exitcode: bool = False
    school: str | None = None
    #: ask on a terminal before changing Entra (a manual ``sync``; never the scheduler)
    confirm: Callable[[object], bool] | None = None


def run_sync(cfg: Config, opts: GraphOptions, run: SyncOptions | None = None) -> RunOutcome:
    """One whole run, printed: render, plan, show, safety check, (confirm), apply, record, report.

    Raises :class:`SafetyError` for a refused plan; exits 3 for a dry run that would be refused;
    with ``detailed_exitcode``, exits 2 when the plan has changes.
    """
    run = run or SyncOptions()
    fmt = run.fmt
    dry_run = run.dry_run or run.out is not None
    progress = ProgressPrinter(enabled=not run.quiet)
    note = RecordedNote(cfg.history.target)
    capture = DocumentCapture()
    contexts: list[SummaryContext] = []

    def desired() -> DesiredState:
        generated = render_config(cfg)
        print_warnings(generated)
        contexts.append(context_from_desired(generated.desired))
        return generated.desired

    def show(plan: Plan) -> None:
        progress.close()
        if run.out is not None:
            run.out.write_text(plan.to_json(), encoding="utf-8")
            typer.echo(f"Plan saved to {run.out}; apply exactly this plan with `entra-sync apply {run.out}`.",
                       err=True)
        if fmt is not PlanFormat.json:
            typer.echo(render_plan(plan, fmt, contexts[-1] if contexts else None), nl=False)

    request = RunRequest(
        run.kind, desired=desired, limits=limits_from(cfg), force=run.force, dry_run=dry_run,
        config_summary=config_summary(cfg), school=run.school,
    )  # fmt: skip
    hooks = RunHooks(progress=progress, show=show, recorded=note, confirm=run.confirm)
    json_out = fmt is PlanFormat.json
    try:
        with configured_pipeline(opts, observers=[capture]) as pipeline:
            outcome = pipeline.run(request, hooks)
    except BaseException:
        progress.close()
        note.after_error()
        if json_out:
            capture.echo()
        raise
    progress.close()
    if json_out:
        capture.echo()
    if outcome.refused and not dry_run:  # the plan was shown first, then the refusal
        note.after_error()
        if outcome.held is not None:
            AFTER_ERROR.append(f"The refused plan is held as plan {outcome.held} for an approver (console).")
        raise SafetyError(outcome.refused)
    if outcome.declined:
        note.echo()
        raise typer.Abort()
    if dry_run and not json_out:
        print_refusals(outcome.plan)
    elif outcome.forced and outcome.result is not None:
        typer.echo("Safety limits overridden with --force for this run.", err=True)
    if outcome.result is not None:
        print_result(outcome.result, summary_to_stderr=json_out)
    elif dry_run:
        typer.echo("Dry run: nothing was changed in Entra.", err=json_out)
    note.echo()
    if outcome.refused:  # a dry run that a real run would refuse: a CI gate can tell
        raise typer.Exit(3)
    if run.detailed_exitcode and outcome.ok and not outcome.plan.empty:
        raise typer.Exit(2)
    return outcome
