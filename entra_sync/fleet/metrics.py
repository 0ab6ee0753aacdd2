"""Fleet health as Prometheus metrics: :func:`exposition` returns the text the console serves at
``/metrics``; :func:`write_textfile` writes it for node_exporter's textfile collector (one host).

Per tenant (label ``tenant``): last run and last success time, consecutive failures, degraded,
paused, and the last run's status (``entra_sync_fleet_tenant_last_status{status=...} 1``). For the
fleet: tenants by state, slots by state, and when beat last ticked.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, generate_latest, write_to_textfile

from entra_sync.fleet import slots as slot_store
from entra_sync.fleet.registry import FleetStore

__all__ = ["exposition", "registry_for", "write_textfile"]

_P = "entra_sync_fleet"
_SLOT_STATES = ("pending", "queued", "running", "done", "failed", "skipped")


def registry_for(store: FleetStore) -> CollectorRegistry:
    """A collector registry holding the fleet's gauges as the store says now."""
    reg = CollectorRegistry()
    tenants = store.tenants()
    last_run = Gauge(
        f"{_P}_tenant_last_run_timestamp_seconds",
        "When the tenant's last run finished.",
        ["tenant"],
        registry=reg,
    )
    last_ok = Gauge(
        f"{_P}_tenant_last_success_timestamp_seconds",
        "When the tenant's last run succeeded.",
        ["tenant"],
        registry=reg,
    )
    failures = Gauge(f"{_P}_tenant_consecutive_failures", "Failed runs in a row.", ["tenant"], registry=reg)
    degraded = Gauge(
        f"{_P}_tenant_degraded",
        "1 when the tenant is degraded (too many failures in a row).",
        ["tenant"],
        registry=reg,
    )
    paused = Gauge(f"{_P}_tenant_paused", "1 when the tenant is paused.", ["tenant"], registry=reg)
    status = Gauge(
        f"{_P}_tenant_last_status",
        "1 for the status of the tenant's last run.",
        ["tenant", "status"],
        registry=reg,
    )
    count = Gauge(f"{_P}_tenants", "Registered tenants by state.", ["state"], registry=reg)
    states: Counter[str] = Counter()
    for t in tenants:
        if t.last_run_at is not None:
            last_run.labels(t.slug).set(t.last_run_at)
        if t.last_success_at is not None:
            last_ok.labels(t.slug).set(t.last_success_at)
        failures.labels(t.slug).set(t.consecutive_failures)
        degraded.labels(t.slug).set(int(t.degraded))
        paused.labels(t.slug).set(int(t.paused))
        if t.last_status is not None:
            status.labels(t.slug, t.last_status).set(1)
        states["paused" if t.paused else "degraded" if t.degraded else "active"] += 1
    for state in ("active", "paused", "degraded"):
        count.labels(state).set(states[state])
    by_state = slot_store.slot_counts(store)
    slot_gauge = Gauge(
        f"{_P}_slots", "Slots (scheduled and catch-up runs) by state.", ["state"], registry=reg
    )
    for state in _SLOT_STATES:
        slot_gauge.labels(state).set(by_state.get(state, 0))
    tick = slot_store.last_tick(store)
    if tick is not None:
        Gauge(f"{_P}_last_tick_timestamp_seconds", "When beat's last tick ran.", registry=reg).set(tick)
    return reg


def exposition(store: FleetStore) -> str:
    """The metrics in the Prometheus text format (``Content-Type: text/plain; version=0.0.4``)."""
    return generate_latest(registry_for(store)).decode("utf-8")


def write_textfile(store: FleetStore, path: str | Path) -> None:
    """Write the metrics to ``path`` atomically (a temporary file renamed over it)."""
    write_to_textfile(str(path), registry_for(store))
