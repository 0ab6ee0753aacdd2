"""Typed payloads: what a change carries as its ``before`` and ``after``.

Each operation of :mod:`reconciler.plan.operations` declares the payload types of its two sides
(``CreateGroup`` is a ``Change[None, GroupDocument]``); a change refuses a payload of another type.

- A whole object, as a create adds it or a delete takes it away: :class:`AdministrativeUnitDocument`,
  :class:`GroupDocument`, :class:`TeamDocument`.
- The managed fields an update changes, on each side: :class:`AdministrativeUnitFields`,
  :class:`GroupFields` (a field the update leaves alone is :data:`UNSET`).
- A Team's archived state, before and after an archive or unarchive: :class:`TeamStatus`.

``to_dict`` gives the JSON shape a saved plan holds (``schemas/plan.schema.json``: camelCase names
as in the desired-state document, lists sorted); ``from_dict`` reads it back and names what is
missing or wrong (``ValueError``), so a hand-edited plan is refused with a reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, TypeAlias

from reconciler.document.parse import education_document, parse_education
from reconciler.identity import Key
from reconciler.model import (
    AdministrativeUnit,
    EducationClass,
    Group,
    GroupKind,
    TeamTemplate,
    Visibility,
)

__all__ = [
    "UNSET",
    "AdministrativeUnitDocument",
    "AdministrativeUnitFields",
    "Fields",
    "GroupDocument",
    "GroupFields",
    "Payload",
    "TeamDocument",
    "TeamStatus",
    "Unset",
]


class Unset(Enum):
    """The type of :data:`UNSET`: a field an update does not change (``None`` is a value: no
    description)."""

    UNSET = "unset"

    def __repr__(self) -> str:
        return "UNSET"


UNSET = Unset.UNSET

_GROUP_KINDS = ("microsoft365", "security")
_VISIBILITIES = ("Private", "Public", "HiddenMembership")
_TEMPLATES = ("standard", "educationClass")


class Payload:
    """A change's ``before`` or ``after``. Abstract: use one of the classes below."""

    __slots__ = ()
    #: for messages: what the payload describes
    what: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, strict: bool = True) -> Payload:
        """Read the JSON ``d``. ``strict=False`` reads a record of the past (a run store's row made
        by an older version): a missing name is empty and a name it no longer has is ignored."""
        raise NotImplementedError

    def name(self) -> str | None:
        """The display name this side holds, if any."""
        return None

    def people(self) -> tuple[str, ...]:
        """The user references bound with it (a create's members, then its owners)."""
        return ()

    def memberships(self) -> int:
        """How many owners and members are bound with it."""
        return len(self.people())


# -- reading a plan's JSON ------------------------------------------------------------------------------


def _check_names(what: str, d: Mapping[str, Any], allowed: Iterable[str], strict: bool) -> None:
    if not isinstance(d, Mapping):
        raise ValueError(f"{what}: is a {type(d).__name__}, not an object")
    if not strict:
        return
    allowed = tuple(allowed)
    unknown = sorted(set(d) - set(allowed))
    if unknown:
        raise ValueError(f"{what}: {', '.join(map(repr, unknown))} is not one of its fields "
                         f"({', '.join(a for a in allowed if a != 'team')})")


def _text(what: str, d: Mapping[str, Any], name: str, strict: bool = True) -> str:
    value = d.get(name, None if strict else "")
    if not strict and isinstance(value, str):
        return value
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what}: {name} is {'missing' if name not in d else repr(value)}; "
                         "it must be a non-empty string")
    return value


def _optional_text(what: str, d: Mapping[str, Any], name: str) -> str | None:
    value = d.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{what}: {name} is {value!r}; it must be a string or null")
    return value


def _choice(what: str, d: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str) -> Any:
    value = d.get(name, default)
    if value not in allowed:
        raise ValueError(f"{what}: {name} is {value!r}; it must be one of {', '.join(allowed)}")
    return value


