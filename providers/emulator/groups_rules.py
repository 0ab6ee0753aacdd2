"""Group rules shared by ``/groups`` and ``/education/classes``: nicknames, creation-only options
and welcome emails.

- ``resourceBehaviorOptions`` can be set only when a Microsoft 365 group is created (Microsoft
  Learn "group-set-options"); an unknown value is refused; PATCH answers 400 "Property
  resourceBehaviorOptions cannot be updated because it is immutable." (as reported in
  microsoftgraph/microsoft-graph-docs#18696).
- ``hideFromAddressLists`` / ``hideFromOutlookClients`` (and ``allowExternalSenders``,
  ``autoSubscribeNewMembers``) can't be set in the POST; PATCH them afterwards (group-post-groups).
- A Microsoft 365 group created without ``WelcomeEmailDisabled`` mails a welcome message to each
  member added: counted in ``Counters.welcome_emails`` and ``Tenant.welcome_emails``.
"""

from __future__ import annotations

import re
from typing import Any

from providers.emulator.context import Emu
from providers.emulator.records import DirObject
from providers.emulator.wire import bad_request

__all__ = [
    "BEHAVIOR_OPTIONS",
    "POST_FORBIDDEN",
    "check_behavior_options",
    "check_nickname",
    "count_welcome",
    "is_unified",
]

BEHAVIOR_OPTIONS = frozenset(
    {
        "AllowOnlyMembersToPost",
        "CalendarMemberReadOnly",
        "ConnectorsDisabled",
        "HideGroupInOutlook",
        "SubscribeMembersToCalendarEventsDisabled",
        "SubscribeNewGroupMembers",
        "WelcomeEmailDisabled",
        "ProvisionSiteOnDemand",
    }
)
POST_FORBIDDEN = (
    "allowExternalSenders",
    "autoSubscribeNewMembers",
    "hideFromAddressLists",
    "hideFromOutlookClients",
)
IMMUTABLE = "Property resourceBehaviorOptions cannot be updated because it is immutable."
_NICK_BAD = re.compile(r"[@()\\\[\]\";:<>, \s]|[^\x00-\x7f]")


def is_unified(obj: DirObject) -> bool:
    return "Unified" in (obj.props.get("groupTypes") or [])


def check_nickname(emu: Emu, nick: Any, unified: bool, own_id: str | None) -> None:
    if not isinstance(nick, str) or not nick or len(nick) > 64 or _NICK_BAD.search(nick):
        raise bad_request("Invalid value specified for property 'mailNickname' of resource 'Group'.")
    if unified:
        holder = emu.tenant.nickname_index.get(nick.lower())
        if holder is not None and holder != own_id:
            raise bad_request(
                "Another object with the same value for property mailNickname already exists.",
                "Request_MultipleObjectsWithSameKeyValue",
            )


def check_behavior_options(body: dict[str, Any], *, creating: bool) -> None:
    """Raise Graph's 400 for ``resourceBehaviorOptions`` in a PATCH or with an unknown value, and
    for the properties a POST can't set."""
    if creating:
        for name in POST_FORBIDDEN:
            if name in body:
                raise bad_request(
                    f"Property '{name}' can't be set when the group is created; "
                    "update the group after it is created.",
                )
    options = body.get("resourceBehaviorOptions")
    if "resourceBehaviorOptions" in body and not creating:
        raise bad_request(IMMUTABLE)
    if options is None:
        return
    for value in options:
        if value not in BEHAVIOR_OPTIONS:
            raise bad_request(
                "Invalid value specified for property 'resourceBehaviorOptions' of resource 'Group'."
            )
    if options and "Unified" not in (body.get("groupTypes") or []):
        raise bad_request("resourceBehaviorOptions can only be set on Microsoft 365 (Unified) groups.")


def count_welcome(emu: Emu, group: DirObject, added: int) -> None:
    """Count the welcome emails Exchange sends for ``added`` new members of ``group``."""
    if added <= 0 or group.kind != "group" or not is_unified(group):
        return
    if "WelcomeEmailDisabled" in (group.props.get("resourceBehaviorOptions") or []):
        return
    if group.id in emu.tenant.classes and not emu.profile.class_welcome_emails:
        return
    emu.counters.welcome_emails += added
    emu.tenant.welcome_emails += added
