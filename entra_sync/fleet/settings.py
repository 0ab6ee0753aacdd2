"""The fleet's settings, from ``ENTRA_SYNC_FLEET_*`` variables (the same for beat and every worker).

- ``ENTRA_SYNC_FLEET_STORE``: the shared store, ``postgresql://user@host/db`` (a SQLite path on
  one host); else ``ENTRA_SYNC_STORE`` (the console's name for the same store); else
  ``ENTRA_SYNC_FLEET_STORE_FILE``, a file holding it (a container secret: the URL carries the
  database password); one of them is required;
- ``ENTRA_SYNC_FLEET_BROKER``: the Redis broker, also holding the tenants' leases
  (``redis://127.0.0.1:6379/0``);
- ``ENTRA_SYNC_FLEET_LEASE``: seconds a tenant's lease lasts unless renewed (60);
- ``ENTRA_SYNC_FLEET_JITTER``: slots start spread over this many seconds (600);
- ``ENTRA_SYNC_FLEET_DEGRADE_AFTER``: failed runs in a row that make a tenant degraded (5; 0: never);
- ``ENTRA_SYNC_FLEET_TICK``: seconds between beat's ticks (30);
- ``ENTRA_SYNC_FLEET_VISIBILITY_TIMEOUT``: seconds before Redis hands the unacknowledged task of a
  dead worker to another (3600; keep it above the longest run);
- ``ENTRA_SYNC_FLEET_BUSY_RETRY``: seconds before a task that found its tenant busy tries again (30);
- ``ENTRA_SYNC_FLEET_CONSOLE_KEY_FILE``: the console's key file, for tenants whose client secret
  was typed in the console (``--credential console``; ``ENTRA_SYNC_CONSOLE_KEY`` wins);
- ``ENTRA_SYNC_FLEET_REPORTS``: a folder for HTML run reports (``<tenant>/run-N.html``; none);
- ``ENTRA_SYNC_FLEET_KEEP_SLOT_DAYS``: days a finished slot is kept (30; at least 1): beat deletes
  older ones (the runs themselves stay in the run history, under its own retention).

A URL's password comes from the variable (a Kubernetes or compose secret); it is never logged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import ConfigError

__all__ = ["FleetSettings"]

_PREFIX = "ENTRA_SYNC_FLEET_"


def _number(
    env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0, unit: str = "seconds"
) -> float:
    raw = env.get(_PREFIX + name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"must be a number of {unit}, got {raw!r}", key=_PREFIX + name) from None
    if value < minimum:
        raise ConfigError(f"must be at least {minimum:g}, got {raw}", key=_PREFIX + name)
    return value


@dataclass(frozen=True)
class FleetSettings:
    store: str
    broker: str = "redis://127.0.0.1:6379/0"
    lease: float = 60.0
    jitter: float = 600.0
    degrade_after: int = 5
    tick: float = 30.0
    visibility_timeout: float = 3600.0
    busy_retry: float = 30.0
    reports: Path | None = None
    console_key_file: Path | None = None
    keep_slot_days: float = 30.0

    def __repr__(self) -> str:  # URLs may carry passwords
        return f"FleetSettings(lease={self.lease}, jitter={self.jitter}, degrade_after={self.degrade_after})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FleetSettings:
        env = os.environ if env is None else env
        store = env.get(_PREFIX + "STORE", "").strip() or env.get("ENTRA_SYNC_STORE", "").strip()
        store_file = env.get(_PREFIX + "STORE_FILE", "").strip()
        if not store and store_file:
            try:
                store = Path(store_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                why = f"cannot read {store_file}: {exc.strerror}"
                raise ConfigError(why, key=_PREFIX + "STORE_FILE") from None
        if not store:
            raise ConfigError(
                "name the fleet's shared store (postgresql://user@host/db, or a SQLite file on one host)",
                key=_PREFIX + "STORE",
            )
        reports = env.get(_PREFIX + "REPORTS", "").strip()
        key_file = env.get(_PREFIX + "CONSOLE_KEY_FILE", "").strip()
        return cls(
            store=store,
            broker=env.get(_PREFIX + "BROKER", "").strip() or cls.broker,
            lease=_number(env, "LEASE", cls.lease, minimum=1),
            jitter=_number(env, "JITTER", cls.jitter),
            degrade_after=int(_number(env, "DEGRADE_AFTER", cls.degrade_after)),
            tick=_number(env, "TICK", cls.tick, minimum=0.1),
            visibility_timeout=_number(env, "VISIBILITY_TIMEOUT", cls.visibility_timeout, minimum=1),
            busy_retry=_number(env, "BUSY_RETRY", cls.busy_retry, minimum=0.1),
            reports=Path(reports) if reports else None,
            console_key_file=Path(key_file) if key_file else None,
            keep_slot_days=_number(env, "KEEP_SLOT_DAYS", cls.keep_slot_days, minimum=1, unit="days"),
        )
