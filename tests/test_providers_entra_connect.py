"""Connection settings, national clouds, open_graph, secrecy of an authenticated run, the emulator."""

from __future__ import annotations

import dataclasses
import json
import logging
import random
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from providers.emulator import EmulatorTransport, Profile, Tenant
from providers.entra.batch import BatchRequest
from providers.entra.client import GraphClient
from providers.entra.clouds import CLOUDS, cloud_named
from providers.entra.connect import ConnectionSettings, build_token_provider, open_graph
from providers.entra.errors import AuthError, ForbiddenError, NotFoundError, ResponseLostError
from reconciler.clock import VirtualClock
from reconciler.errors import ConfigError
from tests.msal_fakes import TENANT, login_router

CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
SECRET = "Zq8~very.secret-client-SECRET-value"
APP = {"ENTRA_SYNC_TENANT_ID": TENANT, "ENTRA_SYNC_CLIENT_ID": CLIENT}


# ---- settings -----------------------------------------------------------------------------------


def test_secret_from_env_is_a_reference_not_a_value() -> None:
    s = ConnectionSettings.from_env({**APP, "ENTRA_SYNC_CLIENT_SECRET": SECRET, "OTHER_SECRET": "other"})
    assert SECRET not in json.dumps(s.as_dict())
    assert s.as_dict()["credential_ref"] == "ENTRA_SYNC_CLIENT_SECRET"
    assert SECRET not in repr(dataclasses.asdict(s))
    with pytest.raises(TypeError):
        json.dumps(dataclasses.asdict(s))  # serialising the whole object fails rather than leaks
    assert s.env.get("OTHER_SECRET") == ""  # only the referenced variables are kept
    assert (s.credential, s.credential_ref, s.tenant_id, s.client_id) == (
        "client_secret",
        "ENTRA_SYNC_CLIENT_SECRET",
        TENANT,
        CLIENT,
    )
    assert SECRET not in repr(s) and SECRET not in s.describe()
    assert s.graph_base_url == "https://graph.microsoft.com/v1.0"


@pytest.mark.parametrize(
    ("var", "kind"),
    [
        ("ENTRA_SYNC_CLIENT_SECRET_FILE", "client_secret_file"),
        ("ENTRA_SYNC_CERTIFICATE_PATH", "certificate"),
        ("ENTRA_SYNC_FEDERATED_TOKEN_FILE", "federated"),
    ],
)
def test_file_credentials_keep_the_path(var: str, kind: str) -> None:
    s = ConnectionSettings.from_env({**APP, var: "/run/secrets/x"})
    assert (s.credential, s.credential_ref) == (kind, "/run/secrets/x")


def test_certificate_password_is_referenced_by_variable_name() -> None:
    s = ConnectionSettings.from_env(
        {**APP, "ENTRA_SYNC_CERTIFICATE_PATH": "/c.pfx", "ENTRA_SYNC_CERTIFICATE_PASSWORD": "pw-123"}
    )
    assert s.certificate_password_env == "ENTRA_SYNC_CERTIFICATE_PASSWORD"
    assert "pw-123" not in repr(s)


def test_two_credentials_are_contradictory() -> None:
    with pytest.raises(ConfigError) as info:
        ConnectionSettings.from_env(
            {**APP, "ENTRA_SYNC_CLIENT_SECRET": SECRET, "ENTRA_SYNC_CERTIFICATE_PATH": "/c.pem"}
        )
    assert str(info.value) == (
        "more than one credential is set (ENTRA_SYNC_CLIENT_SECRET, ENTRA_SYNC_CERTIFICATE_PATH); "
        "keep exactly one"
    )
    assert SECRET not in str(info.value)


def test_no_credential_names_every_variable() -> None:
    with pytest.raises(ConfigError) as info:
        ConnectionSettings.from_env(APP)
    assert "ENTRA_SYNC_CLIENT_SECRET," in str(info.value) and "or ENTRA_SYNC_ACCESS_TOKEN" in str(info.value)


def test_missing_tenant_names_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        ConnectionSettings.from_env({"ENTRA_SYNC_CLIENT_ID": CLIENT, "ENTRA_SYNC_CLIENT_SECRET": SECRET})
    assert info.value.key == "ENTRA_SYNC_TENANT_ID"
    assert "set ENTRA_SYNC_TENANT_ID" in str(info.value)


