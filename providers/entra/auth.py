"""App-only authentication to Microsoft Graph with MSAL (graph-facts.md §9).

Token providers, all with ``.token() -> str`` (the :class:`~providers.entra.client.TokenProvider`
protocol) and ``.invalidate()`` (drop the cached token once after a 401):

- :class:`MsalTokenProvider`: a ``ConfidentialClientApplication`` with a client secret, a
  certificate (PEM with its SHA-1 thumbprint computed from the certificate, or PFX with passphrase)
  or a federated client assertion read fresh from a token file on every token request;
- :class:`ManagedIdentityTokenProvider`: ``msal.ManagedIdentityClient`` (system or user-assigned);
- :class:`StaticTokenProvider`: a pre-acquired access token (``ENTRA_SYNC_ACCESS_TOKEN``).

One MSAL app and one in-memory token cache per provider (build one provider per run); MSAL serves
the cached token and fetches a new one shortly before it expires. MSAL's HTTP goes through
:class:`MsalHttpClient` over httpx, so tests inject a transport and nothing touches the network.

Must-not: put a secret, passphrase, assertion or token in a log line, repr or exception message.
Failures raise :class:`~providers.entra.errors.AuthError` with the tenant id, client id and MSAL's
error code and description.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msal

from providers.entra.errors import AuthError
from reconciler.clock import Clock, SystemClock

__all__ = [
    "CertificateCredential",
    "ManagedIdentityTokenProvider",
    "MsalHttpClient",
    "MsalTokenProvider",
    "StaticTokenProvider",
    "federated_assertion_reader",
    "jwt_claims",
    "load_pem_certificate",
]

log = logging.getLogger(__name__)


# ---- MSAL's HTTP over httpx ---------------------------------------------------------------------


class MsalHttpClient:
    """MSAL's ``http_client`` interface (``get``/``post`` returning response-like objects) over httpx.

    Retries transport errors, 429 and 5xx a few times with back-off on the injected clock (MSAL
    itself does not retry managed-identity calls). Never logs bodies, headers or query strings.
    """

    def __init__(
        self,
        http: httpx.Client | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Clock | None = None,
        attempts: int = 3,
        timeout: float = 30.0,
    ) -> None:
        self.http = http or httpx.Client(transport=transport, timeout=timeout)
        self.clock: Clock = clock or SystemClock()
        self.attempts = max(1, attempts)

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> httpx.Response:
        return self._send("GET", url, params=params, headers=headers, timeout=kwargs.get("timeout"))

    def post(
        self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any
    ) -> httpx.Response:
        return self._send(
            "POST", url, params=params, data=data, headers=headers, timeout=kwargs.get("timeout")
        )

    def close(self) -> None:
        self.http.close()

    def _send(
        self, method: str, url: str, *, params: Any, headers: Any, timeout: Any, data: Any = None
    ) -> httpx.Response:
        kw: dict[str, Any] = {"params": params, "headers": headers}
        if isinstance(data, str | bytes):
            kw["content"] = data
        elif isinstance(data, Mapping):
            # requests form-encodes bytes values as text; httpx would send "b'...'" (MSAL passes the
            # signed client assertion as bytes).
            kw["data"] = {k: v.decode("utf-8") if isinstance(v, bytes) else v for k, v in data.items()}
        elif data is not None:
            kw["data"] = data
        if timeout is not None:
            kw["timeout"] = timeout
        shown = url.split("?", 1)[0]
        for attempt in range(1, self.attempts + 1):
            try:
                resp = self.http.request(method, url, **kw)
            except httpx.TransportError as exc:
                log.info("%s %s -> %s", method, shown, type(exc).__name__)
                if attempt == self.attempts:
                    raise
                self.clock.sleep(2.0 ** (attempt - 1))
                continue
            log.info("%s %s -> %d", method, shown, resp.status_code)
            if (resp.status_code == 429 or resp.status_code >= 500) and attempt < self.attempts:
                self.clock.sleep(2.0 ** (attempt - 1))
                continue
            return resp
        raise AssertionError("unreachable")  # pragma: no cover


# ---- credentials --------------------------------------------------------------------------------

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----\s*(.+?)\s*-----END \1-----", re.DOTALL)


@dataclass(frozen=True, slots=True)
class CertificateCredential:
    """A PEM private key and its certificate's SHA-1 thumbprint, as MSAL's credential dict wants.

    ``repr`` shows only the thumbprint.
    """

    private_key_pem: str
    thumbprint: str
    certificate_pem: str

    def __repr__(self) -> str:
        return f"CertificateCredential(thumbprint={self.thumbprint!r})"

    def msal_credential(self, passphrase: str | None = None, *, send_x5c: bool = False) -> dict[str, Any]:
        cred: dict[str, Any] = {"private_key": self.private_key_pem, "thumbprint": self.thumbprint}
        if passphrase:
            cred["passphrase"] = passphrase
        if send_x5c:
            cred["public_certificate"] = self.certificate_pem
        return cred


def load_pem_certificate(path: Path) -> CertificateCredential:
    """Read a PEM file holding a private key and its certificate; compute the thumbprint.

    Raises AuthError (naming the file, never its content) when either block is missing.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AuthError(f"cannot read the certificate file {path} ({type(exc).__name__})") from None
    blocks = {m.group(1): m.group(0) for m in _PEM_BLOCK.finditer(text)}
    cert = blocks.get("CERTIFICATE")
    key = next((v for k, v in blocks.items() if k.endswith("PRIVATE KEY")), None)
    if cert is None or key is None:
        missing = "CERTIFICATE block" if cert is None else "PRIVATE KEY block"
        raise AuthError(
            f"the certificate file {path} has no {missing}; it must hold the key and the certificate"
        )
    body = _PEM_BLOCK.match(cert)
    assert body is not None
    try:
        der = base64.b64decode("".join(body.group(2).split()), validate=True)
    except (binascii.Error, ValueError):
        raise AuthError(f"the certificate in {path} is not valid base64 PEM") from None
    return CertificateCredential(key, hashlib.sha1(der).hexdigest().upper(), cert)


