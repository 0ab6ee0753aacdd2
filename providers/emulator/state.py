"""The in-memory tenant state (:class:`providers.emulator.tenant.Tenant` adds save and load):
users, groups, administrative units, applications with directory extension properties, Teams
and their async operations, education classes, deleted items, and the change log that delta
queries read.

Objects are kept in dicts keyed by id; members and owners in insertion-ordered dicts used as sets,
so a 50,000-user tenant with 400,000 memberships loads in seconds. Objects added through this API
(rather than over HTTP) are "old": created ``seed_age`` seconds before now, so replication lag and
the Team minimum group age never apply to them.

Must-not: read the wall clock; every time comes from ``self.clock``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from providers.emulator.changelog import ChangeLog
from providers.emulator.records import Application, DeletedItem, DirObject, Operation, Team
from providers.emulator.schema import KNOWN_PROPS
from providers.emulator.wire import iso
from reconciler.clock import Clock, VirtualClock

__all__ = ["KINDS", "TenantState"]

KINDS = ("user", "group", "administrativeUnit")
DEFAULT_SEED_AGE = 30 * 86400.0


class TenantState:
    """All directory state. Not thread-safe by itself: the engine locks around it."""

    def __init__(
        self, *, seed: int | None = None, clock: Clock | None = None, seed_age: float = DEFAULT_SEED_AGE
    ) -> None:
        self.clock: Clock = clock or VirtualClock()
        self.seed = seed
        self.seed_age = seed_age
        self.domain = "contoso.onmicrosoft.com"
        self.tenant_id = "00000000-0000-4000-8000-00000000e5e5"
        self._rng = random.Random(seed) if seed is not None else None
        self.users: dict[str, DirObject] = {}
        self.groups: dict[str, DirObject] = {}
        self.admin_units: dict[str, DirObject] = {}
        self.apps: dict[str, Application] = {}
        self.teams: dict[str, Team] = {}
        self.operations: dict[str, Operation] = {}
        self.deleted: dict[str, DeletedItem] = {}
        self.log = ChangeLog()
        self.user_index: dict[str, dict[str, str]] = {"userPrincipalName": {}, "mail": {}, "employeeId": {}}
        self.nickname_index: dict[str, str] = {}  # lower-case mailNickname -> id, Microsoft 365 groups only
        self.pending_ops: list[Operation] = []
        self.classes: dict[str, dict[str, Any]] = {}  # education class id (= its group's id) -> class props
        self.welcome_emails = 0  # welcome messages sent to new members of Microsoft 365 groups
        self._versions = dict.fromkeys(KINDS, 0)
        self._sorted: dict[str, tuple[int, list[str]]] = {}

    # ---- ids, lookup -------------------------------------------------------------------------
    def new_id(self, rng: random.Random | None = None) -> str:
        """A fresh GUID string, reproducible when a seeded ``rng`` (or the tenant's seed) is used.

        Must-not: return an id already in use (a reloaded tenant restarts its random sequence).
        """
        source = rng or self._rng
        while True:
            oid = (
                str(uuid.uuid4())
                if source is None
                else str(uuid.UUID(int=source.getrandbits(128), version=4))
            )
            if self.find(oid) is None and oid not in self.deleted:
                return oid

    def store(self, kind: str) -> dict[str, DirObject]:
        return {"user": self.users, "group": self.groups, "administrativeUnit": self.admin_units}[kind]

    def find(self, object_id: str) -> DirObject | None:
        return self.users.get(object_id) or self.groups.get(object_id) or self.admin_units.get(object_id)

    def sorted_ids(self, kind: str) -> list[str]:
        """All ids of one kind, sorted; cached until an object of that kind is added or removed."""
        version = self._versions[kind]
        cached = self._sorted.get(kind)
        if cached is None or cached[0] != version:
            cached = (version, sorted(self.store(kind)))
            self._sorted[kind] = cached
        return cached[1]

    def touched(self, kind: str) -> None:
        self._versions[kind] += 1

    # ---- creation ----------------------------------------------------------------------------
    def _created_time(self, now: float | None) -> float:
        return self.clock.now() - self.seed_age if now is None else now

    def insert(
        self,
        kind: str,
        props: Mapping[str, Any],
        *,
        created: float | None = None,
        object_id: str | None = None,
    ) -> DirObject:
        """Create an object of ``kind`` with ``props`` (unknown keys must be checked by the caller)."""
        created_at = self._created_time(created)
        oid = object_id or self.new_id()
        full: dict[str, Any] = dict.fromkeys(KNOWN_PROPS[kind])
        full.update(_defaults(kind, created_at))
        full.update({k: v for k, v in props.items() if not k.startswith("extension_")})
        full["id"] = oid
        if kind == "group" and full.get("mailEnabled") and not full.get("mail"):
            full["mail"] = f"{full.get('mailNickname')}@{self.domain}"
            full["proxyAddresses"] = [f"SMTP:{full['mail']}"]
        obj = DirObject(kind, oid, full, created_at)
        obj.ext = {k: v for k, v in props.items() if k.startswith("extension_") and v is not None}
        self.store(kind)[oid] = obj
        self.index(obj)
        self.touched(kind)
        self.log.record(self.clock.now(), kind, oid, "new")
        return obj

    def add_user(
        self,
        upn: str,
        display_name: str | None = None,
        mail: str | None = None,
        employee_id: str | None = None,
        *,
        object_id: str | None = None,
    ) -> str:
        """Add an (old) user; returns its object id."""
        props = {
            "userPrincipalName": upn,
            "displayName": display_name or upn.split("@")[0],
            "mail": mail,
            "employeeId": employee_id,
            "mailNickname": upn.split("@")[0],
        }
        return self.insert("user", props, object_id=object_id).id

    def add_group(
        self,
        display_name: str,
        *,
        mail_nickname: str | None = None,
        unified: bool = True,
        description: str | None = None,
        owners: Iterable[str] = (),
        members: Iterable[str] = (),
        extensions: Mapping[str, Any] | None = None,
        object_id: str | None = None,
    ) -> str:
        """Add an (old) Microsoft 365 (``unified``) or security group; returns its object id."""
        nick = mail_nickname or "".join(c for c in display_name if c.isalnum())[:64] or "group"
        props: dict[str, Any] = {
            "displayName": display_name,
            "mailNickname": nick,
            "description": description,
            "groupTypes": ["Unified"] if unified else [],
            "mailEnabled": unified,
            "securityEnabled": not unified,
            **(extensions or {}),
        }
        obj = self.insert("group", props, object_id=object_id)
        for o in owners:
            self.link(obj, "owners", o)
        for m in members:
            self.link(obj, "members", m)
        return obj.id

    def add_admin_unit(
        self,
        display_name: str,
        *,
        description: str | None = None,
        members: Iterable[str] = (),
        extensions: Mapping[str, Any] | None = None,
        object_id: str | None = None,
    ) -> str:
        """Add an (old) administrative unit; returns its object id."""
        obj = self.insert(
            "administrativeUnit",
            {"displayName": display_name, "description": description, **(extensions or {})},
            object_id=object_id,
        )
        for m in members:
            self.link(obj, "members", m)
        return obj.id

    def add_member(self, container_id: str, member_id: str) -> None:
        """Add a member to a group or AU (no checks; use the HTTP API for Graph's rules)."""
        container = self.groups.get(container_id) or self.admin_units[container_id]
        self.link(container, "members", member_id)

    def add_owner(self, group_id: str, owner_id: str) -> None:
        self.link(self.groups[group_id], "owners", owner_id)

    def start_operation(self, op: Operation) -> None:
        self.operations[op.id] = op
        self.pending_ops.append(op)

    def add_team(self, group_id: str, *, archived: bool = False) -> None:
        """Give an existing group a (ready) team."""
        now = self.clock.now()
        self.teams[group_id] = Team(group_id, now, now, archived)
        self.set_team_flag(self.groups[group_id])

    def register_extension(
        self,
        app_id: str,
        name: str,
        *,
        data_type: str = "String",
        target_objects: Iterable[str] = ("Group", "AdministrativeUnit"),
        multi_valued: bool = False,
    ) -> str:
        """Define a directory extension on the app ``app_id`` (created if new); returns its full name."""
        app = self.app(app_id)
        full = f"extension_{app_id.replace('-', '')}_{name}"
        app.extensions[full] = {
            "id": self.new_id(),
            "deletedDateTime": None,
            "appDisplayName": app.display_name,
            "dataType": data_type,
            "isMultiValued": multi_valued,
            "isSyncedFromOnPremises": False,
            "name": full,
            "targetObjects": list(target_objects),
        }
        return full

    def app(self, app_id: str) -> Application:
        """The application with this appId, created on first use (any appId resolves)."""
        app = self.apps.get(app_id)
        if app is None:
            app = Application(app_id, self.new_id(), f"app {app_id}")
            self.apps[app_id] = app
        return app

    def extension(self, name: str) -> dict[str, Any] | None:
        for app in self.apps.values():
            if name in app.extensions:
                return app.extensions[name]
        return None

    # ---- links -------------------------------------------------------------------------------
    def link(self, container: DirObject, relation: str, member_id: str) -> None:
        getattr(container, relation)[member_id] = None
        if relation == "members":
            self.log.record(self.clock.now(), container.kind, container.id, "member+", member_id)

    def unlink(self, container: DirObject, relation: str, member_id: str) -> None:
        getattr(container, relation).pop(member_id, None)
        if relation == "members":
            self.log.record(self.clock.now(), container.kind, container.id, "member-", member_id)

    def set_team_flag(self, group: DirObject) -> None:
        opts = list(group.props.get("resourceProvisioningOptions") or [])
        if "Team" not in opts:
            group.props["resourceProvisioningOptions"] = [*opts, "Team"]
            self.log.record(self.clock.now(), "group", group.id, "upd")

    # ---- removal -----------------------------------------------------------------------------
    def remove(self, obj: DirObject, *, soft: bool) -> None:
        """Delete an object: unlink it everywhere; keep it in deleted items when ``soft``."""
        now = self.clock.now()
        member_of: list[str] = []
        owner_of: list[str] = []
        for store in (self.groups, self.admin_units):
            for container in store.values():
                if obj.id in container.members:
                    self.unlink(container, "members", obj.id)
                    member_of.append(container.id)
                if obj.id in container.owners:
                    del container.owners[obj.id]
                    owner_of.append(container.id)
        del self.store(obj.kind)[obj.id]
        self.unindex(obj)
        team = self.teams.pop(obj.id, None)
        self.touched(obj.kind)
        if soft:
            obj.props["deletedDateTime"] = iso(now)
            self.deleted[obj.id] = DeletedItem(obj, now, member_of, owner_of, team)
        self.log.record(now, obj.kind, obj.id, "del" if soft else "purge")

    def restore(self, object_id: str) -> DirObject | None:
        item = self.deleted.pop(object_id, None)
        if item is None:
            return None
        obj = item.obj
        obj.props["deletedDateTime"] = None
        self.store(obj.kind)[obj.id] = obj
        self.index(obj)
        self.touched(obj.kind)
        self.log.record(self.clock.now(), obj.kind, obj.id, "new")
        for cid in item.member_of:
            container = self.groups.get(cid) or self.admin_units.get(cid)
            if container is not None:
                self.link(container, "members", obj.id)
        for cid in item.owner_of:
            if cid in self.groups:
                self.groups[cid].owners[obj.id] = None
        if item.team is not None:
            self.teams[obj.id] = item.team
        return obj

    # ---- indexes -----------------------------------------------------------------------------
    def index(self, obj: DirObject) -> None:
        """Add ``obj`` to the lookup indexes (users by UPN/mail/employeeId, M365 groups by nickname)."""
        if obj.kind == "user":
            self._index_user(obj)
        elif obj.kind == "group" and "Unified" in (obj.props.get("groupTypes") or []):
            nick = obj.props.get("mailNickname")
            if isinstance(nick, str):
                self.nickname_index[nick.lower()] = obj.id

    def unindex(self, obj: DirObject) -> None:
        if obj.kind == "user":
            self._unindex_user(obj)
        elif obj.kind == "group":
            nick = obj.props.get("mailNickname")
            if isinstance(nick, str) and self.nickname_index.get(nick.lower()) == obj.id:
                del self.nickname_index[nick.lower()]

    def _index_user(self, obj: DirObject) -> None:
        for name, index in self.user_index.items():
            value = obj.props.get(name)
            if isinstance(value, str):
                index[value.lower()] = obj.id

    def _unindex_user(self, obj: DirObject) -> None:
        for name, index in self.user_index.items():
            value = obj.props.get(name)
            if isinstance(value, str) and index.get(value.lower()) == obj.id:
                del index[value.lower()]

    def reindex_user(self, obj: DirObject, old: Mapping[str, Any]) -> None:
        for name, index in self.user_index.items():
            value = old.get(name)
            if isinstance(value, str) and index.get(value.lower()) == obj.id:
                del index[value.lower()]
        self._index_user(obj)


def _defaults(kind: str, created: float) -> dict[str, Any]:
    if kind == "user":
        return {
            "businessPhones": [],
            "accountEnabled": True,
            "createdDateTime": iso(created),
            "otherMails": [],
            "proxyAddresses": [],
            "userType": "Member",
        }
    if kind == "group":
        return {
            "createdDateTime": iso(created),
            "renewedDateTime": iso(created),
            "creationOptions": [],
            "groupTypes": [],
            "proxyAddresses": [],
            "resourceBehaviorOptions": [],
            "resourceProvisioningOptions": [],
            "onPremisesProvisioningErrors": [],
            "visibility": None,
        }
    return {"membershipType": "assigned", "isMemberManagementRestricted": False}
