"""The Celery application of the fleet: beat sends a *tick* every ``ENTRA_SYNC_FLEET_TICK`` seconds;
a worker runs it (:func:`entra_sync.fleet.slots.tick`: plan the slots that have come, queue the due
ones), and each queued slot becomes one ``run_slot`` task that runs the pipeline for its tenant.

Delivery: tasks are acknowledged *late* (after they return) and rejected back to the queue when
their worker process is lost (``task_reject_on_worker_lost``), one task reserved per process
(``worker_prefetch_multiplier = 1``). A worker killed outright leaves its task unacknowledged in
Redis, which hands it to another worker once ``visibility_timeout`` has passed. Either way the slot
runs again: the tenant's lease has expired with its holder, the store closes the run it left as
``interrupted``, and the retry looks up what that run created instead of creating it twice. A
slot's task delivered twice finds its slot finished and does nothing; one that finds its tenant
busy (another worker runs it) tries again ``busy_retry`` seconds later.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from celery import Celery

from entra_sync.fleet import slots
from entra_sync.fleet.registry import FleetStore
from entra_sync.fleet.runner import run_slot
from entra_sync.fleet.settings import FleetSettings
from entra_sync.runs.history import History

__all__ = ["RUN_TASK", "TICK_TASK", "make_app"]

log = logging.getLogger(__name__)

TICK_TASK = "entra_sync.fleet.tick"
RUN_TASK = "entra_sync.fleet.run_slot"
QUEUE = "entra-sync"


@dataclass
class _Resources:
    pid: int
    store: FleetStore
    history: History
    redis: Any


_local: dict[str, _Resources] = {}
_mutex = threading.Lock()


def _resources(settings: FleetSettings) -> _Resources:
    """The store and Redis connections of this process (made again after a fork)."""
    with _mutex:
        res = _local.get("r")
        if res is None or res.pid != os.getpid():
            from redis import Redis

            res = _Resources(
                os.getpid(),
                FleetStore(settings.store),
                History(settings.store),
                Redis.from_url(settings.broker),
            )
            _local["r"] = res
        return res


def make_app(settings: FleetSettings) -> Celery:
    app = Celery("entra_sync.fleet", broker=settings.broker, set_as_current=True)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            # look for the tasks of dead workers often enough for the visibility timeout
            "unacked_restore_interval": max(1, min(10, int(settings.visibility_timeout / 4))),
            "unacked_restore_throttle": 1,
        },
        beat_schedule={
            "fleet-tick": {
                "task": TICK_TASK,
                "schedule": settings.tick,
                "options": {"expires": settings.tick},
            },
        },
        timezone="UTC",
        enable_utc=True,
    )

    @app.task(name=TICK_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
    def tick() -> int:
        res = _resources(settings)
        sent = slots.tick(
            res.store,
            time.time(),
            settings.jitter,
            lambda slot_id: run_task.apply_async(args=[slot_id]),
            resend_after=2 * settings.visibility_timeout,
            keep_days=settings.keep_slot_days,
        )
        if sent:
            log.info("tick: %d slot(s) queued", len(sent))
        return len(sent)

    @app.task(name=RUN_TASK, bind=True, max_retries=None, ignore_result=True)  # type: ignore[untyped-decorator]
    def run_task(self: Any, slot_id: int) -> str:
        res = _resources(settings)
        worker = f"{self.request.hostname or 'worker'}:{os.getpid()}"
        outcome = run_slot(res.store, res.history, res.redis, int(slot_id), settings, worker)
        if outcome.what == "busy":
            raise self.retry(countdown=settings.busy_retry)
        log.info("slot %s: %s %s", slot_id, outcome.what, outcome.status or "")
        return outcome.what

    return app
