"""Teams made from groups: ``POST /teams`` (202 + operation), ``PUT /groups/{id}/team`` (201),
``GET /teams/{id}``, operations, archive and unarchive (202 + operation)."""

from __future__ import annotations

import re
from typing import Any

from providers.emulator.common import get_obj, odata_id
from providers.emulator.context import Emu
from providers.emulator.router import Router
from providers.emulator.teams_ops import operation_json
from providers.emulator.tenant import DirObject, Operation, Team
from providers.emulator.wire import GraphHttpError, Req, Resp, bad_request, iso

__all__ = ["register"]

_TEMPLATE_RE = re.compile(r"teamsTemplates(?:\('([^']+)'\)|/([^/?]+))", re.IGNORECASE)
_FROM_GROUP_FORBIDDEN = ("displayName", "visibility", "specialization", "members@odata.bind", "members")
DEFAULT_SETTINGS: dict[str, Any] = {
    "memberSettings": {
        "allowCreateUpdateChannels": True,
        "allowDeleteChannels": True,
        "allowAddRemoveApps": True,
        "allowCreateUpdateRemoveTabs": True,
        "allowCreateUpdateRemoveConnectors": True,
    },
    "guestSettings": {"allowCreateUpdateChannels": False, "allowDeleteChannels": False},
    "messagingSettings": {
        "allowUserEditMessages": True,
        "allowUserDeleteMessages": True,
        "allowOwnerDeleteMessages": True,
        "allowTeamMentions": True,
        "allowChannelMentions": True,
    },
    "funSettings": {
        "allowGiphy": True,
        "giphyContentRating": "moderate",
        "allowStickersAndMemes": True,
        "allowCustomMemes": True,
    },
    "discoverySettings": {"showInTeamsSearchAndSuggestions": True},
}


def _check_group_for_team(emu: Emu, group: DirObject) -> None:
    age = emu.profile.team_min_group_age
    if age > 0 and emu.age(group.created) < age:
        raise GraphHttpError(
            404,
            "NotFound",
            f"Failed to find group '{group.id}': it may not have replicated "
            "yet; a group must be about 15 minutes old before a team can be created from it.",
        )
    if "Unified" not in (group.props.get("groupTypes") or []):
        raise bad_request("Only Microsoft 365 (Unified) groups can have a team.", "BadRequest")
    if not group.owners:
        raise bad_request("The group has no owner: a team needs at least one owner.", "BadRequest")
    if group.id in emu.tenant.teams:
        raise GraphHttpError(409, "Conflict", "Team already exists.")


def template_name(bind: Any) -> str:
    """``teamsTemplates('educationClass')`` or ``.../teamsTemplates/educationClass``: the name."""
    if not isinstance(bind, str):
        raise bad_request("Invalid value for 'template@odata.bind'.", "BadRequest")
    m = _TEMPLATE_RE.search(bind)
    if m is None:
        raise bad_request(f"Invalid template reference '{bind}'.", "BadRequest")
    return m.group(1) or m.group(2)


def class_template_error(emu: Emu, group_id: str) -> GraphHttpError:
    """Graph's answer (msgraph-sdk-dotnet#532, o365-moodle#2114): the Teams templates backend's
    error wrapped in a 400 BadRequest."""
    operation = emu.rng.getrandbits(128).to_bytes(16, "big").hex()
    inner = (
        '{"errors":[{"message":"Team with template \'educationClass\' can not be provisioned using a '
        'group which does not belong to a class.","errorCode":"Unknown"}],'
        f'"operationId":"{operation}"}}'
    )
    return bad_request(
        "Failed to execute Templates backend request CreateTeamFromGroupWithTemplateRequest. "
        f"Request Url: https://teams.microsoft.com/fabric/emea/templates/api/groups/{group_id}/team, "
        "Request Method: PUT, Response Status Code: BadRequest, "
        f"Response Headers: x-operationid: {operation}\r\n, ErrorMessage : {inner}",
        "BadRequest",
    )


def _check_template(emu: Emu, group: DirObject, bind: Any) -> None:
    name = template_name(bind)
    if name == "educationClass" and emu.profile.education_rules and group.id not in emu.tenant.classes:
        raise class_template_error(emu, group.id)


def _start(emu: Emu, team_id: str, op_type: str) -> Resp:
    op = Operation(emu.new_id(), team_id, op_type, emu.now, emu.now + emu.profile.team_provision_delay)
    emu.tenant.start_operation(op)
    from providers.emulator.teams_ops import settle

    settle(emu.tenant, emu.now)
    return Resp(
        202,
        None,
        {
            "Location": f"/teams('{team_id}')/operations('{op.id}')",
            "Content-Location": f"/teams('{team_id}')",
            "Content-Type": "application/json",
            "Content-Length": "0",
        },
    )


