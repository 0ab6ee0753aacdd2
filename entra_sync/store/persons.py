"""Which people a change moves, and what happened to each: the rows of ``person_changes``.

A membership change (``add``/``remove`` of ``groupMembers``, ``groupOwners`` or
``administrativeUnitMembers``) moves its ``members``; creating a group or unit adds the owners and
members in its ``after``; deleting one removes those in its ``before``. The outcome of each person
is the change's status, except in a change that partly failed: a person named by one of its
failures (by reference, or as ``"ref: message"``) failed, the others were moved.

Works on the JSON form of a change (:meth:`reconciler.plan.model.Change.to_dict`) so that the
migration that fills the table for runs recorded before it can use it too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from reconciler.identity import user_ref

__all__ = ["PERSON_COLUMNS", "PERSON_KINDS", "failed_people", "people_of", "person_rows"]

PERSON_KINDS = ("groupMembers", "groupOwners", "administrativeUnitMembers")

#: for a create or delete: the field of the object's document -> the membership kind it holds
_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "group": (("owners", "groupOwners"), ("members", "groupMembers")),
    "administrativeUnit": (("members", "administrativeUnitMembers"),),
}


def people_of(change: Mapping[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    """``(kind, action, person, person_norm)`` for each person ``change`` moves (each once)."""
    action, kind = str(change["action"]), str(change["kind"])
    found: list[tuple[str, str, Sequence[Any]]] = []
    if kind in PERSON_KINDS and action in ("add", "remove"):
        found.append((kind, action, change.get("members") or ()))
    elif kind in _FIELDS and action in ("create", "delete"):
        doc = change.get("after" if action == "create" else "before") or {}
        moved = "add" if action == "create" else "remove"
        found += [(member_kind, moved, doc.get(name) or ()) for name, member_kind in _FIELDS[kind]]
    seen: set[tuple[str, str]] = set()
    for member_kind, moved, refs in found:
        for ref in refs:
            norm = user_ref(str(ref))
            if (member_kind, norm) not in seen:
                seen.add((member_kind, norm))
                yield member_kind, moved, str(ref), norm


def failed_people(failures: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """person_norm -> message for every person a change's failures name."""
    out: dict[str, str] = {}
    for f in failures:
        message = str(f.get("message") or "")
        out.setdefault(user_ref(str(f.get("objectId") or "")), message)
        named, sep, _ = message.partition(": ")
        if sep and named:
            out.setdefault(user_ref(named), message)
    out.pop("", None)
    return out


#: the columns of a row of :func:`person_rows`, in order
PERSON_COLUMNS = (
    "run_id", "change_id", "kind", "key", "action", "person", "person_norm", "status", "message",
)


def person_rows(
    run_id: int,
    change: Mapping[str, Any],
    status: str | None = None,
    message: str | None = None,
    failures: Sequence[Mapping[str, Any]] = (),
) -> list[tuple[Any, ...]]:
    """The ``person_changes`` rows (:data:`PERSON_COLUMNS`) of one change of one run, with each
    person's outcome."""
    failed = failed_people(failures) if status == "partial" else {}
    change_id, key = str(change["id"]), str(change["key"])
    rows = []
    for kind, action, person, norm in people_of(change):
        own_status, own_message = status, message
        if status == "partial":
            own_status = "failed" if norm in failed else "done"
            own_message = failed.get(norm, message)
        rows.append((run_id, change_id, kind, key, action, person, norm, own_status, own_message or None))
    return rows
