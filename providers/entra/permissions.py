"""Least-privilege application permissions (graph-facts.md §10) and a check of a token's roles.

:data:`FEATURE_PERMISSIONS` is the table ``docs/permissions.md`` shows; :func:`required_roles` gives
the smallest set of Graph application roles for the features a run uses; :func:`check_token_roles`
reads the ``roles`` claim of an app-only access token (no signature check: the token is ours and we
only want to name what is missing) and lists the needed roles that no granted role covers.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FEATURE_PERMISSIONS",
    "IMPLIED_BY",
    "FeaturePermission",
    "RoleCheck",
    "check_token_roles",
    "covers",
    "required_roles",
    "token_roles",
]


@dataclass(frozen=True, slots=True)
class FeaturePermission:
    feature: str  # "groups", "administrative_units", "teams", "users", "setup"
    operation: str
    role: str
    note: str = ""


FEATURE_PERMISSIONS: tuple[FeaturePermission, ...] = (
    FeaturePermission("users", "Read the users index (id by UPN, mail or employeeId)", "User.Read.All"),
    FeaturePermission(
        "groups",
        "Create a group with owners and members bound",
        "Group.Create",
        "covered by Group.ReadWrite.All, which updates and deletes need anyway",
    ),
    FeaturePermission(
        "groups",
        "Read managed groups, their members and owners",
        "GroupMember.Read.All",
        "covered by Group.ReadWrite.All",
    ),
    FeaturePermission(
        "groups",
        "Add and remove members (PATCH members@odata.bind, DELETE $ref)",
        "GroupMember.ReadWrite.All",
        "covered by Group.ReadWrite.All",
    ),
    FeaturePermission(
        "groups",
        "Update and delete groups, add and remove owners, restore deleted groups",
        "Group.ReadWrite.All",
        "Directory.ReadWrite.All is not enough: it cannot delete groups",
    ),
    FeaturePermission(
        "administrative_units",
        "Read administrative units and their members",
        "AdministrativeUnit.Read.All",
        "covered by AdministrativeUnit.ReadWrite.All",
    ),
    FeaturePermission(
        "administrative_units",
        "Create, update and delete AUs; add and remove members",
        "AdministrativeUnit.ReadWrite.All",
    ),
    FeaturePermission(
        "groups",
        "Create class groups as education classes (POST /education/classes), which Teams' class "
        "template needs; without it every class create fails (403) and so does its class Team",
        "EduRoster.ReadWrite.All",
        "application permission; the only one POST /education/classes accepts; education tenants only",
    ),
    FeaturePermission("teams", "Create a Team from a group (POST /teams, class template)", "Team.Create"),
    FeaturePermission(
        "teams", "Read a Team's archive state; archive and unarchive", "TeamSettings.ReadWrite.All"
    ),
    FeaturePermission(
        "setup",
        "Register the ownership-marker extension property on the sync app (entra-sync setup, once)",
        "Application.ReadWrite.OwnedBy",
        "the app must be an owner of its own registration; else register it by hand",
    ),
)

# role -> the narrower roles it also grants (transitively closed below). Sources: graph-facts §10,
# the "higher privileged permissions" columns of the Graph API pages.
_GRANTS: dict[str, frozenset[str]] = {
    "Group.ReadWrite.All": frozenset(
        {
            "Group.Create",
            "Group.Read.All",
            "GroupMember.ReadWrite.All",
            # accepted on the Teams APIs for backward compatibility only [S15, S17]
            "Team.Create",
            "TeamSettings.ReadWrite.All",
        }
    ),
    "Group.Read.All": frozenset({"GroupMember.Read.All"}),
    "GroupMember.ReadWrite.All": frozenset({"GroupMember.Read.All"}),
    "GroupMember.Read.All": frozenset({"GroupMember.ReadBasic.All"}),
    "Directory.ReadWrite.All": frozenset(
        {
            # most things, but not deleting groups (Group.ReadWrite.All stays needed for that)
            "Directory.Read.All",
            "Group.Create",
            "GroupMember.ReadWrite.All",
            "AdministrativeUnit.ReadWrite.All",
            "User.ReadWrite.All",
            "Team.Create",
            "TeamSettings.ReadWrite.All",
        }
    ),
    "Directory.Read.All": frozenset(
        {
            "User.Read.All",
            "Group.Read.All",
            "AdministrativeUnit.Read.All",
            "TeamSettings.Read.All",
        }
    ),
    "User.ReadWrite.All": frozenset({"User.Read.All"}),
    "User.Read.All": frozenset({"User.ReadBasic.All"}),
    "AdministrativeUnit.ReadWrite.All": frozenset({"AdministrativeUnit.Read.All"}),
    "TeamSettings.ReadWrite.All": frozenset({"TeamSettings.Read.All", "Team.ReadBasic.All"}),
    "TeamSettings.Read.All": frozenset({"Team.ReadBasic.All"}),
    "Application.ReadWrite.All": frozenset({"Application.ReadWrite.OwnedBy", "Application.Read.All"}),
    "EduRoster.ReadWrite.All": frozenset({"EduRoster.Read.All", "EduRoster.ReadBasic.All"}),
    "EduRoster.Read.All": frozenset({"EduRoster.ReadBasic.All"}),
}


def _closure() -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for role in _GRANTS:
        seen: set[str] = set()
        todo = [role]
        while todo:
            r = todo.pop()
            for g in _GRANTS.get(r, ()):
                if g not in seen:
                    seen.add(g)
                    todo.append(g)
        out[role] = frozenset(seen)
    return out


_GRANTED_BY: dict[str, frozenset[str]] = _closure()

IMPLIED_BY: dict[str, frozenset[str]] = {
    narrow: frozenset(broad for broad, grants in _GRANTED_BY.items() if narrow in grants)
    for narrow in sorted({g for grants in _GRANTED_BY.values() for g in grants})
}
"""For each role, the broader roles that also grant it."""


def covers(granted: Iterable[str], role: str) -> bool:
    """True when ``role`` is among ``granted`` or implied by one of them."""
    have = set(granted)
    return role in have or any(role in _GRANTED_BY.get(g, ()) for g in have)


def required_roles(
    groups: bool, administrative_units: bool, teams: bool, *, setup: bool = False,
    education_classes: bool = False,
) -> frozenset[str]:
    """The least-privilege application roles for the features a run uses.

    Reading users is always needed. Groups need ``Group.ReadWrite.All`` (updates, deletes, owners;
    it covers creating and membership), AUs ``AdministrativeUnit.ReadWrite.All``, Teams
    ``Team.Create`` and ``TeamSettings.ReadWrite.All``; class groups made as education classes
    (``[sync] education_classes``, with groups on) ``EduRoster.ReadWrite.All``; ``setup``
    (registering the marker extension) ``Application.ReadWrite.OwnedBy``.
    """
    roles = {"User.Read.All"}
    if groups or teams:
        roles.add("Group.ReadWrite.All")
    if administrative_units:
        roles.add("AdministrativeUnit.ReadWrite.All")
    if teams:
        roles |= {"Team.Create", "TeamSettings.ReadWrite.All"}
    if education_classes and groups:
        roles.add("EduRoster.ReadWrite.All")
    if setup:
        roles.add("Application.ReadWrite.OwnedBy")
    return frozenset(roles)


def token_roles(token: str) -> frozenset[str] | None:
    """The ``roles`` claim of a JWT access token, or None when the token is not a readable JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims: Any = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, UnicodeError):
        return None
    if not isinstance(claims, dict):
        return None
    roles = claims.get("roles", [])
    if not isinstance(roles, list):
        return None
    return frozenset(r for r in roles if isinstance(r, str))


