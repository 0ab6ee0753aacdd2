"""One slot of one tenant through the one run pipeline.

With the tenant's fleet lease held (:class:`~entra_sync.fleet.lease.TenantLease`): claim the slot
(a finished slot is a duplicate delivery: nothing to do), load and check the tenant's
configuration, sign in with the tenant's own credential reference (never another tenant's
``ENTRA_SYNC_*`` or ``AZURE_*`` variables), and run :class:`~entra_sync.pipeline.RunPipeline` for
the tenant with the shared store: the run is recorded with its tenant, a run of this tenant that a
killed worker left ``running`` is closed as ``interrupted`` first, and the objects that run
created are looked up by id (``created_since``) so that the retry creates none twice. Then the
tenant's health, a held plan for a refused one (the console's approval queue), and a catch-up slot
when Teams were deferred.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from entra_sync.cli.running import render_config
from entra_sync.cli.wiring import GraphOptions, limits_from, open_directory
from entra_sync.config.load import config_summary
from entra_sync.console.store import hold_plan
from entra_sync.fleet import slots
from entra_sync.fleet.lease import TenantBusyError, TenantLease
from entra_sync.fleet.registry import FleetStore, TenantRecord
from entra_sync.fleet.settings import FleetSettings
from entra_sync.pipeline import HoldPlan, RunHooks, RunPipeline, RunRequest
from entra_sync.run_setup import after_run_observers, html_report_writer
from entra_sync.runs.history import History, RunSummary
from entra_sync.store.delta import SqlDeltaStore
from providers.entra.delta import DeltaStore
from reconciler.errors import ConfigError, EntraSyncError
from reconciler.model import DesiredState
from reconciler.plan.model import Plan
from reconciler.settings import Config, CredentialsConfig

__all__ = ["SlotOutcome", "apply_credential_ref", "console_secret", "run_slot", "tenant_env"]

log = logging.getLogger(__name__)

#: a run's objects created within this long are looked up by id by the next run
RECENT_SECONDS = 24 * 3600.0
_PROCESS_CREDENTIALS = ("ENTRA_SYNC_", "AZURE_")


@dataclass(frozen=True, slots=True)
class SlotOutcome:
    what: Literal["ran", "skipped", "duplicate", "busy"]
    run_id: int | None = None
    status: str | None = None
    message: str | None = None


def apply_credential_ref(config: Config, ref: str) -> Config:
    """The configuration signing in by the registry's credential reference (``config``: as it is)."""
    kind, _, rest = ref.partition(":")
    if kind in ("config", "console"):  # console: see console_secret
        return config
    creds = {
        "env": lambda: CredentialsConfig(method="client_secret_env", client_secret_env=rest),
        "file": lambda: CredentialsConfig(method="client_secret_file", client_secret_file=Path(rest)),
        "certificate": lambda: CredentialsConfig(
            method="certificate", certificate_path=Path(rest),
            certificate_password_env=config.credentials.certificate_password_env,
        ),
        "federated": lambda: CredentialsConfig(
            method="federated_token_file", federated_token_file=Path(rest)
        ),
        "managed-identity": lambda: CredentialsConfig(
            method="managed_identity", managed_identity=rest or "system"
        ),
    }[kind]()  # fmt: skip
    return replace(config, credentials=creds)


def console_secret(tenant: TenantRecord, config: Config, env: Mapping[str, str],
                   key_file: Path | None) -> tuple[Config, dict[str, str]]:  # fmt: skip
    """For the credential reference ``console``: the configuration signing in with the client
    secret typed in the console, decrypted with the console's key (``ENTRA_SYNC_CONSOLE_KEY``, or
    the key file) into a variable only this tenant's run sees."""
    from entra_sync.console.security import KEY_ENV, SecretBox

    if tenant.secret_enc is None:
        raise ConfigError(f"tenant {tenant.slug}: no client secret has been typed in the console for it "
                          "(Settings), or register it with another --credential")  # fmt: skip
    if env.get(KEY_ENV):
        box = SecretBox(env[KEY_ENV].strip().encode())
    elif key_file is not None and key_file.exists():
        box = SecretBox(key_file.read_bytes().strip())
    else:
        raise ConfigError("the console's key is needed to use a secret typed in the console: set "
                          f"{KEY_ENV} or ENTRA_SYNC_FLEET_CONSOLE_KEY_FILE", key=KEY_ENV)  # fmt: skip
    name = "ENTRA_SYNC_CONSOLE_SECRET_" + tenant.slug.upper().replace("-", "_")
    creds = CredentialsConfig(method="client_secret_env", client_secret_env=name)
    return replace(config, credentials=creds), {**env, name: box.decrypt(tenant.secret_enc)}


