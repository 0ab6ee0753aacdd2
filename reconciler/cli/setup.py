"""``entra-sync setup``: register the ownership marker on the sync app and check its permissions.

Run once per tenant (and again whenever in doubt; it changes nothing when all is in place). It
registers the directory extension property that holds each managed object's key
(``extension_{appId}_realsmartSyncKey``) on the sync app, or prints the exact manual steps when
the app may not, and names the application permissions the token lacks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated

import typer

from providers.entra.client import GraphClient
from providers.entra.marker import ensure_marker
from reconciler.errors import ConfigError

__all__ = ["SetupReport", "register", "run_setup"]


@dataclass(frozen=True, slots=True)
class SetupReport:
    marker: str
    #: the roles a full sync (groups, AUs, Teams) needs that the token lacks; None when the token
    #: cannot be read (then ``notes`` says why)
    missing_roles: tuple[str, ...] | None = None
    notes: tuple[str, ...] = ()


def _permission_check(client: GraphClient) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """The application roles a full sync needs (groups, AUs, Teams) that the token lacks; None when
    the token cannot be read (not a JWT, e.g. the emulator's), with the reason as a note."""
    from providers.entra.permissions import check_token_roles, required_roles

    if client.token_provider is None:
        return None, ("no access token to read",)
    needed = required_roles(groups=True, administrative_units=True, teams=True)
    check = check_token_roles(client.token_provider.token(), needed)
    if not check.checked:
        return None, (check.reason,)
    return tuple(check), ()


def run_setup(client: GraphClient, app_id: str, *, graph_root: str | None = None) -> SetupReport:
    """Register (or confirm) the marker and run the permissions check. Raises MarkerSetupError
    with the manual steps when the app may not register the marker."""
    root = graph_root or str(client.http.base_url).rstrip("/")
    marker = ensure_marker(client, app_id, graph_root=root)
    missing, notes = _permission_check(client)
    return SetupReport(marker, missing, notes)


def _app_id_from_token(client: GraphClient) -> str | None:
    """The signed-in app's id from the access token's ``appid`` (v1) or ``azp`` (v2) claim."""
    from providers.entra.auth import jwt_claims

    provider = client.token_provider
    claims = jwt_claims(provider.token()) if provider is not None else None
    value = (claims or {}).get("appid") or (claims or {}).get("azp")
    return value if isinstance(value, str) and value else None


def setup(
    app_id: Annotated[
        str | None,
        typer.Option("--app-id", envvar="ENTRA_SYNC_MARKER_APP_ID", show_envvar=True,
                     help="The app registration that owns the marker property. Default: the client id, "
                     "else the app the access token was issued to. A managed identity has no app "
                     "registration: name one here."),
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option("--client-id", envvar="ENTRA_SYNC_CLIENT_ID", show_envvar=True,
                     help="The sync app's application (client) id; the marker is registered on it."),
    ] = None,
    tenant_id: Annotated[
        str | None,
        typer.Option("--tenant-id", envvar="ENTRA_SYNC_TENANT_ID", show_envvar=True,
                     help="The directory (tenant) id or a verified domain."),
    ] = None,
    cloud: Annotated[
        str | None,
        typer.Option("--cloud", envvar="ENTRA_SYNC_CLOUD", show_envvar=True,
                     help="global (default), usgov, usgovdod or china."),
    ] = None,
    graph_url: Annotated[
        str | None,
        typer.Option("--graph-url", envvar="ENTRA_SYNC_GRAPH_URL", show_envvar=True,
                     help="A custom Graph base URL, e.g. http://127.0.0.1:8080 "
                     "for `entra-sync emulator serve`."),
    ] = None,
) -> None:
    """Register the ownership marker on the sync app and check the app's permissions.

    The credential comes from the environment (ENTRA_SYNC_CLIENT_SECRET, _CERTIFICATE_PATH, ...;
    never from the command line). Safe to run again: it changes nothing when all is in place.
    """
    from providers.entra.connect import ConnectionSettings, open_graph

    settings = ConnectionSettings.from_env(
        os.environ, client_id=client_id, tenant_id=tenant_id, cloud=cloud, graph_url=graph_url
    )
    with open_graph(settings) as client:
        owner = app_id or (settings.client_id if settings.credential != "managed_identity" else None)
        owner = owner or (_app_id_from_token(client) if settings.credential == "access_token" else None)
        if not owner:
            raise ConfigError(
                "name the app registration that owns the ownership marker (--app-id or "
                "ENTRA_SYNC_MARKER_APP_ID; by default the client id ENTRA_SYNC_CLIENT_ID)",
                key="ENTRA_SYNC_MARKER_APP_ID",
            )
        app_id = owner
        report = run_setup(client, owner, graph_root=settings.graph_base_url)
    typer.echo(f"ownership marker: {report.marker} (registered on app {app_id.lower()})")
    if report.missing_roles is None:
        for note in report.notes:
            typer.echo(f"permissions: not checked ({note})")
    elif report.missing_roles:
        typer.echo("permissions: the app lacks " + ", ".join(report.missing_roles)
                   + " (grant them as application permissions with admin consent; "
                   "see docs/permissions.md)", err=True)
        raise typer.Exit(1)
    else:
        typer.echo("permissions: every application permission a full sync needs is granted")


def register(app: typer.Typer) -> None:
    """Add ``entra-sync setup`` to the app."""
    app.command("setup")(setup)
