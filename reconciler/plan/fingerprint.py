"""A checksum of the managed actual state, for stale-plan detection, and the managed counts.

``apply PLAN.json`` reads Entra again and refuses the plan when :func:`fingerprint` of what it
reads differs from ``Plan.actual_fingerprint`` (Terraform's stale plan). The fingerprint covers
what the plan was computed from and what apply acts on: managed objects' keys, Graph ids, managed
fields, members, owners, AU placements and each Team's archive state.

Must-not: cover the users index (people come and go all day; apply resolves references afresh)
or unmanaged objects (conflicts are re-detected on every plan).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from reconciler.model import ActualState

__all__ = ["fingerprint", "managed_counts"]


def _line(h: Any, value: Any) -> None:
    h.update(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    h.update(b"\n")


def _sorted(refs: Iterable[str]) -> list[str]:
    return sorted(refs)


def fingerprint(actual: ActualState) -> str:
    """Hex sha256 of a canonical JSON form of the managed state (deterministic: keys sorted)."""
    h = hashlib.sha256()
    _line(h, ["entra-sync-state", 1])
    ids = actual.ids
    for key in sorted(actual.administrative_units):
        au = actual.administrative_units[key]
        _line(h, ["administrativeUnit", key, ids.get(key), au.display_name, au.description,
                  _sorted(au.members)])
    for key in sorted(actual.groups):
        g = actual.groups[key]
        _line(h, ["group", key, ids.get(key), g.display_name, g.mail_nickname, g.kind, g.description,
                  g.visibility, _sorted(g.owners), _sorted(g.members), _sorted(g.administrative_units)])
    for group_key in sorted(actual.teams):
        t = actual.teams[group_key]
        _line(h, ["team", group_key, t.key, ids.get(t.key), t.archived])
    return h.hexdigest()


def managed_counts(actual: ActualState) -> dict[str, int]:
    """Managed objects per kind and memberships per relation, as ``Plan.managed_counts`` holds."""
    aus = actual.administrative_units.values()
    groups = actual.groups.values()
    return {
        "administrativeUnit": len(actual.administrative_units),
        "administrativeUnitMembers": sum(len(a.members) for a in aus),
        "group": len(actual.groups),
        "groupAdministrativeUnits": sum(len(g.administrative_units) for g in groups),
        "groupMembers": sum(len(g.members) for g in groups),
        "groupOwners": sum(len(g.owners) for g in groups),
        "team": len(actual.teams),
    }
