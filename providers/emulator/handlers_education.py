"""``/education/classes``: create (with its Microsoft 365 group, same id), read, list, members and
teachers (``$ref``), as Graph v1.0 documents them (``educationclass-post``, ``educationclass-post-members``,
``educationclass-post-teachers``, ``educationclass-delete-members``, ``educationclass-delete-teachers``).

A class *is* its group: students are the group's members, teachers its owners (Graph: "teachers
are owners and have appropriate rights"; teachers should also be members). The group stays readable
and patchable through ``/groups``; only a group created here counts as a class for the Teams
``educationClass`` template.
"""

from __future__ import annotations

from typing import Any

from providers.emulator.common import odata_id, page_ids, select_for
from providers.emulator.context import Emu
from providers.emulator.groups_rules import check_nickname
from providers.emulator.membership import add_links, list_links, remove_link
from providers.emulator.query import parse_top
from providers.emulator.records import DirObject
from providers.emulator.router import Router
from providers.emulator.wire import GraphHttpError, Req, Resp, bad_request

__all__ = ["CLASS_PROPS", "class_json", "register"]

CLASS_PROPS = (
    "displayName",
    "mailNickname",
    "description",
    "classCode",
    "externalName",
    "externalId",
    "externalSource",
    "externalSourceDetail",
    "grade",
    "term",
    "course",
    "createdBy",
)
_STRINGS = frozenset(
    {
        "displayName",
        "mailNickname",
        "description",
        "classCode",
        "externalName",
        "externalId",
        "externalSourceDetail",
        "grade",
    }
)
_TERM = frozenset({"displayName", "externalId", "startDate", "endDate", "@odata.type"})
_COURSE = frozenset({"courseNumber", "description", "displayName", "externalId", "subject", "@odata.type"})
_SOURCES = frozenset({"sis", "manual"})
# What Graph stamps on a class's group (visible through /groups).
CLASS_CREATION_OPTIONS = ["classAssignments"]


def _invalid(name: str) -> GraphHttpError:
    return bad_request(f"Invalid value specified for property '{name}' of resource 'EducationClass'.")


def _check_class_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("Request body must be a JSON object.", "BadRequest")
    for name, value in body.items():
        if name == "@odata.type":
            continue
        if name not in CLASS_PROPS:
            raise bad_request(
                f"Property '{name}' does not exist as a declared property or extension property."
            )
        if value is None:
            continue
        if name in _STRINGS and not isinstance(value, str):
            raise _invalid(name)
        if name == "externalSource" and value not in _SOURCES:
            raise _invalid(name)
        if name in ("term", "course"):
            allowed = _TERM if name == "term" else _COURSE
            if not isinstance(value, dict) or set(value) - allowed:
                raise _invalid(name)
            if not all(v is None or isinstance(v, str) for v in value.values()):
                raise _invalid(name)
        if name == "createdBy" and not isinstance(value, dict):
            raise _invalid(name)
    for name in ("displayName", "mailNickname"):
        if not body.get(name):
            raise bad_request(f"A value is required for property '{name}' of resource 'EducationClass'.")
    display = body["displayName"]
    if len(display) > 256:
        raise _invalid("displayName")
    return body


def class_json(emu: Emu, group: DirObject) -> dict[str, Any]:
    edu = emu.tenant.classes[group.id]
    out: dict[str, Any] = {"id": group.id}
    for name in CLASS_PROPS:
        if name in ("displayName", "mailNickname", "description"):
            out[name] = group.props.get(name)
        else:
            out[name] = edu.get(name)
    return out


def _class_group(emu: Emu, class_id: str) -> DirObject:
    group = emu.tenant.groups.get(class_id)
    if group is None or class_id not in emu.tenant.classes:
        raise GraphHttpError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{class_id}' does not exist or one of its queried reference-property objects "
            "are not present.",
        )
    return group


def post_class(emu: Emu, req: Req) -> Resp:
    body = _check_class_body(req.body)
    check_nickname(emu, body["mailNickname"], True, None)
    props = {
        "displayName": body["displayName"],
        "mailNickname": body["mailNickname"],
        "description": body.get("description"),
        "groupTypes": ["Unified"],
        "mailEnabled": True,
        "securityEnabled": False,
        "visibility": "HiddenMembership",
        "creationOptions": list(CLASS_CREATION_OPTIONS),
    }
    obj = emu.tenant.insert("group", props, created=emu.now, object_id=emu.new_id())
    emu.tenant.classes[obj.id] = {
        k: v
        for k, v in body.items()
        if k in CLASS_PROPS and k not in ("displayName", "mailNickname", "description")
    }
    return Resp(
        201,
        {
            "@odata.context": f"{req.base}/$metadata#education/classes/$entity",
            "@odata.type": "#microsoft.graph.educationClass",
            **class_json(emu, obj),
        },
    )


def get_class(emu: Emu, req: Req) -> Resp:
    group = _class_group(emu, req.params["id"])
    return Resp(
        200, {"@odata.context": f"{req.base}/$metadata#education/classes/$entity", **class_json(emu, group)}
    )