def _refs(what: str, d: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = d.get(name, ())
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{what}: {name} must be a list of non-empty strings")
    return tuple(sorted(value))


def _keys(what: str, d: Mapping[str, Any], name: str) -> tuple[Key, ...] | None:
    return tuple(Key(k) for k in _refs(what, d, name)) if name in d else None


# -- whole objects --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdministrativeUnitDocument(Payload):
    """A whole administrative unit: the ``after`` of its create, the ``before`` of its delete."""

    what: ClassVar[str] = "administrative unit"
    display_name: str
    description: str | None = None
    #: user references, sorted
    members: tuple[str, ...] = ()
    #: on a delete: keys of the groups placed in it (they leave it with it); None on a create
    groups: tuple[Key, ...] | None = None

    @classmethod
    def of(cls, au: AdministrativeUnit, groups: Iterable[str] | None = None) -> AdministrativeUnitDocument:
        return cls(au.display_name, au.description, tuple(sorted(au.members)),
                   None if groups is None else tuple(sorted(Key(g) for g in groups)))

    def name(self) -> str | None:
        return self.display_name

    def people(self) -> tuple[str, ...]:
        return self.members

    def unit(self, key: Key) -> AdministrativeUnit:
        """The administrative unit ``key`` this document describes (for its create)."""
        return AdministrativeUnit(key, self.display_name, self.description, frozenset(self.members))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"displayName": self.display_name, "description": self.description,
                             "members": list(self.members)}
        if self.groups is not None:
            d["groups"] = list(self.groups)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, strict: bool = True) -> AdministrativeUnitDocument:
        what = cls.what
        _check_names(what, d, ("displayName", "description", "members", "groups"), strict)
        return cls(_text(what, d, "displayName", strict), _optional_text(what, d, "description"),
                   _refs(what, d, "members"), _keys(what, d, "groups"))


@dataclass(frozen=True, slots=True)
class GroupDocument(Payload):
    """A whole group: the ``after`` of its create, the ``before`` of its delete."""

    what: ClassVar[str] = "group"
    display_name: str
    mail_nickname: str
    kind: GroupKind = "microsoft365"
    description: str | None = None
    visibility: Visibility = "Private"
    #: user references, sorted
    owners: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    #: on a delete: the AUs it is placed in; None on a create (placing it is a change of its own)
    administrative_units: tuple[Key, ...] | None = None
    #: set when the group is (to be) created as an education class
    education: EducationClass | None = None

    @classmethod
    def of(cls, g: Group, *, placements: bool = True) -> GroupDocument:
        return cls(
            g.display_name, g.mail_nickname, g.kind, g.description, g.visibility,
            tuple(sorted(g.owners)), tuple(sorted(g.members)),
            tuple(sorted(g.administrative_units)) if placements else None, g.education,
        )

    def name(self) -> str | None:
        return self.display_name

    def people(self) -> tuple[str, ...]:
        return self.members + self.owners

    def group(self, key: Key) -> Group:
        """The group ``key`` this document describes (for its create)."""
        return Group(key, self.display_name, self.mail_nickname, self.kind, self.description,
                     self.visibility, frozenset(self.owners), frozenset(self.members),
                     frozenset(self.administrative_units or ()), self.education)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "displayName": self.display_name,
            "mailNickname": self.mail_nickname,
            "kind": self.kind,
            "description": self.description,
            "visibility": self.visibility,
            "owners": list(self.owners),
            "members": list(self.members),
        }
        if self.administrative_units is not None:
            d["administrativeUnits"] = list(self.administrative_units)
        if self.education is not None:
            d["education"] = education_document(self.education)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, strict: bool = True) -> GroupDocument:
        what = cls.what
        # "team": what plans made before Teams kept their groups said of a deleted group's Team
        _check_names(what, d, ("displayName", "mailNickname", "kind", "description", "visibility", "owners",
                               "members", "administrativeUnits", "education", "team"), strict)
        education = d.get("education")
        if education is not None and not (isinstance(education, Mapping) and education.get("externalId")):
            raise ValueError(f"{what}: education must be an object with an externalId")
        return cls(
            _text(what, d, "displayName", strict), _text(what, d, "mailNickname", strict),
            _choice(what, d, "kind", _GROUP_KINDS, "microsoft365"), _optional_text(what, d, "description"),
            _choice(what, d, "visibility", _VISIBILITIES, "Private"),
            _refs(what, d, "owners"), _refs(what, d, "members"), _keys(what, d, "administrativeUnits"),
            parse_education(education),
        )


