"""Applications with directory extension properties, deleted items and ``getByIds``."""

from __future__ import annotations

import re
from typing import Any

from providers.emulator.common import collection, select_for, wants_count
from providers.emulator.context import Emu
from providers.emulator.router import Router
from providers.emulator.schema import ODATA_TYPE, render
from providers.emulator.tenant import Application
from providers.emulator.wire import GraphHttpError, Req, Resp, bad_request, not_found

__all__ = ["register"]

_DATA_TYPES = ("String", "Binary", "Boolean", "DateTime", "Integer", "LargeInteger")
_TARGETS = ("User", "Group", "AdministrativeUnit", "Application", "Device", "Organization")
_CONTEXT = {"group": "groups", "user": "users", "administrativeUnit": "administrativeUnits"}
_TYPE_KIND = {
    "microsoft.graph.group": "group",
    "microsoft.graph.user": "user",
    "microsoft.graph.administrativeunit": "administrativeUnit",
}


def _app(emu: Emu, key: str) -> Application:
    """``appId=...`` resolves any appId (created on first use); a bare key must be an object id."""
    if key.startswith("appId="):
        return emu.tenant.app(key[len("appId=") :])
    for app in emu.tenant.apps.values():
        if app.object_id == key:
            return app
    raise not_found(key)


def get_app(emu: Emu, req: Req) -> Resp:
    app = _app(emu, req.params["app"])
    return Resp(
        200,
        {
            "@odata.context": f"{req.base}/$metadata#applications/$entity",
            "id": app.object_id,
            "appId": app.app_id,
            "displayName": app.display_name,
        },
    )


def list_ext(emu: Emu, req: Req) -> Resp:
    app = _app(emu, req.params["app"])
    values = [dict(v) for _, v in sorted(app.extensions.items())]
    return collection(req, f"applications('{app.object_id}')/extensionProperties", values, None)


def post_ext(emu: Emu, req: Req) -> Resp:
    app = _app(emu, req.params["app"])
    body = req.body
    if not isinstance(body, dict):
        raise bad_request("Request body must be a JSON object.")
    name, data_type, targets = body.get("name"), body.get("dataType"), body.get("targetObjects")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,99}", name):
        raise bad_request("Invalid value for property 'name' of resource 'extensionProperty'.")
    if data_type not in _DATA_TYPES:
        raise bad_request(f"Invalid value for property 'dataType': use one of {', '.join(_DATA_TYPES)}.")
    if not isinstance(targets, list) or not targets or any(t not in _TARGETS for t in targets):
        raise bad_request("Invalid value for property 'targetObjects' (PascalCase, e.g. [\"Group\"]).")
    full = f"extension_{app.app_id.replace('-', '')}_{name}"
    if full in app.extensions:
        raise bad_request(
            f"Property '{full}' already exists on this application.",
            "Request_MultipleObjectsWithSameKeyValue",
        )
    emu.tenant.register_extension(
        app.app_id,
        name,
        data_type=data_type,
        target_objects=targets,
        multi_valued=bool(body.get("isMultiValued", False)),
    )
    return Resp(
        201,
        {
            "@odata.context": f"{req.base}/$metadata#applications('{app.object_id}')"
            "/extensionProperties/$entity",
            **app.extensions[full],
        },
    )


def delete_ext(emu: Emu, req: Req) -> Resp:
    app = _app(emu, req.params["app"])
    for full, definition in list(app.extensions.items()):
        if definition["id"] == req.params["ext"]:
            del app.extensions[full]
            return Resp(204)
    raise not_found(req.params["ext"])


def list_deleted(emu: Emu, req: Req) -> Resp:
    kind = _TYPE_KIND.get(req.params["id"].lower())
    if kind is None:
        raise GraphHttpError(400, "BadRequest", f"Resource not found for the segment '{req.params['id']}'.")
    select = select_for(emu, req, [kind])
    items = sorted((i for i in emu.tenant.deleted.values() if i.obj.kind == kind), key=lambda i: i.obj.id)
    values = [render(kind, i.obj.props, i.obj.ext, select) for i in items]
    count = len(values) if wants_count(req) else None
    return collection(req, _CONTEXT[kind], values, None, count)


def get_deleted(emu: Emu, req: Req) -> Resp:
    """``GET /directory/deletedItems/{id}``, or the list when the segment is a type cast."""
    if req.params["id"].lower().startswith("microsoft.graph."):
        return list_deleted(emu, req)
    item = emu.tenant.deleted.get(req.params["id"])
    if item is None:
        raise not_found(req.params["id"])
    obj = item.obj
    return Resp(
        200,
        {
            "@odata.context": f"{req.base}/$metadata#directoryObjects/$entity",
            "@odata.type": ODATA_TYPE[obj.kind],
            **render(obj.kind, obj.props, obj.ext, None),
        },
    )


def restore(emu: Emu, req: Req) -> Resp:
    obj = emu.tenant.restore(req.params["id"])
    if obj is None:
        raise not_found(req.params["id"])
    return Resp(
        200,
        {
            "@odata.context": f"{req.base}/$metadata#directoryObjects/$entity",
            "@odata.type": ODATA_TYPE[obj.kind],
            **render(obj.kind, obj.props, obj.ext, None),
        },
    )


def purge(emu: Emu, req: Req) -> Resp:
    item = emu.tenant.deleted.pop(req.params["id"], None)
    if item is None:
        raise not_found(req.params["id"])
    emu.tenant.log.record(emu.now, item.obj.kind, item.obj.id, "purge")
    return Resp(204)


def get_by_ids(emu: Emu, req: Req) -> Resp:
    body: Any = req.body
    if not isinstance(body, dict) or not isinstance(body.get("ids"), list) or len(body["ids"]) > 1000:
        raise bad_request("'ids' must be a list of at most 1000 object ids.")
    types = {str(t).lower() for t in body.get("types") or []}
    values = []
    for oid in body["ids"]:
        obj = emu.tenant.find(str(oid))
        if obj is not None and (not types or obj.kind.lower() in types):
            values.append(render(obj.kind, obj.props, obj.ext, None, with_type=True))
    return collection(req, "directoryObjects", values, None)


def register(router: Router) -> None:
    router.add("GET", "/applications/{app}", get_app)
    router.add("GET", "/applications/{app}/extensionProperties", list_ext)
    router.add("POST", "/applications/{app}/extensionProperties", post_ext)
    router.add("DELETE", "/applications/{app}/extensionProperties/{ext}", delete_ext)
    router.add("GET", "/directory/deletedItems/{id}", get_deleted)
    router.add("POST", "/directory/deletedItems/{id}/restore", restore)
    router.add("DELETE", "/directory/deletedItems/{id}", purge)
    router.add("POST", "/directoryObjects/getByIds", get_by_ids, write=False)