def tenant_env(env: Mapping[str, str], config: Config) -> dict[str, str]:
    """The worker's environment as one tenant sees it: no process-wide ``ENTRA_SYNC_*`` or
    ``AZURE_*`` setting (they would sign every tenant in as one), but the variables its own
    configuration names."""
    creds = config.credentials
    named = {
        n for n in (creds.client_secret_env, creds.access_token_env, creds.certificate_password_env) if n
    }
    return {k: v for k, v in env.items() if k in named or not k.startswith(_PROCESS_CREDENTIALS)}


def _directory(
    opts: GraphOptions, history: History, tenant: str, delta: DeltaStore | None
) -> contextlib.AbstractContextManager[Any]:
    """The tenant's directory, as every command opens it (reading through the delta links kept in
    the shared store when its ``[delta]`` is on); what was created recently comes from the shared
    run store (any worker's run), not from this worker's own journal."""
    recent = history.created_since(time.time() - RECENT_SECONDS, tenant=tenant)
    return open_directory(opts, delta, recent=recent)


def _holder(store: FleetStore, tenant: str) -> HoldPlan:
    """A refused plan waits in the console for an approver."""

    def hold(run_id: int | None, plan: Plan, reasons: tuple[str, ...], who: str | None) -> int:
        now = store.clock.now()
        with store.tx() as conn:
            return hold_plan(conn, tenant, run_id, plan.to_json(), plan.checksum(), reasons, who, now)

    return hold


def run_slot(
    store: FleetStore,
    history: History,
    redis: Any,
    slot_id: int,
    settings: FleetSettings,
    worker: str,
    env: Mapping[str, str] | None = None,
) -> SlotOutcome:
    """Run one slot (see the module doc). A tenant another worker is running gives ``busy``."""
    slot = slots.get(store, slot_id)
    if slot is None or slot.state in slots.FINISHED:
        return SlotOutcome("duplicate")
    try:
        tenant = store.get(slot.tenant)
    except EntraSyncError:
        slots.finish(store, slot_id, "skipped", message="the tenant is no longer registered")
        return SlotOutcome("skipped", message="unregistered")
    if tenant.paused:
        slots.finish(store, slot_id, "skipped", message="paused")
        return SlotOutcome("skipped", message="paused")
    lease = TenantLease(redis, tenant.slug, lease=settings.lease)
    try:
        lease.acquire()
    except TenantBusyError:
        return SlotOutcome("busy")
    try:
        before = slots.get(store, slot_id)
        claimed = slots.claim(store, slot_id, worker)
        if claimed is None or before is None:
            return SlotOutcome("duplicate")
        if before.started_at is not None:  # an earlier attempt's worker died: did its run finish?
            done = _finished_since(history, tenant, before.started_at)
            if done is not None:
                return done_already(store, tenant, claimed, settings, done)
        return _run(store, history, tenant, claimed, settings, lease, os.environ if env is None else env)
    finally:
        lease.release()


