"""Save and load a tenant as one JSON file (sorted, stable, written atomically).

Errors: :class:`TenantFileError` (an :class:`reconciler.errors.InputError`) names the file and says
what to do.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

from providers.emulator.changelog import ChangeLog
from providers.emulator.records import Application, DeletedItem, DirObject, Operation, Team
from providers.emulator.state import TenantState
from reconciler.clock import Clock
from reconciler.errors import InputError

__all__ = [
    "FORMAT",
    "TenantFileError",
    "finish_snapshot",
    "load_tenant",
    "save_tenant",
    "temp_beside",
    "to_json",
    "write_snapshot",
]

FORMAT = "entra-sync-emulator-tenant"
VERSION = 1
T = TypeVar("T", bound=TenantState)


class TenantFileError(InputError):
    def __init__(self, file: str, message: str) -> None:
        self.file = file
        super().__init__(f"{file}: {message}")


def _obj(o: DirObject) -> dict[str, Any]:
    # Copies, so a snapshot taken under the engine lock can be written after the lock is released.
    out: dict[str, Any] = {"id": o.id, "created": o.created, "props": dict(o.props), "ext": dict(o.ext)}
    if o.kind != "user":
        out["members"] = list(o.members)
    if o.kind == "group":
        out["owners"] = list(o.owners)
    return out


def _team(t: Team) -> dict[str, Any]:
    return {
        "id": t.id,
        "created": t.created,
        "readyAt": t.ready_at,
        "archived": t.archived,
        "settings": {k: dict(v) if isinstance(v, dict) else v for k, v in t.settings.items()},
    }


def _load_team(raw: dict[str, Any]) -> Team:
    return Team(raw["id"], raw["created"], raw["readyAt"], raw["archived"], raw["settings"])


def to_json(tenant: TenantState) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "seed": tenant.seed,
        "domain": tenant.domain,
        "tenantId": tenant.tenant_id,
        "users": [_obj(tenant.users[i]) for i in sorted(tenant.users)],
        "groups": [_obj(tenant.groups[i]) for i in sorted(tenant.groups)],
        "administrativeUnits": [_obj(tenant.admin_units[i]) for i in sorted(tenant.admin_units)],
        "applications": [
            {
                "appId": a.app_id,
                "objectId": a.object_id,
                "displayName": a.display_name,
                "extensions": [dict(a.extensions[k]) for k in sorted(a.extensions)],
            }
            for _, a in sorted(tenant.apps.items())
        ],
        "teams": [
            {
                "id": t.id,
                "created": t.created,
                "readyAt": t.ready_at,
                "archived": t.archived,
                "settings": {k: dict(v) if isinstance(v, dict) else v for k, v in t.settings.items()},
            }
            for _, t in sorted(tenant.teams.items())
        ],
        "operations": [
            {
                "id": o.id,
                "teamId": o.team_id,
                "type": o.op_type,
                "created": o.created,
                "doneAt": o.done_at,
                "applied": o.applied,
            }
            for _, o in sorted(tenant.operations.items())
        ],
        "deleted": [
            {
                "kind": d.obj.kind,
                "object": _obj(d.obj),
                "deletedAt": d.deleted_at,
                "memberOf": d.member_of,
                "ownerOf": d.owner_of,
                "team": _team(d.team) if d.team else None,
            }
            for _, d in sorted(tenant.deleted.items())
        ],
        "classes": {cid: dict(tenant.classes[cid]) for cid in sorted(tenant.classes)},
        "welcomeEmails": tenant.welcome_emails,
        "log": {
            "seq": tenant.log.seq,
            "active": tenant.log.active,
            "events": [list(e) for e in tenant.log.events],
        },
    }


def save_tenant(tenant: TenantState, path: str | os.PathLike[str]) -> None:
    """Write the tenant to ``path`` atomically (a temp file renamed over it)."""
    write_snapshot(to_json(tenant), path)


def write_snapshot(data: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a :func:`to_json` snapshot to ``path`` atomically; needs no lock on the tenant."""
    fd, tmp = temp_beside(path)
    try:
        finish_snapshot(fd, tmp, data, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def temp_beside(path: str | os.PathLike[str]) -> tuple[int, str]:
    """A new temp file (open descriptor, name) in ``path``'s folder, for :func:`finish_snapshot`."""
    target = Path(path)
    return tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent or Path("."))


