"""The small protocols the pure core needs from the edges.

``reconciler.apply.executor`` drives a :class:`Directory` (implemented by ``providers.entra``);
nothing in the core imports httpx or msal. Hooks follow octoDNS's Must / May / Must-not style.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from reconciler.model import ActualState, AdministrativeUnit, DesiredState, Group, TeamTemplate
from reconciler.plan.payloads import AdministrativeUnitFields, GroupFields

__all__ = ["CreateResult", "Directory", "ItemFailure", "Progress", "TeamOutcome"]


class Progress(Protocol):
    def __call__(self, stage: str, done: int, total: int | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class ItemFailure:
    """One member (or owner) of a bulk change that could not be moved."""

    object_id: str
    message: str


@dataclass(frozen=True, slots=True)
class CreateResult:
    """A created object's id, and the members/owners that could not be bound to it."""

    object_id: str
    failures: tuple[ItemFailure, ...] = ()


@dataclass(frozen=True, slots=True)
class TeamOutcome:
    #: created: Graph accepted the request (a Team provisions asynchronously; the next read sees
    #: it); deferred: the group is still too young, try again in a later run
    status: Literal["created", "deferred"]
    message: str = ""


class Directory(Protocol):
    """What apply needs from a directory (Entra through Graph, or anything that behaves like it).

    Must: stamp the object's key as the ownership marker on every object it creates; treat
    "already a member" / "not a member" as success; raise an exception (with the object and the
    reason in its message, never a secret) when a change fails as a whole.
    Must not: change or delete an object that does not carry the marker.
    May: pack bulk member changes (20 binds per PATCH, 20 requests per ``$batch``), and the
    requests of concurrent changes together: apply enters ``change_scope()`` (when the directory
    has one, a context manager) around each change, on the thread that makes it.
    """

    def read(self, desired: DesiredState | None = None, progress: Progress | None = None) -> ActualState:
        """Read every managed object, the users index, and unmanaged objects that collide with
        ``desired`` (same mailNickname or displayName)."""
        ...

    def create_administrative_unit(self, au: AdministrativeUnit, member_ids: Sequence[str]) -> CreateResult:
        """Create the AU stamped with ``au.key``, then add ``member_ids`` (user object ids)."""
        ...

    def update_administrative_unit(self, object_id: str, fields: AdministrativeUnitFields) -> None:
        """Set the fields ``fields`` holds (their JSON names, ``fields.to_dict()``, are Graph's)."""
        ...

    def delete_administrative_unit(self, object_id: str) -> None: ...

    def add_administrative_unit_members(
        self, au_id: str, member_ids: Sequence[str]
    ) -> Sequence[ItemFailure]: ...

    def remove_administrative_unit_members(
        self, au_id: str, member_ids: Sequence[str]
    ) -> Sequence[ItemFailure]: ...

    def create_group(
        self, group: Group, owner_ids: Sequence[str], member_ids: Sequence[str]
    ) -> CreateResult:
        """Create the group stamped with ``group.key`` with owners bound at creation (app-only
        groups need one) and members too: at most 20 relationships in the create body, owners
        first, the rest added afterwards. Must not create a duplicate when a previous attempt's
        response was lost: look for the object by its marker first. ``group.administrative_units``
        is not handled here (the plan has separate placement changes)."""
        ...

    def update_group(self, object_id: str, fields: GroupFields) -> None:
        """Set the fields ``fields`` holds (their JSON names, ``fields.to_dict()``, are Graph's)."""
        ...

    def delete_group(self, object_id: str) -> None: ...

    def add_group_members(self, group_id: str, member_ids: Sequence[str]) -> Sequence[ItemFailure]: ...

    def remove_group_members(self, group_id: str, member_ids: Sequence[str]) -> Sequence[ItemFailure]: ...

    def add_group_owners(self, group_id: str, owner_ids: Sequence[str]) -> Sequence[ItemFailure]: ...

    def remove_group_owners(self, group_id: str, owner_ids: Sequence[str]) -> Sequence[ItemFailure]: ...

    def create_team(self, group_id: str, template: TeamTemplate) -> TeamOutcome:
        """Make a Team from the group. While the group is too young (Graph answers 404 for up to
        15 minutes) retry as documented, then return ``deferred`` rather than wait longer."""
        ...

    def archive_team(self, team_id: str) -> None: ...

    def unarchive_team(self, team_id: str) -> None: ...
