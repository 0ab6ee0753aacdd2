"""teamsAsyncOperation bookkeeping: operations finish when the clock passes their ``done_at``."""

from __future__ import annotations

from typing import Any

from providers.emulator.tenant import Operation, Tenant
from providers.emulator.wire import iso

__all__ = ["operation_json", "settle"]


def settle(tenant: Tenant, now: float) -> None:
    """Apply every finished operation (team ready, archived, unarchived). Idempotent."""
    if not tenant.pending_ops:
        return
    due = [op for op in tenant.pending_ops if op.done_at <= now]
    if not due:
        return
    tenant.pending_ops = [op for op in tenant.pending_ops if op.done_at > now]
    for op in sorted(due, key=lambda o: (o.done_at, o.id)):
        if op.applied:
            continue
        op.applied = True
        team = tenant.teams.get(op.team_id)
        if team is None:
            continue
        if op.op_type == "createTeam":
            group = tenant.groups.get(op.team_id)
            if group is not None:
                tenant.set_team_flag(group)
        elif op.op_type == "archiveTeam":
            team.archived = True
        elif op.op_type == "unarchiveTeam":
            team.archived = False


def operation_json(op: Operation, now: float) -> dict[str, Any]:
    status = "succeeded" if now >= op.done_at else "inProgress" if now > op.created else "notStarted"
    return {
        "id": op.id,
        "operationType": op.op_type,
        "createdDateTime": iso(op.created),
        "status": status,
        "lastActionDateTime": iso(min(now, op.done_at)),
        "attemptsCount": 1,
        "targetResourceId": op.team_id,
        "targetResourceLocation": f"/teams('{op.team_id}')",
        "error": None,
    }
