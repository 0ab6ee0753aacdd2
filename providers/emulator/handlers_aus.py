"""``/directory/administrativeUnits``: CRUD, members (``$ref``, create-inside), delta."""

from __future__ import annotations

from providers.emulator.common import check_body, get_obj, list_objects, select_for
from providers.emulator.context import Emu
from providers.emulator.delta import delta_handler
from providers.emulator.handlers_groups import create_group
from providers.emulator.membership import add_ref, list_links, remove_link
from providers.emulator.router import Router
from providers.emulator.schema import render
from providers.emulator.wire import Req, Resp, bad_request

__all__ = ["register"]

KIND = "administrativeUnit"
BASE = "/directory/administrativeUnits"


def list_aus(emu: Emu, req: Req) -> Resp:
    return list_objects(emu, req, KIND, "administrativeUnits")


def post_au(emu: Emu, req: Req) -> Resp:
    body = check_body(emu, KIND, req.body)
    name = body.get("displayName")
    if not isinstance(name, str) or not name or len(name) > 256:
        raise bad_request("A value is required for property 'displayName' of resource 'AdministrativeUnit'.")
    props = {k: v for k, v in body.items() if k != "@odata.type"}
    obj = emu.tenant.insert(KIND, props, created=emu.now, object_id=emu.new_id())
    return Resp(
        201,
        {
            "@odata.context": f"{req.base}/$metadata#administrativeUnits/$entity",
            **render(KIND, obj.props, obj.ext, None),
        },
    )


def get_au(emu: Emu, req: Req) -> Resp:
    obj = get_obj(emu, KIND, req.params["id"])
    body = render(KIND, obj.props, obj.ext, select_for(emu, req, [KIND]))
    return Resp(200, {"@odata.context": f"{req.base}/$metadata#administrativeUnits/$entity", **body})


def patch_au(emu: Emu, req: Req) -> Resp:
    obj = get_obj(emu, KIND, req.params["id"])
    body = check_body(emu, KIND, req.body)
    if "isMemberManagementRestricted" in body and body["isMemberManagementRestricted"] != obj.props.get(
        "isMemberManagementRestricted"
    ):
        raise bad_request("Property 'isMemberManagementRestricted' cannot be changed after creation.")
    for name, value in body.items():
        if name.startswith("extension_"):
            if value is None:
                obj.ext.pop(name, None)
            else:
                obj.ext[name] = value
        elif name != "@odata.type":
            obj.props[name] = value
    emu.tenant.log.record(emu.now, KIND, obj.id, "upd")
    return Resp(204)


def delete_au(emu: Emu, req: Req) -> Resp:
    emu.tenant.remove(get_obj(emu, KIND, req.params["id"]), soft=True)
    return Resp(204)


def list_members(emu: Emu, req: Req) -> Resp:
    return list_links(emu, req, get_obj(emu, KIND, req.params["id"]), "members")


def add_member(emu: Emu, req: Req) -> Resp:
    return add_ref(emu, get_obj(emu, KIND, req.params["id"]), "members", req.body)


def create_member(emu: Emu, req: Req) -> Resp:
    """``POST .../members`` without ``$ref``: create a group inside the AU (needs ``@odata.type``)."""
    au = get_obj(emu, KIND, req.params["id"])
    if not isinstance(req.body, dict) or req.body.get("@odata.type") != "#microsoft.graph.group":
        raise bad_request('The request body must include "@odata.type": "#microsoft.graph.group".')
    group = create_group(emu, req.body)
    emu.tenant.link(au, "members", group.id)
    return Resp(
        201,
        {
            "@odata.context": f"{req.base}/$metadata#groups/$entity",
            "@odata.type": "#microsoft.graph.group",
            **render("group", group.props, {}, None),
        },
    )


def remove_member(emu: Emu, req: Req) -> Resp:
    return remove_link(emu, get_obj(emu, KIND, req.params["id"]), "members", req.params["mid"])


def register(router: Router) -> None:
    router.add("GET", BASE, list_aus)
    router.add("POST", BASE, post_au)
    router.add("GET", BASE + "/delta", delta_handler(KIND))
    router.add("GET", "/administrativeUnits/delta", delta_handler(KIND))
    router.add("GET", BASE + "/{id}", get_au)
    router.add("PATCH", BASE + "/{id}", patch_au)
    router.add("DELETE", BASE + "/{id}", delete_au)
    router.add("GET", BASE + "/{id}/members", list_members)
    router.add("POST", BASE + "/{id}/members", create_member)
    router.add("POST", BASE + "/{id}/members/$ref", add_member)
    router.add("DELETE", BASE + "/{id}/members/{mid}/$ref", remove_member)
