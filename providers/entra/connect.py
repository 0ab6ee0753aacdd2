"""Connection settings from the environment, and :func:`open_graph` to get a ready GraphClient.

Environment variables (a CLI flag of the same meaning overrides the variable):

    ENTRA_SYNC_TENANT_ID, ENTRA_SYNC_CLIENT_ID     the app registration (tenant id or domain)
    ENTRA_SYNC_CLOUD                               global (default), usgov, usgovdod, china
    ENTRA_SYNC_GRAPH_URL                           e.g. http://127.0.0.1:8080 (the emulator)
    exactly one credential:
    ENTRA_SYNC_CLIENT_SECRET                       a client secret (never as a command-line flag)
    ENTRA_SYNC_CLIENT_SECRET_FILE                  a file holding the client secret
    ENTRA_SYNC_CERTIFICATE_PATH (+ _PASSWORD)      PEM (key + certificate) or PFX/P12
    ENTRA_SYNC_FEDERATED_TOKEN_FILE                workload identity (AZURE_FEDERATED_TOKEN_FILE too)
    ENTRA_SYNC_MANAGED_IDENTITY                    "system" or a user-assigned identity's client id
    ENTRA_SYNC_ACCESS_TOKEN                        a pre-acquired access token

When none of our credential variables is set, the Azure SDKs' names are read, in their order:
``AZURE_CLIENT_SECRET``, ``AZURE_CLIENT_CERTIFICATE_PATH`` (+ ``AZURE_CLIENT_CERTIFICATE_PASSWORD``),
``AZURE_FEDERATED_TOKEN_FILE``; ``AZURE_TENANT_ID`` / ``AZURE_CLIENT_ID`` stand in for ours when
ours are not set.

Settings hold references only (variable names, file paths); secret values are read when a token is
needed, so the settings' repr, logs and run history never carry them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from providers.entra.auth import (
    ManagedIdentityTokenProvider,
    MsalHttpClient,
    MsalTokenProvider,
    StaticTokenProvider,
    federated_assertion_reader,
    load_pem_certificate,
)
from providers.entra.client import GraphClient, RetryPolicy, TokenProvider
from providers.entra.clouds import Cloud, cloud_named
from providers.entra.urls import graph_url_problem, redact_url
from reconciler.clock import Clock
from reconciler.errors import ConfigError

__all__ = [
    "AZURE_CREDENTIAL_VARIABLES",
    "CREDENTIAL_VARIABLES",
    "ConnectionSettings",
    "CredentialKind",
    "SecretSource",
    "build_token_provider",
    "open_graph",
]

log = logging.getLogger(__name__)

CredentialKind = Literal[
    "client_secret", "client_secret_file", "certificate", "federated", "managed_identity", "access_token"
]

# credential kind -> the variable that selects it (in the order they are listed in messages)
CREDENTIAL_VARIABLES: dict[str, str] = {
    "client_secret": "ENTRA_SYNC_CLIENT_SECRET",
    "client_secret_file": "ENTRA_SYNC_CLIENT_SECRET_FILE",
    "certificate": "ENTRA_SYNC_CERTIFICATE_PATH",
    "federated": "ENTRA_SYNC_FEDERATED_TOKEN_FILE",
    "managed_identity": "ENTRA_SYNC_MANAGED_IDENTITY",
    "access_token": "ENTRA_SYNC_ACCESS_TOKEN",
}
#: the Azure SDKs' names (EnvironmentCredential, then workload identity, in the SDKs' order), read
#: when none of ours is set; their AZURE_TENANT_ID / AZURE_CLIENT_ID stand in for ours likewise
AZURE_CREDENTIAL_VARIABLES: dict[str, str] = {
    "client_secret": "AZURE_CLIENT_SECRET",
    "certificate": "AZURE_CLIENT_CERTIFICATE_PATH",
    "federated": "AZURE_FEDERATED_TOKEN_FILE",
}
_NEEDS_APP = frozenset({"client_secret", "client_secret_file", "certificate", "federated"})
_USER_AGENT = "realsmart-entra-sync/0.1"


class SecretSource:
    """The few environment values the settings refer to (the credential variable and the
    certificate password variable), kept out of repr, equality, ``dataclasses.asdict`` expansion
    and JSON (it is not a dict, so serialising it fails instead of leaking).
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = dict(values or {})

    def get(self, name: str, default: str = "") -> str:
        return self._values.get(name, default)

    def __repr__(self) -> str:
        return f"SecretSource(<{len(self._values)} value(s) hidden>)"

    def __deepcopy__(self, memo: dict[int, Any]) -> SecretSource:
        return self


