"""The ownership marker: a directory extension property on the sync app that holds an object's key.

Every group and administrative unit the product creates carries its key in
``extension_{appIdWithoutHyphens}_realsmartSyncKey`` (a String directory extension registered on
the sync app, targetObjects Group and AdministrativeUnit; graph-facts.md §7). Objects without it
are never changed or deleted.

:func:`ensure_marker` registers the property once (``entra-sync setup``). Registering needs
``Application.ReadWrite.OwnedBy`` (or ``.All``); when the app may not, it raises
:class:`MarkerSetupError` whose message gives the exact manual steps, so the runtime app never
needs an ``Application.*`` permission.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import Any

from providers.entra.client import GraphClient
from providers.entra.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    GraphError,
    ResponseLostError,
)
from reconciler.errors import ConfigError, DirectoryError

__all__ = [
    "FILTER_VALUE_LIMIT",
    "LONG_KEY_PREFIX",
    "MARKER_DATA_TYPE",
    "MARKER_PROPERTY",
    "MARKER_TARGETS",
    "MarkerSetupError",
    "ensure_marker",
    "extension_properties_path",
    "marker_definition",
    "marker_filter",
    "marker_name",
    "marker_value",
    "unstamp",
]

log = logging.getLogger(__name__)

#: the short name of the extension property (Graph prefixes it with the app id)
MARKER_PROPERTY = "realsmartSyncKey"
MARKER_DATA_TYPE = "String"
MARKER_TARGETS = ("Group", "AdministrativeUnit")

_GUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


def _check_app_id(app_id: str) -> str:
    app_id = app_id.strip()
    if not _GUID.match(app_id):
        raise ConfigError(
            f"the application (client) id {app_id!r} is not a GUID; use the sync app's "
            "'Application (client) ID' from its Entra app registration",
            key="client_id",
        )
    return app_id.lower()


def marker_name(app_id: str) -> str:
    """The full marker property name for the sync app ``app_id`` (a GUID, with or without hyphens).

    >>> marker_name("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
    'extension_0f1e2d3c4b5a69788796a5b4c3d2e1f0_realsmartSyncKey'
    """
    return f"extension_{_check_app_id(app_id).replace('-', '')}_{MARKER_PROPERTY}"


def marker_filter(name: str, key: str) -> str:
    """An OData ``$filter`` that finds the object whose marker ``name`` holds ``key``."""
    return f"{name} eq '{key.replace(chr(39), chr(39) * 2)}'"


#: Graph's limit on a ``$filter eq`` value (graph-facts.md §6)
FILTER_VALUE_LIMIT = 120
#: the stamp of a key longer than Graph can filter: this prefix and the key's SHA-256 (72 characters)
LONG_KEY_PREFIX = "~sha256:"
_STAMP = re.compile(r"^~sha256:[0-9a-f]{64}$")


def marker_value(key: str) -> str:
    """What is stamped in the marker for ``key``: the key itself when Graph can filter on it (at most
    120 characters), else ``~sha256:`` and the SHA-256 of the key, so a lost create can always be
    looked up by its marker. A key that already has the stamp form is its own stamp (an exported
    snapshot names a long-key object by its stamp, and plans it back onto the same object).

    >>> marker_value("class:7A")
    'class:7A'
    >>> len(marker_value("k" * 200))
    72
    """
    if len(key) <= FILTER_VALUE_LIMIT and not key.startswith(LONG_KEY_PREFIX):
        return key
    if _STAMP.match(key):
        return key
    return LONG_KEY_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()


def unstamp(value: str, long_keys: dict[str, str] | None = None) -> str:
    """The key a marker value stands for: itself, or the long key whose stamp it is when known
    (``long_keys`` maps stamp -> key); an unknown stamp stays the stamp (still a stable key).
    Objects stamped before stamping existed hold their full long key, which is read as it is."""
    if long_keys and _STAMP.match(value):
        return long_keys.get(value, value)
    return value


def extension_properties_path(app_id: str) -> str:
    return f"/applications(appId='{_check_app_id(app_id)}')/extensionProperties"


def marker_definition() -> dict[str, Any]:
    """The request body that registers the marker (POST .../extensionProperties)."""
    return {
        "name": MARKER_PROPERTY,
        "dataType": MARKER_DATA_TYPE,
        "isMultiValued": False,
        "targetObjects": list(MARKER_TARGETS),
    }


class MarkerSetupError(DirectoryError):
    """The marker could not be registered (or is registered wrongly); the message says what to do."""

    def __init__(self, app_id: str, property_name: str, reason: str, steps: str) -> None:
        self.app_id = app_id
        self.property_name = property_name
        self.reason = reason
        super().__init__(f"{reason}\n\n{steps}")


def _manual_steps(app_id: str, name: str, graph_root: str) -> str:
    body = json.dumps(marker_definition())
    targets = ",".join(MARKER_TARGETS)
    return (
        "Register the ownership marker once, as an administrator (Application Administrator or "
        "Cloud Application Administrator), then run `entra-sync setup` again to check it:\n"
        "\n"
        "  Graph Explorer (https://developer.microsoft.com/graph/graph-explorer), signed in with "
        "consent to Application.ReadWrite.All:\n"
        f"    POST {graph_root}/applications(appId='{app_id}')/extensionProperties\n"
        "    Content-type: application/json\n"
        f"    {body}\n"
        "\n"
        "  or PowerShell (Microsoft.Graph module):\n"
        "    Connect-MgGraph -Scopes Application.ReadWrite.All\n"
        f"    $app = Get-MgApplication -Filter \"appId eq '{app_id}'\"\n"
        f"    New-MgApplicationExtensionProperty -ApplicationId $app.Id -Name {MARKER_PROPERTY} "
        f"-DataType {MARKER_DATA_TYPE} -TargetObjects {targets}\n"
        "\n"
        "  (Alternatively grant the app Application.ReadWrite.OwnedBy and make it an owner of its own "
        "app registration, and `entra-sync setup` will register it itself.)\n"
        f"The property will be named {name}."
    )


def _find(client: GraphClient, path: str, name: str) -> dict[str, Any] | None:
    for item in client.get_all(path, params={"$select": "id,name,dataType,targetObjects"}):
        if str(item.get("name", "")).lower() == name.lower():
            return item
    return None


def _check_definition(app_id: str, name: str, found: dict[str, Any], graph_root: str) -> None:
    targets = {str(t).lower() for t in found.get("targetObjects") or ()}
    data_type = str(found.get("dataType", ""))
    missing = [t for t in MARKER_TARGETS if t.lower() not in targets]
    if data_type.lower() != MARKER_DATA_TYPE.lower() or missing:
        raise MarkerSetupError(
            app_id,
            name,
            f"the ownership marker {name} exists but is defined as dataType {data_type or '?'} for "
            f"{', '.join(sorted(targets)) or 'no objects'}; it must be {MARKER_DATA_TYPE} for "
            f"{', '.join(MARKER_TARGETS)}. Extension properties cannot be changed: delete it "
            f"(DELETE {graph_root}/applications(appId='{app_id}')/extensionProperties/{found.get('id')}) "
            "only if no object uses it yet, and register it again.",
            _manual_steps(app_id, name, graph_root),
        )


def ensure_marker(
    client: GraphClient, app_id: str, *, graph_root: str = "https://graph.microsoft.com/v1.0"
) -> str:
    """Make sure the marker property exists on the sync app and return its full name.

    Must: register it when missing (POST ``/applications(appId='...')/extensionProperties``);
    accept an existing, correctly defined property; raise :class:`MarkerSetupError` with the
    manual steps when Graph refuses (403) or the existing definition is wrong.
    Must not: register a second property when a response was lost (it looks again first).
    ``graph_root`` is only used in the printed manual steps (national clouds).
    """
    app_id = _check_app_id(app_id)
    name = marker_name(app_id)
    path = extension_properties_path(app_id)
    try:
        found = _find(client, path, name)
        attempt = 0
        while found is None:
            attempt += 1
            log.info("registering ownership marker %s on app %s", name, app_id)
            try:
                client.post(path, json=marker_definition())
            except (ConflictError, BadRequestError, ResponseLostError) as exc:
                # a concurrent setup, or our own lost response: look again before deciding
                found = _find(client, path, name)
                if found is None and (not isinstance(exc, ResponseLostError) or attempt >= 3):
                    raise
                log.info("marker %s: %s, looked again", name, type(exc).__name__)
            else:
                return name
    except ForbiddenError as exc:
        raise MarkerSetupError(
            app_id,
            name,
            f"the sync app {app_id} may not register its ownership marker {name} "
            f"(Graph answered 403 to {exc.method} {exc.path}; registering needs "
            "Application.ReadWrite.OwnedBy).",
            _manual_steps(app_id, name, graph_root),
        ) from None
    except GraphError as exc:
        if exc.status == 404:
            raise MarkerSetupError(
                app_id,
                name,
                f"no application with appId {app_id} was found in this tenant (Graph answered 404); "
                "check the client id, and that the app registration (not only its enterprise app) "
                "lives in this tenant.",
                _manual_steps(app_id, name, graph_root),
            ) from None
        raise
    _check_definition(app_id, name, found, graph_root)
    return name