def federated_assertion_reader(path: Path) -> Callable[[], str]:
    """A callable MSAL calls for each token request: the assertion is read fresh from ``path``.

    Kubernetes and CI rotate the token file, so it must never be cached here.
    """

    def read() -> str:
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise AuthError(f"cannot read the federated token file {path} ({type(exc).__name__})") from None
        if not value:
            raise AuthError(f"the federated token file {path} is empty")
        return value

    return read


# ---- token providers ----------------------------------------------------------------------------


def _auth_error(
    message: str, result: Mapping[str, Any], tenant_id: str | None, client_id: str | None
) -> AuthError:
    desc = result.get("error_description")
    first_line = desc.strip().splitlines()[0] if isinstance(desc, str) and desc.strip() else None
    return AuthError(
        message,
        tenant_id=tenant_id,
        client_id=client_id,
        error=str(result.get("error") or "unknown_error"),
        error_description=first_line,
    )


class MsalTokenProvider:
    """App-only tokens from one ``msal.ConfidentialClientApplication`` (secret, certificate or assertion)."""

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        credential: str | Mapping[str, Any],
        authority: str,
        scope: str,
        http_client: MsalHttpClient | None = None,
        kind: str = "credential",
    ) -> None:
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.scope = scope
        self.kind = kind
        self._lock = threading.Lock()
        try:
            self._app = msal.ConfidentialClientApplication(
                client_id,
                client_credential=credential,
                authority=authority,
                token_cache=msal.TokenCache(),
                http_client=http_client or MsalHttpClient(),
                # The authority hosts are the well-known national-cloud ones (clouds.py): no
                # instance-discovery round trip to login.microsoftonline.com/common.
                instance_discovery=False,
            )
        except AuthError:
            raise
        except Exception as exc:  # MSAL raises ValueError & co. for bad keys or authorities
            raise AuthError(
                f"cannot set up sign-in with the {_kind_label(kind)} ({type(exc).__name__})",
                tenant_id=tenant_id,
                client_id=client_id,
                hint=_hint(kind, exc),
            ) from None

    def __repr__(self) -> str:
        return (
            f"MsalTokenProvider(kind={self.kind!r}, tenant_id={self.tenant_id!r}, "
            f"client_id={self.client_id!r})"
        )

    def token(self) -> str:
        with self._lock:
            try:
                result = self._app.acquire_token_for_client(scopes=[self.scope])
            except AuthError:
                raise
            except Exception as exc:  # network failures, OIDC discovery errors
                raise AuthError(
                    f"sign-in with the {_kind_label(self.kind)} failed ({type(exc).__name__})",
                    tenant_id=self.tenant_id,
                    client_id=self.client_id,
                    hint=_hint(self.kind, exc),
                ) from None
        if not isinstance(result, dict) or "access_token" not in result:
            raise _auth_error(
                f"sign-in with the {_kind_label(self.kind)} was refused",
                result or {},
                self.tenant_id,
                self.client_id,
            )
        log.debug("token for %s from %s", self.scope, result.get("token_source", "identity_provider"))
        return str(result["access_token"])

    def invalidate(self) -> None:
        with self._lock:
            self._app.remove_tokens_for_client()


