"""The fleet-wide run lock of one tenant: a Redis key with a lease.

``SET entra-sync:tenant:<slug> <random token> NX PX <lease>`` takes it (redis-py's :class:`Lock`,
whose extend and release are scripts that check the token, so nobody frees or keeps a lease that
is not theirs). While the run goes on a thread renews the lease every third of it; a worker that
crashes or is killed stops renewing, and the key expires one lease later, so another worker can
run the tenant. A lease lost while running (Redis restarted, the worker frozen past its lease) is
logged as an error and counted in :attr:`TenantLease.lost`; the run itself goes on (its creates
are idempotent and the run store closes whatever it left).

Used as the run pipeline's ``lock``: entered, it raises :class:`TenantBusyError` at once when
another worker holds the tenant.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from redis import Redis
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from reconciler.errors import EntraSyncError

__all__ = ["KEY_PREFIX", "TenantBusyError", "TenantLease"]

log = logging.getLogger(__name__)

KEY_PREFIX = "entra-sync:tenant:"


class TenantBusyError(EntraSyncError):
    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        super().__init__(
            f"tenant {tenant}: another worker of the fleet is running it; this run waits its turn"
        )


class TenantLease:
    """``with TenantLease(redis, "oak", lease=60): ...`` runs with the tenant's lease held."""

    def __init__(self, client: Redis, tenant: str, *, lease: float = 60.0) -> None:
        if lease <= 0:
            raise ValueError("a lease must be positive")
        self.tenant = tenant
        self.lease = lease
        self.lost = 0
        self._lock: Lock = client.lock(KEY_PREFIX + tenant, timeout=lease, blocking=False, thread_local=False)
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    @property
    def key(self) -> str:
        return KEY_PREFIX + self.tenant

    def acquire(self) -> None:
        if not self._lock.acquire(blocking=False):
            raise TenantBusyError(self.tenant)
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, name=f"lease-{self.tenant}", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.lease / 3):
            try:
                self._lock.reacquire()
            except (LockError, RedisError) as exc:
                self.lost += 1
                log.error(
                    "tenant %s: the fleet lease could not be renewed (%s); another worker may start "
                    "this tenant once it expires",
                    self.tenant,
                    exc,
                )

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
            self._renewer = None
        try:
            self._lock.release()
        except (LockError, RedisError) as exc:  # expired and maybe taken: not ours to free any more
            log.warning("tenant %s: the fleet lease was gone at release (%s)", self.tenant, exc)

    def __enter__(self) -> TenantLease:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
