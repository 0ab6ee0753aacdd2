"""The plan: an ordered, deterministic list of changes. The plan is data.

A :class:`Change` says what happens to one object (or to one relation of one object): its action,
the kind of object, the object's key, its Graph id when known, the full before/after of what it
changes (a removal carries what is lost), the user references or keys a membership change moves,
and the ids of the changes it depends on. ``Plan`` sorts its changes on construction (AUs, groups,
memberships, Teams; removals in reverse) so that the same inputs give the same plan byte for byte.

JSON form: ``schemas/plan.schema.json``; every renderer reads only :meth:`Plan.to_dict`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from reconciler.identity import Key
from reconciler.model import UserMatch

__all__ = [
    "ACTIONS",
    "KINDS",
    "Action",
    "Change",
    "ChangeKind",
    "Conflict",
    "Plan",
    "Warning",
]

Action = Literal["create", "update", "delete", "add", "remove", "archive", "unarchive"]
ChangeKind = Literal[
    "administrativeUnit",
    "group",
    "team",
    "administrativeUnitMembers",  # members: user references
    "groupMembers",  # members: user references
    "groupOwners",  # members: user references
    "groupAdministrativeUnits",  # members: keys of the AUs a group is placed in
]
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

# Phase order: creates and updates go forward (AUs, groups, memberships, Teams); removals run
# afterwards in reverse (memberships, Teams, groups, AUs).
_PHASE: dict[tuple[str, str], int] = {
    ("create", "administrativeUnit"): 0,
    ("update", "administrativeUnit"): 0,
    ("create", "group"): 1,
    ("update", "group"): 1,
    ("add", "groupOwners"): 2,
    ("add", "groupMembers"): 2,
    ("add", "administrativeUnitMembers"): 2,
    ("add", "groupAdministrativeUnits"): 2,
    ("unarchive", "team"): 3,
    ("create", "team"): 3,
    # removals, reverse dependency order
    ("remove", "groupMembers"): 4,
    ("remove", "administrativeUnitMembers"): 4,
    ("remove", "groupAdministrativeUnits"): 4,
    ("remove", "groupOwners"): 5,  # after adds of new owners, so a group never loses its last one
    ("archive", "team"): 6,
    ("delete", "team"): 6,
    ("delete", "group"): 7,
    ("delete", "administrativeUnit"): 8,
}


def change_id(action: str, kind: str, key: str) -> str:
    return f"{action}:{kind}:{key}"


@dataclass(frozen=True, slots=True)
class Change:
    action: Action
    kind: ChangeKind
    key: Key
    #: Graph object id of the object changed, when it exists already
    object_id: str | None = None
    #: managed fields before (None for a create); a delete carries the whole prior object
    before: Mapping[str, Any] | None = None
    #: managed fields after (None for a delete)
    after: Mapping[str, Any] | None = None
    #: for add/remove: the user references (or AU keys) moved, sorted
    members: tuple[str, ...] = ()
    #: ids of changes that must succeed first
    depends_on: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", Key(self.key))
        if self.kind == "groupAdministrativeUnits":  # members are AU keys
            object.__setattr__(self, "members", tuple(Key(m) for m in self.members))

    @property
    def id(self) -> str:
        return change_id(self.action, self.kind, self.key)

    @property
    def phase(self) -> int:
        return _PHASE[(self.action, self.kind)]

    def sort_key(self) -> tuple[int, str, str]:
        return (self.phase, self.key, self.kind)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "action": self.action, "kind": self.kind, "key": self.key}
        if self.object_id is not None:
            d["objectId"] = self.object_id
        if self.before is not None:
            d["before"] = _jsonable(self.before)
        if self.after is not None:
            d["after"] = _jsonable(self.after)
        if self.members:
            d["members"] = list(self.members)
        if self.depends_on:
            d["dependsOn"] = list(self.depends_on)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Change:
        return cls(
            action=d["action"],
            kind=d["kind"],
            key=d["key"],
            object_id=d.get("objectId"),
            before=d.get("before"),
            after=d.get("after"),
            members=tuple(d.get("members", ())),
            depends_on=tuple(d.get("dependsOn", ())),
        )


@dataclass(frozen=True, slots=True)
class Warning:
    code: str  # e.g. "unresolvedUser"
    message: str
    key: str | None = None
    ref: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"code": self.code, "message": self.message}
        if self.key is not None:
            d["key"] = self.key
        if self.ref is not None:
            d["ref"] = self.ref
        return d


@dataclass(frozen=True, slots=True)
class Conflict:
    """A desired object collides with an unmanaged one in Entra; adopting it is an explicit act."""

    kind: str
    key: str
    object_id: str
    field: str  # "mailNickname" or "displayName"
    value: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "objectId": self.object_id,
                "field": self.field, "value": self.value}


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...] = ()
    warnings: tuple[Warning, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    #: checksum of the managed actual state the plan was made against (stale-plan detection)
    actual_fingerprint: str = ""
    #: counts of managed objects per kind in the actual state (for safety thresholds)
    managed_counts: Mapping[str, int] = field(default_factory=dict)
    #: how people were matched when the plan was made (a saved plan is applied reading the same way)
    user_match: UserMatch = "userPrincipalName"

    def __post_init__(self) -> None:
        object.__setattr__(self, "changes", tuple(sorted(self.changes, key=Change.sort_key)))
        object.__setattr__(
            self, "warnings",
            tuple(sorted(self.warnings, key=lambda w: (w.code, w.key or "", w.ref or "", w.message))),
        )
        object.__setattr__(
            self, "conflicts",
            tuple(sorted(self.conflicts, key=lambda c: (c.kind, c.key, c.object_id, c.field, c.value))),
        )

    @property
    def empty(self) -> bool:
        return not self.changes

    def summary(self) -> dict[str, int]:
        """Counts per ``action kind`` pair, and the number of memberships moved."""
        out: dict[str, int] = {}
        for c in self.changes:
            name = f"{c.action} {c.kind}"
            out[name] = out.get(name, 0) + (len(c.members) if c.members else 1)
        return dict(sorted(out.items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "formatVersion": 1,
            "userMatch": self.user_match,
            "actualFingerprint": self.actual_fingerprint,
            "managedCounts": dict(sorted(self.managed_counts.items())),
            "summary": self.summary(),
            "changes": [c.to_dict() for c in self.changes],
            "warnings": [w.to_dict() for w in self.warnings],
            "conflicts": [c.to_dict() for c in self.conflicts],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"

    def checksum(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        return cls(
            changes=tuple(Change.from_dict(c) for c in d.get("changes", ())),
            warnings=tuple(
                Warning(code=w["code"], message=w["message"], key=w.get("key"), ref=w.get("ref"))
                for w in d.get("warnings", ())
            ),
            conflicts=tuple(
                Conflict(kind=c["kind"], key=c["key"], object_id=c["objectId"], field=c["field"],
                         value=c["value"])
                for c in d.get("conflicts", ())
            ),
            actual_fingerprint=d.get("actualFingerprint", ""),
            managed_counts=dict(d.get("managedCounts", {})),
            user_match=d.get("userMatch", "userPrincipalName"),
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def by_id(changes: Iterable[Change]) -> dict[str, Change]:
    return {c.id: c for c in changes}
