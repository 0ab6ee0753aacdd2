"""``entra-sync tenants ...``, ``worker`` and ``beat``: many tenants on a worker fleet.

``tenants add|import|list|remove|pause|resume|metrics`` keep the registry in the shared store
(``--store`` or ``ENTRA_SYNC_FLEET_STORE``); ``worker`` runs a Celery worker and ``beat`` the one
scheduler, both on the Redis broker of ``ENTRA_SYNC_FLEET_BROKER`` (see
:mod:`entra_sync.fleet.settings` for every setting).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reconciler.errors import EntraSyncError, InputError

if TYPE_CHECKING:
    from celery import Celery

    from entra_sync.fleet.registry import FleetStore

__all__ = ["register"]

StoreOpt = Annotated[
    str | None,
    typer.Option("--store", envvar=["ENTRA_SYNC_FLEET_STORE", "ENTRA_SYNC_STORE"], show_envvar=True,
                 help="The fleet's shared store: postgresql://user@host/db, or a SQLite file on one host."),
]  # fmt: skip
SlugArg = Annotated[str, typer.Argument(help="The tenant's name in the registry, e.g. oak-academy.")]

tenants_app = typer.Typer(help="The fleet's tenant registry: add, import, list, pause, resume, remove.")


def _store(store: str | None) -> FleetStore:
    from entra_sync.fleet.registry import FleetStore
    from entra_sync.fleet.settings import FleetSettings

    if not store:  # ENTRA_SYNC_FLEET_STORE_FILE, or a message naming the variables
        store = FleetSettings.from_env().store
    return FleetStore(store)


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


@tenants_app.command("add")
def add(
    slug: SlugArg,
    config: Annotated[Path, typer.Option("--config", "-c", help="The tenant's configuration (TOML).")],
    store: StoreOpt = None,
    credential: Annotated[
        str,
        typer.Option(
            "--credential",
            help='How its worker signs in: "config" ([credentials] of the file), env:NAME, '
            "file:PATH, certificate:PATH, federated:PATH or managed-identity[:CLIENT_ID]. "
            "A reference, never a secret.",
        ),
    ] = "config",
    store_config: Annotated[
        bool,
        typer.Option(
            "--store-config",
            help="Keep the configuration's text in the store (workers need no copy of the file).",
        ),
    ] = False,
    name: Annotated[str | None, typer.Option("--name", help="Display name (default: the slug).")] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Register it paused.")] = False,
) -> None:
    """Register a tenant from its configuration file (checked as `entra-sync sync` checks it)."""
    with _store(store) as s:
        t = s.add(
            slug, config, store_config=store_config, credential_ref=credential, name=name, paused=paused
        )
    typer.echo(
        f"Registered tenant {t.slug}: runs at {', '.join(t.times)} ({t.timezone})"
        f"{', paused' if t.paused else ''}."
    )


@tenants_app.command("import")
def import_(
    configs: Annotated[
        list[Path], typer.Argument(help="Configuration files (one per tenant) or folders of *.toml.")
    ],
    store: StoreOpt = None,
    store_config: Annotated[
        bool, typer.Option("--store-config", help="Keep each file's text in the store.")
    ] = False,
) -> None:
    """Register one tenant per configuration file, named by the file (oak-academy.toml: oak-academy)."""
    files = sorted({f for c in configs for f in (sorted(c.glob("*.toml")) if c.is_dir() else [c])})
    if not files:
        raise InputError("no configuration files to import (*.toml)")
    failed = 0
    with _store(store) as s:
        for f in files:
            try:
                s.add(f.stem.lower(), f, store_config=store_config)
            except EntraSyncError as exc:
                failed += 1
                typer.echo(f"error: {f}: {exc}", err=True)
            else:
                typer.echo(f"Registered tenant {f.stem.lower()} from {f}")
    if failed:
        typer.echo(f"{failed} of {len(files)} configuration(s) not imported.", err=True)
        raise typer.Exit(1)


@tenants_app.command("list")
def list_(store: StoreOpt = None) -> None:
    """Every tenant with its schedule, state and health."""
    with _store(store) as s:
        tenants = s.tenants()
    if not tenants:
        typer.echo("No tenants registered yet (entra-sync tenants add).")
    for t in tenants:
        state = "paused" if t.paused else "DEGRADED" if t.degraded else "active"
        typer.echo(
            f"{t.slug:<24} {state:<9} {','.join(t.times):<18} {t.timezone:<18} "
            f"last {t.last_status or '-':<11} ok {_when(t.last_success_at):<20} "
            f"failures {t.consecutive_failures}"
        )


@tenants_app.command("remove")
def remove(slug: SlugArg, store: StoreOpt = None) -> None:
    """Forget a tenant (its run history is kept)."""
    with _store(store) as s:
        s.remove(slug)
    typer.echo(f"Removed tenant {slug} from the registry; its run history is kept.")


@tenants_app.command("pause")
def pause(
    slug: SlugArg,
    store: StoreOpt = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (shown in the list), e.g. holidays.")
    ] = None,
) -> None:
    """Skip the tenant's slots until resumed (a run in progress finishes)."""
    with _store(store) as s:
        s.pause(slug, reason)
    typer.echo(f"Paused tenant {slug}.")


