"""Typed operations: one class per kind of change a plan can hold (octoDNS's Create/Update/Delete
and Alembic's ops are the models).

Each class carries what every consumer used to look up in its own (action, kind) table: its
``action`` and ``kind`` (the JSON spelling), its ``phase`` in the apply order, its ``noun`` for
people (what a membership change moves, or the object), its ``symbol`` in renderings and the name
of its apply ``handler`` on the executor; and the types of its ``before`` and ``after``, named
as its base ``Change[Before, After]`` (:mod:`reconciler.plan.payloads`). The saved-plan codec finds
a class by its JSON spelling through :func:`operation` (the one registry, built from the classes
themselves) and reads its payloads with their own ``from_dict``.

A new kind of change is a new subclass here (with a handler in :mod:`reconciler.apply.executor`
and its ``action``/``kind`` in ``schemas/plan.schema.json``); nothing else lists them.

Phases: creates and updates go forward (AUs, groups, memberships, Teams); removals run afterwards
in reverse (memberships, owners, Teams, groups, AUs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, TypeAlias, TypeVar, get_args, get_origin

from reconciler.identity import Key
from reconciler.plan.payloads import (
    AdministrativeUnitDocument,
    AdministrativeUnitFields,
    GroupDocument,
    GroupFields,
    Payload,
    TeamDocument,
    TeamStatus,
)

__all__ = [
    "ACTIONS",
    "KINDS",
    "OPERATIONS",
    "Action",
    "AddAdministrativeUnitMembers",
    "AddGroupAdministrativeUnits",
    "AddGroupMembers",
    "AddGroupOwners",
    "AdoptAdministrativeUnit",
    "AdoptGroup",
    "AnyChange",
    "ArchiveTeam",
    "Change",
    "ChangeKind",
    "CreateAdministrativeUnit",
    "CreateGroup",
    "CreateTeam",
    "DeleteAdministrativeUnit",
    "DeleteGroup",
    "DeleteTeam",
    "MembershipChange",
    "PayloadError",
    "RemoveAdministrativeUnitMembers",
    "RemoveGroupAdministrativeUnits",
    "RemoveGroupMembers",
    "RemoveGroupOwners",
    "UnarchiveTeam",
    "UpdateAdministrativeUnit",
    "UpdateGroup",
    "change_id",
    "operation",
]

#: ``adopt`` is recorded by an adopt run (an unmanaged object taken over), never in a saved plan
Action = Literal["create", "update", "delete", "add", "remove", "archive", "unarchive", "adopt"]
ChangeKind = Literal[
    "administrativeUnit",
    "group",
    "team",
    "administrativeUnitMembers",  # members: user references
    "groupMembers",  # members: user references
    "groupOwners",  # members: user references
    "groupAdministrativeUnits",  # members: keys of the AUs a group is placed in
]
#: the order renderings list the actions of a plan and kinds in
ACTIONS: tuple[Action, ...] = ("create", "update", "delete", "add", "remove", "archive", "unarchive")
KINDS: tuple[ChangeKind, ...] = (
    "administrativeUnit",
    "group",
    "team",
    "administrativeUnitMembers",
    "groupMembers",
    "groupOwners",
    "groupAdministrativeUnits",
)


def change_id(action: str, kind: str, key: str) -> str:
    return f"{action}:{kind}:{key}"


#: the payload types of a change's two sides (``None``: that side is always empty)
B = TypeVar("B", bound=Payload | None)
A = TypeVar("A", bound=Payload | None)


@dataclass(frozen=True, slots=True)
class Change(Generic[B, A]):
    """What happens to one object (or to one relation of one object). Abstract: use a subclass.

    The object's key, its Graph id when known, the typed before/after of what it changes (a removal
    carries what is lost; :mod:`reconciler.plan.payloads`), the user references or keys a membership
    change moves, and the ids of the changes it depends on. A subclass names its payload types as
    ``Change[Before, After]``; a change refuses a payload of another type.
    """

    key: Key
    #: Graph object id of the object changed, when it exists already
    object_id: str | None = None
    #: what is there before (None for a create); a delete carries the whole prior object
    before: B | None = None
    #: what is there after (None for a delete)
    after: A | None = None
    #: for add/remove: the user references (or AU keys) moved, sorted
    members: tuple[str, ...] = ()
    #: ids of changes that must succeed first
    depends_on: tuple[str, ...] = ()

    action: ClassVar[Action]
    kind: ClassVar[ChangeKind]
    #: position in the apply order (see the module docstring)
    phase: ClassVar[int]
    #: for people: what a membership change moves ("members", "owners", ...), or the object
    noun: ClassVar[str]
    #: in renderings: + create/add, ~ update, - delete/remove, > archive, < unarchive, = adopt
    symbol: ClassVar[str]
    #: the executor's method that applies it
    handler: ClassVar[str]
    #: the payload types of ``before`` and ``after`` (None: always empty), from ``Change[B, A]``
    before_type: ClassVar[type[Payload] | None] = None
    after_type: ClassVar[type[Payload] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super(Change, cls).__init_subclass__(**kwargs)  # the class dataclass(slots=True) made
        for base in getattr(cls, "__orig_bases__", ()):
            if get_origin(base) is Change:
                cls.before_type, cls.after_type = (_payload_type(t) for t in get_args(base))

    def __post_init__(self) -> None:
        if type(self) is Change or type(self) is MembershipChange:
            raise TypeError("Change is abstract: make one of its operations (CreateGroup, ...)")
        object.__setattr__(self, "key", Key(self.key))
        for side, expected in (("before", self.before_type), ("after", self.after_type)):
            value = getattr(self, side)
            if value is not None and type(value) is not expected:
                want = f"a {expected.__name__}" if expected is not None else "None"
                raise TypeError(f"{type(self).__name__}.{side} must be {want}, not a {type(value).__name__}")

    @classmethod
    def id_for(cls, key: str) -> str:
        """The id a change of this class on ``key`` has (for ``depends_on``)."""
        return change_id(cls.action, cls.kind, key)

    @property
    def id(self) -> str:
        return change_id(self.action, self.kind, self.key)

    def sort_key(self) -> tuple[int, str, str]:
        return (self.phase, self.key, self.kind)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "action": self.action, "kind": self.kind, "key": self.key}
        if self.object_id is not None:
            d["objectId"] = self.object_id
        if self.before is not None:
            d["before"] = self.before.to_dict()
        if self.after is not None:
            d["after"] = self.after.to_dict()
        if self.members:
            d["members"] = list(self.members)
        if self.depends_on:
            d["dependsOn"] = list(self.depends_on)
        return d

    @staticmethod
    def from_dict(d: Mapping[str, Any], *, strict: bool = True) -> AnyChange:
        """The change a plan document holds (its class found by its ``action`` and ``kind``);
        ``ValueError`` names what is wrong with its payloads. ``strict=False`` reads a record of
        the past (a run store's row an older version wrote; see :meth:`Payload.from_dict`)."""
        cls = operation(str(d["action"]), str(d["kind"]))
        return cls(
            key=d["key"],
            object_id=d.get("objectId"),
            before=_payload(cls, "before", d.get("before"), strict),
            after=_payload(cls, "after", d.get("after"), strict),
            members=tuple(d.get("members", ())),
            depends_on=tuple(d.get("dependsOn", ())),
        )


def _payload_type(t: Any) -> type[Payload] | None:
    if t is type(None):
        return None
    if isinstance(t, type) and issubclass(t, Payload):
        return t
    raise TypeError(f"a change's payload type must be a Payload class or None, not {t!r}")


class PayloadError(ValueError):
    """A change's ``before`` or ``after`` in a plan document is not what its operation carries."""

    def __init__(self, side: str, message: str) -> None:
        super().__init__(f"{side}: {message}")
        self.side = side
        self.message = message


def _payload(cls: type[AnyChange], side: str, value: Any, strict: bool) -> Payload | None:
    if value is None:
        return None
    expected = cls.before_type if side == "before" else cls.after_type
    if expected is None:
        if not strict:
            return None
        raise PayloadError(side, f"a change {cls.action} {cls.kind} has no {side}: remove it")
    try:
        return expected.from_dict(value, strict=strict)
    except ValueError as exc:
        raise PayloadError(side, str(exc)) from None


#: any change, whatever its payloads (for code that handles every kind)
AnyChange: TypeAlias = Change[Any, Any]


class MembershipChange(Change[None, None]):
    """An add or remove on one relation of an object: ``members`` are what it moves."""

    __slots__ = ()


# -- administrative units ---------------------------------------------------------------------------


class CreateAdministrativeUnit(Change[None, AdministrativeUnitDocument]):
    __slots__ = ()
    action, kind, phase = "create", "administrativeUnit", 0
    noun, symbol, handler = "administrative unit", "+", "create_au"


class UpdateAdministrativeUnit(Change[AdministrativeUnitFields, AdministrativeUnitFields]):
    __slots__ = ()
    action, kind, phase = "update", "administrativeUnit", 0
    noun, symbol, handler = "administrative unit", "~", "update"


class DeleteAdministrativeUnit(Change[AdministrativeUnitDocument, None]):
    __slots__ = ()
    action, kind, phase = "delete", "administrativeUnit", 8
    noun, symbol, handler = "administrative unit", "-", "delete"


class AddAdministrativeUnitMembers(MembershipChange):
    __slots__ = ()
    action, kind, phase = "add", "administrativeUnitMembers", 2
    noun, symbol, handler = "members", "+", "members"


class RemoveAdministrativeUnitMembers(MembershipChange):
    __slots__ = ()
    action, kind, phase = "remove", "administrativeUnitMembers", 4
    noun, symbol, handler = "members", "-", "members"


# -- groups -------------------------------------------------------------------------------------------


class CreateGroup(Change[None, GroupDocument]):
    __slots__ = ()
    action, kind, phase = "create", "group", 1
    noun, symbol, handler = "group", "+", "create_group"


class UpdateGroup(Change[GroupFields, GroupFields]):
    __slots__ = ()
    action, kind, phase = "update", "group", 1
    noun, symbol, handler = "group", "~", "update"


class DeleteGroup(Change[GroupDocument, None]):
    __slots__ = ()
    action, kind, phase = "delete", "group", 7
    noun, symbol, handler = "group", "-", "delete"


class AddGroupMembers(MembershipChange):
    __slots__ = ()
    action, kind, phase = "add", "groupMembers", 2
    noun, symbol, handler = "members", "+", "members"


class RemoveGroupMembers(MembershipChange):
    __slots__ = ()
    action, kind, phase = "remove", "groupMembers", 4
    noun, symbol, handler = "members", "-", "members"


class AddGroupOwners(MembershipChange):
    __slots__ = ()
    action, kind, phase = "add", "groupOwners", 2
    noun, symbol, handler = "owners", "+", "members"


class RemoveGroupOwners(MembershipChange):
    __slots__ = ()
    # after the adds of new owners, so that a group never loses its last one
    action, kind, phase = "remove", "groupOwners", 5
    noun, symbol, handler = "owners", "-", "members"


class AddGroupAdministrativeUnits(MembershipChange):
    """Place a group in administrative units: ``members`` are the AUs' keys."""

    __slots__ = ()
    action, kind, phase = "add", "groupAdministrativeUnits", 2
    noun, symbol, handler = "administrative units", "+", "placements"

    def __post_init__(self) -> None:
        Change.__post_init__(self)
        object.__setattr__(self, "members", tuple(Key(m) for m in self.members))


class RemoveGroupAdministrativeUnits(MembershipChange):
    """Take a group out of administrative units: ``members`` are the AUs' keys."""

    __slots__ = ()
    action, kind, phase = "remove", "groupAdministrativeUnits", 4
    noun, symbol, handler = "administrative units", "-", "placements"

    def __post_init__(self) -> None:
        Change.__post_init__(self)
        object.__setattr__(self, "members", tuple(Key(m) for m in self.members))


# -- Teams --------------------------------------------------------------------------------------------


class CreateTeam(Change[None, TeamDocument]):
    __slots__ = ()
    action, kind, phase = "create", "team", 3
    noun, symbol, handler = "Team", "+", "create_team"


class UnarchiveTeam(Change[TeamStatus, TeamStatus]):
    __slots__ = ()
    action, kind, phase = "unarchive", "team", 3
    noun, symbol, handler = "Team", "<", "archive_team"


class ArchiveTeam(Change[TeamStatus, TeamStatus]):
    __slots__ = ()
    action, kind, phase = "archive", "team", 6
    noun, symbol, handler = "Team", ">", "archive_team"


class DeleteTeam(Change[TeamStatus, None]):
    __slots__ = ()
    action, kind, phase = "delete", "team", 6
    noun, symbol, handler = "Team", "-", "delete_team"


# -- adoptions: recorded as a run's changes by `adopt`, never planned ----------------------------------


class AdoptAdministrativeUnit(Change[None, None]):
    __slots__ = ()
    action, kind, phase = "adopt", "administrativeUnit", -1
    noun, symbol, handler = "administrative unit", "=", "adopt"


class AdoptGroup(Change[None, None]):
    __slots__ = ()
    action, kind, phase = "adopt", "group", -1
    noun, symbol, handler = "group", "=", "adopt"


def _concrete(cls: type[AnyChange]) -> list[type[AnyChange]]:
    out: list[type[AnyChange]] = []
    for sub in cls.__subclasses__():
        out += [sub] if "action" in vars(sub) else _concrete(sub)
    return out


#: (action, kind) -> its class: built from the classes above, the one registry
OPERATIONS: Mapping[tuple[str, str], type[AnyChange]] = {(c.action, c.kind): c for c in _concrete(Change)}


def operation(action: str, kind: str) -> type[AnyChange]:
    """The class of the change ``action kind`` (``ValueError`` when there is none)."""
    try:
        return OPERATIONS[(action, kind)]
    except KeyError:
        raise ValueError(f"a plan has no change {action!r} on {kind!r}") from None