def test_common_authority_is_refused() -> None:
    with pytest.raises(ConfigError, match="tenant"):
        ConnectionSettings.from_env(
            {**APP, "ENTRA_SYNC_TENANT_ID": "common", "ENTRA_SYNC_CLIENT_SECRET": "x"}
        )


def test_access_token_with_graph_url_needs_no_tenant() -> None:
    s = ConnectionSettings.from_env(
        {"ENTRA_SYNC_ACCESS_TOKEN": "anything", "ENTRA_SYNC_GRAPH_URL": "http://127.0.0.1:8080/"}
    )
    assert s.credential == "access_token" and s.tenant_id is None
    assert s.graph_base_url == "http://127.0.0.1:8080/v1.0"
    assert "anything" not in repr(s)


def test_workload_identity_webhook_variables_are_used_as_a_fallback() -> None:
    env = {
        "AZURE_FEDERATED_TOKEN_FILE": "/var/run/token",
        "AZURE_TENANT_ID": TENANT,
        "AZURE_CLIENT_ID": CLIENT,
    }
    s = ConnectionSettings.from_env(env)
    assert (s.credential, s.credential_ref, s.tenant_id, s.client_id) == (
        "federated",
        "/var/run/token",
        TENANT,
        CLIENT,
    )
    # an explicit ENTRA_SYNC_ credential wins over the injected file
    s2 = ConnectionSettings.from_env({**env, **APP, "ENTRA_SYNC_CLIENT_SECRET": SECRET})
    assert s2.credential == "client_secret"


def test_overrides_win_and_none_overrides_are_ignored() -> None:
    env = {**APP, "ENTRA_SYNC_CLIENT_SECRET": SECRET, "ENTRA_SYNC_CLOUD": "china"}
    s = ConnectionSettings.from_env(env, cloud="usgov", graph_url=None, tenant_id="contoso.onmicrosoft.com")
    assert s.cloud == "usgov" and s.tenant_id == "contoso.onmicrosoft.com"
    assert s.graph_base_url == "https://graph.microsoft.us/v1.0"
    with pytest.raises(TypeError):
        ConnectionSettings.from_env(env, client_secret="nope")


def test_managed_identity_needs_no_app_ids() -> None:
    s = ConnectionSettings.from_env({"ENTRA_SYNC_MANAGED_IDENTITY": "system"})
    assert (s.credential, s.credential_ref) == ("managed_identity", "system")


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://graph.microsoft.com", "https://graph.microsoft.com/v1.0"),
        ("https://graph.microsoft.com/beta/", "https://graph.microsoft.com/beta"),
        ("http://localhost:9000/v1.0", "http://localhost:9000/v1.0"),
    ],
)
def test_graph_url_forms(url: str, base: str) -> None:
    s = ConnectionSettings.from_env({"ENTRA_SYNC_ACCESS_TOKEN": "t"}, graph_url=url)
    assert s.graph_base_url == base


def test_bad_graph_url_and_cloud_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="ENTRA_SYNC_GRAPH_URL"):
        ConnectionSettings.from_env(
            {"ENTRA_SYNC_ACCESS_TOKEN": "t", "ENTRA_SYNC_GRAPH_URL": "127.0.0.1:8080"}
        )
    with pytest.raises(ConfigError, match="use one of: global, usgov, usgovdod, china"):
        ConnectionSettings.from_env({"ENTRA_SYNC_ACCESS_TOKEN": "t", "ENTRA_SYNC_CLOUD": "mars"})


# ---- clouds -------------------------------------------------------------------------------------


def test_clouds_pair_authority_and_graph_endpoint() -> None:
    table = {c.name: (c.authority_host, c.graph_endpoint) for c in CLOUDS.values()}
    assert table == {
        "global": ("login.microsoftonline.com", "https://graph.microsoft.com"),
        "usgov": ("login.microsoftonline.us", "https://graph.microsoft.us"),
        "usgovdod": ("login.microsoftonline.us", "https://dod-graph.microsoft.us"),
        "china": ("login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"),
    }
    assert cloud_named("GCC-High").name == "usgov"
    assert cloud_named(None).scope == "https://graph.microsoft.com/.default"
    assert cloud_named("dod").authority(TENANT) == f"https://login.microsoftonline.us/{TENANT}"


