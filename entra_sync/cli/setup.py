"""``entra-sync setup``: register the ownership marker on the sync app and check its permissions.

Run once per tenant (and again whenever in doubt; it changes nothing when all is in place). It
registers the directory extension property that holds each managed object's key
(``extension_{appId}_realsmartSyncKey``) on the sync app, or prints the exact manual steps when
the app may not, and names the application permissions the token lacks.
"""

from __future__ import annotations

from dataclasses import dataclass

import typer

from entra_sync.cli.wiring import (
    ClientOpt,
    CloudOpt,
    ConfigOpt,
    GraphOptions,
    GraphUrlOpt,
    TenantOpt,
    open_connection,
)
from providers.entra.client import GraphClient
from providers.entra.marker import ensure_marker

__all__ = ["SetupReport", "register", "run_setup"]


@dataclass(frozen=True, slots=True)
class SetupReport:
    marker: str
    #: the roles a full sync (groups, AUs, Teams) needs that the token lacks; None when the token
    #: cannot be read (then ``notes`` says why)
    missing_roles: tuple[str, ...] | None = None
    notes: tuple[str, ...] = ()


def _permission_check(client: GraphClient) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """The application roles a full sync needs (groups, AUs, Teams, classes as education classes)
    that the token lacks; None when
    the token cannot be read (not a JWT, e.g. the emulator's), with the reason as a note."""
    from providers.entra.permissions import check_token_roles, required_roles

    if client.token_provider is None:
        return None, ("no access token to read",)
    needed = required_roles(groups=True, administrative_units=True, teams=True, education_classes=True)
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


def setup(
    config: ConfigOpt = None,
    graph_url: GraphUrlOpt = None,
    tenant_id: TenantOpt = None,
    client_id: ClientOpt = None,
    cloud: CloudOpt = None,
) -> None:
    """Register the ownership marker on the sync app and check the app's permissions.

    The marker's app is ENTRA_SYNC_MARKER_APP_ID, else the client id, else the app an access token
    was issued to (a managed identity has no app registration: name one with
    ENTRA_SYNC_MARKER_APP_ID). The credential comes from the environment or the configuration
    (ENTRA_SYNC_CLIENT_SECRET, _CERTIFICATE_PATH, ...; never from the command line). Safe to run
    again: it changes nothing when all is in place.
    """
    opts = GraphOptions.build(config, graph_url, tenant_id, client_id, cloud)
    with open_connection(opts) as conn:
        report = run_setup(conn.client, conn.marker_app_id, graph_root=conn.graph_root)
    typer.echo(f"ownership marker: {report.marker} (registered on app {conn.marker_app_id.lower()})")
    if report.missing_roles is None:
        for note in report.notes:
            typer.echo(f"permissions: not checked ({note})")
    elif report.missing_roles:
        typer.echo("permissions: the app lacks " + ", ".join(report.missing_roles)
                   + " (grant them as application permissions with admin consent; "
                   "see docs/permissions.md)", err=True)  # fmt: skip
        raise typer.Exit(1)
    else:
        typer.echo("permissions: every application permission a full sync needs is granted")


def register(app: typer.Typer) -> None:
    """Add ``entra-sync setup`` to the app."""
    app.command("setup")(setup)
