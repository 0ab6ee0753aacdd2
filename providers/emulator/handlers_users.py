"""``/users``: list (select, filter, paging), get by id or UPN, create, update, delete, delta."""

from __future__ import annotations

from providers.emulator.common import check_body, list_objects, select_for
from providers.emulator.context import Emu
from providers.emulator.delta import delta_handler
from providers.emulator.router import Router
from providers.emulator.schema import render
from providers.emulator.tenant import DirObject
from providers.emulator.wire import Req, Resp, bad_request, not_found

__all__ = ["register"]


def _user(emu: Emu, key: str) -> DirObject:
    obj = emu.tenant.users.get(key)
    if obj is None and "@" in key:
        oid = emu.tenant.user_index["userPrincipalName"].get(key.lower())
        obj = emu.tenant.users.get(oid) if oid else None
    if obj is None:
        raise not_found(key)
    return obj


def list_users(emu: Emu, req: Req) -> Resp:
    return list_objects(emu, req, "user", "users")


def get_user(emu: Emu, req: Req) -> Resp:
    obj = _user(emu, req.params["id"])
    body = render("user", obj.props, obj.ext, select_for(emu, req, ["user"]))
    return Resp(200, {"@odata.context": f"{req.base}/$metadata#users/$entity", **body})


def post_user(emu: Emu, req: Req) -> Resp:
    body = check_body(emu, "user", req.body, allowed_extra=("passwordProfile",))
    upn = body.get("userPrincipalName")
    if not isinstance(upn, str) or "@" not in upn:
        raise bad_request("A value is required for property 'userPrincipalName' of resource 'User'.")
    if upn.lower() in emu.tenant.user_index["userPrincipalName"]:
        raise bad_request(
            "Another object with the same value for property userPrincipalName already exists.",
            "Request_MultipleObjectsWithSameKeyValue",
        )
    props = {k: v for k, v in body.items() if k not in ("passwordProfile", "@odata.type")}
    props.setdefault("displayName", upn.split("@")[0])
    obj = emu.tenant.insert("user", props, created=emu.now, object_id=emu.new_id())
    return Resp(
        201,
        {"@odata.context": f"{req.base}/$metadata#users/$entity", **render("user", obj.props, obj.ext, None)},
    )


def patch_user(emu: Emu, req: Req) -> Resp:
    obj = _user(emu, req.params["id"])
    body = check_body(emu, "user", req.body)
    old = dict(obj.props)
    for name, value in body.items():
        if name.startswith("extension_"):
            obj.ext[name] = value
        elif name != "@odata.type":
            obj.props[name] = value
    emu.tenant.reindex_user(obj, old)
    emu.tenant.log.record(emu.now, "user", obj.id, "upd")
    return Resp(204)


def delete_user(emu: Emu, req: Req) -> Resp:
    emu.tenant.remove(_user(emu, req.params["id"]), soft=True)
    return Resp(204)


def register(router: Router) -> None:
    router.add("GET", "/users", list_users)
    router.add("POST", "/users", post_user)
    router.add("GET", "/users/delta", delta_handler("user"))
    router.add("GET", "/users/{id}", get_user)
    router.add("PATCH", "/users/{id}", patch_user)
    router.add("DELETE", "/users/{id}", delete_user)