@dataclass(frozen=True, slots=True)
class TeamDocument(Payload):
    """A Team to create: the group it is made from and its template."""

    what: ClassVar[str] = "Team"
    group: Key
    template: TeamTemplate = "standard"

    def __post_init__(self) -> None:
        object.__setattr__(self, "group", Key(self.group))

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "template": self.template}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, strict: bool = True) -> TeamDocument:
        what = cls.what
        _check_names(what, d, ("group", "template"), strict)
        return cls(Key(_text(what, d, "group", strict)), _choice(what, d, "template", _TEMPLATES, "standard"))


@dataclass(frozen=True, slots=True)
class TeamStatus(Payload):
    """A Team's archived state (each side of an archive or unarchive)."""

    what: ClassVar[str] = "Team"
    group: Key
    archived: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "group", Key(self.group))

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "archived": self.archived}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, strict: bool = True) -> TeamStatus:
        what = cls.what
        _check_names(what, d, ("group", "archived"), strict)
        archived = d.get("archived")
        if not isinstance(archived, bool):
            raise ValueError(f"{what}: archived is {archived!r}; it must be true or false")
        return cls(Key(_text(what, d, "group", strict)), archived)


# -- the fields an update changes -----------------------------------------------------------------------

#: (attribute, JSON name) of the fields an update can change
FieldNames: TypeAlias = tuple[tuple[str, str], ...]


class Fields(Payload):
    """The managed fields one side of an update holds; the others are :data:`UNSET`."""

    __slots__ = ()
    names: ClassVar[FieldNames]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for attr, name in self.names:
            value = getattr(self, attr)
            if value is not UNSET:
                out[name] = value
        return out

    def __bool__(self) -> bool:
        return any(getattr(self, attr) is not UNSET for attr, _ in self.names)

    def name(self) -> str | None:
        value = getattr(self, "display_name", UNSET)
        return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class AdministrativeUnitFields(Fields):
    """One side of an administrative unit's update."""

    what: ClassVar[str] = "administrative unit update"
    names: ClassVar[FieldNames] = (("display_name", "displayName"), ("description", "description"))
    display_name: str | Unset = UNSET
    description: str | Unset | None = UNSET

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, strict: bool = True) -> AdministrativeUnitFields:
        what = cls.what
        _check_names(what, d, ("displayName", "description"), strict)
        return cls(
            _text(what, d, "displayName", strict) if "displayName" in d else UNSET,
            _optional_text(what, d, "description") if "description" in d else UNSET,
        )


@dataclass(frozen=True, slots=True)
class GroupFields(Fields):
    """One side of a group's update."""

    what: ClassVar[str] = "group update"
    names: ClassVar[FieldNames] = (
        ("display_name", "displayName"), ("description", "description"), ("visibility", "visibility"),
    )
    display_name: str | Unset = UNSET
    description: str | Unset | None = UNSET
    visibility: Visibility | Unset = UNSET

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, strict: bool = True) -> GroupFields:
        what = cls.what
        _check_names(what, d, ("displayName", "description", "visibility"), strict)
        return cls(
            _text(what, d, "displayName", strict) if "displayName" in d else UNSET,
            _optional_text(what, d, "description") if "description" in d else UNSET,
            _choice(what, d, "visibility", _VISIBILITIES, "Private") if "visibility" in d else UNSET,
        )