class RoleCheck(list[str]):
    """The needed roles the token lacks (a list, sorted), plus whether the check could be made.

    ``checked`` is False for a token that is not a JWT (e.g. the emulator's): then the list is empty
    and ``reason`` says why; that is "cannot check", not "nothing missing".
    """

    def __init__(
        self,
        missing: Iterable[str],
        *,
        checked: bool,
        granted: frozenset[str] = frozenset(),
        reason: str = "",
    ) -> None:
        super().__init__(sorted(set(missing)))
        self.checked = checked
        self.granted = granted
        self.reason = reason

    def describe(self) -> str:
        """One line for the CLI."""
        if not self.checked:
            return f"cannot check the token's permissions: {self.reason}"
        if not self:
            return "the token has every permission needed"
        return (
            "the app lacks these application permissions: " + ", ".join(self) + " (see docs/permissions.md)"
        )


def check_token_roles(token: str, needed: Iterable[str]) -> RoleCheck:
    """Name the ``needed`` roles the token's ``roles`` claim does not cover.

    Broader roles count (``Group.ReadWrite.All`` covers ``Group.Create``). Must not raise for a
    token that is not a JWT: returns a RoleCheck with ``checked=False``. Must not verify the
    signature, log or return the token.
    """
    granted = token_roles(token)
    if granted is None:
        return RoleCheck((), checked=False, reason="the access token is not a JWT")
    return RoleCheck((r for r in needed if not covers(granted, r)), checked=True, granted=granted)
