"""``entra-sync console``: serve the web console; ``console add-user`` and ``console add-tenant``
set it up (the first admin, and which configuration file is which tenant)."""

from __future__ import annotations

import getpass
import ipaddress
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reconciler.errors import ConfigError

if TYPE_CHECKING:
    from entra_sync.console.security import SecretBox

__all__ = ["register"]

console_app = typer.Typer(
    help="The web console: dashboards, run pages, held plans to approve, settings. "
    "`entra-sync console` serves it on 127.0.0.1:8765 (put a reverse proxy in front for TLS; see "
    "docs/console.md).",
    invoke_without_command=True,
    no_args_is_help=False,
)

StoreOpt = Annotated[
    str,
    typer.Option(
        "--store",
        envvar="ENTRA_SYNC_STORE",
        show_envvar=True,
        help="The one store (run history and console data): a SQLite file or a postgresql:// URL.",
    ),
]
KeyFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        help="The key that encrypts secrets typed in the console (made, 0600, when "
        "missing; ENTRA_SYNC_CONSOLE_KEY wins). Default: console.key beside the store.",
    ),
]
DEFAULT_STORE = "entra-sync-console.db"


def forwarded_allow_ips(value: str) -> list[str]:
    """The proxies whose ``X-Forwarded-For``/``-Proto`` are trusted: addresses or networks
    (``10.0.0.0/8``), comma-separated, or ``*`` (any: only when nothing but the proxy can reach the
    console)."""
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise ConfigError(
            "name at least one proxy address (127.0.0.1 by default)", key="--forwarded-allow-ips"
        )
    if items == ["*"]:
        return items
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(
                f"{item!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8, ::1); "
                "separate several with commas, or give * alone to trust any",
                key="--forwarded-allow-ips",
            ) from None
    return items


def _box(store: str, key_file: Path | None) -> SecretBox:
    from entra_sync.console.app import key_file_default
    from entra_sync.console.security import SecretBox

    return SecretBox.from_env(os.environ, key_file or key_file_default(store))


@console_app.callback()
def serve(
    ctx: typer.Context,
    store: StoreOpt = DEFAULT_STORE,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (keep 127.0.0.1 behind a proxy).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8765,
    key_file: KeyFileOpt = None,
    https_only: Annotated[
        bool, typer.Option("--https-only", help="Secure cookies and HSTS (behind a TLS proxy).")
    ] = False,
    forwarded: Annotated[
        str,
        typer.Option(
            "--forwarded-allow-ips",
            envvar="ENTRA_SYNC_CONSOLE_FORWARDED_ALLOW_IPS",
            show_envvar=True,
            help="The reverse proxies whose X-Forwarded-For/-Proto are trusted: addresses or networks, "
            "comma-separated (or * for any).",
        ),
    ] = "127.0.0.1",
) -> None:
    """Serve the web console."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"store": store, "key_file": key_file}
        return
    import uvicorn

    from entra_sync.console.app import create_app
    from entra_sync.console.store import ConsoleStore

    proxies = forwarded_allow_ips(forwarded)
    console_store = ConsoleStore(store)
    app = create_app(console_store, _box(store, key_file), https_only=https_only)
    typer.echo(
        f"console on http://{host}:{port}/ (store {console_store.path}; "
        f"trusting X-Forwarded-For from {', '.join(proxies)})",
        err=True,
    )
    uvicorn.run(
        app, host=host, port=port, log_level="warning", proxy_headers=True, forwarded_allow_ips=proxies
    )


@console_app.command("add-user")
def add_user(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The new user's name.")],
    tenant: Annotated[
        list[str] | None,
        typer.Option("--tenant", help="A tenant (slug) to give the role on; repeat for more."),
    ] = None,
    role: Annotated[str, typer.Option("--role", help="viewer, approver or admin.")] = "admin",
) -> None:
    """Create a console user (the password is asked twice, or read from ENTRA_SYNC_CONSOLE_PASSWORD)."""
    from entra_sync.console.security import hash_password
    from entra_sync.console.store import ROLES, ConsoleStore

    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}; use one of {', '.join(ROLES)}", key="--role")
    password = os.environ.get("ENTRA_SYNC_CONSOLE_PASSWORD") or ""
    if not password:
        password = getpass.getpass("Password (12 characters or more): ")
        if getpass.getpass("Again: ") != password:
            raise ConfigError("the two passwords differ; nothing was created", key="password")
    store = ConsoleStore(ctx.obj["store"])
    for slug in tenant or ():
        if store.tenant(slug) is None:
            raise ConfigError(
                f"no tenant {slug!r}; add it first with `entra-sync console add-tenant`", key="--tenant"
            )
    uid = store.add_user(username, hash_password(password))
    for slug in tenant or ():
        store.grant(uid, slug, role)
    typer.echo(f"user {username} created" + (f", {role} of {', '.join(tenant)}" if tenant else ""))


@console_app.command("add-tenant")
def add_tenant(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="Short name used in the console's addresses, e.g. oak-trust.")],
    config: Annotated[Path, typer.Option("--config", "-c", help="The tenant's configuration file (TOML).")],
    name: Annotated[str | None, typer.Option("--name", help="The name shown (default: the slug).")] = None,
) -> None:
    """Add (or update) a tenant: a configuration file the console runs and edits."""
    import re

    from entra_sync.config.load import load_config
    from entra_sync.console.store import ConsoleStore

    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", slug):
        raise ConfigError("a tenant slug is lower-case letters, digits and dashes", key="slug")
    cfg = load_config(config)  # a broken configuration is refused with the loader's own message
    store = ConsoleStore(ctx.obj["store"])
    store.add_tenant(slug, name or slug, config.resolve())
    typer.echo(f"tenant {slug} -> {config.resolve()}")
    elsewhere = (
        f"note: `entra-sync sync` and `entra-sync schedule` with this configuration record their runs in "
        f"{cfg.history.target}, not in the console's store"
    )
    if "://" in str(store.target):
        if cfg.history.url != str(store.target):
            from sqlalchemy.engine import make_url

            url = make_url(str(store.target)).set(password=None).render_as_string(hide_password=False)
            typer.echo(f'{elsewhere}; to see them in the console, set [history] path = "{url}" in {config} '
                       "(the password goes in PGPASSWORD or ~/.pgpass)", err=True)
    elif cfg.history.url is not None or cfg.history.path.resolve() != Path(store.target).resolve():
        typer.echo(
            f"{elsewhere}; to see them in the console (and hold their refused plans there for an "
            f'approver), set [history] path = "{Path(store.target).resolve()}" in {config}',
            err=True,
        )


@console_app.command("grant")
def grant(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument()],
    tenant: Annotated[str, typer.Argument()],
    role: Annotated[str, typer.Argument(help="viewer, approver or admin.")],
) -> None:
    """Give a user a role on a tenant (replacing the one they had)."""
    from entra_sync.console.store import ROLES, ConsoleStore

    store = ConsoleStore(ctx.obj["store"])
    user = store.user(username)
    if user is None or store.tenant(tenant) is None or role not in ROLES:
        raise ConfigError(
            f"need an existing user, an existing tenant and one of {', '.join(ROLES)}", key="grant"
        )
    store.grant(user.id, tenant, role)
    typer.echo(f"{username}: {role} of {tenant}")


def register(app: typer.Typer) -> None:
    app.add_typer(console_app, name="console")
