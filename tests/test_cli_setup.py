"""``entra-sync setup``: registers the ownership marker, or prints the manual steps."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
import respx

APP = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
MARKER = "extension_0f1e2d3c4b5a69788796a5b4c3d2e1f0_realsmartSyncKey"
EXT = f"/applications(appId='{APP}')/extensionProperties"
ALL_ROLES = ["User.Read.All", "Group.ReadWrite.All", "AdministrativeUnit.ReadWrite.All", "Team.Create",
             "TeamSettings.ReadWrite.All", "EduRoster.ReadWrite.All"]


def jwt(claims: dict[str, Any]) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJub25lIn0.{payload}.secret-signature"


TOKEN = jwt({"roles": ALL_ROLES})


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENTRA_SYNC_CLIENT_SECRET", "ENTRA_SYNC_CLIENT_SECRET_FILE",
                 "ENTRA_SYNC_CERTIFICATE_PATH", "ENTRA_SYNC_FEDERATED_TOKEN_FILE",
                 "ENTRA_SYNC_MANAGED_IDENTITY", "AZURE_FEDERATED_TOKEN_FILE",
                 "ENTRA_SYNC_GRAPH_URL", "ENTRA_SYNC_CLOUD", "ENTRA_SYNC_TENANT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENTRA_SYNC_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("ENTRA_SYNC_CLIENT_ID", APP)


def test_setup_registers_the_marker(env: None, run_cli: Callable[..., Any]) -> None:
    with respx.mock(base_url="https://graph.microsoft.com/v1.0") as graph:
        graph.get(EXT).respond(200, json={"value": []})
        post = graph.post(EXT).respond(201, json={"id": "p", "name": MARKER})
        r = run_cli("setup")
    assert r.exit_code == 0, r.output
    assert f"ownership marker: {MARKER}" in r.stdout
    assert "every application permission a full sync needs is granted" in r.stdout
    assert json.loads(post.calls[0].request.content)["targetObjects"] == ["Group", "AdministrativeUnit"]
    assert post.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in r.output


def test_setup_without_permission_prints_manual_steps(env: None, run_cli: Callable[..., Any]) -> None:
    with respx.mock(base_url="https://graph.microsoft.com/v1.0") as graph:
        graph.get(EXT).respond(200, json={"value": []})
        graph.post(EXT).respond(403, json={"error": {"code": "Authorization_RequestDenied",
                                                     "message": "Insufficient privileges"}})
        r = run_cli("setup", "--graph-url", "https://graph.microsoft.com")
    assert r.exit_code == 1
    err = r.stderr
    assert "may not register its ownership marker" in err and "New-MgApplicationExtensionProperty" in err
    assert f"POST https://graph.microsoft.com/v1.0/applications(appId='{APP}')/extensionProperties" in err
    assert TOKEN not in r.output


def test_setup_needs_an_app_id(env: None, monkeypatch: pytest.MonkeyPatch,
                               run_cli: Callable[..., Any]) -> None:
    monkeypatch.delenv("ENTRA_SYNC_CLIENT_ID")
    r = run_cli("setup")  # the token has no appid claim either
    assert r.exit_code == 1 and "ENTRA_SYNC_MARKER_APP_ID" in r.stderr


def test_setup_takes_the_app_id_from_the_access_token(env: None, monkeypatch: pytest.MonkeyPatch,
                                                     run_cli: Callable[..., Any]) -> None:
    monkeypatch.delenv("ENTRA_SYNC_CLIENT_ID")
    monkeypatch.setenv("ENTRA_SYNC_ACCESS_TOKEN", jwt({"appid": APP, "roles": ["Group.ReadWrite.All"]}))
    with respx.mock(base_url="https://graph.microsoft.com/v1.0") as graph:
        graph.get(EXT).respond(200, json={"value": [{"id": "p", "name": MARKER, "dataType": "String",
                                                     "targetObjects": ["Group", "AdministrativeUnit"]}]})
        r = run_cli("setup")
    assert r.exit_code == 1, r.output  # registered, but permissions are missing
    assert MARKER in r.stdout
    assert "lacks AdministrativeUnit.ReadWrite.All, EduRoster.ReadWrite.All, User.Read.All" \
        in r.stderr