def test_us_government_cloud_signs_in_and_calls_graph_in_that_cloud() -> None:
    auth, token_route = login_router("login.microsoftonline.us", access_token="GOV-TOKEN")
    graph = respx.Router(base_url="https://dod-graph.microsoft.us/v1.0", assert_all_called=False)
    users = graph.get("/users").mock(return_value=httpx.Response(200, json={"value": [{"id": "u1"}]}))
    s = ConnectionSettings.from_env(
        {**APP, "ENTRA_SYNC_CLIENT_SECRET": SECRET, "ENTRA_SYNC_CLOUD": "usgovdod"}
    )
    with open_graph(
        s,
        clock=VirtualClock(),
        transport=httpx.MockTransport(graph.handler),
        auth_transport=httpx.MockTransport(auth.handler),
    ) as client:
        assert client.get_all("/users") == [{"id": "u1"}]
    form = parse_qs(token_route.calls.last.request.content.decode())
    assert form["scope"] == ["https://dod-graph.microsoft.us/.default"]
    assert users.calls.last.request.headers["Authorization"] == "Bearer GOV-TOKEN"


def test_secret_file_is_read_when_the_token_is_needed(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    s = ConnectionSettings.from_env({**APP, "ENTRA_SYNC_CLIENT_SECRET_FILE": str(secret_file)})
    with pytest.raises(ConfigError, match="cannot read"):
        build_token_provider(s)
    secret_file.write_text(SECRET + "\n")
    auth, token_route = login_router("login.microsoftonline.com", access_token="AT")
    assert build_token_provider(s, auth_transport=httpx.MockTransport(auth.handler)).token() == "AT"
    assert parse_qs(token_route.calls.last.request.content.decode())["client_secret"] == [SECRET]


# ---- secrecy ------------------------------------------------------------------------------------


def test_no_secret_or_token_in_any_output_of_an_authenticated_run(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    token = "eyJhbGciOiJub25lIn0.eyJyb2xlcyI6W119.TOKEN-SIGNATURE-xyz"
    auth, token_route = login_router("login.microsoftonline.com", access_token=token)
    graph = respx.Router(base_url="https://graph.microsoft.com/v1.0", assert_all_called=False)
    graph.get("/groups").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0.5"}),
            httpx.Response(
                200,
                json={
                    "value": [{"id": "g"}],
                    "@odata.nextLink": "https://graph.microsoft.com/v1.0/groups?$skiptoken=1",
                },
            ),
            httpx.Response(200, json={"value": []}),
        ]
    )
    graph.get("/groups/missing").mock(
        return_value=httpx.Response(
            404, json={"error": {"code": "Request_ResourceNotFound", "message": "gone"}}
        )
    )
    graph.post("/groups").mock(
        return_value=httpx.Response(
            403, json={"error": {"code": "Authorization_RequestDenied", "message": f"Bearer {token} denied"}}
        )
    )
    graph.post("/$batch").mock(
        return_value=httpx.Response(200, json={"responses": [{"id": "1", "status": 401, "body": {}}]})
    )
    texts: list[str] = []
    env = {**APP, "ENTRA_SYNC_CLIENT_SECRET": SECRET}
    with caplog.at_level(logging.DEBUG):
        s = ConnectionSettings.from_env(env)
        texts += [repr(s), s.describe()]
        with open_graph(
            s,
            clock=VirtualClock(),
            transport=httpx.MockTransport(graph.handler),
            auth_transport=httpx.MockTransport(auth.handler),
        ) as client:
            texts.append(repr(client))
            texts.append(repr(client.token_provider))
            client.get_all("/groups", params={"$select": "id"})
            for call, exc_type in (
                (lambda: client.get("/groups/missing"), NotFoundError),
                (lambda: client.post("/groups", json={"displayName": "x"}), ForbiddenError),
            ):
                with pytest.raises(exc_type) as info:
                    call()
                texts += [str(info.value), repr(info.value)]
            texts += [repr(r.error) for r in client.batch([BatchRequest("GET", "/me")])]
        # and a refused sign-in
        token_route.mock(
            return_value=httpx.Response(
                401,
                json={
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                },
            )
        )
        with pytest.raises(AuthError) as auth_info:
            build_token_provider(s, auth_transport=httpx.MockTransport(auth.handler)).token()
        texts += [str(auth_info.value), repr(auth_info.value)]
    out = capsys.readouterr()
    texts += [caplog.text, out.out, out.err, *(str(r.args) for r in caplog.records)]
    everything = "\n".join(texts)
    assert token_route.called and "GET /groups?$select=… -> 200" in caplog.text
    assert SECRET not in everything
    assert token not in everything and "TOKEN-SIGNATURE" not in everything


