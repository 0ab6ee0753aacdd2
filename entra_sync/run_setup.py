"""The one builder of a configured run pipeline, for every way a run is started: the CLI's
``sync``, ``schedule``, ``apply`` and ``adopt``, and the web console's "Run now", "Dry run" and
approved held plans.

For a configuration, :func:`configured_pipeline` gives a :class:`~entra_sync.pipeline.RunPipeline`
that is locked (the lock file beside the configuration's history: one run at a time, whoever
starts it; one per tenant when tenants share the console's store as their history), recorded in
a run store (the configuration's ``[history] path``, or the console's store), reads Graph through
delta links when ``[delta]`` says so (the state kept in that store), writes the HTML report beside
the history, and after every run notifies (``[notify]``), writes the metrics textfile
(``[metrics]``) and prunes the history (``[history] keep_runs``/``keep_days``).

When the run store is the console's and the configuration is one of its tenants (registered with
``entra-sync console add-tenant``), runs are recorded under that tenant and a plan that a safety
limit refused is held for an approver in the console, whoever started the run.

Must: build the same pipeline for the CLI and the console (nothing here knows which one asks).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from entra_sync.pipeline import ReportWriter, RunObserver, RunPipeline
from entra_sync.runs.history import History
from entra_sync.runs.lock import RunLock
from reconciler.settings import Config

if TYPE_CHECKING:
    from entra_sync.cli.wiring import GraphOptions
    from entra_sync.console.store import PlanHolder

__all__ = [
    "after_run_observers",
    "configured_pipeline",
    "html_report_writer",
    "lock_path",
    "prune_history",
    "reports_folder",
]

log = logging.getLogger(__name__)


def lock_path(cfg: Config, tenant: str | None = None) -> Path:
    """The run lock beside the run history: one run at a time per history, across processes; per
    tenant when the history is the console's store that several tenants share (``tenant``)."""
    return cfg.history.path.with_suffix(f".{tenant}.lock" if tenant else ".lock")


def _is_history(target: str | Path, cfg: Config) -> bool:
    """Is the run store at ``target`` this configuration's own history?"""
    if cfg.history.url is not None or "://" in str(target):
        return str(target) == cfg.history.url
    return Path(target).resolve() == cfg.history.path.resolve()


def reports_folder(cfg: Config) -> Path:
    """Where the HTML report of each recorded run is written."""
    return cfg.history.path.parent / "reports"


def html_report_writer(folder: Path, tz: str) -> ReportWriter:
    """Write ``run-N.html`` into ``folder`` (created when missing)."""

    def write(store: History, run_id: int) -> Path:
        from entra_sync.runs.report import render_run_report

        path = folder / f"run-{run_id}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_run_report(store.get_run(run_id), tz=tz), encoding="utf-8")
        return path

    return write


def prune_history(
    store: History, cfg: Config, keep_runs: int | None, keep_days: float | None, *, tenant: str | None = None
) -> list[int]:
    """Delete the runs (of ``tenant``, when given) beyond the retention limits, and their HTML
    reports; the pruned run ids."""
    gone = store.prune(keep_runs, keep_days, tenant=tenant)
    for run_id in gone:
        (reports_folder(cfg) / f"run-{run_id}.html").unlink(missing_ok=True)
    if gone:
        log.info("pruned %d run(s) from the history (and their reports)", len(gone))
    return gone


def after_run_observers(cfg: Config, store: History | None, tenant: str | None = None) -> list[RunObserver]:
    """What follows every recorded run: notifications, the metrics textfile, history retention."""
    from entra_sync.metrics import write_textfile
    from entra_sync.notify import notify

    def notifications(doc: Mapping[str, Any]) -> None:
        for sent in notify(doc, cfg.notify):
            if not sent.sent:
                log.error("could not send the %s notification: %s", sent.channel, sent.error)

    observers: list[RunObserver] = [notifications]
    textfile = cfg.metrics.textfile
    if textfile is not None:
        observers.append(lambda doc: log.debug("metrics: %s", write_textfile(doc, textfile)))
    if store is not None and (cfg.history.keep_runs is not None or cfg.history.keep_days is not None):

        def retention(_doc: Mapping[str, Any]) -> None:
            prune_history(store, cfg, cfg.history.keep_runs, cfg.history.keep_days, tenant=tenant)

        observers.append(retention)
    return observers


def _console_tenant(target: str | Path, cfg: Config) -> tuple[str | None, PlanHolder | None]:
    """The console tenant registered for this configuration in the store at ``target`` (None:
    none), and how a refused plan of its is held there."""
    from entra_sync.console.store import ConsoleStore

    store = ConsoleStore(target)
    slug = store.tenant_for_config(cfg.file)
    if slug is None:
        store.close()
        return None, None
    return slug, store.holder(slug)


@contextmanager
def configured_pipeline(
    opts: GraphOptions,
    *,
    store: str | Path | None = None,
    tenant: str | None = None,
    observers: Sequence[RunObserver] = (),
) -> Iterator[RunPipeline]:
    """The run pipeline for these options (see the module doc). ``store`` is the run store
    (default: the configuration's history) and ``tenant`` the console tenant the runs are
    recorded under (default: the one registered for this configuration in that store, if any);
    ``observers`` come before the configured ones. Without a configuration, runs are neither
    locked, recorded, reported nor observed by more than ``observers``."""
    from entra_sync.cli.wiring import open_directory  # the CLI package imports this module

    cfg = opts.config
    if cfg is None:
        yield RunPipeline(lambda: open_directory(opts), observers=observers)
        return
    target = store if store is not None else cfg.history.target
    with ExitStack() as stack:
        history = stack.enter_context(History(target))
        if tenant is None:
            tenant, hold = _console_tenant(target, cfg)
        else:
            from entra_sync.console.store import ConsoleStore

            hold = ConsoleStore(target).holder(tenant)
        if hold is not None:
            stack.callback(hold.close)
        delta = None
        if cfg.delta.enabled:
            from entra_sync.store.delta import SqlDeltaStore

            delta = SqlDeltaStore(target)
            stack.callback(delta.close)
        yield RunPipeline(
            lambda: open_directory(opts, delta),
            store=history,
            # the CLI and the console over one configuration take the same lock; tenants that share
            # the console's store as their history each have their own
            lock=RunLock(lock_path(cfg, tenant if tenant and _is_history(target, cfg) else None)),
            report=html_report_writer(reports_folder(cfg), cfg.schedule.timezone),
            tenant=tenant,
            hold=hold,
            observers=[*observers, *after_run_observers(cfg, history, tenant)],
        )
