"""Slots: each scheduled (or catch-up) run of one tenant is one row of ``fleet_slots``, made once and
dispatched once, so that a tick that runs twice, a beat restarted, or a task delivered twice never
runs a tenant twice for one slot.

A tick (beat's periodic task) does two things on the clock it is given:

1. *plan*: for each tenant whose next slot (its ``[schedule]`` times in its own time zone, see
   :func:`entra_sync.schedule.next_run`) has come, add that slot with its *due* time, the slot
   plus a jitter (spread over ``jitter`` seconds, the same for the same tenant and slot, so
   tenants do not all start at 04:00:00), and move the tenant's next slot past now (slots missed
   while the fleet was down are not all made up: the first missed one runs, late). A paused
   tenant's slot is added as ``skipped``; so is a degraded tenant's, except its first slot of
   the day;
2. *dispatch*: each ``pending`` slot that is due becomes ``queued`` (a conditional update: only one
   tick can win it) and is handed to ``send`` (a Celery task).

The runner then claims a slot (``running``, one more attempt) and finishes it ``done`` (with its
run), ``failed`` or ``skipped``. A claim of a finished slot returns None: a duplicate delivery.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, delete, exc, func, insert, select, update

from entra_sync.fleet.registry import FleetStore, TenantRecord
from entra_sync.schedule import next_run, parse_times, parse_timezone
from entra_sync.store.tables import fleet_slots, fleet_state, fleet_tenants

__all__ = [
    "FINISHED",
    "Slot",
    "SlotKind",
    "add_catch_up",
    "claim",
    "dispatch",
    "finish",
    "get",
    "jitter_for",
    "last_tick",
    "plan_slots",
    "prune",
    "slot_counts",
    "slots",
    "tick",
]

log = logging.getLogger(__name__)

SlotKind = Literal["scheduled", "catch-up"]
FINISHED = frozenset({"done", "failed", "skipped"})
DEGRADED_SKIP = "degraded: runs only at its first slot of the day until a run succeeds"


@dataclass(frozen=True, slots=True)
class Slot:
    id: int
    tenant: str
    kind: str
    slot_at: float
    due_at: float
    state: str
    attempts: int
    run_id: int | None
    worker: str | None
    queued_at: float | None
    started_at: float | None
    finished_at: float | None
    message: str | None


def _slot(row: Any) -> Slot:
    return Slot(*row)


_COLUMNS = (fleet_slots.c.id, fleet_slots.c.tenant, fleet_slots.c.kind, fleet_slots.c.slot_at,
            fleet_slots.c.due_at, fleet_slots.c.state, fleet_slots.c.attempts, fleet_slots.c.run_id,
            fleet_slots.c.worker, fleet_slots.c.queued_at, fleet_slots.c.started_at,
            fleet_slots.c.finished_at, fleet_slots.c.message)  # fmt: skip


def jitter_for(slug: str, slot_at: float, jitter: float) -> float:
    """Seconds after ``slot_at`` that ``slug`` starts: spread evenly over ``[0, jitter)``, the same
    on every machine for the same tenant and slot."""
    if jitter <= 0:
        return 0.0
    digest = hashlib.sha256(f"{slug}@{slot_at:.0f}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") % int(jitter * 1000)) / 1000.0


def _first_of_day(tenant: TenantRecord, slot_at: float) -> bool:
    tz = parse_timezone(tenant.timezone)
    return datetime.fromtimestamp(slot_at, tz).strftime("%H:%M") == min(tenant.times)


def _insert(conn: Any, **values: Any) -> bool:
    """Add a slot unless it is there already (True: added)."""
    try:
        with conn.begin_nested():
            conn.execute(insert(fleet_slots).values(**values))
        return True
    except exc.IntegrityError:
        return False


def plan_slots(store: FleetStore, now: float, jitter: float) -> int:
    """Add every tenant's slots that have come; return how many were added."""
    added = 0
    for tenant in store.tenants():
        times = parse_times(tenant.times)
        tz = parse_timezone(tenant.timezone)
        with store.tx() as conn:
            if tenant.next_slot_at is None:
                first = next_run(datetime.fromtimestamp(now, tz), times, tz).timestamp()
                conn.execute(
                    update(fleet_tenants)
                    .where(fleet_tenants.c.slug == tenant.slug)
                    .values(next_slot_at=first)
                )
                continue
            if tenant.next_slot_at > now:
                continue
            slot_at = tenant.next_slot_at
            state, message = "pending", None
            if tenant.paused:
                state, message = (
                    "skipped",
                    "paused" + (f": {tenant.paused_reason}" if tenant.paused_reason else ""),
                )
            elif tenant.degraded and not _first_of_day(tenant, slot_at):
                state, message = "skipped", DEGRADED_SKIP
            if _insert(conn, tenant=tenant.slug, kind="scheduled", slot_at=slot_at, state=state,
                       due_at=slot_at + jitter_for(tenant.slug, slot_at, jitter), message=message,
                       finished_at=now if state == "skipped" else None, attempts=0):  # fmt: skip
                added += 1
                if state == "skipped":
                    log.info(
                        "tenant %s: slot at %s skipped (%s)",
                        tenant.slug,
                        datetime.fromtimestamp(slot_at, tz).isoformat(),
                        message,
                    )
            after = next_run(datetime.fromtimestamp(max(now, slot_at), tz), times, tz).timestamp()
            conn.execute(
                update(fleet_tenants)
                .where(and_(fleet_tenants.c.slug == tenant.slug, fleet_tenants.c.next_slot_at == slot_at))
                .values(next_slot_at=after)
            )
    return added