# ---- the emulator -------------------------------------------------------------------------------


def emulator_client(transport: EmulatorTransport, clock: VirtualClock) -> GraphClient:
    s = ConnectionSettings.from_env(
        {"ENTRA_SYNC_ACCESS_TOKEN": "emulator", "ENTRA_SYNC_GRAPH_URL": "http://127.0.0.1:8080"}
    )
    return open_graph(s, clock=clock, transport=transport, rng=random.Random(3))


def emulator(tenant: Tenant, profile: Profile, clock: VirtualClock) -> EmulatorTransport:
    return EmulatorTransport(tenant, clock=clock, profile=profile)


def test_emulator_paging_and_batches_through_open_graph() -> None:
    tenant = Tenant()
    users = [tenant.add_user(f"u{n:03}@oak.example") for n in range(250)]
    gid = tenant.add_group("7A Maths")
    clock = VirtualClock()
    with emulator_client(
        emulator(tenant, Profile.ideal().with_(shuffle_batch_responses=True), clock), clock
    ) as client:
        got = client.get_all("/users", params={"$select": "id,userPrincipalName", "$top": 100})
        assert sorted(u["id"] for u in got) == sorted(users)
        results = client.batch(
            [
                BatchRequest(
                    "POST",
                    f"/groups/{gid}/members/$ref",
                    {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{u}"},
                )
                for u in users[:45]
            ]
        )
        assert [r.status for r in results] == [204] * 45
        members = client.get_all(f"/groups/{gid}/members", params={"$select": "id", "$top": 10})
        assert sorted(m["id"] for m in members) == sorted(users[:45])


def test_emulator_throttling_is_ridden_out_on_the_virtual_clock() -> None:
    tenant = Tenant()
    users = [tenant.add_user(f"u{n:03}@oak.example") for n in range(60)]
    gid = tenant.add_group("Year 7")
    clock = VirtualClock()
    profile = Profile.ideal().with_(
        throttle=True, ru_per_10s=40, random_429_rate=0.05, shuffle_batch_responses=True, seed=5
    )
    transport = emulator(tenant, profile, clock)
    with emulator_client(transport, clock) as client:
        for _ in range(5):
            assert len(client.get_all("/users", params={"$select": "id"})) == 60
        results = client.batch(
            [
                BatchRequest(
                    "POST",
                    f"/groups/{gid}/members/$ref",
                    {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{u}"},
                )
                for u in users
            ]
        )
    assert [r.status for r in results if r.status != 204] == []
    assert transport.counters.throttled > 0
    assert clock.slept > 0


def test_emulator_lost_create_raises_response_lost_and_the_object_exists() -> None:
    from providers.emulator import FaultRule

    tenant = Tenant()
    clock = VirtualClock()
    profile = Profile.ideal().with_(
        faults=(FaultRule(route="/groups", method="POST", lost_response_rate=1.0),)
    )
    body = {
        "displayName": "7A",
        "mailNickname": "oak-7a",
        "mailEnabled": False,
        "securityEnabled": True,
        "groupTypes": [],
    }
    with emulator_client(emulator(tenant, profile, clock), clock) as client, pytest.raises(ResponseLostError):
        client.post("/groups", json=body)
    assert [g.props["mailNickname"] for g in tenant.groups.values()] == ["oak-7a"]  # created exactly once
