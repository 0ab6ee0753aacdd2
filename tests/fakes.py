"""Test doubles shared by the test suite.

:class:`FakeDirectory` is an in-memory :class:`reconciler.ports.Directory`: it keeps managed AUs,
groups and Teams, a users index, records every call, treats "already a member" / "not a member" as
success (as the real provider must), and can be told to fail:

- ``fail_on(method, target, error)``: calls of ``method`` on ``target`` (an object id, or the key
  of the object being created; ``"*"`` for any) raise ``error``;
- ``fail_items[object_id] = message``: moving that user (or group) into or out of anything returns
  an ``ItemFailure``;
- ``defer_teams = True`` (or a set of group ids): ``create_team`` answers ``deferred``;
- ``hook``: called (outside the fake's lock) at the start of every write, e.g. to make threads meet.

Object ids are derived from keys (uuid5), so they do not depend on call order.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler.errors import DirectoryError
from reconciler.identity import user_ref
from reconciler.model import (
    ActualState,
    AdministrativeUnit,
    DesiredState,
    Group,
    Team,
    TeamTemplate,
)
from reconciler.plan.payloads import AdministrativeUnitFields, GroupFields
from reconciler.ports import CreateResult, Directory, ItemFailure, Progress, TeamOutcome

__all__ = ["FakeAU", "FakeDirectory", "FakeGroup", "FakeTeam", "fake_id"]

_NS = uuid.UUID("6f1c5a52-0d7e-4b7a-9a39-3c6a0c7e5b10")


def fake_id(key: str) -> str:
    """The object id the fake gives the object with ``key`` (or the user with that reference)."""
    return str(uuid.uuid5(_NS, key))


@dataclass
class FakeAU:
    key: str
    display_name: str
    description: str | None = None
    members: set[str] = field(default_factory=set)  # object ids (users or groups)


@dataclass
class FakeGroup:
    key: str
    display_name: str
    mail_nickname: str
    kind: str = "microsoft365"
    description: str | None = None
    visibility: str = "Private"
    owners: set[str] = field(default_factory=set)
    members: set[str] = field(default_factory=set)


@dataclass
class FakeTeam:
    group_id: str
    template: str = "standard"
    archived: bool = False


_FIELD_NAMES = {
    "displayName": "display_name",
    "display_name": "display_name",
    "description": "description",
    "visibility": "visibility",
    "mailNickname": "mail_nickname",
    "mail_nickname": "mail_nickname",
}


class FakeDirectory:
    def __init__(self, users: Iterable[str] | Mapping[str, str] = ()) -> None:
        self.users: dict[str, str] = {}
        self._refs_of: dict[str, str] | None = None
        if isinstance(users, Mapping):
            for ref, object_id in users.items():
                self.users[user_ref(ref)] = object_id
        else:
            for ref in users:
                self.add_user(ref)
        self.aus: dict[str, FakeAU] = {}
        self.groups: dict[str, FakeGroup] = {}
        self.teams: dict[str, FakeTeam] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.fail_items: dict[str, str] = {}
        self.defer_teams: bool | set[str] = False
        self.hook: Callable[[str, tuple[Any, ...]], None] | None = None
        self._fail: dict[tuple[str, str], BaseException] = {}
        self._lock = threading.RLock()

    # -- setting up ---------------------------------------------------------------------------

    def add_user(self, ref: str, object_id: str | None = None) -> str:
        object_id = object_id or fake_id("user:" + user_ref(ref))
        self.users[user_ref(ref)] = object_id
        self._refs_of = None
        return object_id

    def user_id(self, ref: str) -> str:
        return self.users[user_ref(ref)]

    def fail_on(self, method: str, target: str = "*", error: BaseException | None = None) -> None:
        self._fail[(method, target)] = error or DirectoryError(f"{method} failed for {target} (injected)")

    def clear_failures(self) -> None:
        self._fail.clear()
        self.fail_items.clear()

    def seed_au(self, key: str, display_name: str = "", members: Iterable[str] = ()) -> str:
        object_id = fake_id(key)
        self.aus[object_id] = FakeAU(key, display_name or key, None, {self.user_id(r) for r in members})
        return object_id

    def seed_group(
        self, key: str, display_name: str = "", owners: Iterable[str] = (), members: Iterable[str] = ()
    ) -> str:
        object_id = fake_id(key)
        self.groups[object_id] = FakeGroup(
            key, display_name or key, key.replace(":", "-"),
            owners={self.user_id(r) for r in owners}, members={self.user_id(r) for r in members},
        )
        return object_id

    @property
    def writes(self) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] != "read"]

    def methods_called(self) -> list[str]:
        return [c[0] for c in self.calls]

    # -- internals ----------------------------------------------------------------------------

    def _call(self, method: str, *args: Any, targets: Sequence[str] = ()) -> None:
        with self._lock:
            self.calls.append((method, *args))
        if self.hook is not None and method != "read":
            self.hook(method, args)
        for target in (*targets, "*"):
            error = self._fail.get((method, target))
            if error is not None:
                raise error

    def _refs(self) -> dict[str, str]:
        """user object id -> reference (rebuilt when the users index changes size)."""
        if self._refs_of is None or len(self._refs_of) != len(self.users):
            self._refs_of = {uid: ref for ref, uid in self.users.items()}
        return self._refs_of

    def _ref_of(self, object_id: str) -> str:
        return self._refs().get(object_id, "id:" + object_id)

    def _known(self, object_id: str) -> bool:
        return object_id in self.groups or object_id in self._refs()

    def _move(self, target: set[str], ids: Sequence[str], add: bool) -> list[ItemFailure]:
        failures = []
        for object_id in ids:
            if object_id in self.fail_items:
                failures.append(ItemFailure(object_id, self.fail_items[object_id]))
            elif add and not self._known(object_id):
                failures.append(ItemFailure(object_id, "Resource does not exist"))
            elif add:
                target.add(object_id)  # already a member: success
            else:
                target.discard(object_id)  # not a member: success
        return failures

    def _au(self, au_id: str) -> FakeAU:
        if au_id not in self.aus:
            raise DirectoryError(f"administrative unit {au_id} not found")
        return self.aus[au_id]

    def _group(self, group_id: str) -> FakeGroup:
        if group_id not in self.groups:
            raise DirectoryError(f"group {group_id} not found")
        return self.groups[group_id]

    @staticmethod
    def _update(obj: FakeAU | FakeGroup, fields: Mapping[str, Any]) -> None:
        for name, value in fields.items():
            attr = _FIELD_NAMES.get(name)
            if attr is not None:
                setattr(obj, attr, value)

    # -- the Directory protocol -----------------------------------------------------------------

    def read(self, desired: DesiredState | None = None, progress: Progress | None = None) -> ActualState:
        self._call("read")
        with self._lock:
            ids: dict[str, str] = {}
            aus = {}
            for au_id, a in self.aus.items():
                ids[a.key] = au_id
                user_members = frozenset(self._ref_of(m) for m in a.members if m not in self.groups)
                aus[a.key] = AdministrativeUnit(a.key, a.display_name, a.description, user_members)
            groups = {}
            for group_id, g in self.groups.items():
                ids[g.key] = group_id
                placed = frozenset(a.key for a in self.aus.values() if group_id in a.members)
                groups[g.key] = Group(
                    key=g.key, display_name=g.display_name, mail_nickname=g.mail_nickname,
                    kind=g.kind,  # type: ignore[arg-type]
                    description=g.description, visibility=g.visibility,  # type: ignore[arg-type]
                    owners=frozenset(self._ref_of(o) for o in g.owners),
                    members=frozenset(self._ref_of(m) for m in g.members),
                    administrative_units=placed,
                )
            teams = {}
            for group_id, t in self.teams.items():
                gkey = self.groups[group_id].key
                ids["team:" + gkey] = group_id
                teams[gkey] = Team("team:" + gkey, gkey, t.template, t.archived)  # type: ignore[arg-type]
            return ActualState(
                administrative_units=dict(sorted(aus.items())), groups=dict(sorted(groups.items())),
                teams=dict(sorted(teams.items())), ids=dict(sorted(ids.items())), users=dict(self.users),
            )

    def create_administrative_unit(self, au: AdministrativeUnit, member_ids: Sequence[str]) -> CreateResult:
        self._call("create_administrative_unit", au.key, tuple(member_ids), targets=(au.key,))
        with self._lock:
            object_id = fake_id(au.key)
            record = self.aus.setdefault(object_id, FakeAU(au.key, au.display_name, au.description))
            return CreateResult(object_id, tuple(self._move(record.members, member_ids, True)))

    def update_administrative_unit(self, object_id: str, fields: AdministrativeUnitFields) -> None:
        self._call("update_administrative_unit", object_id, fields.to_dict(), targets=(object_id,))
        with self._lock:
            self._update(self._au(object_id), fields.to_dict())

    def delete_administrative_unit(self, object_id: str) -> None:
        self._call("delete_administrative_unit", object_id, targets=(object_id,))
        with self._lock:
            self._au(object_id)
            del self.aus[object_id]

    def add_administrative_unit_members(self, au_id: str, member_ids: Sequence[str]) -> Sequence[ItemFailure]:
        self._call("add_administrative_unit_members", au_id, tuple(member_ids), targets=(au_id,))
        with self._lock:
            return self._move(self._au(au_id).members, member_ids, True)

    def remove_administrative_unit_members(
        self, au_id: str, member_ids: Sequence[str]
    ) -> Sequence[ItemFailure]:
        self._call("remove_administrative_unit_members", au_id, tuple(member_ids), targets=(au_id,))
        with self._lock:
            return self._move(self._au(au_id).members, member_ids, False)

    def create_group(self, group: Group, owner_ids: Sequence[str], member_ids: Sequence[str]) -> CreateResult:
        self._call("create_group", group.key, tuple(owner_ids), tuple(member_ids), targets=(group.key,))
        with self._lock:
            object_id = fake_id(group.key)
            record = self.groups.setdefault(
                object_id,
                FakeGroup(group.key, group.display_name, group.mail_nickname, group.kind, group.description,
                          group.visibility),
            )
            failures = self._move(record.owners, owner_ids, True)
            failures += self._move(record.members, member_ids, True)
            return CreateResult(object_id, tuple(failures))

    def update_group(self, object_id: str, fields: GroupFields) -> None:
        self._call("update_group", object_id, fields.to_dict(), targets=(object_id,))
        with self._lock:
            self._update(self._group(object_id), fields.to_dict())

    def delete_group(self, object_id: str) -> None:
        self._call("delete_group", object_id, targets=(object_id,))
        with self._lock:
            self._group(object_id)
            del self.groups[object_id]
            self.teams.pop(object_id, None)
            for au in self.aus.values():
                au.members.discard(object_id)

    def add_group_members(self, group_id: str, member_ids: Sequence[str]) -> Sequence[ItemFailure]:
        self._call("add_group_members", group_id, tuple(member_ids), targets=(group_id,))
        with self._lock:
            return self._move(self._group(group_id).members, member_ids, True)

    def remove_group_members(self, group_id: str, member_ids: Sequence[str]) -> Sequence[ItemFailure]:
        self._call("remove_group_members", group_id, tuple(member_ids), targets=(group_id,))
        with self._lock:
            return self._move(self._group(group_id).members, member_ids, False)

    def add_group_owners(self, group_id: str, owner_ids: Sequence[str]) -> Sequence[ItemFailure]:
        self._call("add_group_owners", group_id, tuple(owner_ids), targets=(group_id,))
        with self._lock:
            return self._move(self._group(group_id).owners, owner_ids, True)

    def remove_group_owners(self, group_id: str, owner_ids: Sequence[str]) -> Sequence[ItemFailure]:
        self._call("remove_group_owners", group_id, tuple(owner_ids), targets=(group_id,))
        with self._lock:
            return self._move(self._group(group_id).owners, owner_ids, False)

    def create_team(self, group_id: str, template: TeamTemplate) -> TeamOutcome:
        self._call("create_team", group_id, template, targets=(group_id,))
        with self._lock:
            self._group(group_id)
            deferred = self.defer_teams is True or (
                isinstance(self.defer_teams, set) and group_id in self.defer_teams
            )
            if deferred and group_id not in self.teams:
                return TeamOutcome("deferred", "the group is too new for a Team (404 after retries)")
            self.teams.setdefault(group_id, FakeTeam(group_id, template))
            return TeamOutcome("created")

    def archive_team(self, team_id: str) -> None:
        self._call("archive_team", team_id, targets=(team_id,))
        with self._lock:
            if team_id not in self.teams:
                raise DirectoryError(f"team {team_id} not found")
            self.teams[team_id].archived = True

    def unarchive_team(self, team_id: str) -> None:
        self._call("unarchive_team", team_id, targets=(team_id,))
        with self._lock:
            if team_id not in self.teams:
                raise DirectoryError(f"team {team_id} not found")
            self.teams[team_id].archived = False


if TYPE_CHECKING:  # the fake must keep implementing the protocol
    _directory: Directory = FakeDirectory()
