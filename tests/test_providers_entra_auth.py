"""Authentication: every credential kind against a respx sign-in endpoint (no real network)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from providers.entra.auth import (
    ManagedIdentityTokenProvider,
    MsalHttpClient,
    MsalTokenProvider,
    StaticTokenProvider,
    federated_assertion_reader,
    jwt_claims,
    load_pem_certificate,
)
from providers.entra.errors import AuthError
from reconciler.clock import VirtualClock
from tests.msal_fakes import TENANT, login_router

CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
LOGIN = f"https://login.microsoftonline.com/{TENANT}"
SCOPE = "https://graph.microsoft.com/.default"
SECRET = "s3cr3t~VALUE.that-must-not-leak"


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def provider(router: respx.Router, credential: object, kind: str = "client_secret") -> MsalTokenProvider:
    return MsalTokenProvider(
        tenant_id=TENANT,
        client_id=CLIENT,
        credential=credential,  # type: ignore[arg-type]
        authority=LOGIN,
        scope=SCOPE,
        http_client=MsalHttpClient(transport=httpx.MockTransport(router.handler), clock=VirtualClock()),
        kind=kind,
    )


def jwt_header(assertion: str) -> dict[str, object]:
    head = assertion.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))  # type: ignore[no-any-return]


# ---- client secret --------------------------------------------------------------------------------


def test_client_secret_token_is_cached_and_invalidated_on_request() -> None:
    router, token_route = login_router()
    p = provider(router, SECRET)
    assert p.token() == "AT-1"
    assert p.token() == "AT-1"  # from MSAL's cache
    assert token_route.call_count == 1
    body = form(token_route.calls.last.request)
    assert body["grant_type"] == "client_credentials"
    assert body["client_id"] == CLIENT and body["scope"] == SCOPE and body["client_secret"] == SECRET
    p.invalidate()
    assert p.token() == "AT-2"
    assert SECRET not in repr(p)


def test_token_close_to_expiry_is_refreshed_before_it_expires() -> None:
    router, token_route = login_router(expires_in=120)  # inside MSAL's refresh margin
    p = provider(router, SECRET)
    assert p.token() == "AT-1"
    assert p.token() == "AT-2"
    assert token_route.call_count == 2


def test_refused_sign_in_names_tenant_client_and_msal_error_but_not_the_secret() -> None:
    router, token_route = login_router()
    token_route.mock(
        return_value=httpx.Response(
            401,
            json={
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: t1",
                "error_codes": [7000215],
            },
        )
    )
    with pytest.raises(AuthError) as info:
        provider(router, SECRET).token()
    err = info.value
    assert (err.tenant_id, err.client_id, err.error) == (TENANT, CLIENT, "invalid_client")
    assert str(err) == (
        f"sign-in with the client secret was refused (tenant {TENANT}, client {CLIENT}): "
        "invalid_client: AADSTS7000215: Invalid client secret provided."
    )
    assert SECRET not in str(err) and SECRET not in repr(err)


def test_unreachable_sign_in_service_is_an_auth_error() -> None:
    router = respx.Router(assert_all_called=False)
    router.route().mock(side_effect=httpx.ConnectError("no route"))
    with pytest.raises(AuthError) as info:
        provider(router, SECRET).token()
    assert TENANT in str(info.value) and "cannot reach the sign-in service" in str(info.value)


# ---- certificates -------------------------------------------------------------------------------


def make_cert() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "entra-sync-test")])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return key, cert


@pytest.fixture(scope="module")
def cert() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    return make_cert()


def test_pem_certificate_thumbprint_and_signed_assertion(
    tmp_path: Path, cert: tuple[rsa.RSAPrivateKey, x509.Certificate]
) -> None:
    key, crt = cert
    pem = tmp_path / "app.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        + crt.public_bytes(serialization.Encoding.PEM)
    )
    loaded = load_pem_certificate(pem)
    assert loaded.thumbprint == crt.fingerprint(hashes.SHA1()).hex().upper()
    assert "PRIVATE" not in repr(loaded)

    router, token_route = login_router()
    assert provider(router, loaded.msal_credential(), "certificate").token() == "AT-1"
    body = form(token_route.calls.last.request)
    assert body["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    header = jwt_header(body["client_assertion"])
    x5t = base64.urlsafe_b64encode(crt.fingerprint(hashes.SHA1())).decode().rstrip("=")
    assert str(header["x5t"]).rstrip("=") == x5t  # the SHA-1 thumbprint computed from the certificate
    assert "client_secret" not in body


def test_encrypted_pem_with_passphrase(
    tmp_path: Path, cert: tuple[rsa.RSAPrivateKey, x509.Certificate]
) -> None:
    key, crt = cert
    pem = tmp_path / "app.pem"
    pem.write_bytes(
        crt.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pem-pass"),
        )
    )
    router, token_route = login_router()
    cred = load_pem_certificate(pem).msal_credential("pem-pass")
    assert provider(router, cred, "certificate").token() == "AT-1"
    assert "client_assertion" in form(token_route.calls.last.request)


def test_pem_without_certificate_is_refused(tmp_path: Path) -> None:
    pem = tmp_path / "key-only.pem"
    pem.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(AuthError, match="has no CERTIFICATE block"):
        load_pem_certificate(pem)


def test_pfx_with_passphrase(tmp_path: Path, cert: tuple[rsa.RSAPrivateKey, x509.Certificate]) -> None:
    key, crt = cert
    pfx = tmp_path / "app.pfx"
    pfx.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"app", key, crt, None, serialization.BestAvailableEncryption(b"pfx-pass")
        )
    )
    router, token_route = login_router()
    cred = {"private_key_pfx_path": str(pfx), "passphrase": "pfx-pass"}
    assert provider(router, cred, "certificate").token() == "AT-1"
    assert "client_assertion" in form(token_route.calls.last.request)


def test_wrong_pfx_password_is_an_auth_error_with_a_hint(
    tmp_path: Path, cert: tuple[rsa.RSAPrivateKey, x509.Certificate]
) -> None:
    key, crt = cert
    pfx = tmp_path / "app.pfx"
    pfx.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"app", key, crt, None, serialization.BestAvailableEncryption(b"right")
        )
    )
    router, token_route = login_router()
    with pytest.raises(AuthError) as info:
        provider(
            router, {"private_key_pfx_path": str(pfx), "passphrase": "wrong-pass"}, "certificate"
        ).token()
    assert "ENTRA_SYNC_CERTIFICATE_PASSWORD" in str(info.value) and "wrong-pass" not in str(info.value)
    assert not token_route.called


# ---- workload identity federation -----------------------------------------------------------------


def test_federated_assertion_is_read_fresh_for_each_token_request(tmp_path: Path) -> None:
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text("assertion-one\n")
    router, token_route = login_router()
    p = provider(router, {"client_assertion": federated_assertion_reader(token_file)}, "federated")
    assert p.token() == "AT-1"
    token_file.write_text("assertion-two")  # the kubelet rotated it
    p.invalidate()
    assert p.token() == "AT-2"
    assertions = [form(c.request)["client_assertion"] for c in token_route.calls]
    assert assertions == ["assertion-one", "assertion-two"]


def test_federated_assertion_and_token_are_never_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.ASSERTION-PAYLOAD.sig")
    router, _ = login_router()
    with caplog.at_level(logging.DEBUG):
        p = provider(router, {"client_assertion": federated_assertion_reader(token_file)}, "federated")
        token = p.token()
    assert "ASSERTION-PAYLOAD" not in caplog.text and token not in caplog.text
    assert "ASSERTION-PAYLOAD" not in repr(p)


def test_missing_federated_token_file_is_an_auth_error(tmp_path: Path) -> None:
    router, _ = login_router()
    p = provider(router, {"client_assertion": federated_assertion_reader(tmp_path / "gone")}, "federated")
    with pytest.raises(AuthError, match="cannot read the federated token file"):
        p.token()


# ---- managed identity ---------------------------------------------------------------------------


IMDS = "http://169.254.169.254/metadata/identity/oauth2/token"


@pytest.mark.parametrize("client_id", [None, "99999999-8888-7777-6666-555555555555"])
def test_managed_identity_uses_imds_with_resource(
    client_id: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in (
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "MSI_ENDPOINT",
        "MSI_SECRET",
        "IDENTITY_SERVER_THUMBPRINT",
    ):
        monkeypatch.delenv(var, raising=False)  # the host decides the MI flavour; force plain IMDS
    router = respx.Router(assert_all_called=False)
    route = router.get(IMDS).mock(
        return_value=httpx.Response(
            200,
            json={
                "access_token": "MI-TOKEN",
                "expires_in": "3599",
                "resource": "https://graph.microsoft.com",
                "token_type": "Bearer",
            },
        )
    )
    http = MsalHttpClient(transport=httpx.MockTransport(router.handler), clock=VirtualClock())
    p = ManagedIdentityTokenProvider(
        resource="https://graph.microsoft.com", client_id=client_id, http_client=http
    )
    assert p.token() == "MI-TOKEN"
    assert p.token() == "MI-TOKEN"
    assert route.call_count == 1
    req = route.calls.last.request
    assert req.headers["Metadata"] == "true"
    assert req.url.params["resource"] == "https://graph.microsoft.com"
    assert req.url.params.get("client_id") == client_id
    p.invalidate()
    p.token()
    assert route.call_count == 2


def test_managed_identity_failure_is_an_auth_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "MSI_ENDPOINT",
        "MSI_SECRET",
        "IDENTITY_SERVER_THUMBPRINT",
    ):
        monkeypatch.delenv(var, raising=False)
    router = respx.Router(assert_all_called=False)
    router.get(IMDS).mock(
        return_value=httpx.Response(
            400, json={"error": "invalid_request", "error_description": "Identity not found"}
        )
    )
    http = MsalHttpClient(transport=httpx.MockTransport(router.handler), clock=VirtualClock())
    with pytest.raises(AuthError) as info:
        ManagedIdentityTokenProvider(resource="https://graph.microsoft.com", http_client=http).token()
    assert "managed identity" in str(info.value)


# ---- static tokens --------------------------------------------------------------------------------


def fake_jwt(claims: dict[str, object]) -> str:
    def enc(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{enc({'alg': 'none', 'typ': 'JWT'})}.{enc(claims)}.sig"


def test_static_token_warns_once_when_expired(caplog: pytest.LogCaptureFixture) -> None:
    clock = VirtualClock(start=2_000_000_000)
    tok = fake_jwt({"exp": 1_999_999_000, "roles": ["Group.ReadWrite.All"]})
    with caplog.at_level(logging.WARNING, logger="providers.entra.auth"):
        p = StaticTokenProvider(tok, clock=clock)
        assert p.token() == tok
        p.token()
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        "the access token in ENTRA_SYNC_ACCESS_TOKEN expired 1000 s ago; Graph will answer 401"
    ]
    assert tok not in repr(p) and not hasattr(p, "invalidate")


def test_static_token_not_a_jwt_is_accepted_silently(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        assert StaticTokenProvider(" emulator ").token() == "emulator"
    assert caplog.records == []
    with pytest.raises(AuthError):
        StaticTokenProvider("  ")


def test_jwt_claims_decodes_base64url_payload() -> None:
    assert jwt_claims(fake_jwt({"roles": ["a"], "tid": "t"})) == {"roles": ["a"], "tid": "t"}
    assert jwt_claims("not-a-jwt") is None
    assert jwt_claims("a.!!!.c") is None


def test_msal_http_client_retries_server_errors_on_the_clock() -> None:
    router = respx.Router(assert_all_called=False)
    route = router.get("https://login.example/x").mock(
        side_effect=[httpx.Response(503), httpx.ConnectError("x"), httpx.Response(200, text="ok")]
    )
    clock = VirtualClock()
    http = MsalHttpClient(transport=httpx.MockTransport(router.handler), clock=clock)
    assert http.get("https://login.example/x").text == "ok"
    assert route.call_count == 3 and clock.slept == 3.0