def add_catch_up(store: FleetStore, tenant: str, at: float) -> bool:
    """A catch-up run of ``tenant`` due at ``at`` (Teams deferred by a run); True when added."""
    with store.tx() as conn:
        return _insert(
            conn, tenant=tenant, kind="catch-up", slot_at=at, due_at=at, state="pending", attempts=0
        )


def dispatch(
    store: FleetStore, now: float, send: Callable[[int], None], *, resend_after: float | None = None
) -> list[int]:
    """Queue every pending slot that is due (each by one tick only) and send it; return their ids.
    With ``resend_after``: a slot queued that long ago and never started (its message lost, e.g.
    a Redis restarted without its data) is sent again (a second delivery of a slot is harmless)."""
    which = (fleet_slots.c.state == "pending") & (fleet_slots.c.due_at <= now)
    if resend_after is not None:
        which = which | ((fleet_slots.c.state == "queued") & (fleet_slots.c.queued_at < now - resend_after))
    with store.read() as conn:
        due = [(int(i), str(st)) for i, st in conn.execute(
            select(fleet_slots.c.id, fleet_slots.c.state).where(which)
            .order_by(fleet_slots.c.due_at, fleet_slots.c.id))]  # fmt: skip
    sent = []
    for slot_id, state in due:
        with store.tx() as conn:
            won = conn.execute(
                update(fleet_slots)
                .where(fleet_slots.c.id == slot_id, fleet_slots.c.state == state)
                .values(state="queued", queued_at=now)
            ).rowcount
        if not won:
            continue
        if state == "queued":
            log.warning("slot %d was queued long ago and never started: sent again", slot_id)
        try:
            send(slot_id)
        except Exception:
            with store.tx() as conn:  # the broker is down: the next tick sends it again
                conn.execute(update(fleet_slots).where(fleet_slots.c.id == slot_id).values(state="pending"))
            raise
        sent.append(slot_id)
    return sent


def tick(
    store: FleetStore,
    now: float,
    jitter: float,
    send: Callable[[int], None],
    *,
    resend_after: float | None = None,
    keep_days: float | None = None,
) -> list[int]:
    """Plan and dispatch (see the module doc); remember when it ran. With ``keep_days``, finished
    slots older than that are deleted (their runs stay in the run history)."""
    plan_slots(store, now, jitter)
    sent = dispatch(store, now, send, resend_after=resend_after)
    if keep_days is not None:
        pruned = prune(store, now - keep_days * 86400.0)
        if pruned:
            log.info("tick: %d finished slot(s) older than %g days deleted", pruned, keep_days)
    with store.tx() as conn:
        if (
            conn.execute(
                update(fleet_state).where(fleet_state.c.name == "last_tick").values(value=repr(now))
            ).rowcount
            == 0
        ):
            conn.execute(insert(fleet_state).values(name="last_tick", value=repr(now)))
    return sent


def prune(store: FleetStore, before: float) -> int:
    """Delete the slots that finished before ``before``; return how many. A late duplicate
    delivery of one finds no slot and does nothing, as for a finished one."""
    with store.tx() as conn:
        return int(conn.execute(
            delete(fleet_slots).where(
                fleet_slots.c.state.in_(sorted(FINISHED)), fleet_slots.c.finished_at < before
            )
        ).rowcount)


def last_tick(store: FleetStore) -> float | None:
    with store.read() as conn:
        value = conn.execute(select(fleet_state.c.value).where(fleet_state.c.name == "last_tick")).scalar()
    return None if value is None else float(value)


def slot_counts(store: FleetStore) -> dict[str, int]:
    """Slots by state."""
    with store.read() as conn:
        rows = conn.execute(select(fleet_slots.c.state, func.count()).group_by(fleet_slots.c.state)).all()
    return {str(r[0]): int(r[1]) for r in rows}


def get(store: FleetStore, slot_id: int) -> Slot | None:
    with store.read() as conn:
        row = conn.execute(select(*_COLUMNS).where(fleet_slots.c.id == slot_id)).first()
    return None if row is None else _slot(row)


def slots(store: FleetStore, tenant: str | None = None) -> list[Slot]:
    """Every slot (of ``tenant``), oldest first."""
    query = select(*_COLUMNS)
    if tenant is not None:
        query = query.where(fleet_slots.c.tenant == tenant)
    with store.read() as conn:
        return [_slot(r) for r in conn.execute(query.order_by(fleet_slots.c.slot_at, fleet_slots.c.id))]


def claim(store: FleetStore, slot_id: int, worker: str) -> Slot | None:
    """Start an attempt at a slot (the caller holds the tenant's lease); None when it is finished
    already (a duplicate delivery) or unknown."""
    with store.tx() as conn:
        n = conn.execute(update(fleet_slots).where(
            fleet_slots.c.id == slot_id, fleet_slots.c.state.not_in(sorted(FINISHED))
        ).values(state="running", attempts=fleet_slots.c.attempts + 1, worker=worker,
                 started_at=store.clock.now())).rowcount  # fmt: skip
    return get(store, slot_id) if n else None


def finish(
    store: FleetStore, slot_id: int, state: str, run_id: int | None = None, message: str | None = None
) -> None:
    if state not in FINISHED:
        raise ValueError(f"a slot cannot finish {state!r}")
    with store.tx() as conn:
        conn.execute(
            update(fleet_slots)
            .where(fleet_slots.c.id == slot_id)
            .values(state=state, run_id=run_id, message=message, finished_at=store.clock.now())
        )