def _run(
    store: FleetStore,
    history: History,
    tenant: TenantRecord,
    slot: slots.Slot,
    settings: FleetSettings,
    lease: TenantLease,
    env: Mapping[str, str],
) -> SlotOutcome:
    kind = "fleet catch-up" if slot.kind == "catch-up" else "fleet sync"
    if slot.attempts > 1:
        log.warning(
            "tenant %s: slot %d attempt %d (an earlier attempt's worker died)",
            tenant.slug,
            slot.id,
            slot.attempts,
        )
    try:
        config = apply_credential_ref(tenant.load_config(), tenant.credential_ref)
    except EntraSyncError as exc:  # a configuration changed into a broken one: its own failed run
        for left in history.close_interrupted(tenant=tenant.slug):
            log.warning(
                "tenant %s: run %d was left running by a worker that died: now interrupted",
                tenant.slug,
                left,
            )
        failed = history.start_run(kind, tenant=tenant.slug)
        history.finish_run(failed, "failed", str(exc))
        return _settle(store, tenant, slot, settings, failed, "failed", str(exc))
    if tenant.credential_ref == "console":
        try:
            config, env = console_secret(tenant, config, env, settings.console_key_file)
        except EntraSyncError as exc:
            failed = history.start_run(kind, tenant=tenant.slug)
            history.finish_run(failed, "failed", str(exc))
            return _settle(store, tenant, slot, settings, failed, "failed", str(exc))
    opts = GraphOptions(config=config, env=tenant_env(env, config))
    report = None
    if settings.reports is not None:
        report = html_report_writer(settings.reports / tenant.slug, config.schedule.timezone)
    # the delta state lives in the shared run store, over the history's own connections
    delta = SqlDeltaStore(history.engine) if config.delta.enabled else None
    pipeline = RunPipeline(
        lambda: _directory(opts, history, tenant.slug, delta), store=history, report=report,
        tenant=tenant.slug,
        lock=contextlib.nullcontext(lease),  # held around the whole slot, claim included
        hold=_holder(store, tenant.slug),
        # what follows every run of `entra-sync sync`: the tenant's notifications, metrics, retention
        observers=after_run_observers(config, history, tenant.slug),
    )  # fmt: skip

    def desired() -> DesiredState:
        return render_config(config).desired

    request = RunRequest(
        kind, desired=desired, limits=limits_from(config), config_summary=config_summary(config),
        requested_by="fleet",
    )  # fmt: skip
    ran: list[int] = []
    error: str | None = None
    deferred = 0
    try:
        outcome = pipeline.run(request, RunHooks(recorded=lambda run_id, _path: ran.append(run_id)))
        deferred = outcome.deferred
    except EntraSyncError as exc:
        error = str(exc)
    except Exception as exc:  # recorded as failed by the pipeline; the fleet carries on
        log.exception("tenant %s: the run failed unexpectedly", tenant.slug)
        error = f"unexpected {type(exc).__name__}: {exc}"
    run_id = ran[-1] if ran else None
    status = "failed"
    if run_id is not None:
        summary = history.list_runs(1, tenant=tenant.slug)
        if summary and summary[0].run_id == run_id:
            status, error = summary[0].status, summary[0].error
    if deferred and tenant.catch_up_minutes > 0:
        slots.add_catch_up(store, tenant.slug, store.clock.now() + tenant.catch_up_minutes * 60)
    return _settle(store, tenant, slot, settings, run_id, status, error)


def _finished_since(history: History, tenant: TenantRecord, since: float) -> RunSummary | None:
    """The tenant's run that an earlier attempt of a slot (started at ``since``) saw to its end."""
    for r in history.list_runs(5, tenant=tenant.slug):
        if r.started_at >= since and r.status not in ("running", "interrupted"):
            return r
    return None


def done_already(store: FleetStore, tenant: TenantRecord, slot: slots.Slot, settings: FleetSettings,
                 run: RunSummary) -> SlotOutcome:  # fmt: skip
    """The worker of the earlier attempt died after its run had finished (before the slot did):
    the slot is that run's, not run again (its health is recorded once)."""
    log.warning("tenant %s: slot %d was run to its end by an attempt whose worker then died (run %d)",
                tenant.slug, slot.id, run.run_id)  # fmt: skip
    recorded = (
        tenant.last_run_at is not None
        and run.finished_at is not None
        and tenant.last_run_at >= run.finished_at
    )
    if not recorded:
        store.record_outcome(tenant.slug, run.status, run.error, settings.degrade_after)
    slots.finish(store, slot.id, "done", run.run_id, run.status)
    return SlotOutcome("ran", run.run_id, run.status, run.error)


def _settle(
    store: FleetStore,
    tenant: TenantRecord,
    slot: slots.Slot,
    settings: FleetSettings,
    run_id: int | None,
    status: str,
    error: str | None,
) -> SlotOutcome:
    health = store.record_outcome(tenant.slug, status, error, settings.degrade_after)
    if health.degraded and not tenant.degraded:
        log.error(
            "tenant %s is degraded after %d failed runs in a row: %s",
            tenant.slug,
            health.consecutive_failures,
            error,
        )
    slots.finish(store, slot.id, "done" if run_id is not None else "failed", run_id, status)
    return SlotOutcome("ran", run_id, status, error)
