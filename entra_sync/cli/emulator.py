"""``entra-sync emulator``: run the built-in Graph emulator.

- ``entra-sync emulator serve --state FILE --port N [--profile ideal|realistic]`` serves the tenant
  in FILE over HTTP on 127.0.0.1 at ``/v1.0/...`` (any bearer token; a missing one gets 401),
  saving it back to FILE (batched: at most one save a second, and on exit); Ctrl-C stops it.
- ``entra-sync emulator seed --state FILE USERS`` adds users from a CSV (``userPrincipalName``
  column, optional ``displayName``, ``mail``, ``employeeId``) or a JSON list to FILE (created if
  missing); users whose UPN already exists are skipped.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from providers.emulator.server import EmulatorServer

__all__ = ["ProfileName", "register", "run_server"]


class ProfileName(enum.StrEnum):
    ideal = "ideal"
    realistic = "realistic"


emulator_app = typer.Typer(
    name="emulator",
    help="Run the built-in Microsoft Graph emulator (no Azure account needed).",
    no_args_is_help=True,
)


@emulator_app.command("serve")
def serve(
    state: Annotated[Path, typer.Option("--state", help="Tenant JSON file (created empty if missing).")],
    port: Annotated[int, typer.Option("--port", help="TCP port on 127.0.0.1 (0 = any free port).")] = 8765,
    profile: Annotated[
        ProfileName, typer.Option("--profile", help="ideal: no throttling/lag/faults; realistic: all on.")
    ] = ProfileName.ideal,
    seed: Annotated[int, typer.Option("--seed", help="Random seed for the realistic profile.")] = 0,
) -> None:
    """Serve a tenant file over HTTP at http://127.0.0.1:PORT/v1.0 until Ctrl-C."""
    run_server(state, port, profile, seed)
    typer.echo("stopped")


def run_server(
    state: Path,
    port: int,
    profile: ProfileName = ProfileName.ideal,
    seed: int = 0,
    ready: Callable[[EmulatorServer], None] | None = None,
) -> None:
    """Load (or create) the tenant file and serve it until the server is shut down or Ctrl-C.

    ``ready`` is called with the running server (tests use it to learn the port and stop it).
    Must: save the tenant back to ``state`` when serving ends.
    """
    from providers.emulator import Profile, Tenant
    from providers.emulator.server import EmulatorServer
    from reconciler.clock import SystemClock

    clock = SystemClock()
    tenant = Tenant.load(state, clock=clock) if state.exists() else Tenant(clock=clock)
    chosen = Profile.realistic(seed) if profile is ProfileName.realistic else Profile.ideal()
    server = EmulatorServer(tenant, port=port, state_path=state, profile=chosen, clock=clock)
    if not state.exists():
        server.save()
    typer.echo(f"Graph emulator serving {state} at {server.url} (profile {profile.value}); Ctrl-C to stop.")
    if ready is not None:
        ready(server)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
        server.close_saver()
        server.save()


@emulator_app.command("seed")
def seed(
    users: Annotated[
        Path, typer.Argument(help="CSV (userPrincipalName[,displayName,mail,employeeId]) or JSON.")
    ],
    state: Annotated[Path, typer.Option("--state", help="Tenant JSON file (created if missing).")],
) -> None:
    """Add users from a CSV or JSON file to a tenant file."""
    from providers.emulator import Tenant
    from providers.emulator.seed import read_users, seed_users

    rows = read_users(users)
    tenant = Tenant.load(state) if state.exists() else Tenant()
    added, skipped = seed_users(tenant, rows)
    tenant.save(state)
    typer.echo(
        f"{state}: added {added} user{'s' if added != 1 else ''}, skipped {skipped} already present; "
        f"{len(tenant.users)} in total."
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(emulator_app, name="emulator")