def post_teams(emu: Emu, req: Req) -> Resp:
    body = req.body
    if not isinstance(body, dict) or "template@odata.bind" not in body:
        raise bad_request("'template@odata.bind' is required.", "BadRequest")
    if "group@odata.bind" not in body:
        raise bad_request(
            "Creating a team without 'group@odata.bind' is not supported by this emulator; "
            "create the Microsoft 365 group first.",
            "BadRequest",
        )
    for name in _FROM_GROUP_FORBIDDEN:
        if name in body:
            raise bad_request(f"'{name}' cannot be set when creating a team from a group.", "BadRequest")
    group = get_obj(emu, "group", odata_id(body["group@odata.bind"]))
    _check_group_for_team(emu, group)
    _check_template(emu, group, body["template@odata.bind"])
    delay = emu.profile.team_provision_delay
    emu.tenant.teams[group.id] = Team(group.id, emu.now, emu.now + delay, settings=_settings(body))
    return _start(emu, group.id, "createTeam")


def _settings(body: dict[str, Any]) -> dict[str, Any]:
    settings = {k: dict(v) for k, v in DEFAULT_SETTINGS.items()}
    for key in settings:
        if isinstance(body.get(key), dict):
            settings[key].update(body[key])
    return settings


def put_team(emu: Emu, req: Req) -> Resp:
    group = get_obj(emu, "group", req.params["id"])
    _check_group_for_team(emu, group)
    team = Team(
        group.id, emu.now, emu.now, settings=_settings(req.body if isinstance(req.body, dict) else {})
    )
    emu.tenant.teams[group.id] = team
    emu.tenant.set_team_flag(group)
    return Resp(201, {"@odata.context": f"{req.base}/$metadata#teams/$entity", **_team_json(emu, team)})


def _team(emu: Emu, team_id: str) -> Team:
    team = emu.tenant.teams.get(team_id)
    if team is None or team.ready_at > emu.now or team_id not in emu.tenant.groups:
        raise GraphHttpError(404, "NotFound", f"No team found with Group Id {team_id}")
    return team


def _team_json(emu: Emu, team: Team) -> dict[str, Any]:
    group = emu.tenant.groups[team.id]
    return {
        "id": team.id,
        "createdDateTime": iso(team.created),
        "displayName": group.props.get("displayName"),
        "description": group.props.get("description"),
        "internalId": f"19:{team.id.replace('-', '')}@thread.tacv2",
        "classification": group.props.get("classification"),
        "specialization": "none",
        "visibility": (group.props.get("visibility") or "Public").lower(),
        "webUrl": f"https://teams.microsoft.com/l/team/19%3a{team.id.replace('-', '')}%40thread.tacv2/"
        f"conversations?groupId={team.id}",
        "isArchived": team.archived,
        "tenantId": emu.tenant.tenant_id,
        **{k: dict(v) for k, v in team.settings.items()},
    }


def get_team(emu: Emu, req: Req) -> Resp:
    team = _team(emu, req.params["id"])
    return Resp(200, {"@odata.context": f"{req.base}/$metadata#teams/$entity", **_team_json(emu, team)})


def get_operation(emu: Emu, req: Req) -> Resp:
    op = emu.tenant.operations.get(req.params["op"])
    if op is None or op.team_id != req.params["id"]:
        raise GraphHttpError(404, "NotFound", f"Operation '{req.params['op']}' not found.")
    return Resp(
        200,
        {
            "@odata.context": f"{req.base}/$metadata#teams('{op.team_id}')/operations/$entity",
            **operation_json(op, emu.now),
        },
    )


def archive(emu: Emu, req: Req) -> Resp:
    team = _team(emu, req.params["id"])
    if isinstance(req.body, dict) and req.body.get("shouldSetSpoSiteReadOnlyForMembers"):
        raise bad_request(
            "'shouldSetSpoSiteReadOnlyForMembers' is not supported with application permissions.",
            "BadRequest",
        )
    return _start(emu, team.id, "archiveTeam")


def unarchive(emu: Emu, req: Req) -> Resp:
    team = _team(emu, req.params["id"])
    return _start(emu, team.id, "unarchiveTeam")


def register(router: Router) -> None:
    router.add("POST", "/teams", post_teams)
    router.add("PUT", "/groups/{id}/team", put_team)
    router.add("GET", "/groups/{id}/team", get_team)
    router.add("GET", "/teams/{id}", get_team)
    router.add("GET", "/teams/{id}/operations/{op}", get_operation)
    router.add("POST", "/teams/{id}/archive", archive)
    router.add("POST", "/teams/{id}/unarchive", unarchive)
