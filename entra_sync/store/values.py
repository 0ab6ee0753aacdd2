"""The values the run store hands out (frozen), and the rules for what goes into it.

Must not: let a secret in. :func:`redact` replaces every entry of a configuration summary whose name
looks like a secret (``secret``, ``password``, ``token``, ...) with ``"[redacted]"``; a database
URL is only ever shown without its password.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from reconciler.apply.result import ApplyResult, ChangeResult
from reconciler.errors import EntraSyncError
from reconciler.plan.model import AnyChange

__all__ = [
    "DRY_RUN_SUFFIX",
    "RUN_STATUSES",
    "HistoryError",
    "ObjectChange",
    "PersonChange",
    "RunChange",
    "RunDetail",
    "RunStatus",
    "RunSummary",
    "redact",
    "run_status_for",
]

RunStatus = Literal["running", "succeeded", "partial", "failed", "refused", "interrupted"]
RUN_STATUSES: tuple[RunStatus, ...] = ("running", "succeeded", "partial", "failed", "refused", "interrupted")

#: how the run pipeline marks a dry run's kind: ``sync (dry run)``, ``adopt (dry run)``
DRY_RUN_SUFFIX = " (dry run)"

_SECRET_NAME = re.compile(r"secret|password|passwd|token|credential|private|assertion|certificate", re.I)


class HistoryError(EntraSyncError):
    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"run history {path}: {message}")


@dataclass(frozen=True, slots=True)
class RunSummary:
    run_id: int
    kind: str
    status: str
    started_at: float
    finished_at: float | None
    error: str | None
    #: changes per result status (empty until results are recorded)
    counts: Mapping[str, int] = field(default_factory=dict)
    #: number of changes in the recorded plan
    change_count: int = 0
    #: the tenant the run was for (None on a single-tenant installation)
    tenant: str | None = None
    #: the run got as far as a plan (False: it stopped before, e.g. an unreadable export)
    planned: bool = False

    @property
    def duration(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at

    @property
    def dry_run(self) -> bool:
        """A run that stopped after its plan on purpose (the pipeline names it ``... (dry run)``)."""
        return self.kind.endswith(DRY_RUN_SUFFIX)


@dataclass(frozen=True, slots=True)
class RunChange:
    """One change of a run's plan and, once applied, its result."""

    seq: int
    change: AnyChange
    result: ChangeResult | None


@dataclass(frozen=True, slots=True)
class RunDetail:
    summary: RunSummary
    planned_at: float | None
    applied_at: float | None
    config: Mapping[str, Any]
    plan_summary: Mapping[str, int]
    plan_checksum: str | None
    warnings: tuple[Mapping[str, Any], ...]
    conflicts: tuple[Mapping[str, Any], ...]
    changes: tuple[RunChange, ...]

    @property
    def run_id(self) -> int:
        return self.summary.run_id

    def durations(self) -> dict[str, float]:
        """Seconds spent reading and planning, applying, and in all (only the known ones)."""
        s = self.summary
        out: dict[str, float] = {}
        if self.planned_at is not None:
            out["plan"] = self.planned_at - s.started_at
        if self.applied_at is not None:
            began = self.planned_at if self.planned_at is not None else s.started_at
            out["apply"] = self.applied_at - began
        if s.finished_at is not None:
            out["total"] = s.finished_at - s.started_at
        return out


@dataclass(frozen=True, slots=True)
class ObjectChange:
    """One change to one object in one run: the answer to "when did this change, and why".

    Asked about a person, it is one membership of theirs that a change moved: ``kind`` is
    ``groupMembers``/``groupOwners``/``administrativeUnitMembers``, ``key`` the group or unit,
    ``members`` the person, ``status`` their own outcome, and ``change_id`` the change that did it
    (which may be the group's create or delete)."""

    run_id: int
    run_kind: str
    run_started_at: float
    change_id: str
    action: str
    kind: str
    key: str
    #: None when the run planned the change but did not apply it (plan only, refused, crashed)
    status: str | None
    message: str | None
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PersonChange:
    """One membership of one person moved by one change of one run."""

    run_id: int
    run_kind: str
    run_status: str
    run_started_at: float
    #: the change that moved it: ``remove:groupMembers:KEY``, ``delete:group:KEY``, ...
    change_id: str
    #: groupMembers, groupOwners or administrativeUnitMembers
    kind: str
    #: the group's or unit's key
    key: str
    #: add or remove
    action: str
    #: the person's reference as planned
    person: str
    #: the person's own outcome (None: planned, not applied)
    status: str | None
    #: why it failed, or what the change said
    message: str | None
    tenant: str | None = None


def redact(value: Any) -> Any:
    """A copy of ``value`` (JSON-like) with every entry whose name looks like a secret replaced."""
    if isinstance(value, Mapping):
        return {
            str(k): "[redacted]" if _SECRET_NAME.search(str(k)) and v not in (None, "") else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def run_status_for(result: ApplyResult) -> RunStatus:
    """``succeeded`` when everything was done (or deferred), ``failed`` when nothing was done and
    something failed, ``partial`` otherwise."""
    if result.ok:
        return "succeeded"
    counts = result.counts
    if counts["done"] == 0 and counts["partial"] == 0:
        return "failed"
    return "partial"