_SETUP_HINTS = {
    "certificate": "the file must be a PEM with the private key and the certificate, or a PFX/P12 "
    "with its password in ENTRA_SYNC_CERTIFICATE_PASSWORD",
    "federated": "check the federated token file and the app's federated credential",
}


def _hint(kind: str, exc: BaseException) -> str | None:
    if isinstance(exc, httpx.TransportError):
        return "cannot reach the sign-in service; check network access and proxy settings"
    return _SETUP_HINTS.get(kind)


def _kind_label(kind: str) -> str:
    return kind.replace("_", " ")


class ManagedIdentityTokenProvider:
    """Tokens from Azure managed identity: ``client_id=None`` for system-assigned, else user-assigned."""

    def __init__(
        self, *, resource: str, client_id: str | None = None, http_client: MsalHttpClient | None = None
    ) -> None:
        self.resource = resource
        self.client_id = client_id
        self._http = http_client or MsalHttpClient()
        self._lock = threading.Lock()
        self._client = self._build()

    def _build(self) -> Any:
        identity: Any = (
            msal.UserAssignedManagedIdentity(client_id=self.client_id)
            if self.client_id
            else msal.SystemAssignedManagedIdentity()
        )
        return msal.ManagedIdentityClient(identity, http_client=self._http, token_cache=msal.TokenCache())

    def __repr__(self) -> str:
        return f"ManagedIdentityTokenProvider(client_id={self.client_id!r})"

    def token(self) -> str:
        with self._lock:
            try:
                result = self._client.acquire_token_for_client(resource=self.resource)
            except Exception as exc:
                raise AuthError(
                    f"managed identity sign-in failed ({type(exc).__name__})", client_id=self.client_id
                ) from None
        if not isinstance(result, dict) or "access_token" not in result:
            raise _auth_error("managed identity sign-in was refused", result or {}, None, self.client_id)
        return str(result["access_token"])

    def invalidate(self) -> None:
        with self._lock:
            self._client = self._build()


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT (base64url, no signature check), or None if ``token`` is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, UnicodeError):
        return None
    return claims if isinstance(claims, dict) else None


class StaticTokenProvider:
    """A pre-acquired access token. Warns (once) when the JWT's ``exp`` is already past.

    It cannot be refreshed, so it has no ``invalidate``: a 401 is raised at once.
    """

    def __init__(
        self, access_token: str, *, source: str = "ENTRA_SYNC_ACCESS_TOKEN", clock: Clock | None = None
    ) -> None:
        if not access_token.strip():
            raise AuthError(f"{source} is empty")
        self._token = access_token.strip()
        self.source = source
        self.clock: Clock = clock or SystemClock()
        self._warned = False
        self.expired()

    def __repr__(self) -> str:
        return f"StaticTokenProvider(source={self.source!r})"

    def expired(self) -> bool:
        """True (and one warning logged) when the token is a JWT whose ``exp`` has passed."""
        claims = jwt_claims(self._token)
        exp = claims.get("exp") if claims else None
        if isinstance(exp, int | float) and exp <= self.clock.now():
            if not self._warned:
                self._warned = True
                log.warning(
                    "the access token in %s expired %.0f s ago; Graph will answer 401",
                    self.source,
                    self.clock.now() - exp,
                )
            return True
        return False

    def token(self) -> str:
        self.expired()
        return self._token