def list_classes(emu: Emu, req: Req) -> Resp:
    from providers.emulator.common import collection, visible

    if "$filter" in req.query:
        return _filtered(emu, req)
    top = parse_top(req.query.get("$top"), 100, 999)
    ids = sorted(cid for cid in emu.tenant.classes if cid in emu.tenant.groups)

    def keep(cid: str) -> bool:
        return visible(emu, emu.tenant.groups[cid])

    page, token = page_ids(req, ids, keep, top)
    values = [class_json(emu, emu.tenant.groups[c]) for c in page]
    return collection(req, "education/classes", values, token)


def _filtered(emu: Emu, req: Req) -> Resp:
    """``$filter`` on classes: ``externalId eq '…'`` / ``mailNickname eq '…'`` (what a sync needs)."""
    from providers.emulator.common import collection, visible
    from providers.emulator.query import eq_lookup

    hit = eq_lookup(req.query["$filter"])
    if hit is None or hit[0] not in ("externalId", "mailNickname", "displayName", "classCode"):
        raise bad_request("Unsupported query.", "Request_UnsupportedQuery")
    name, value = hit
    values = []
    for cid in sorted(emu.tenant.classes):
        group = emu.tenant.groups.get(cid)
        if group is None or not visible(emu, group):
            continue
        body = class_json(emu, group)
        if isinstance(body.get(name), str) and body[name].lower() == value.lower():
            values.append(body)
    return collection(req, "education/classes", values, None)


def _ref_id(body: Any) -> str:
    if not isinstance(body, dict) or "@odata.id" not in body:
        raise bad_request(
            'The request body must be {"@odata.id": "https://graph.microsoft.com/v1.0/education/users/{id}"}.'
        )
    return odata_id(body["@odata.id"])


def _check_user(emu: Emu, user_id: str) -> None:
    member = emu.tenant.find(user_id)
    if member is not None and member.kind != "user":
        raise bad_request("Only users can be members or teachers of a class.")


def add_class_member(emu: Emu, req: Req) -> Resp:
    group = _class_group(emu, req.params["id"])
    uid = _ref_id(req.body)
    _check_user(emu, uid)
    add_links(emu, group, "members", [uid])
    return Resp(204)


def add_teacher(emu: Emu, req: Req) -> Resp:
    group = _class_group(emu, req.params["id"])
    uid = _ref_id(req.body)
    _check_user(emu, uid)
    add_links(emu, group, "owners", [uid])
    return Resp(204)


def remove_class_member(emu: Emu, req: Req) -> Resp:
    return remove_link(emu, _class_group(emu, req.params["id"]), "members", req.params["mid"])


def remove_teacher(emu: Emu, req: Req) -> Resp:
    return remove_link(emu, _class_group(emu, req.params["id"]), "owners", req.params["mid"])


def list_class_members(emu: Emu, req: Req) -> Resp:
    select_for(emu, req, ["user"])
    return list_links(emu, req, _class_group(emu, req.params["id"]), "members", edu_type=True)


def list_teachers(emu: Emu, req: Req) -> Resp:
    select_for(emu, req, ["user"])
    return list_links(emu, req, _class_group(emu, req.params["id"]), "owners", edu_type=True)


def patch_class(emu: Emu, req: Req) -> Resp:
    """``PATCH /education/classes/{id}``: the class's properties (names go to its group)."""
    group = _class_group(emu, req.params["id"])
    if not isinstance(req.body, dict):
        raise bad_request("Request body must be a JSON object.", "BadRequest")
    checked = _check_class_body({"displayName": "x", "mailNickname": "x", **req.body})
    body = {k: v for k, v in checked.items() if k in req.body}
    if "mailNickname" in body:
        check_nickname(emu, body["mailNickname"], True, group.id)
    emu.tenant.unindex(group)
    for name, value in body.items():
        if name in ("displayName", "mailNickname", "description"):
            group.props[name] = value
        elif name != "@odata.type":
            emu.tenant.classes[group.id][name] = value
    emu.tenant.index(group)
    emu.tenant.log.record(emu.now, "group", group.id, "upd")
    return Resp(204)


def delete_class(emu: Emu, req: Req) -> Resp:
    """``DELETE /education/classes/{id}``: deletes the class and its group (soft, restorable)."""
    group = _class_group(emu, req.params["id"])
    emu.tenant.remove(group, soft=True)
    return Resp(204)


def get_class_group(emu: Emu, req: Req) -> Resp:
    from providers.emulator.schema import render

    group = _class_group(emu, req.params["id"])
    body = render("group", group.props, group.ext, select_for(emu, req, ["group"]))
    return Resp(200, {"@odata.context": f"{req.base}/$metadata#groups/$entity", **body})


def register(router: Router) -> None:
    router.add("GET", "/education/classes", list_classes)
    router.add("POST", "/education/classes", post_class)
    router.add("GET", "/education/classes/{id}", get_class)
    router.add("PATCH", "/education/classes/{id}", patch_class)
    router.add("DELETE", "/education/classes/{id}", delete_class)
    router.add("GET", "/education/classes/{id}/group", get_class_group)
    router.add("GET", "/education/classes/{id}/members", list_class_members)
    router.add("GET", "/education/classes/{id}/teachers", list_teachers)
    router.add("POST", "/education/classes/{id}/members/$ref", add_class_member)
    router.add("POST", "/education/classes/{id}/teachers/$ref", add_teacher)
    router.add("DELETE", "/education/classes/{id}/members/{mid}/$ref", remove_class_member)
    router.add("DELETE", "/education/classes/{id}/teachers/{mid}/$ref", remove_teacher)
