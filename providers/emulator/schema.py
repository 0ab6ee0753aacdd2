"""Property sets per object type (from the Graph v1.0 docs examples) and JSON rendering.

Users and groups return their default properties unless ``$select`` names others; directory
extension values come back only when named in ``$select``, except on administrative units, which
return them by default (as Graph v1.0 does).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "DEFAULT_PROPS",
    "KNOWN_PROPS",
    "ODATA_TYPE",
    "WRITABLE_PROPS",
    "render",
    "value_ok",
]

USER_DEFAULT = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
USER_EXTRA = (
    "accountEnabled",
    "createdDateTime",
    "deletedDateTime",
    "employeeId",
    "mailNickname",
    "onPremisesImmutableId",
    "onPremisesSyncEnabled",
    "otherMails",
    "proxyAddresses",
    "usageLocation",
    "userType",
    "department",
    "companyName",
)
GROUP_DEFAULT = (
    "id",
    "deletedDateTime",
    "classification",
    "createdDateTime",
    "creationOptions",
    "description",
    "displayName",
    "expirationDateTime",
    "groupTypes",
    "isAssignableToRole",
    "mail",
    "mailEnabled",
    "mailNickname",
    "membershipRule",
    "membershipRuleProcessingState",
    "onPremisesLastSyncDateTime",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "preferredDataLocation",
    "preferredLanguage",
    "proxyAddresses",
    "renewedDateTime",
    "resourceBehaviorOptions",
    "resourceProvisioningOptions",
    "securityEnabled",
    "securityIdentifier",
    "theme",
    "visibility",
    "onPremisesProvisioningErrors",
)
GROUP_EXTRA = (
    "uniqueName",
    "allowExternalSenders",
    "autoSubscribeNewMembers",
    "hideFromAddressLists",
    "hideFromOutlookClients",
)
AU_DEFAULT = (
    "id",
    "deletedDateTime",
    "displayName",
    "description",
    "isMemberManagementRestricted",
    "membershipRule",
    "membershipRuleProcessingState",
    "membershipType",
    "visibility",
)

DEFAULT_PROPS: dict[str, tuple[str, ...]] = {
    "user": USER_DEFAULT,
    "group": GROUP_DEFAULT,
    "administrativeUnit": AU_DEFAULT,
}
KNOWN_PROPS: dict[str, frozenset[str]] = {
    "user": frozenset(USER_DEFAULT + USER_EXTRA),
    "group": frozenset(GROUP_DEFAULT + GROUP_EXTRA),
    "administrativeUnit": frozenset(AU_DEFAULT),
}
WRITABLE_PROPS: dict[str, frozenset[str]] = {
    "user": frozenset(USER_DEFAULT + USER_EXTRA) - {"id", "createdDateTime", "deletedDateTime"},
    "group": frozenset(
        {
            "classification",
            "description",
            "displayName",
            "groupTypes",
            "isAssignableToRole",
            "mailEnabled",
            "mailNickname",
            "membershipRule",
            "membershipRuleProcessingState",
            "preferredDataLocation",
            "preferredLanguage",
            "resourceBehaviorOptions",
            "resourceProvisioningOptions",
            "securityEnabled",
            "theme",
            "visibility",
            "uniqueName",
            "allowExternalSenders",
            "autoSubscribeNewMembers",
            "hideFromAddressLists",
            "hideFromOutlookClients",
        }
    ),
    "administrativeUnit": frozenset(
        {
            "displayName",
            "description",
            "isMemberManagementRestricted",
            "membershipRule",
            "membershipRuleProcessingState",
            "membershipType",
            "visibility",
        }
    ),
}
_LISTS = frozenset(
    {
        "groupTypes",
        "resourceBehaviorOptions",
        "resourceProvisioningOptions",
        "businessPhones",
        "otherMails",
        "proxyAddresses",
    }
)
_BOOLS = frozenset(
    {
        "mailEnabled",
        "securityEnabled",
        "isAssignableToRole",
        "isMemberManagementRestricted",
        "accountEnabled",
        "onPremisesSyncEnabled",
        "allowExternalSenders",
        "autoSubscribeNewMembers",
        "hideFromAddressLists",
        "hideFromOutlookClients",
    }
)


def value_ok(name: str, value: Any) -> bool:
    """Whether ``value`` has the JSON type of property ``name`` (null is always accepted)."""
    if value is None:
        return True
    if name in _LISTS:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if name in _BOOLS:
        return isinstance(value, bool)
    return isinstance(value, str)


ODATA_TYPE = {
    "user": "#microsoft.graph.user",
    "group": "#microsoft.graph.group",
    "administrativeUnit": "#microsoft.graph.administrativeUnit",
}


def render(
    kind: str,
    props: dict[str, Any],
    ext: dict[str, Any],
    select: Sequence[str] | None,
    *,
    with_type: bool = False,
) -> dict[str, Any]:
    """The JSON for one object: the selected (or default) properties, ``id`` always included.

    Must return a new dict (callers may add annotations to it).
    """
    out: dict[str, Any] = {"@odata.type": ODATA_TYPE[kind]} if with_type else {}
    if select:
        if "id" not in select:
            out["id"] = props["id"]
        for name in select:
            if name.startswith("extension_"):
                out[name] = ext.get(name)
            elif name in props:
                out[name] = props[name]
        return out
    for name in DEFAULT_PROPS[kind]:
        out[name] = props.get(name)
    if kind == "administrativeUnit":
        out.update(ext)
    return out
