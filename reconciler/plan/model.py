"""The plan: an ordered, deterministic list of changes. The plan is data.

A change is one of the typed operations of :mod:`reconciler.plan.operations` (``CreateGroup``,
``AddGroupMembers``, ...), each carrying its phase. ``Plan`` sorts its changes on construction (AUs,
groups, memberships, Teams; removals in reverse) so that the same inputs give the same plan byte for
byte. ``Plan.refusals`` holds the reasons a safety limit refuses the plan (empty: it may be applied).

JSON form: ``schemas/plan.schema.json``; every renderer reads only :meth:`Plan.to_dict`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.model import UserMatch
from reconciler.plan.operations import ACTIONS, KINDS, Action, AnyChange, Change, ChangeKind, change_id

__all__ = [
    "ACTIONS",
    "FORMAT_VERSION",
    "KINDS",
    "REFUSAL_CODE",
    "Action",
    "AnyChange",
    "Change",
    "ChangeKind",
    "Conflict",
    "Plan",
    "Warning",
    "change_id",
    "recorded_plan",
]

#: version of the plan document; 2 added ``refusals`` (in 1 they were warnings ``safetyRefusal``)
FORMAT_VERSION = 2
#: the warning code format 1 carried a safety refusal under (read, never written)
REFUSAL_CODE = "safetyRefusal"

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
    changes: tuple[AnyChange, ...] = ()
    warnings: tuple[Warning, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    #: checksum of the managed actual state the plan was made against (stale-plan detection)
    actual_fingerprint: str = ""
    #: counts of managed objects per kind in the actual state (for safety thresholds)
    managed_counts: Mapping[str, int] = field(default_factory=dict)
    #: how people were matched when the plan was made (a saved plan is applied reading the same way)
    user_match: UserMatch = "userPrincipalName"
    #: why a safety limit refuses this plan, one line each (empty: it may be applied)
    refusals: tuple[str, ...] = ()

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
            "formatVersion": FORMAT_VERSION,
            "userMatch": self.user_match,
            "actualFingerprint": self.actual_fingerprint,
            "managedCounts": dict(sorted(self.managed_counts.items())),
            "summary": self.summary(),
            "changes": [c.to_dict() for c in self.changes],
            "warnings": [w.to_dict() for w in self.warnings],
            "conflicts": [c.to_dict() for c in self.conflicts],
            "refusals": list(self.refusals),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"

    def checksum(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        """A plan document of either format (1: refusals were warnings ``safetyRefusal``)."""
        warnings = [Warning(code=w["code"], message=w["message"], key=w.get("key"), ref=w.get("ref"))
                    for w in d.get("warnings", ())]
        refusals = tuple(d.get("refusals", ())) + tuple(w.message for w in warnings if w.code == REFUSAL_CODE)
        return cls(
            changes=tuple(Change.from_dict(c) for c in d.get("changes", ())),
            warnings=tuple(w for w in warnings if w.code != REFUSAL_CODE),
            refusals=refusals,
            conflicts=tuple(
                Conflict(kind=c["kind"], key=c["key"], object_id=c["objectId"], field=c["field"],
                         value=c["value"])
                for c in d.get("conflicts", ())
            ),
            actual_fingerprint=d.get("actualFingerprint", ""),
            managed_counts=dict(d.get("managedCounts", {})),
            user_match=d.get("userMatch", "userPrincipalName"),
        )


def recorded_plan(warnings: Iterable[Mapping[str, Any]], conflicts: Iterable[Mapping[str, Any]]) -> Plan:
    """The warnings, refusals and conflicts a run store recorded for a plan (its warnings column
    holds the refusals as format 1 spelled them), as a plan without changes."""
    return Plan.from_dict({"warnings": list(warnings), "conflicts": list(conflicts)})


def by_id(changes: Iterable[AnyChange]) -> dict[str, AnyChange]:
    return {c.id: c for c in changes}
