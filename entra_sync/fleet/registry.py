"""The tenant registry: which tenants the fleet syncs, how, when, and how they are doing.

A tenant is one configuration (the TOML file of a single-tenant installation, read from its path or
stored in the store), a credential *reference*, its schedule in its own time zone, and paused or
not (school holidays). Its health is kept beside it: the last run and its status, the last
success, the consecutive failures and, after ``degrade_after`` of them, *degraded* (Entra's
provisioning quarantine is the model: a degraded tenant runs only at its first slot of the day
until a run succeeds again). The console's ``console_tenants`` row is the tenant's identity (slug,
display name, configuration path); the fleet's columns are in ``fleet_tenants``.

Must: check a configuration with the same loader, checks and messages as ``entra-sync sync``
before registering it; keep credential references only.
Must not: store a secret (a reference that looks like a secret value is refused).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, exc, insert, select, update

from entra_sync.config.load import load_config, loads_config
from entra_sync.store.engine import display_name, migrate, open_engine, writer
from entra_sync.store.tables import console_tenants, fleet_tenants
from entra_sync.store.values import HistoryError
from reconciler.clock import Clock, SystemClock
from reconciler.errors import ConfigError, InputError
from reconciler.settings import Config

__all__ = [
    "CREDENTIAL_REF_HELP",
    "FleetStore",
    "TenantRecord",
    "check_credential_ref",
    "check_slug",
]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
CREDENTIAL_REF_HELP = (
    'one of "config" (the configuration\'s [credentials]), "console" (the client secret typed in the '
    'console, kept encrypted; workers need the console key), "env:NAME" (a client secret in the '
    'worker\'s variable NAME), "file:PATH" (a client secret file), "certificate:PATH", '
    '"federated:PATH" or "managed-identity[:CLIENT_ID]"'
)


def check_slug(slug: str) -> str:
    if not _SLUG.match(slug):
        raise InputError(
            f"tenant {slug!r}: a tenant's name is 1-63 lower-case letters, digits and dashes "
            "(e.g. oak-academy)"
        )
    return slug


def check_credential_ref(ref: str) -> str:
    """A credential reference, or InputError saying what one looks like (the value is not shown:
    someone may have pasted a secret)."""
    kind, _, rest = ref.partition(":")
    ok = (
        (kind in ("config", "console") and not rest)
        or (kind == "env" and bool(_ENV_NAME.match(rest)))
        or (kind in ("file", "certificate", "federated") and rest.startswith("/"))
        or (kind == "managed-identity" and (not rest or rest == "system" or bool(_GUID.match(rest))))
    )
    if not ok:
        raise InputError(
            f"the credential reference is not valid (its value is not shown): use {CREDENTIAL_REF_HELP}; "
            "file paths are absolute"
        )
    return ref


@dataclass(frozen=True, slots=True)
class TenantRecord:
    slug: str
    display_name: str
    config_path: str
    created_at: float
    credential_ref: str
    times: tuple[str, ...]
    timezone: str
    catch_up_minutes: int
    paused: bool
    #: the configuration's text when stored in the store (None: read from ``config_path``)
    config_toml: str | None = None
    paused_reason: str | None = None
    next_slot_at: float | None = None
    last_run_at: float | None = None
    last_status: str | None = None
    last_success_at: float | None = None
    consecutive_failures: int = 0
    degraded_at: float | None = None
    last_error: str | None = None
    #: the client secret typed in the console, encrypted (never decrypted here)
    secret_enc: str | None = None

    @property
    def degraded(self) -> bool:
        return self.degraded_at is not None

    def load_config(self) -> Config:
        """The tenant's configuration, checked as ``entra-sync sync`` checks it (a stored one
        resolves its relative paths against ``config_path``'s folder)."""
        if self.config_toml is not None:
            return loads_config(self.config_toml, file=self.config_path)
        return load_config(self.config_path)


_COLUMNS = (
    console_tenants.c.slug, console_tenants.c.display_name, console_tenants.c.config_path,
    console_tenants.c.created_at, fleet_tenants.c.credential_ref, fleet_tenants.c.times,
    fleet_tenants.c.timezone, fleet_tenants.c.catch_up_minutes, fleet_tenants.c.paused,
    fleet_tenants.c.config_toml, fleet_tenants.c.paused_reason, fleet_tenants.c.next_slot_at,
    fleet_tenants.c.last_run_at, fleet_tenants.c.last_status, fleet_tenants.c.last_success_at,
    fleet_tenants.c.consecutive_failures, fleet_tenants.c.degraded_at, fleet_tenants.c.last_error,
    console_tenants.c.secret_enc,
)  # fmt: skip


def _record(row: Any) -> TenantRecord:
    return TenantRecord(
        slug=row[0], display_name=row[1], config_path=row[2], created_at=row[3], credential_ref=row[4],
        times=tuple(row[5]), timezone=row[6], catch_up_minutes=int(row[7]), paused=bool(row[8]),
        config_toml=row[9], paused_reason=row[10], next_slot_at=row[11], last_run_at=row[12],
        last_status=row[13], last_success_at=row[14], consecutive_failures=int(row[15]),
        degraded_at=row[16], last_error=row[17], secret_enc=row[18],
    )  # fmt: skip


