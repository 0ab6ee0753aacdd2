"""What an apply did: one :class:`ChangeResult` per change of the plan, in plan order.

Statuses:

- ``done``: the change was made in full;
- ``partial``: the object was created or changed, but some members/owners could not be moved
  (``failures`` says which and why);
- ``failed``: the change was not made (``message`` says why);
- ``skipped``: not attempted because a change it depends on failed, was skipped or was deferred;
- ``deferred``: not attempted yet on purpose (a Team whose group is too young); it stays pending and
  the next run's plan contains it again.

Values only; :mod:`reconciler.apply.executor` produces them, the history stores them, the CLI and the HTML
report render them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from reconciler.ports import ItemFailure

__all__ = ["STATUSES", "ApplyResult", "ChangeResult", "ChangeStatus"]

ChangeStatus = Literal["done", "partial", "failed", "skipped", "deferred"]
STATUSES: tuple[ChangeStatus, ...] = ("done", "partial", "failed", "skipped", "deferred")

_DEFERRED_NOTE = "Teams wait for new groups to replicate; they are created on the next run"


@dataclass(frozen=True, slots=True)
class ChangeResult:
    change_id: str
    action: str
    kind: str
    key: str
    status: ChangeStatus
    message: str = ""
    #: members/owners (or administrative units) that could not be moved, in the order tried
    failures: tuple[ItemFailure, ...] = ()
    #: Graph id of the object changed (for a create: the new object's id)
    object_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.change_id,
            "action": self.action,
            "kind": self.kind,
            "key": self.key,
            "status": self.status,
        }
        if self.message:
            d["message"] = self.message
        if self.failures:
            d["failures"] = [{"objectId": f.object_id, "message": f.message} for f in self.failures]
        if self.object_id is not None:
            d["objectId"] = self.object_id
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ChangeResult:
        status = d["status"]
        if status not in STATUSES:
            raise ValueError(f"unknown change status {status!r} for {d.get('id')!r}")
        return cls(
            change_id=d["id"],
            action=d["action"],
            kind=d["kind"],
            key=d["key"],
            status=status,
            message=d.get("message", ""),
            failures=tuple(ItemFailure(f["objectId"], f["message"]) for f in d.get("failures", ())),
            object_id=d.get("objectId"),
        )


@dataclass(frozen=True)
class ApplyResult:
    """The outcome of one apply, one result per change in plan order."""

    results: tuple[ChangeResult, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        """Number of changes per status; every status is present (zero when none)."""
        out: dict[str, int] = dict.fromkeys(STATUSES, 0)
        for r in self.results:
            out[r.status] += 1
        return out

    @property
    def ok(self) -> bool:
        """True when nothing failed, partly failed or was skipped (deferred Teams are normal)."""
        return all(r.status in ("done", "deferred") for r in self.results)

    def by_status(self, status: ChangeStatus) -> tuple[ChangeResult, ...]:
        return tuple(r for r in self.results if r.status == status)

    def get(self, change_id: str) -> ChangeResult | None:
        for r in self.results:
            if r.change_id == change_id:
                return r
        return None

    def summary_text(self) -> str:
        """One line for people, e.g. ``Applied 40 changes: 38 done, 1 failed, 1 deferred (...).``"""
        n = len(self.results)
        if n == 0:
            return "No changes to apply."
        counts = self.counts
        parts = [f"{counts[s]} {s}" for s in STATUSES if counts[s]]
        text = f"Applied {n} change{'s' if n != 1 else ''}: {', '.join(parts)}"
        if counts["deferred"]:
            text += f" ({_DEFERRED_NOTE})"
        return text + "."

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "counts": self.counts,
            "results": [r.to_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ApplyResult:
        return cls(results=tuple(ChangeResult.from_dict(r) for r in d.get("results", ())))