@tenants_app.command("resume")
def resume(slug: SlugArg, store: StoreOpt = None) -> None:
    """Run the tenant again from its next slot (a degraded tenant starts afresh)."""
    with _store(store) as s:
        s.resume(slug)
    typer.echo(f"Resumed tenant {slug}: it runs from its next slot.")


@tenants_app.command("metrics")
def metrics(
    store: StoreOpt = None,
    textfile: Annotated[
        Path | None,
        typer.Option(
            "--textfile", help="Write them here for node_exporter's textfile collector instead of printing."
        ),
    ] = None,
) -> None:
    """The fleet's health as Prometheus metrics."""
    from entra_sync.fleet.metrics import exposition, write_textfile

    with _store(store) as s:
        if textfile is None:
            typer.echo(exposition(s), nl=False)
        else:
            write_textfile(s, textfile)


def _app(store: str | None) -> Celery:
    try:
        from entra_sync.fleet.app import make_app
        from entra_sync.fleet.settings import FleetSettings
    except ImportError as exc:
        raise InputError(
            f"the fleet needs Celery and Redis: pip install 'realsmart-entra-sync[fleet]' ({exc})"
        ) from None
    env = dict(os.environ)
    if store:
        env["ENTRA_SYNC_FLEET_STORE"] = store
    settings = FleetSettings.from_env(env)
    _store(settings.store).close()  # migrated, and reachable, before the first task
    return make_app(settings)


def worker(
    store: StoreOpt = None,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Tenants this worker runs at once.")] = 2,
    pool: Annotated[str, typer.Option("--pool", help="prefork (processes), threads or solo.")] = "prefork",
    name: Annotated[str | None, typer.Option("--name", help="Worker name (default: celery@HOST).")] = None,
    loglevel: Annotated[str, typer.Option("--loglevel", help="Celery's log level.")] = "INFO",
) -> None:
    """Run a Celery worker of the fleet: it runs tenants' slots through the run pipeline."""
    if pool not in ("prefork", "threads", "solo"):
        raise InputError(f"--pool must be prefork, threads or solo, not {pool!r}")
    app = _app(store)
    argv = [
        "worker",
        f"--loglevel={loglevel}",
        f"--concurrency={concurrency}",
        f"--pool={pool}",
        "--without-gossip",
        "--without-mingle",
    ]
    if name:
        argv.append(f"--hostname={name}")
    app.worker_main(argv)


def beat(
    store: StoreOpt = None,
    schedule_file: Annotated[
        Path, typer.Option("--schedule-file", help="Where beat keeps when it last sent each periodic task.")
    ] = Path("/tmp/entra-sync-beat"),
    loglevel: Annotated[str, typer.Option("--loglevel", help="Celery's log level.")] = "INFO",
) -> None:
    """Run the fleet's one scheduler (Celery beat): a tick every ENTRA_SYNC_FLEET_TICK seconds queues the
    tenants' slots that are due. Run exactly one."""
    app = _app(store)
    app.start(["beat", f"--loglevel={loglevel}", f"--schedule={schedule_file}"])


def register(app: typer.Typer) -> None:
    app.add_typer(tenants_app, name="tenants")
    app.command("worker")(worker)
    app.command("beat")(beat)