def finish_snapshot(fd: int, tmp: str, data: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``data`` to the temp file ``fd``/``tmp`` (closing it), then rename it over ``path``:
    a reader sees the old file or the new one, never part of one."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _load_obj(kind: str, raw: dict[str, Any]) -> DirObject:
    obj = DirObject(kind, raw["id"], dict(raw["props"]), float(raw["created"]), dict(raw.get("ext") or {}))
    obj.members = dict.fromkeys(raw.get("members") or [])
    obj.owners = dict.fromkeys(raw.get("owners") or [])
    return obj


def load_tenant(path: str | os.PathLike[str], clock: Clock | None, factory: type[T]) -> T:
    """Read a tenant saved by :func:`save_tenant`."""
    name = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TenantFileError(name, "file not found; create it with `entra-sync emulator seed`.") from None
    except ValueError as exc:
        raise TenantFileError(
            name, f"not valid JSON ({exc}); restore it or start a new tenant file."
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TenantFileError(name, f'not an emulator tenant file (expected "format": "{FORMAT}").')
    if data.get("version") != VERSION:
        raise TenantFileError(
            name, f"unsupported version {data.get('version')!r} (this build reads {VERSION})."
        )
    try:
        return _build(data, clock, factory)
    except (KeyError, TypeError, ValueError) as exc:
        raise TenantFileError(name, f"damaged tenant file ({type(exc).__name__}: {exc}).") from None


def _build(data: dict[str, Any], clock: Clock | None, factory: type[T]) -> T:
    tenant = factory(seed=data.get("seed"), clock=clock)
    tenant.domain = data.get("domain") or tenant.domain
    tenant.tenant_id = data.get("tenantId") or tenant.tenant_id
    for kind, key in (("user", "users"), ("group", "groups"), ("administrativeUnit", "administrativeUnits")):
        store = tenant.store(kind)
        for raw in data[key]:
            obj = _load_obj(kind, raw)
            store[obj.id] = obj
        tenant.touched(kind)
    for store in (tenant.users, tenant.groups):
        for obj in store.values():
            tenant.index(obj)
    for raw in data["applications"]:
        app = Application(raw["appId"], raw["objectId"], raw["displayName"])
        app.extensions = {e["name"]: e for e in raw["extensions"]}
        tenant.apps[app.app_id] = app
    for raw in data["teams"]:
        tenant.teams[raw["id"]] = Team(
            raw["id"], raw["created"], raw["readyAt"], raw["archived"], raw["settings"]
        )
    for raw in data["operations"]:
        op = Operation(raw["id"], raw["teamId"], raw["type"], raw["created"], raw["doneAt"], raw["applied"])
        tenant.operations[op.id] = op
        if not op.applied:
            tenant.pending_ops.append(op)
    for raw in data["deleted"]:
        obj = _load_obj(raw["kind"], raw["object"])
        team = _load_team(raw["team"]) if raw.get("team") else None
        tenant.deleted[obj.id] = DeletedItem(
            obj, raw["deletedAt"], list(raw["memberOf"]), list(raw.get("ownerOf") or []), team
        )
    tenant.classes = {str(k): dict(v) for k, v in (data.get("classes") or {}).items()}
    tenant.welcome_emails = int(data.get("welcomeEmails") or 0)
    log = data["log"]
    tenant.log = ChangeLog(active=bool(log["active"]), seq=int(log["seq"]))
    tenant.log.events = [tuple(e) for e in log["events"]]
    tenant.log.times = [e[1] for e in tenant.log.events]
    return tenant
