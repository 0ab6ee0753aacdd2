"""The console's runs: "Run now", "Dry run", "Test connection" and applying a held plan, each
through the one run pipeline (:class:`entra_sync.pipeline.RunPipeline`), built as the CLI's is
(:func:`entra_sync.run_setup.configured_pipeline`), in a background thread.

Must: record a console run in the one store under its tenant; hold a plan a safety limit refused
(not a dry run's) for an approver; apply exactly the held plan (a saved-plan run, refused when
stale) and record the approval, the approver and the outcome; hand the decrypted client secret
only to the run's environment. Must not: log or record the secret.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager

from entra_sync.cli.running import render_config
from entra_sync.cli.wiring import GraphOptions, limits_from, open_connection
from entra_sync.config.load import config_summary, load_config
from entra_sync.console.security import SecretBox
from entra_sync.console.store import ConsoleStore, HeldPlan, Tenant
from entra_sync.pipeline import RunOutcome, RunPipeline, RunRequest
from entra_sync.run_setup import configured_pipeline
from entra_sync.runs.lock import LockHeldError
from reconciler.errors import EntraSyncError, StalePlanError
from reconciler.model import DesiredState
from reconciler.plan.codec import loads_plan
from reconciler.plan.model import Plan

__all__ = ["Jobs"]

log = logging.getLogger(__name__)

DEFAULT_SECRET_ENV = "ENTRA_SYNC_CLIENT_SECRET"


class Jobs:
    """Background runs of the console, one thread each (the run lock keeps one per tenant)."""

    def __init__(self, store: ConsoleStore, box: SecretBox, env: Mapping[str, str] | None = None) -> None:
        self._store = store
        self._box = box
        self._env = dict(os.environ if env is None else env)
        self._threads: list[threading.Thread] = []
        self._mutex = threading.Lock()
        #: tenant -> the last message of a background job (shown on the dashboard)
        self.messages: dict[str, str] = {}

    # -- wiring ------------------------------------------------------------------------------

    def options(self, tenant: Tenant) -> GraphOptions:
        cfg = load_config(tenant.config_path)
        env = dict(self._env)
        enc = self._store.encrypted_secret(tenant.slug)
        if enc is not None and cfg.credentials.method == "client_secret_env":
            env[cfg.credentials.client_secret_env or DEFAULT_SECRET_ENV] = self._box.decrypt(enc)
        return GraphOptions(config=cfg, env=env)

    def pipeline(self, tenant: Tenant, opts: GraphOptions) -> AbstractContextManager[RunPipeline]:
        """The CLI's pipeline (:func:`configured_pipeline`: locked, reported, delta reads,
        notified, measured, pruned), recording in the console's store under the tenant."""
        return configured_pipeline(opts, store=self._store.target, tenant=tenant.slug)

    def _spawn(self, tenant: str, name: str, work: Callable[[], str]) -> None:
        def body() -> None:
            try:
                message = work()
            except LockHeldError:
                message = f"{name}: another run of this tenant is in progress; try again when it ends"
            except EntraSyncError as exc:
                message = f"{name}: {exc}"
            except Exception as exc:  # a console job must not die silently
                log.exception("console job %s failed", name)
                message = f"{name}: unexpected {type(exc).__name__}"
            self.messages[tenant] = message

        t = threading.Thread(target=body, name=f"console-{name}", daemon=True)
        with self._mutex:
            self._threads = [x for x in self._threads if x.is_alive()] + [t]
        self.messages[tenant] = f"{name}: started"
        t.start()

    def wait(self, timeout: float = 120.0) -> None:
        """Wait for the running jobs (tests, shutdown)."""
        with self._mutex:
            threads = list(self._threads)
        for t in threads:
            t.join(timeout)

    # -- the jobs ---------------------------------------------------------------------------

    def run_now(self, tenant: Tenant, user: str, *, dry_run: bool) -> None:
        name = "dry run" if dry_run else "run"
        self._spawn(tenant.slug, name, lambda: self._run(tenant, user, dry_run))

    def _run(self, tenant: Tenant, user: str, dry_run: bool) -> str:
        opts = self.options(tenant)
        cfg = opts.config
        assert cfg is not None

        def desired() -> DesiredState:
            return render_config(cfg).desired

        request = RunRequest(
            "console sync",
            desired=desired,
            limits=limits_from(cfg),
            dry_run=dry_run,
            config_summary={**config_summary(cfg), "requestedBy": user},
            requested_by=user,
        )
        with self.pipeline(tenant, opts) as pipeline:
            outcome = pipeline.run(request)
        return self._after(outcome)

    @staticmethod
    def _after(outcome: RunOutcome) -> str:
        run = f"run {outcome.run_id}"
        if outcome.refused and not outcome.dry_run:
            if outcome.held is None:
                return f"{run} refused by safety limits; the plan could not be held (see the console's log)"
            return f"{run} refused by safety limits: held as plan {outcome.held} for an approver"
        if outcome.dry_run:
            n = len(outcome.plan.changes)
            return f"{run} (dry run): {n} change(s) planned" + (
                ", would be refused" if outcome.refused else ""
            )
        if outcome.result is None:
            return f"{run}: nothing to change"
        c = outcome.result.counts
        return f"{run}: {c['done']} done, {c['failed']} failed, {c['deferred']} deferred"

    def test_connection(self, tenant: Tenant) -> None:
        self._spawn(tenant.slug, "test connection", lambda: self._test(tenant))

    def _test(self, tenant: Tenant) -> str:
        from entra_sync.cli.setup import run_setup

        with open_connection(self.options(tenant)) as conn:
            report = run_setup(conn.client, conn.marker_app_id, graph_root=conn.graph_root)
        missing = report.missing_roles
        roles = (
            "permissions: not checked (" + "; ".join(report.notes) + ")"
            if missing is None
            else "permissions: all granted"
            if not missing
            else "missing permissions: " + ", ".join(missing)
        )
        return f"test connection: signed in; ownership marker {report.marker}; {roles}"

    def approve(self, tenant: Tenant, held: HeldPlan, approver: str) -> None:
        """Apply exactly the held plan (claimed first, so two clicks apply it once)."""
        if not self._store.claim(tenant.slug, held.id):
            raise EntraSyncError(f"plan {held.id} is no longer held (someone decided it already)")
        self._spawn(tenant.slug, f"apply held plan {held.id}", lambda: self._apply(tenant, held, approver))

    def _apply(self, tenant: Tenant, held: HeldPlan, approver: str) -> str:
        try:
            plan: Plan = loads_plan(held.plan, file=f"held plan {held.id}")
            if plan.checksum() != held.checksum:
                raise EntraSyncError(f"held plan {held.id} does not match its checksum; not applied")
            opts = self.options(tenant)
            cfg = opts.config
            assert cfg is not None
            request = RunRequest(
                f"console apply held plan {held.id}",
                saved_plan=lambda: plan,
                limits=limits_from(cfg),
                force=True,
                config_summary={**config_summary(cfg), "approvedBy": approver, "heldPlan": held.id},
            )
            with self.pipeline(tenant, opts) as pipeline:
                outcome = pipeline.run(request)
        except StalePlanError as exc:
            self._store.decide(held.id, approver, "approved", "stale", outcome="stale", message=str(exc))
            return f"held plan {held.id}: {exc}"
        except BaseException as exc:
            self._store.decide(held.id, approver, "approved", "failed", outcome="failed", message=str(exc))
            raise
        result = outcome.result
        ok = result is None or result.ok
        status = "applied" if ok else "failed"
        counts = result.counts if result is not None else {"done": 0, "failed": 0}
        message = f"{counts['done']} done, {counts['failed']} failed"
        self._store.decide(
            held.id,
            approver,
            "approved",
            status,
            outcome=status,
            message=message,
            outcome_run_id=outcome.run_id,
        )
        return f"held plan {held.id} {status} as run {outcome.run_id}: {message}"

    def reject(self, tenant: Tenant, held: HeldPlan, approver: str) -> None:
        if not self._store.claim(tenant.slug, held.id):
            raise EntraSyncError(f"plan {held.id} is no longer held")
        self._store.decide(held.id, approver, "rejected", "rejected", outcome="rejected")
