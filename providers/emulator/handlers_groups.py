"""``/groups``: create, read, update, delete, members and owners (``$ref`` and binds)."""

from __future__ import annotations

from typing import Any

from providers.emulator.common import bind_ids, check_body, expand_members, get_obj, list_objects, select_for
from providers.emulator.context import Emu
from providers.emulator.delta import delta_handler
from providers.emulator.groups_rules import check_behavior_options, check_nickname, is_unified
from providers.emulator.membership import (
    add_links,
    add_ref,
    check_bind_count,
    check_links,
    list_links,
    remove_link,
)
from providers.emulator.router import Router
from providers.emulator.schema import render
from providers.emulator.tenant import DirObject
from providers.emulator.wire import Req, Resp, bad_request

__all__ = ["register"]

BINDS = ("members@odata.bind", "owners@odata.bind")


def _bind_lists(emu: Emu, body: dict[str, Any]) -> tuple[list[str], list[str]]:
    members = bind_ids(body[BINDS[0]], BINDS[0]) if BINDS[0] in body else []
    owners = bind_ids(body[BINDS[1]], BINDS[1]) if BINDS[1] in body else []
    check_bind_count(emu, len(members) + len(owners))
    return members, owners


def _props(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in BINDS and k != "@odata.type"}


def create_group(emu: Emu, body: Any) -> DirObject:
    """Create a group from a POST body; binds are checked before anything is created."""
    body = check_body(emu, "group", body, allowed_extra=BINDS)
    for name in ("displayName", "mailEnabled", "mailNickname", "securityEnabled"):
        if name not in body:
            raise bad_request(f"A value is required for property '{name}' of resource 'Group'.")
    display = body["displayName"]
    if not isinstance(display, str) or not display or len(display) > 256:
        raise bad_request("Invalid value specified for property 'displayName' of resource 'Group'.")
    check_behavior_options(body, creating=True)
    unified = "Unified" in (body.get("groupTypes") or [])
    check_nickname(emu, body["mailNickname"], unified, None)
    members, owners = _bind_lists(emu, body)
    props = _props(body)
    if props.get("visibility") is None:
        props["visibility"] = "Public" if unified else "Private"
    probe = DirObject("group", "", {"groupTypes": props.get("groupTypes") or []}, emu.now)
    check_links(emu, probe, "owners", owners, new=True)
    check_links(emu, probe, "members", members, new=True)
    obj = emu.tenant.insert("group", props, created=emu.now, object_id=emu.new_id())
    add_links(emu, obj, "owners", owners, new=True)
    add_links(emu, obj, "members", members, new=True)
    return obj


def post_groups(emu: Emu, req: Req) -> Resp:
    obj = create_group(emu, req.body)
    body = render("group", obj.props, {}, None)
    return Resp(201, {"@odata.context": f"{req.base}/$metadata#groups/$entity", **body})


def get_group(emu: Emu, req: Req) -> Resp:
    obj = get_obj(emu, "group", req.params["id"])
    body = render("group", obj.props, obj.ext, select_for(emu, req, ["group"]))
    if req.query.get("$expand", "").split("(")[0] == "members":
        body["members"] = expand_members(emu, obj)
    return Resp(200, {"@odata.context": f"{req.base}/$metadata#groups/$entity", **body})


def patch_group(emu: Emu, req: Req) -> Resp:
    obj = get_obj(emu, "group", req.params["id"])
    body = check_body(emu, "group", req.body, allowed_extra=BINDS)
    check_behavior_options(body, creating=False)
    members, owners = _bind_lists(emu, body)
    props = _props(body)
    if "mailNickname" in props:
        check_nickname(emu, props["mailNickname"], is_unified(obj), obj.id)
    if owners:
        check_links(emu, obj, "owners", owners)
    if members:
        check_links(emu, obj, "members", members)
    if owners:
        add_links(emu, obj, "owners", owners)
    if members:
        add_links(emu, obj, "members", members)
    changed = False
    emu.tenant.unindex(obj)
    for name, value in props.items():
        if name.startswith("extension_"):
            if value is None:
                changed |= obj.ext.pop(name, None) is not None
            elif obj.ext.get(name) != value:
                obj.ext[name] = value
                changed = True
        elif obj.props.get(name) != value:
            obj.props[name] = value
            changed = True
    emu.tenant.index(obj)
    if changed:
        emu.tenant.log.record(emu.now, "group", obj.id, "upd")
    return Resp(204)


def delete_group(emu: Emu, req: Req) -> Resp:
    obj = get_obj(emu, "group", req.params["id"])
    emu.tenant.remove(obj, soft=is_unified(obj))
    return Resp(204)


def list_groups(emu: Emu, req: Req) -> Resp:
    return list_objects(emu, req, "group", "groups")


def list_members(emu: Emu, req: Req) -> Resp:
    return list_links(emu, req, get_obj(emu, "group", req.params["id"]), "members")


def list_owners(emu: Emu, req: Req) -> Resp:
    return list_links(emu, req, get_obj(emu, "group", req.params["id"]), "owners")


def add_member(emu: Emu, req: Req) -> Resp:
    return add_ref(emu, get_obj(emu, "group", req.params["id"]), "members", req.body)


def add_owner(emu: Emu, req: Req) -> Resp:
    return add_ref(emu, get_obj(emu, "group", req.params["id"]), "owners", req.body)


def remove_member(emu: Emu, req: Req) -> Resp:
    return remove_link(emu, get_obj(emu, "group", req.params["id"]), "members", req.params["mid"])


def remove_owner(emu: Emu, req: Req) -> Resp:
    return remove_link(emu, get_obj(emu, "group", req.params["id"]), "owners", req.params["mid"])


def delete_member_object(emu: Emu, req: Req) -> Resp:
    """``DELETE /groups/{id}/members/{mid}`` WITHOUT ``/$ref``: Graph deletes the member object
    itself when the app may write that type. Kept so a client bug shows up here, not in a school."""
    group = get_obj(emu, "group", req.params["id"])
    mid = req.params["mid"]
    if not emu.profile.delete_member_without_ref_deletes_object:
        return remove_link(emu, group, "members", mid)
    if mid not in group.members:
        return remove_link(emu, group, "members", mid)
    member = emu.tenant.find(mid)
    if member is None:
        return remove_link(emu, group, "members", mid)
    emu.tenant.remove(member, soft=member.kind == "user" or is_unified(member))
    return Resp(204)


def register(router: Router) -> None:
    router.add("GET", "/groups", list_groups)
    router.add("POST", "/groups", post_groups)
    router.add("GET", "/groups/delta", delta_handler("group"))
    router.add("GET", "/groups/{id}", get_group)
    router.add("PATCH", "/groups/{id}", patch_group)
    router.add("DELETE", "/groups/{id}", delete_group)
    router.add("GET", "/groups/{id}/members", list_members)
    router.add("GET", "/groups/{id}/owners", list_owners)
    router.add("POST", "/groups/{id}/members/$ref", add_member)
    router.add("POST", "/groups/{id}/owners/$ref", add_owner)
    router.add("DELETE", "/groups/{id}/members/{mid}/$ref", remove_member)
    router.add("DELETE", "/groups/{id}/owners/{mid}/$ref", remove_owner)
    router.add("DELETE", "/groups/{id}/members/{mid}", delete_member_object)
