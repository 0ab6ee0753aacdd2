"""Member and owner changes with Graph's rules, shared by groups and administrative units."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from providers.emulator.common import collection, count_of, odata_id, page_ids, select_for, wants_count
from providers.emulator.context import Emu
from providers.emulator.groups_rules import count_welcome
from providers.emulator.query import parse_top
from providers.emulator.schema import render
from providers.emulator.tenant import DirObject
from providers.emulator.wire import GraphHttpError, Req, Resp, bad_request, not_found

__all__ = ["add_links", "add_ref", "check_bind_count", "check_links", "list_links", "remove_link"]

DUPLICATE = "One or more added object references already exist for the following modified properties: '{}'."
NEW_GROUP = (
    "Request_BadRequest",
    "One or more of the objects being referenced don't exist: the object may "
    "have been created recently; retry after a few seconds.",
)


def check_bind_count(emu: Emu, count: int) -> None:
    limit = emu.profile.max_binds
    if limit is not None and count > limit:
        raise bad_request(
            f"The request has {count} object references to add; at most {limit} are allowed "
            "in one request (members@odata.bind and owners@odata.bind combined)."
        )


def _check_member_type(container: DirObject, member: DirObject, relation: str) -> None:
    if member.id == container.id:
        raise bad_request("An object cannot be a member of itself.")
    if relation == "owners":
        if member.kind != "user":
            raise bad_request("Only users (and service principals) can be owners of a group.")
        return
    if member.kind == "administrativeUnit":
        raise bad_request("An administrative unit cannot be a member.")
    if container.kind == "group" and member.kind == "group":
        if "Unified" in (container.props.get("groupTypes") or []):
            raise bad_request("Microsoft 365 groups can have users as members only; groups cannot be nested.")
        if "Unified" in (member.props.get("groupTypes") or []):
            raise bad_request("A Microsoft 365 group cannot be a member of another group.")


def check_links(
    emu: Emu, container: DirObject, relation: str, ids: Sequence[str], *, new: bool = False
) -> None:
    """Raise the error Graph gives for adding ``ids``; change nothing.

    Must: 404 for a missing object, 400 for a wrong type or an existing link (if the profile says
    so), 400 while the group is younger than ``new_group_member_lag`` (except at creation).
    """
    if ids and relation == "members" and "DynamicMembership" in (container.props.get("groupTypes") or []):
        raise bad_request("Members cannot be added to or removed from a group with dynamic membership.")
    lag = emu.profile.new_group_member_lag
    if not new and container.kind == "group" and lag > 0 and emu.age(container.created) < lag:
        raise GraphHttpError(400, *NEW_GROUP)
    links = getattr(container, relation)
    seen: set[str] = set()
    for mid in ids:
        member = emu.tenant.find(mid)
        if member is None:
            raise not_found(mid)
        _check_member_type(container, member, relation)
        if (mid in links or mid in seen) and emu.profile.reject_duplicate_member:
            raise bad_request(DUPLICATE.format(relation))
        seen.add(mid)
    if relation == "owners" and len(set(links) | seen) > 100:
        raise bad_request("A group can have at most 100 owners.")


def add_links(
    emu: Emu, container: DirObject, relation: str, ids: Sequence[str], *, new: bool = False
) -> None:
    """Add members or owners, all or nothing (see :func:`check_links`)."""
    check_links(emu, container, relation, ids, new=new)
    links = getattr(container, relation)
    added = 0
    for mid in ids:
        if mid not in links:
            emu.tenant.link(container, relation, mid)
            added += 1
    if relation == "members":
        count_welcome(emu, container, added)


def add_ref(emu: Emu, container: DirObject, relation: str, body: Any) -> Resp:
    if not isinstance(body, dict) or "@odata.id" not in body:
        raise bad_request(
            'The request body must be {"@odata.id": "https://graph.microsoft.com/v1.0/'
            'directoryObjects/{id}"}.'
        )
    add_links(emu, container, relation, [odata_id(body["@odata.id"])])
    return Resp(204)


def remove_link(emu: Emu, container: DirObject, relation: str, member_id: str) -> Resp:
    links = getattr(container, relation)
    if relation == "members" and "DynamicMembership" in (container.props.get("groupTypes") or []):
        raise bad_request("Members cannot be added to or removed from a group with dynamic membership.")
    if member_id not in links:
        if emu.tenant.find(member_id) is None or emu.profile.reject_missing_member_removal:
            raise not_found(member_id)
        return Resp(204)
    if relation == "owners" and len(links) == 1 and emu.profile.protect_last_owner:
        raise bad_request("The group must have at least one owner, hence this owner cannot be removed.")
    emu.tenant.unlink(container, relation, member_id)
    return Resp(204)


def list_links(emu: Emu, req: Req, container: DirObject, relation: str, *, edu_type: bool = False) -> Resp:
    """``GET .../members`` or ``.../owners``: paged (default 100, ``$top`` ≤ 999), with ``@odata.type``."""
    select = select_for(emu, req, ["user", "group"])
    top = parse_top(req.query.get("$top"), 100, 999)
    ids = sorted(getattr(container, relation))
    tenant = emu.tenant

    def keep(oid: str) -> bool:
        return tenant.find(oid) is not None

    count = count_of(ids, keep) if wants_count(req) else None
    page, token = page_ids(req, ids, keep, top)
    values = []
    for oid in page:
        obj = tenant.find(oid)
        if obj is not None:
            value = render(obj.kind, obj.props, obj.ext, select, with_type=True)
            if edu_type and obj.kind == "user":
                value["@odata.type"] = "#microsoft.graph.educationUser"
            values.append(value)
    return collection(req, "educationUsers" if edu_type else "directoryObjects", values, token, count)
