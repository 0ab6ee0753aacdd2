"""The value types every layer shares: desired state and actual state.

The desired-state JSON document (``schemas/desired-state.schema.json``) is loaded into these
frozen dataclasses by :mod:`reconciler.document.load`; the Entra provider turns Graph payloads into the
same types, so the diff compares like with like.

Identity is the ``key``: a stable string derived from school data (never a display name and never
a Graph id), a :class:`~reconciler.identity.Key` (compared ignoring case, Unicode NFC; the
constructors here make every key one, so this is the model boundary). People are named by a
*user reference* (UPN by default, or mail / employeeId, see ``DesiredState.user_match``), stored
folded (:func:`~reconciler.identity.user_ref`, applied by the loader and the Entra read).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from reconciler.identity import Key, TeamKey, team_key

__all__ = [
    "ActualState",
    "AdministrativeUnit",
    "DesiredState",
    "EducationClass",
    "Group",
    "GroupKind",
    "RemovalPolicy",
    "SourceInfo",
    "Team",
    "TeamTemplate",
    "UnmanagedObject",
    "UserMatch",
]

GroupKind = Literal["microsoft365", "security"]
TeamTemplate = Literal["standard", "educationClass"]
UserMatch = Literal["userPrincipalName", "mail", "employeeId"]
Visibility = Literal["Private", "Public", "HiddenMembership"]
_V = TypeVar("_V")

def _keys(keys: frozenset[str]) -> frozenset[Key]:
    return keys if all(type(k) is Key for k in keys) else frozenset(Key(k) for k in keys)  # type: ignore[return-value]


def _keyed(items: Mapping[str, _V]) -> dict[Key, _V]:
    return {Key(k): v for k, v in items.items()}


@dataclass(frozen=True, slots=True)
class AdministrativeUnit:
    key: Key
    display_name: str
    description: str | None = None
    members: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", Key(self.key))


@dataclass(frozen=True, slots=True)
class EducationClass:
    """What makes a group an education class (``POST /education/classes``): the class's ids in the
    school's system. Graph's ``educationClass`` template needs a group created this way."""

    #: the class's id in the syncing system (``externalId``); the group's key by default
    external_id: str
    #: the school's short code for the class (``classCode``)
    class_code: str | None = None
    #: the class's name in the syncing system (``externalName``)
    external_name: str | None = None
    #: the term (or academic year) the class belongs to: its display name and external id
    term: str | None = None


@dataclass(frozen=True, slots=True)
class Group:
    key: Key
    display_name: str
    mail_nickname: str
    kind: GroupKind = "microsoft365"
    description: str | None = None
    visibility: Visibility = "Private"
    owners: frozenset[str] = frozenset()
    members: frozenset[str] = frozenset()
    #: keys of the administrative units this group is placed in
    administrative_units: frozenset[Key] = frozenset()
    #: set when the group is (to be) created as an education class; None for a plain group
    education: EducationClass | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", Key(self.key))
        object.__setattr__(self, "administrative_units", _keys(self.administrative_units))


@dataclass(frozen=True, slots=True)
class Team:
    key: TeamKey
    #: key of the group the team is made from
    group: Key
    template: TeamTemplate = "standard"
    archived: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", TeamKey(self.key))
        object.__setattr__(self, "group", Key(self.group))

    @classmethod
    def of(cls, group: str, template: TeamTemplate = "standard", archived: bool = False) -> Team:
        """The Team made from the group ``group`` (its key derived by :func:`team_key`)."""
        return cls(team_key(group), Key(group), template, archived)


@dataclass(frozen=True, slots=True)
class RemovalPolicy:
    """What happens to a managed object that is no longer desired."""

    administrative_units: Literal["delete", "keep"] = "delete"
    groups: Literal["delete", "keep"] = "delete"
    #: a Team cannot be deleted without its group; it is archived (read-only) or kept as it is
    teams: Literal["archive", "keep"] = "archive"


@dataclass(frozen=True, slots=True)
class SourceInfo:
    system: str = "unknown"
    generated_at: str | None = None
    academic_year: str | None = None


@dataclass(frozen=True, slots=True)
class DesiredState:
    administrative_units: tuple[AdministrativeUnit, ...] = ()
    groups: tuple[Group, ...] = ()
    teams: tuple[Team, ...] = ()
    policy: RemovalPolicy = field(default_factory=RemovalPolicy)
    source: SourceInfo = field(default_factory=SourceInfo)
    user_match: UserMatch = "userPrincipalName"
    version: int = 1

    def people(self) -> frozenset[str]:
        """Every user reference the document mentions."""
        refs: set[str] = set()
        for au in self.administrative_units:
            refs |= au.members
        for g in self.groups:
            refs |= g.owners | g.members
        return frozenset(refs)


@dataclass(frozen=True, slots=True)
class UnmanagedObject:
    """An object in Entra that does not carry our marker but may collide with a desired one."""

    kind: Literal["administrativeUnit", "group"]
    id: str
    display_name: str
    mail_nickname: str | None = None


@dataclass(frozen=True, slots=True)
class ActualState:
    """What the provider read from Entra: only objects that carry our marker.

    Objects use the same types as the desired state; memberships are user references. A member
    that the users index cannot name (for example a user without the match attribute) appears as
    ``"id:<objectId>"`` so that it can still be removed.
    """

    administrative_units: Mapping[Key, AdministrativeUnit] = field(default_factory=dict)
    groups: Mapping[Key, Group] = field(default_factory=dict)
    #: keyed by the key of the team's *group* (a team is identified by the group it is made from);
    #: an actual team's own key is ``"team:" + group key``
    teams: Mapping[Key, Team] = field(default_factory=dict)
    #: object key -> Graph object id, for every managed AU, group and team
    ids: Mapping[Key, str] = field(default_factory=dict)
    #: normalised user reference -> Graph object id (the users index)
    users: Mapping[str, str] = field(default_factory=dict)
    #: objects without our marker whose mailNickname or displayName collides with a desired one
    unmanaged: tuple[UnmanagedObject, ...] = ()

    def __post_init__(self) -> None:
        # the model boundary: whoever built the mappings, they are keyed by Key
        for name in ("administrative_units", "groups", "teams", "ids"):
            object.__setattr__(self, name, _keyed(getattr(self, name)))
