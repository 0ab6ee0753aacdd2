"""The Azure SDKs' environment variable names (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET,
AZURE_CLIENT_CERTIFICATE_PATH) are read beside ours, with a clear order: flags, then ENTRA_SYNC_*,
then the configuration file, then AZURE_*."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from entra_sync.cli.wiring import GraphOptions, connection_settings
from entra_sync.config.load import load_config
from providers.entra.connect import ConnectionSettings, build_token_provider
from reconciler.errors import ConfigError
from tests.msal_fakes import TENANT, login_router

CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
OTHER_CLIENT = "11111111-2222-4333-8444-555555555555"
SECRET = "Zq8~azure.sdk-client-SECRET-value"
AZURE = {"AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": CLIENT, "AZURE_CLIENT_SECRET": SECRET}


def test_the_azure_sdk_names_alone_are_enough_to_sign_in() -> None:
    s = ConnectionSettings.from_env(AZURE)
    assert (s.credential, s.credential_ref, s.tenant_id, s.client_id) == (
        "client_secret", "AZURE_CLIENT_SECRET", TENANT, CLIENT)
    assert SECRET not in repr(s) and SECRET not in str(s.as_dict())
    auth, token_route = login_router("login.microsoftonline.com", access_token="AT")
    assert build_token_provider(s, auth_transport=httpx.MockTransport(auth.handler)).token() == "AT"
    sent = parse_qs(token_route.calls.last.request.content.decode())
    assert sent["client_secret"] == [SECRET] and sent["client_id"] == [CLIENT]


def test_a_certificate_by_the_azure_sdk_names(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    env = {"AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": CLIENT, "AZURE_CLIENT_CERTIFICATE_PATH": str(cert),
           "AZURE_CLIENT_CERTIFICATE_PASSWORD": "pfx-password"}
    s = ConnectionSettings.from_env(env)
    assert (s.credential, s.credential_ref, s.certificate_password_env) == (
        "certificate", str(cert), "AZURE_CLIENT_CERTIFICATE_PASSWORD")
    assert "pfx-password" not in repr(s)


def test_the_azure_sdk_order_between_its_own_names() -> None:
    """As the SDKs' EnvironmentCredential: a secret before a certificate, before workload identity."""
    env = {**AZURE, "AZURE_CLIENT_CERTIFICATE_PATH": "/c.pem", "AZURE_FEDERATED_TOKEN_FILE": "/t"}
    assert ConnectionSettings.from_env(env).credential == "client_secret"
    env.pop("AZURE_CLIENT_SECRET")
    assert ConnectionSettings.from_env(env).credential == "certificate"


def test_ours_win_over_the_azure_sdk_names() -> None:
    env = {**AZURE, "ENTRA_SYNC_TENANT_ID": "contoso.onmicrosoft.com", "ENTRA_SYNC_CLIENT_ID": OTHER_CLIENT,
           "ENTRA_SYNC_CERTIFICATE_PATH": "/ours.pem"}
    s = ConnectionSettings.from_env(env)
    assert (s.credential, s.credential_ref, s.tenant_id, s.client_id) == (
        "certificate", "/ours.pem", "contoso.onmicrosoft.com", OTHER_CLIENT)
    # one of ours and one of theirs is not "more than one credential": ours is chosen
    assert ConnectionSettings.from_env({**AZURE, "ENTRA_SYNC_ACCESS_TOKEN": "x"}).credential == "access_token"


def test_a_missing_tenant_names_both_variables() -> None:
    with pytest.raises(ConfigError, match=r"ENTRA_SYNC_TENANT_ID.*AZURE_TENANT_ID"):
        ConnectionSettings.from_env({"AZURE_CLIENT_ID": CLIENT, "AZURE_CLIENT_SECRET": SECRET})


def test_the_configuration_file_wins_over_the_azure_sdk_names(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, f'[tenant]\ntenant_id = "contoso.onmicrosoft.com"\nclient_id = '
                             f'"{OTHER_CLIENT}"\n\n[credentials]\nclient_secret_env = "MY_SYNC_SECRET"\n'))
    s = connection_settings(GraphOptions(config=cfg, env={**AZURE, "MY_SYNC_SECRET": "from-file-ref"}))
    assert (s.credential_ref, s.tenant_id, s.client_id) == (
        "MY_SYNC_SECRET", "contoso.onmicrosoft.com", OTHER_CLIENT)


def test_the_azure_sdk_names_fill_in_what_the_file_leaves_out(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, '[history]\npath = "h.sqlite"\n'))
    s = connection_settings(GraphOptions(config=cfg, env=AZURE))
    assert (s.credential_ref, s.tenant_id, s.client_id) == ("AZURE_CLIENT_SECRET", TENANT, CLIENT)


def test_flags_and_ours_win_over_the_file_and_theirs(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, f'[tenant]\ntenant_id = "file.onmicrosoft.com"\nclient_id = '
                             f'"{OTHER_CLIENT}"\n\n[credentials]\nclient_secret_env = "MY_SYNC_SECRET"\n'))
    env = {**AZURE, "ENTRA_SYNC_TENANT_ID": "env.onmicrosoft.com", "ENTRA_SYNC_CLIENT_SECRET": "ours"}
    s = connection_settings(GraphOptions(config=cfg, env=env, client_id=CLIENT))
    assert (s.credential_ref, s.tenant_id, s.client_id) == (
        "ENTRA_SYNC_CLIENT_SECRET", "env.onmicrosoft.com", CLIENT)


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "entra-sync.toml"
    path.write_text(body)
    return path