def _one_of() -> str:
    names = list(CREDENTIAL_VARIABLES.values())
    return ", ".join(names[:-1]) + " or " + names[-1]


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and how to reach Graph. Holds references, never secret values (see the module doc).

    ``credential_ref`` is: the variable name (client_secret, access_token), the file path
    (client_secret_file, certificate, federated) or ``system`` / a client id (managed_identity).
    ``env`` holds the referenced variables' values only (see :class:`SecretSource`); use
    :meth:`as_dict` or :meth:`describe` to record or show the settings.
    """

    tenant_id: str | None = None
    client_id: str | None = None
    cloud: str = "global"
    graph_url: str | None = None
    credential: CredentialKind | None = None
    credential_ref: str | None = None
    certificate_password_env: str | None = None
    env: SecretSource = field(default_factory=SecretSource, repr=False, compare=False)

    def __post_init__(self) -> None:
        cloud_named(self.cloud)  # raises ConfigError for an unknown cloud
        if self.credential is None:
            raise ConfigError(f"no credential for Microsoft Graph: set one of {_one_of()}")
        if self.credential not in CREDENTIAL_VARIABLES:
            raise ConfigError(f"unknown credential kind {self.credential!r}")
        if self.credential != "access_token" and not self.credential_ref:
            raise ConfigError(f"{CREDENTIAL_VARIABLES[self.credential]} is empty")
        if self.credential in _NEEDS_APP:
            for value, var in (
                (self.tenant_id, "ENTRA_SYNC_TENANT_ID"),
                (self.client_id, "ENTRA_SYNC_CLIENT_ID"),
            ):
                if not value:
                    raise ConfigError(
                        f"set {var} (or {var.replace('ENTRA_SYNC_', 'AZURE_')}; needed to sign in with "
                        f"{CREDENTIAL_VARIABLES[self.credential]})", key=var
                    )
        if self.tenant_id is not None:
            t = self.tenant_id.strip()
            if t.lower() in {"common", "organizations", "consumers"} or not re.fullmatch(
                r"[A-Za-z0-9.\-]+", t
            ):
                raise ConfigError(
                    "must be the directory (tenant) id or a verified domain such as contoso.onmicrosoft.com",
                    key="ENTRA_SYNC_TENANT_ID",
                )
        if self.graph_url is not None:
            problem = graph_url_problem(self.graph_url)
            if problem is not None:
                raise ConfigError(
                    f"the Graph URL {redact_url(self.graph_url)} {problem} (e.g. https://graph.microsoft.com "
                    "or http://127.0.0.1:8080)",
                    key="ENTRA_SYNC_GRAPH_URL",
                )

    # ---- construction ---------------------------------------------------------------------------
    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> ConnectionSettings:
        """Read the ENTRA_SYNC_* variables from ``env``; keyword overrides (e.g. CLI flags) win.

        Overrides whose value is None are ignored. Raises ConfigError when no credential or more
        than one is set, or when something the chosen credential needs is missing.
        """
        known = {f.name for f in dataclasses.fields(cls)} - {"env"}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown connection setting(s): {', '.join(sorted(unknown))}")
        given = {k: v for k, v in overrides.items() if v is not None}

        def var(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value and value.strip() else None

        values: dict[str, Any] = {
            "tenant_id": var("ENTRA_SYNC_TENANT_ID") or var("AZURE_TENANT_ID"),
            "client_id": var("ENTRA_SYNC_CLIENT_ID") or var("AZURE_CLIENT_ID"),
            "cloud": var("ENTRA_SYNC_CLOUD") or "global",
            "graph_url": var("ENTRA_SYNC_GRAPH_URL"),
        }
        if "credential" not in given:
            chosen = [(kind, name) for kind, name in CREDENTIAL_VARIABLES.items() if var(name)]
            if len(chosen) > 1:
                raise ConfigError(
                    "more than one credential is set ("
                    + ", ".join(name for _, name in chosen)
                    + "); keep exactly one"
                )
            if chosen:
                kind, name = chosen[0]
                values["credential"] = kind
                values["credential_ref"] = name if kind in ("client_secret", "access_token") else var(name)
            password = "ENTRA_SYNC_CERTIFICATE_PASSWORD"
            if not chosen:
                azure = [(kind, name) for kind, name in AZURE_CREDENTIAL_VARIABLES.items() if var(name)]
                if azure:
                    kind, name = azure[0]
                    values["credential"] = kind
                    values["credential_ref"] = name if kind == "client_secret" else var(name)
                    password = "AZURE_CLIENT_CERTIFICATE_PASSWORD"
            if values.get("credential") == "certificate" and var(password):
                values["certificate_password_env"] = password
        values.update(given)
        names = [values.get("certificate_password_env")]
        if values.get("credential") in ("client_secret", "access_token"):
            names.append(values.get("credential_ref"))
        referenced = {n: env[n] for n in names if n and n in env}
        return cls(**values, env=SecretSource(referenced))

    # ---- derived values -------------------------------------------------------------------------
    @property
    def cloud_info(self) -> Cloud:
        return cloud_named(self.cloud)

    @property
    def graph_base_url(self) -> str:
        """The Graph root with version: the override (``/v1.0`` added if it has none) or the cloud's."""
        if not self.graph_url:
            return self.cloud_info.graph_base_url
        url = self.graph_url.rstrip("/")
        if not re.search(r"/(v1\.0|beta)$", urlsplit(url).path):
            url += "/v1.0"
        return url

    def as_dict(self) -> dict[str, str | None]:
        """The settings without secret values (references only): safe for logs and run history."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "env"}

    def describe(self) -> str:
        """A one-line summary that is safe to log (names and ids only)."""
        ref = self.credential_ref or CREDENTIAL_VARIABLES.get(self.credential or "", "")
        how = f"{self.credential} ({ref})" if self.credential != "access_token" else "an access token"
        who = ", ".join(f"{k} {v}" for k, v in (("tenant", self.tenant_id), ("client", self.client_id)) if v)
        return f"Graph at {self.graph_base_url} with {how}" + (f" for {who}" if who else "")

    # ---- lazy secret reads (never stored on the object) -----------------------------------------
    def _env_value(self, name: str) -> str:
        value = self.env.get(name, "").strip()
        if not value:
            raise ConfigError(f"{name} is not set or empty", key=name)
        return value

    def _file_value(self, path: str, variable: str) -> str:
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {path} ({type(exc).__name__})", key=variable) from None
        if not value:
            raise ConfigError(f"{path} is empty", key=variable)
        return value


def _warn_plain_http(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        return
    host = parts.hostname
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        log.warning("the Graph URL %s uses plain http; the access token is sent unencrypted", url)


def build_token_provider(
    settings: ConnectionSettings,
    *,
    auth_transport: httpx.BaseTransport | None = None,
    clock: Clock | None = None,
) -> TokenProvider:
    """The token provider for the settings' credential. Reads the secret now, holds it only in MSAL.

    ``auth_transport`` carries MSAL's sign-in requests (tests give a respx router).
    """
    cloud = settings.cloud_info
    kind = settings.credential
    ref = settings.credential_ref or ""
    var = CREDENTIAL_VARIABLES[kind or "access_token"]
    if kind == "access_token":
        return StaticTokenProvider(settings._env_value(ref or var), source=ref or var, clock=clock)
    http = MsalHttpClient(transport=auth_transport, clock=clock)
    if kind == "managed_identity":
        client_id = None if ref.lower() in ("system", "true", "1", "yes") else ref
        return ManagedIdentityTokenProvider(
            resource=cloud.graph_endpoint, client_id=client_id, http_client=http
        )
    assert settings.tenant_id and settings.client_id  # checked in __post_init__
    credential: str | dict[str, Any]
    if kind == "client_secret":
        credential = settings._env_value(ref)
    elif kind == "client_secret_file":
        credential = settings._file_value(ref, var)
    elif kind == "certificate":
        password = (
            settings._env_value(settings.certificate_password_env)
            if settings.certificate_password_env
            else None
        )
        if not Path(ref).is_file():
            raise ConfigError(f"certificate file {ref} not found", key=var)
        if ref.lower().endswith((".pfx", ".p12")):
            credential = {"private_key_pfx_path": ref}
            if password:
                credential["passphrase"] = password
        else:
            credential = load_pem_certificate(Path(ref)).msal_credential(password)
    elif kind == "federated":
        if not Path(ref).is_file():
            raise ConfigError(f"federated token file {ref} not found", key=var)
        credential = {"client_assertion": federated_assertion_reader(Path(ref))}
    else:  # pragma: no cover - __post_init__ rejects other kinds
        raise ConfigError(f"unknown credential kind {kind!r}")
    return MsalTokenProvider(
        tenant_id=settings.tenant_id,
        client_id=settings.client_id,
        credential=credential,
        authority=cloud.authority(settings.tenant_id),
        scope=cloud.scope,
        http_client=http,
        kind=kind,
    )


def open_graph(
    settings: ConnectionSettings,
    *,
    clock: Clock | None = None,
    transport: httpx.BaseTransport | None = None,
    auth_transport: httpx.BaseTransport | None = None,
    retry: RetryPolicy | None = None,
    max_in_flight: int = 4,
    rng: random.Random | None = None,
) -> GraphClient:
    """A GraphClient for the settings: base URL from the cloud or the override, token provider ready.

    ``transport`` carries Graph requests (the emulator's in tests), ``auth_transport`` MSAL's.
    The caller closes the client (``with open_graph(s) as client:``).
    """
    retry = retry or RetryPolicy()
    base = settings.graph_base_url
    _warn_plain_http(base)
    token = build_token_provider(settings, auth_transport=auth_transport, clock=clock)
    http = httpx.Client(
        base_url=base,
        transport=transport,
        headers={"User-Agent": _USER_AGENT},
        timeout=retry.timeout_seconds,
    )
    log.info("connecting: %s", settings.describe())
    return GraphClient(
        http, token=token, clock=clock, retry=retry, max_in_flight=max_in_flight, rng=rng, close_http=True
    )
