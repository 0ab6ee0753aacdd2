"""Wiring shared by the commands that talk to Graph: options, settings and the directory.

Settings come from, in order of precedence: command-line flags, ``ENTRA_SYNC_*`` environment
variables, the configuration file (``--config``), then the Azure SDKs' ``AZURE_TENANT_ID``,
``AZURE_CLIENT_ID``, ``AZURE_CLIENT_SECRET``, ``AZURE_CLIENT_CERTIFICATE_PATH`` and
``AZURE_FEDERATED_TOKEN_FILE``. Secrets come only from the environment or
files named there, never from flags.

A Graph URL of the form ``emulator:PATH`` runs the built-in Graph emulator in-process over the
tenant file PATH (which must exist: `emulator seed` or `demo` make one; saved back after the
run): no Azure account needed.

Every directory opened here carries the provider's journal of recent creates (one per Graph root,
tenant and app, in ``ENTRA_SYNC_STATE_DIR`` / ``$XDG_STATE_HOME/entra-sync`` /
``~/.local/state/entra-sync``), so two commands inside Graph's replication lag never create one
object twice, whether or not a configuration (and its run history) is given.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from entra_sync.config.load import connection_kwargs, load_config
from reconciler.errors import ConfigError, InputError
from reconciler.model import UserMatch
from reconciler.plan.safety import SafetyLimits
from reconciler.settings import Config

if TYPE_CHECKING:
    from providers.entra.client import GraphClient
    from providers.entra.connect import ConnectionSettings
    from providers.entra.delta import DeltaStore
    from providers.entra.directory import EntraDirectory
    from providers.entra.recent import CreateJournal

__all__ = [
    "DEMO_CLIENT_ID",
    "EMULATOR_SCHEME",
    "ConfigOpt",
    "Connection",
    "GraphOptions",
    "connection_settings",
    "limits_from",
    "open_connection",
    "open_directory",
]

EMULATOR_SCHEME = "emulator:"
#: the client id the in-process emulator uses when none is configured (the marker's app)
DEMO_CLIENT_ID = "00000000-0000-4000-8000-00000000d3e0"

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", envvar="ENTRA_SYNC_CONFIG", show_envvar=True,
        help="Configuration file (TOML); see entra-sync.example.toml. Flags and ENTRA_SYNC_* "
        "variables override it.",
    ),
]  # fmt: skip
GraphUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--graph-url", envvar="ENTRA_SYNC_GRAPH_URL", show_envvar=True,
        help="Custom Graph base URL, e.g. http://127.0.0.1:8080 for `entra-sync emulator serve`, "
        "or emulator:TENANT.json for the in-process emulator.",
    ),
]  # fmt: skip
TenantOpt = Annotated[
    str | None,
    typer.Option("--tenant-id", envvar="ENTRA_SYNC_TENANT_ID", show_envvar=True,
                 help="Directory (tenant) id or verified domain."),
]  # fmt: skip
ClientOpt = Annotated[
    str | None,
    typer.Option("--client-id", envvar="ENTRA_SYNC_CLIENT_ID", show_envvar=True,
                 help="Application (client) id of the sync app; it owns the ownership marker."),
]  # fmt: skip
CloudOpt = Annotated[
    str | None,
    typer.Option("--cloud", envvar="ENTRA_SYNC_CLOUD", show_envvar=True,
                 help="global (default), usgov, usgovdod or china."),
]  # fmt: skip


@dataclass(frozen=True)
class GraphOptions:
    config: Config | None = None
    graph_url: str | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    cloud: str | None = None
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)

    @classmethod
    def build(
        cls,
        config: Path | None,
        graph_url: str | None,
        tenant_id: str | None,
        client_id: str | None,
        cloud: str | None,
    ) -> GraphOptions:
        return cls(
            config=load_config(config) if config is not None else None,
            graph_url=graph_url, tenant_id=tenant_id, client_id=client_id, cloud=cloud,
        )  # fmt: skip

    @property
    def user_match(self) -> UserMatch:
        return self.config.users.match if self.config is not None else "userPrincipalName"

    def effective_graph_url(self) -> str | None:
        """The flag, else ENTRA_SYNC_GRAPH_URL, else the configuration's ``graph_url`` (checked there).

        The flag and the variable are held to the same rule as the configuration (https, or http to
        a loopback address only): a ConfigError naming where the URL came from otherwise."""
        if self.graph_url:
            # typer fills the flag from ENTRA_SYNC_GRAPH_URL too (its envvar), so name both
            return _checked_url(self.graph_url, "--graph-url / ENTRA_SYNC_GRAPH_URL")
        if self.env.get("ENTRA_SYNC_GRAPH_URL"):
            return _checked_url(self.env["ENTRA_SYNC_GRAPH_URL"], "ENTRA_SYNC_GRAPH_URL")
        if self.config is not None and self.config.tenant is not None and self.config.tenant.graph_url:
            url = self.config.tenant.graph_url
            if url.startswith(EMULATOR_SCHEME):
                # a relative tenant file is relative to the configuration file
                path = Path(url[len(EMULATOR_SCHEME) :])
                if not path.is_absolute():
                    path = self.config.file.parent / path
                return EMULATOR_SCHEME + str(path)
            return url
        return None

    def client_id_or_none(self) -> str | None:
        if self.client_id:
            return self.client_id
        if self.config is not None and self.config.tenant is not None:
            return self.config.tenant.client_id
        return None


def _checked_url(url: str, source: str) -> str:
    from providers.entra.urls import graph_url_problem, redact_url

    if url.startswith(EMULATOR_SCHEME):
        if not url[len(EMULATOR_SCHEME) :].strip():
            raise ConfigError("emulator: needs a tenant file, e.g. emulator:tenant.json", key=source)
        return url
    problem = graph_url_problem(url)
    if problem is not None:
        raise ConfigError(f"the Graph URL {redact_url(url)} {problem}", key=source)
    return url


def limits_from(config: Config | None) -> SafetyLimits:
    if config is None:
        return SafetyLimits()
    s = config.safety
    return SafetyLimits(
        max_delete_fraction=s.max_delete_fraction,
        max_deletes=s.max_deletes,
        max_member_removal_fraction=s.max_member_removal_fraction,
        min_objects_for_fraction=s.min_objects_for_fraction,
    )


def _settings_kwargs(opts: GraphOptions, graph_url: str | None) -> dict[str, Any]:
    """Flags win over ENTRA_SYNC_*, which wins over the configuration file, which wins over AZURE_*."""
    from providers.entra.connect import CREDENTIAL_VARIABLES

    env = opts.env
    given: dict[str, Any] = {
        "tenant_id": opts.tenant_id, "client_id": opts.client_id, "cloud": opts.cloud, "graph_url": graph_url,
    }  # fmt: skip
    config = opts.config
    if config is not None and config.tenant is not None:
        env_names = {"tenant_id": "ENTRA_SYNC_TENANT_ID", "client_id": "ENTRA_SYNC_CLIENT_ID",
                     "cloud": "ENTRA_SYNC_CLOUD", "graph_url": "ENTRA_SYNC_GRAPH_URL"}  # fmt: skip
        from_file: dict[str, Any] = {
            "tenant_id": config.tenant.tenant_id, "client_id": config.tenant.client_id,
            "cloud": config.tenant.cloud, "graph_url": config.tenant.graph_url,
        }  # fmt: skip
        for key, value in from_file.items():
            if given.get(key) is None and not env.get(env_names[key]) and key != "graph_url":
                given[key] = value
        # our variables beat the file; the file beats the Azure SDKs' AZURE_* names
        env_has_credential = any(env.get(v) for v in CREDENTIAL_VARIABLES.values())
        if config.credentials.method is not None and not env_has_credential:
            kwargs = connection_kwargs(config)
            given["credential"] = kwargs["credential"]
            given["credential_ref"] = kwargs["credential_ref"]
            given["certificate_password_env"] = kwargs["certificate_password_env"]
    return given


def connection_settings(opts: GraphOptions, graph_url: str | None = None) -> ConnectionSettings:
    """The Graph connection settings these options give (see :func:`_settings_kwargs` for the order)."""
    from providers.entra.connect import ConnectionSettings

    return ConnectionSettings.from_env(opts.env, **_settings_kwargs(opts, graph_url))


@dataclass(frozen=True)
class Connection:
    """An open Graph client, and the app registration that owns the ownership marker."""

    client: GraphClient
    marker_app_id: str
    graph_root: str
    emulated: bool = False
    #: names the tenant for the journal of recent creates (the tenant id, or the emulator's file)
    tenant: str = ""


def _marker_owner(opts: GraphOptions, settings: ConnectionSettings, client: GraphClient) -> str:
    """The marker's app: ENTRA_SYNC_MARKER_APP_ID, else the client id (not for a managed identity,
    which has no app registration), else the app an access token was issued to."""
    from providers.entra.auth import jwt_claims

    owner = opts.env.get("ENTRA_SYNC_MARKER_APP_ID") or None
    if owner is None and settings.credential != "managed_identity":
        owner = settings.client_id
    if owner is None and settings.credential == "access_token" and client.token_provider is not None:
        claims = jwt_claims(client.token_provider.token()) or {}
        found = claims.get("appid") or claims.get("azp")
        owner = found if isinstance(found, str) and found else None
    if not owner:
        raise ConfigError(
            "name the app registration that owns the ownership marker: ENTRA_SYNC_MARKER_APP_ID, or the "
            "sync app's client id (--client-id, ENTRA_SYNC_CLIENT_ID or [tenant] client_id)",
            key="ENTRA_SYNC_MARKER_APP_ID",
        )
    return owner


@contextlib.contextmanager
def open_connection(opts: GraphOptions) -> Iterator[Connection]:
    """A Graph connection for these options (closed afterwards; an in-process emulator tenant is
    saved back to its file)."""
    url = opts.effective_graph_url()
    if url is not None and url.startswith(EMULATOR_SCHEME):
        with _emulated(opts, Path(url[len(EMULATOR_SCHEME) :])) as conn:
            yield conn
        return

    from providers.entra.connect import open_graph

    settings = connection_settings(opts, url)
    with open_graph(settings) as client:
        yield Connection(client, _marker_owner(opts, settings, client), settings.graph_base_url,
                         tenant=settings.tenant_id or "")


@contextlib.contextmanager
def open_directory(
    opts: GraphOptions, delta: DeltaStore | None = None, *, recent: Mapping[str, str] | None = None
) -> Iterator[EntraDirectory]:
    """The Entra directory for these options, as a context manager. With ``delta`` (the run
    store's delta state) and ``[delta] enabled``, reads follow Graph's delta links. ``recent``
    (object id -> kind: a shared run store's recent creates, as the fleet's workers have) stands
    in for this machine's journal of recent creates."""
    from providers.entra.delta import DeltaPolicy
    from providers.entra.directory import EntraDirectory
    from providers.entra.marker import ensure_marker, marker_name
    from providers.entra.teams import TeamPolicy
    from providers.entra.write import WritePolicy
    from reconciler.settings import SyncConfig

    with open_connection(opts) as conn:
        if conn.emulated:  # a demo tenant: register the marker as `entra-sync setup` would
            ensure_marker(conn.client, conn.marker_app_id, graph_root=conn.graph_root)
        sync = opts.config.sync if opts.config is not None else SyncConfig()
        # the in-process demo tenant (ideal profile) has no Team window: no Team waits for it there
        policy = WritePolicy(teams=TeamPolicy(min_group_age=0.0)) if conn.emulated else None
        delta_policy = None
        settings = opts.config.delta if opts.config is not None else None
        if delta is not None and settings is not None and settings.enabled:
            scope = f"{conn.graph_root}|{conn.tenant}|{marker_name(conn.marker_app_id)}"
            delta_policy = DeltaPolicy(
                delta, scope, conn.client.clock, full_every_runs=settings.full_every_runs,
                full_every_seconds=settings.full_every_days * 86400.0,
            )  # fmt: skip
        directory = EntraDirectory.for_app(
            conn.client, conn.marker_app_id, user_match=opts.user_match, recent=recent,
            journal=journal_for(opts, conn) if recent is None else None,
            behavior_options=sync.resource_behavior_options(), policy=policy, delta=delta_policy,
        )  # fmt: skip
        try:
            yield directory
        finally:
            directory.flush_notes()


def journal_for(opts: GraphOptions, conn: Connection) -> CreateJournal:
    """The provider's own journal of what this machine created recently in this tenant with this
    app (providers.entra.recent): any command, with or without a configuration, reads it."""
    from providers.entra.marker import marker_name
    from providers.entra.recent import CreateJournal, default_state_dir

    return CreateJournal.for_scope(
        conn.graph_root, conn.tenant, marker_name(conn.marker_app_id), state_dir=default_state_dir(opts.env)
    )


@contextlib.contextmanager
def _emulated(opts: GraphOptions, path: Path) -> Iterator[Connection]:
    """The in-process emulator over an existing tenant file (saved afterwards)."""
    import httpx

    from providers.emulator import EmulatorTransport, Profile, Tenant
    from providers.entra.client import GraphClient
    from reconciler.clock import SystemClock

    if not path.is_file():  # a typo must not sync into a new, empty tenant (`demo`/`emulator seed` make one)
        raise InputError(
            f"{path}: no such emulator tenant file; check the path, or create one with "
            "`entra-sync emulator seed USERS.csv --state PATH` (or run `entra-sync demo`)"
        )
    tenant = Tenant.load(path)
    clock = SystemClock()
    transport = EmulatorTransport(tenant, clock=clock, profile=Profile.ideal())
    root = "https://graph.microsoft.com/v1.0"
    http = httpx.Client(
        transport=transport, base_url=root, headers={"Authorization": "Bearer in-process-emulator"}
    )
    client = GraphClient(http, token=None, clock=clock)
    try:
        yield Connection(client, opts.client_id_or_none() or DEMO_CLIENT_ID, root, emulated=True,
                         tenant=EMULATOR_SCHEME + str(path.resolve()))
    finally:
        client.close()
        path.parent.mkdir(parents=True, exist_ok=True)
        tenant.save(path)
