"""The console's data in the one store: users, tenants, roles per tenant, held plans, approvals,
login attempts (tables ``console_*``, migration 0004) and the settings audit trail (0006), beside
the run history.

Must: keep passwords as argon2 hashes and a client secret encrypted (never in clear); scope every
read of a tenant's data by the tenant. Must not: decide who may do what (that is the app's).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, Engine, and_, delete, func, insert, select, update

from entra_sync.store.engine import display_name, migrate, open_engine, writer
from entra_sync.store.tables import (
    console_approvals,
    console_held_plans,
    console_login_attempts,
    console_roles,
    console_settings_changes,
    console_tenants,
    console_users,
)
from reconciler.clock import Clock, SystemClock
from reconciler.errors import ConfigError
from reconciler.plan.model import Plan

__all__ = [
    "ROLES", "Approval", "ConsoleStore", "HeldPlan", "PlanHolder", "Role", "SettingsChange", "Tenant", "User",
    "hold_plan", "role_at_least",
]  # fmt: skip

Role = Literal["viewer", "approver", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "approver", "admin")


def role_at_least(role: str | None, needed: Role) -> bool:
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    password_hash: str
    disabled: bool


@dataclass(frozen=True, slots=True)
class Tenant:
    slug: str
    display_name: str
    config_path: Path
    require_other_approver: bool
    has_secret: bool


@dataclass(frozen=True, slots=True)
class HeldPlan:
    id: int
    tenant: str
    run_id: int | None
    plan: str
    checksum: str
    reasons: tuple[str, ...]
    requested_by: str | None
    created_at: float
    status: str
    outcome_run_id: int | None
    decided_at: float | None


@dataclass(frozen=True, slots=True)
class SettingsChange:
    username: str
    at: float
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Approval:
    approver: str
    decided_at: float
    decision: str
    outcome: str | None
    message: str | None


def _tenant(r: Any) -> Tenant:
    return Tenant(
        r.slug, r.display_name, Path(r.config_path), bool(r.require_other_approver), r.secret_enc is not None
    )


def _held(r: Any) -> HeldPlan:
    return HeldPlan(
        r.id,
        r.tenant,
        r.run_id,
        r.plan,
        r.checksum,
        tuple(r.reasons),
        r.requested_by,
        r.created_at,
        r.status,
        r.outcome_run_id,
        r.decided_at,
    )


def hold_plan(
    conn: Connection,
    tenant: str,
    run_id: int | None,
    plan_json: str,
    checksum: str,
    reasons: tuple[str, ...],
    requested_by: str | None,
    now: float,
) -> int:
    """Hold a refused plan for an approver (in ``conn``'s transaction); the held plan's id."""
    row = conn.execute(
        insert(console_held_plans)
        .values(
            tenant=tenant,
            run_id=run_id,
            plan=plan_json,
            checksum=checksum,
            reasons=list(reasons),
            requested_by=requested_by,
            created_at=now,
            status="held",
        )
        .returning(console_held_plans.c.id)
    ).one()
    return int(row[0])


class PlanHolder:
    """Holds a refused plan of one tenant for an approver (the run pipeline's ``hold``)."""

    def __init__(self, store: ConsoleStore, tenant: str) -> None:
        self.store, self.tenant = store, tenant

    def __call__(
        self, run_id: int | None, plan: Plan, reasons: tuple[str, ...], requested_by: str | None
    ) -> int:
        return self.store.hold(self.tenant, run_id, plan.to_json(), plan.checksum(), reasons, requested_by)

    def close(self) -> None:
        self.store.close()


class ConsoleStore:
    """The console tables of the store at ``target`` (a SQLite path or a database URL)."""

    def __init__(self, target: str | Path, clock: Clock | None = None) -> None:
        self.target = target
        self.path = display_name(target)
        self.clock: Clock = clock or SystemClock()
        self.engine: Engine = open_engine(target)
        migrate(self.engine, self.path)
        self._w = writer(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- users and roles --------------------------------------------------------------------

    def add_user(self, username: str, password_hash: str) -> int:
        name = username.strip()
        if not name:
            raise ConfigError("a console user needs a name", key="username")
        with self._w.begin() as c:
            if c.execute(select(console_users.c.id).where(console_users.c.username == name)).first():
                raise ConfigError(f"the console user {name!r} exists already", key="username")
            row = c.execute(
                insert(console_users)
                .values(
                    username=name,
                    password_hash=password_hash,
                    created_at=self.clock.now(),
                )
                .returning(console_users.c.id)
            ).one()
            return int(row[0])

    def user(self, username: str) -> User | None:
        with self.engine.connect() as c:
            r = c.execute(select(console_users).where(console_users.c.username == username)).first()
        return None if r is None else User(r.id, r.username, r.password_hash, bool(r.disabled))

    def user_by_id(self, user_id: int) -> User | None:
        with self.engine.connect() as c:
            r = c.execute(select(console_users).where(console_users.c.id == user_id)).first()
        return None if r is None else User(r.id, r.username, r.password_hash, bool(r.disabled))

    def grant(self, user_id: int, tenant: str, role: Role) -> None:
        if role not in ROLES:
            raise ConfigError(f"unknown role {role!r}; use one of {', '.join(ROLES)}", key="role")
        with self._w.begin() as c:
            c.execute(
                delete(console_roles).where(
                    (console_roles.c.user_id == user_id) & (console_roles.c.tenant == tenant)
                )
            )
            c.execute(insert(console_roles).values(user_id=user_id, tenant=tenant, role=role))

    def role(self, user_id: int, tenant: str) -> Role | None:
        with self.engine.connect() as c:
            r = c.execute(
                select(console_roles.c.role).where(
                    (console_roles.c.user_id == user_id) & (console_roles.c.tenant == tenant)
                )
            ).first()
        return None if r is None else r[0]

    def tenants_for(self, user_id: int) -> list[tuple[Tenant, Role]]:
        query = (
            select(console_tenants, console_roles.c.role)
            .join(console_roles, console_roles.c.tenant == console_tenants.c.slug)
            .where(console_roles.c.user_id == user_id)
            .order_by(console_tenants.c.display_name)
        )
        with self.engine.connect() as c:
            return [(_tenant(r), r.role) for r in c.execute(query)]

    # -- tenants ----------------------------------------------------------------------------

    def add_tenant(self, slug: str, display_name: str, config_path: Path) -> None:
        with self._w.begin() as c:
            if c.execute(select(console_tenants.c.slug).where(console_tenants.c.slug == slug)).first():
                c.execute(
                    update(console_tenants)
                    .where(console_tenants.c.slug == slug)
                    .values(display_name=display_name, config_path=str(config_path))
                )
            else:
                c.execute(
                    insert(console_tenants).values(
                        slug=slug,
                        display_name=display_name,
                        config_path=str(config_path),
                        created_at=self.clock.now(),
                    )
                )

    def tenant_for_config(self, config_file: Path) -> str | None:
        """The tenant whose configuration is this file (None: the console does not know it)."""
        wanted = str(Path(config_file).resolve())
        with self.engine.connect() as c:
            rows = c.execute(select(console_tenants.c.slug, console_tenants.c.config_path)).all()
        found = sorted(slug for slug, path in rows if str(Path(path).resolve()) == wanted)
        return found[0] if found else None

    def holder(self, tenant: str) -> PlanHolder:
        """Holds the refused plans of ``tenant``'s runs for an approver (closes this store)."""
        return PlanHolder(self, tenant)

    def tenant(self, slug: str) -> Tenant | None:
        with self.engine.connect() as c:
            r = c.execute(select(console_tenants).where(console_tenants.c.slug == slug)).first()
        return None if r is None else _tenant(r)

    def set_secret(self, slug: str, encrypted: str | None) -> None:
        """Keep the encrypted client secret (None: forget it)."""
        with self._w.begin() as c:
            c.execute(
                update(console_tenants).where(console_tenants.c.slug == slug).values(secret_enc=encrypted)
            )

    def encrypted_secret(self, slug: str) -> str | None:
        with self.engine.connect() as c:
            r = c.execute(select(console_tenants.c.secret_enc).where(console_tenants.c.slug == slug)).first()
        return None if r is None else r[0]

    def set_require_other_approver(self, slug: str, value: bool) -> None:
        with self._w.begin() as c:
            c.execute(
                update(console_tenants)
                .where(console_tenants.c.slug == slug)
                .values(require_other_approver=int(value))
            )

    # -- the settings audit trail -----------------------------------------------------------

    def record_settings_change(self, tenant: str, username: str, fields: tuple[str, ...]) -> None:
        """Who changed which settings of ``tenant``, now (field names only, never a value)."""
        with self._w.begin() as c:
            c.execute(
                insert(console_settings_changes).values(
                    tenant=tenant, username=username, at=self.clock.now(), fields=list(fields)
                )
            )

    def settings_changes(self, tenant: str, limit: int = 50) -> list[SettingsChange]:
        t = console_settings_changes
        with self.engine.connect() as c:
            rows = c.execute(select(t).where(t.c.tenant == tenant).order_by(t.c.id.desc()).limit(limit)).all()
        return [SettingsChange(r.username, r.at, tuple(r.fields)) for r in rows]

    # -- held plans and approvals -----------------------------------------------------------

    def hold(
        self,
        tenant: str,
        run_id: int | None,
        plan_json: str,
        checksum: str,
        reasons: tuple[str, ...],
        requested_by: str | None,
    ) -> int:
        with self._w.begin() as c:
            return hold_plan(c, tenant, run_id, plan_json, checksum, reasons, requested_by, self.clock.now())

    def held_plans(self, tenant: str, status: str | None = None, limit: int = 50) -> list[HeldPlan]:
        query = select(console_held_plans).where(console_held_plans.c.tenant == tenant)
        if status is not None:
            query = query.where(console_held_plans.c.status == status)
        with self.engine.connect() as c:
            return [_held(r) for r in c.execute(query.order_by(console_held_plans.c.id.desc()).limit(limit))]

    def held_plan(self, tenant: str, plan_id: int) -> HeldPlan | None:
        with self.engine.connect() as c:
            r = c.execute(
                select(console_held_plans).where(
                    and_(console_held_plans.c.tenant == tenant, console_held_plans.c.id == plan_id)
                )
            ).first()
        return None if r is None else _held(r)

    def claim(self, tenant: str, plan_id: int) -> bool:
        """Mark a held plan ``applying`` (False: someone else took it, or it was decided)."""
        with self._w.begin() as c:
            n = c.execute(
                update(console_held_plans)
                .where(
                    and_(
                        console_held_plans.c.tenant == tenant,
                        console_held_plans.c.id == plan_id,
                        console_held_plans.c.status == "held",
                    )
                )
                .values(status="applying")
            ).rowcount
        return n == 1

    def decide(
        self,
        plan_id: int,
        approver: str,
        decision: str,
        status: str,
        *,
        outcome: str | None = None,
        message: str | None = None,
        outcome_run_id: int | None = None,
    ) -> None:
        now = self.clock.now()
        with self._w.begin() as c:
            c.execute(
                update(console_held_plans)
                .where(console_held_plans.c.id == plan_id)
                .values(status=status, decided_at=now, outcome_run_id=outcome_run_id)
            )
            c.execute(
                insert(console_approvals).values(
                    held_plan_id=plan_id,
                    approver=approver,
                    decided_at=now,
                    decision=decision,
                    outcome=outcome,
                    message=message,
                )
            )

    def approvals(self, plan_id: int) -> list[Approval]:
        with self.engine.connect() as c:
            rows = c.execute(
                select(console_approvals)
                .where(console_approvals.c.held_plan_id == plan_id)
                .order_by(console_approvals.c.id)
            ).all()
        return [Approval(r.approver, r.decided_at, r.decision, r.outcome, r.message) for r in rows]

    # -- sign-in attempts -------------------------------------------------------------------

    def record_login(self, username: str, ip: str, ok: bool) -> None:
        with self._w.begin() as c:
            c.execute(
                insert(console_login_attempts).values(
                    username=username[:200], ip=ip, at=self.clock.now(), ok=int(ok)
                )
            )

    def failed_logins(self, username: str, ip: str, since: float) -> tuple[int, int]:
        """Failed sign-ins since ``since``: for this user name, and from this address."""
        t = console_login_attempts
        with self.engine.connect() as c:
            by_user = c.execute(
                select(func.count()).where(t.c.username == username, t.c.at >= since, t.c.ok == 0)
            ).scalar_one()
            by_ip = c.execute(
                select(func.count()).where(t.c.ip == ip, t.c.at >= since, t.c.ok == 0)
            ).scalar_one()
        return int(by_user), int(by_ip)
