"""The records the tenant keeps: directory objects, applications, Teams, operations, deleted items."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Application", "DeletedItem", "DirObject", "Operation", "Team"]


@dataclass(eq=False)
class DirObject:
    """A user, group or administrative unit. ``props`` holds every known property (unset = None)."""

    kind: str
    id: str
    props: dict[str, Any]
    created: float
    ext: dict[str, Any] = field(default_factory=dict)
    members: dict[str, None] = field(default_factory=dict)
    owners: dict[str, None] = field(default_factory=dict)


@dataclass(eq=False)
class Application:
    app_id: str
    object_id: str
    display_name: str
    extensions: dict[str, dict[str, Any]] = field(default_factory=dict)  # full name -> definition


@dataclass(eq=False)
class Team:
    id: str
    created: float
    ready_at: float
    archived: bool = False
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class Operation:
    """A teamsAsyncOperation; its effect is applied when the clock passes ``done_at``."""

    id: str
    team_id: str
    op_type: str  # "createTeam" | "archiveTeam" | "unarchiveTeam"
    created: float
    done_at: float
    applied: bool = False


@dataclass(eq=False)
class DeletedItem:
    """A soft-deleted object with the memberships, ownerships and team it had (restored with it)."""

    obj: DirObject
    deleted_at: float
    member_of: list[str] = field(default_factory=list)
    owner_of: list[str] = field(default_factory=list)
    team: Team | None = None
