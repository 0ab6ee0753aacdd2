"""A tenant's fleet lease on a real Redis server: one holder at a time, renewed while held, and
given up by a holder that is killed (the lease expires since nobody renews it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from redis import Redis

from entra_sync.fleet.lease import KEY_PREFIX, TenantBusyError, TenantLease
from tests.fleet_support import redis_server  # noqa: F401  (fixture)

_HOLDER = """
import sys, time
from redis import Redis
from entra_sync.fleet.lease import TenantLease
lease = TenantLease(Redis.from_url(sys.argv[1]), sys.argv[2], lease=float(sys.argv[3]))
lease.acquire()
print("held", flush=True)
time.sleep(600)
"""


@pytest.fixture
def redis(redis_server: str) -> Redis:  # noqa: F811
    client = Redis.from_url(redis_server)
    client.flushdb()
    return client


def test_one_holder_at_a_time(redis: Redis) -> None:
    first = TenantLease(redis, "oak", lease=30)
    with first:
        assert redis.exists(KEY_PREFIX + "oak")
        with pytest.raises(TenantBusyError, match="another worker of the fleet is running it"):
            TenantLease(redis, "oak", lease=30).acquire()
        with TenantLease(redis, "elm", lease=30):  # another tenant runs meanwhile
            pass
    assert not redis.exists(KEY_PREFIX + "oak")
    with TenantLease(redis, "oak", lease=30):
        pass


def test_a_held_lease_is_renewed_past_its_length(redis: Redis) -> None:
    lease = TenantLease(redis, "oak", lease=1.5)
    with lease:
        time.sleep(4.0)  # more than twice the lease: only renewals keep it
        with pytest.raises(TenantBusyError):
            TenantLease(redis, "oak", lease=1.5).acquire()
        ttl = redis.pttl(KEY_PREFIX + "oak")
        assert 0 < ttl <= 1500
    assert lease.lost == 0


def test_a_killed_holder_cannot_keep_the_lease(redis: Redis, redis_server: str) -> None:  # noqa: F811
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    with subprocess.Popen([sys.executable, "-c", _HOLDER, redis_server, "oak", "2"], env=env,
                          stdout=subprocess.PIPE, text=True) as holder:  # fmt: skip
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        time.sleep(2.5)  # renewed by its holder beyond one lease
        with pytest.raises(TenantBusyError):
            TenantLease(redis, "oak", lease=2).acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    taken = None
    for _ in range(100):  # it expires within one lease of the kill
        try:
            taken = TenantLease(redis, "oak", lease=2)
            taken.acquire()
            break
        except TenantBusyError:
            taken = None
            time.sleep(0.1)
    assert taken is not None, "the killed holder's lease never expired"
    taken.release()