class FleetStore:
    """The registry (and, through :mod:`entra_sync.fleet.slots`, the slots) in the store at
    ``target`` (a SQLite path or a database URL), migrated on open."""

    def __init__(self, target: str | Path, clock: Clock | None = None) -> None:
        self.target = str(target)
        self.name = display_name(target)
        self.clock: Clock = clock or SystemClock()
        try:
            self.engine: Engine = open_engine(target)
            migrate(self.engine, self.name)
        except HistoryError:
            raise
        except (exc.SQLAlchemyError, OSError) as e:
            raise HistoryError(self.name, f"cannot open the database ({_reason(e)})") from e

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> FleetStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        with writer(self.engine).begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    # -- the registry -----------------------------------------------------------------------

    def add(
        self,
        slug: str,
        config_path: str | Path,
        *,
        store_config: bool = False,
        credential_ref: str = "config",
        name: str | None = None,
        paused: bool = False,
    ) -> TenantRecord:
        """Register a tenant from its configuration file (checked first; nothing is written when
        it has a problem). The schedule is the file's ``[schedule]``."""
        check_slug(slug)
        check_credential_ref(credential_ref)
        path = Path(config_path).absolute()
        config = load_config(path)
        if credential_ref == "config" and config.credentials.method is None and not _emulated(config):
            raise ConfigError(
                "no credentials: set a method in [credentials], or register the tenant with a "
                "credential reference (--credential env:NAME, file:PATH, ...)",
                file=str(path),
            )
        toml = path.read_text(encoding="utf-8") if store_config else None
        now = self.clock.now()
        with self.tx() as conn:
            if conn.execute(select(fleet_tenants.c.slug).where(fleet_tenants.c.slug == slug)).first():
                raise InputError(
                    f"tenant {slug!r} is already registered; remove it first "
                    f"(entra-sync tenants remove {slug})"
                )
            known = conn.execute(select(console_tenants.c.slug).where(console_tenants.c.slug == slug)).first()
            values = {"display_name": name or slug, "config_path": str(path)}
            if known:  # the console made it: the fleet schedules it too
                conn.execute(update(console_tenants).where(console_tenants.c.slug == slug).values(**values))
            else:
                conn.execute(insert(console_tenants).values(slug=slug, created_at=now, **values))
            conn.execute(insert(fleet_tenants).values(
                slug=slug, config_toml=toml, credential_ref=credential_ref, times=list(config.schedule.times),
                timezone=config.schedule.timezone, catch_up_minutes=config.schedule.catch_up_minutes,
                paused=int(paused), consecutive_failures=0,
            ))  # fmt: skip
        return self.get(slug)

    def get(self, slug: str) -> TenantRecord:
        with self.read() as conn:
            row = conn.execute(self._select().where(fleet_tenants.c.slug == slug)).first()
        if row is None:
            raise InputError(f"no tenant {slug!r} in the registry (see entra-sync tenants list)")
        return _record(row)

    def tenants(self) -> list[TenantRecord]:
        with self.read() as conn:
            return [_record(r) for r in conn.execute(self._select().order_by(fleet_tenants.c.slug))]

    def _select(self) -> Any:
        return select(*_COLUMNS).join(console_tenants, console_tenants.c.slug == fleet_tenants.c.slug)

    def remove(self, slug: str) -> None:
        """Forget a tenant: its registry row and slots (its run history stays, under its name)."""
        self.get(slug)
        with self.tx() as conn:
            conn.execute(delete(fleet_tenants).where(fleet_tenants.c.slug == slug))
            conn.execute(delete(console_tenants).where(console_tenants.c.slug == slug))

    def pause(self, slug: str, reason: str | None = None) -> None:
        self._set(slug, paused=1, paused_reason=reason)

    def resume(self, slug: str) -> None:
        """Resume from the next slot on (the slots missed while paused are not made up); a
        degraded tenant is given a fresh start."""
        self._set(
            slug, paused=0, paused_reason=None, next_slot_at=None, degraded_at=None, consecutive_failures=0
        )

    def _set(self, slug: str, **values: Any) -> None:
        with self.tx() as conn:
            if (
                conn.execute(
                    update(fleet_tenants).where(fleet_tenants.c.slug == slug).values(**values)
                ).rowcount
                == 0
            ):
                raise InputError(f"no tenant {slug!r} in the registry (see entra-sync tenants list)")

    def record_outcome(self, slug: str, status: str, error: str | None, degrade_after: int) -> TenantRecord:
        """Keep a finished run's health: ``succeeded`` (or ``refused``, a plan held for approval)
        resets the failures (only a success is the last success); any other status counts one more, and the
        ``degrade_after``-th in a row makes the tenant degraded."""
        now = self.clock.now()
        with self.tx() as conn:
            row = conn.execute(
                select(fleet_tenants.c.consecutive_failures, fleet_tenants.c.degraded_at)
                .where(fleet_tenants.c.slug == slug)
                .with_for_update()
            ).first()
            if row is None:
                raise InputError(f"no tenant {slug!r} in the registry")
            values: dict[str, Any] = {"last_run_at": now, "last_status": status, "last_error": error}
            if status in ("succeeded", "refused"):  # refused: it signed in and planned; a person decides
                values.update(consecutive_failures=0, degraded_at=None)
                if status == "succeeded":
                    values["last_success_at"] = now
            else:
                failures = int(row[0]) + 1
                values["consecutive_failures"] = failures
                if row[1] is None and degrade_after > 0 and failures >= degrade_after:
                    values["degraded_at"] = now
            conn.execute(update(fleet_tenants).where(fleet_tenants.c.slug == slug).values(**values))
        return self.get(slug)


def _emulated(config: Config) -> bool:
    url = config.tenant.graph_url if config.tenant is not None else None
    return bool(url and url.startswith("emulator:"))


def _reason(e: BaseException) -> str:
    orig = getattr(e, "orig", None) or e
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]
