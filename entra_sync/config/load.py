"""Load the TOML configuration file into :class:`~reconciler.settings.Config` values.

Every problem is collected and reported at once (one :class:`ConfigFindingsError`, a
:class:`~reconciler.errors.ConfigError`, listing ``section.key: what is wrong``): unknown keys
(with a did-you-mean suggestion), wrong types (expected vs got), invalid values, template syntax
errors and unknown template variables. A key that looks like a secret itself (``client_secret``,
``password``, ``token`` ...) is refused and its value is never shown: the file holds references
only (an environment variable name, a file path, "use the managed identity").

The documented example is ``entra-sync.example.toml`` at the repository root; the reference is
``docs/configuration.md``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from entra_sync.config import sections
from entra_sync.config.checker import Checker
from entra_sync.config.notify_section import read_notify
from reconciler.errors import ConfigError, Finding
from reconciler.settings import (
    ACADEMIC_YEAR,
    DEFAULT_HISTORY_FILE,
    Config,
    CredentialsConfig,
    HistoryConfig,
    MetricsConfig,
    SourceConfig,
    TenantConfig,
)

__all__ = [
    "ACADEMIC_YEAR",
    "ConfigFindingsError",
    "config_summary",
    "connection_kwargs",
    "load_config",
    "loads_config",
    "require_credentials",
    "require_source",
    "require_tenant",
]


class ConfigFindingsError(ConfigError):
    """Every problem found in one configuration file; ``findings`` holds them (path = ``section.key``)."""

    def __init__(self, file: str, findings: Sequence[Finding]) -> None:
        self.findings = tuple(findings)
        if len(self.findings) == 1:
            only = self.findings[0]
            super().__init__(only.message, file=file, key=only.path or None)
        else:
            lines = "\n".join(f"  {f}" for f in self.findings)
            super().__init__(f"{len(self.findings)} problems:\n{lines}", file=file)


def load_config(path: str | Path) -> Config:
    """Read and check a configuration file. Must raise ConfigError for a missing or unreadable file,
    a TOML syntax error (with line and column), and every problem in the content at once."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "configuration file not found; copy entra-sync.example.toml and adapt it", file=str(file)
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"cannot read the configuration file: {reason}", file=str(file)) from None
    return loads_config(text, file=file)


def loads_config(text: str, *, file: str | Path = "entra-sync.toml") -> Config:
    """Check configuration text as if it were read from ``file`` (relative paths in it resolve
    against ``file``'s directory, made absolute)."""
    config_file = Path(file).absolute()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(file)) from None
    except RecursionError:
        raise ConfigError("not valid TOML: nested too deeply to read", file=str(file)) from None
    except ValueError as exc:  # a number of more than 4300 digits
        raise ConfigError(f"not valid TOML: {str(exc).split(';')[0]}", file=str(file)) from None
    c = Checker(config_file.parent)
    c.keys(data, "", sections.SECTIONS, sections.HOME)
    tables = {name: c.table(data, name, name) or {} for name in sections.SECTIONS}
    for name, table in tables.items():
        if name != "naming":
            c.keys(table, name, sections.SECTIONS[name], sections.HOME)
    tenant = sections.read_tenant(c, tables["tenant"]) if "tenant" in data else None
    credentials = sections.read_credentials(c, tables["credentials"])
    sync = sections.read_sync(c, tables["sync"])
    source = sections.read_source(c, tables["source"]) if "source" in data else None
    users = sections.read_users(c, tables["users"])
    naming = sections.read_naming(c, tables["naming"])
    removal = sections.read_removal(c, tables["removal"])
    safety = sections.read_safety(c, tables["safety"])
    schedule = sections.read_schedule(c, tables["schedule"])
    notify = read_notify(c, tables["notify"])
    delta = sections.read_delta(c, tables["delta"])
    h = tables["history"]
    url = _store_url(c, h.get("path"))
    history = HistoryConfig(
        (None if url else c.path(h, "path", "history.path")) or config_file.parent / DEFAULT_HISTORY_FILE,
        url=url,
        keep_runs=c.integer(h, "keep_runs", "history.keep_runs", 0, minimum=1) if "keep_runs" in h else None,
        keep_days=c.integer(h, "keep_days", "history.keep_days", 0, minimum=1) if "keep_days" in h else None,
    )
    metrics = MetricsConfig(c.path(tables["metrics"], "textfile", "metrics.textfile"))
    if c.findings:
        order = {name: i for i, name in enumerate(("", *sections.SECTIONS))}
        findings = sorted(c.findings, key=lambda f: order.get(f.path.split(".")[0].split("[")[0], 0))
        raise ConfigFindingsError(str(file), findings)
    return Config(
        file=config_file, naming=naming, history=history, tenant=tenant, credentials=credentials,
        sync=sync, source=source, users=users, removal=removal, safety=safety, schedule=schedule,
        notify=notify, delta=delta, metrics=metrics,
    )  # fmt: skip


def require_tenant(config: Config) -> TenantConfig:
    """The ``[tenant]`` section, or a ConfigError saying that this command needs it."""
    if config.tenant is None:
        raise ConfigError(
            "no [tenant] section: add tenant_id and client_id to talk to Microsoft Graph",
            file=str(config.file),
        )
    return config.tenant


def require_source(config: Config) -> SourceConfig:
    """The ``[source]`` section, or a ConfigError saying that this command needs it."""
    if config.source is None:
        raise ConfigError("no [source] section: add kind and path of the school data", file=str(config.file))
    return config.source


def require_credentials(config: Config) -> CredentialsConfig:
    """The credentials, or a ConfigError when ``[credentials]`` names no method."""
    if config.credentials.method is None:
        raise ConfigError(
            "no credentials: set one of client_secret_env, client_secret_file, certificate_path, "
            "federated_token_file, managed_identity or access_token_env in [credentials]",
            file=str(config.file),
        )
    return config.credentials


_CONNECTION_KIND = {
    "client_secret_env": "client_secret",
    "client_secret_file": "client_secret_file",
    "certificate": "certificate",
    "federated_token_file": "federated",
    "managed_identity": "managed_identity",
    "access_token_env": "access_token",
}


def connection_kwargs(config: Config) -> dict[str, str | None]:
    """The keyword arguments of ``providers.entra.connect.ConnectionSettings`` (tenant, cloud,
    Graph URL, credential kind and reference) that this configuration names; references only.

    Must raise ConfigError when ``[tenant]`` or a credential is missing.
    """
    tenant = require_tenant(config)
    creds = require_credentials(config)
    assert creds.method is not None
    ref = {
        "client_secret_env": creds.client_secret_env,
        "client_secret_file": str(creds.client_secret_file) if creds.client_secret_file else None,
        "certificate": str(creds.certificate_path) if creds.certificate_path else None,
        "federated_token_file": str(creds.federated_token_file) if creds.federated_token_file else None,
        "managed_identity": creds.managed_identity,
        "access_token_env": creds.access_token_env,
    }[creds.method]
    return {
        "tenant_id": tenant.tenant_id,
        "client_id": tenant.client_id,
        "cloud": tenant.cloud,
        "graph_url": tenant.graph_url,
        "credential": _CONNECTION_KIND[creds.method],
        "credential_ref": ref,
        "certificate_password_env": creds.certificate_password_env,
    }


def config_summary(config: Config) -> dict[str, Any]:
    """A JSON-able summary of the settings that shape a run, for the run history and reports.

    Holds names, ids, switches and limits only: the credential *method* and nothing of its
    reference (not even the variable name or path), and no template text.
    """
    tenant = config.tenant
    source = config.source
    return {
        "file": str(config.file),
        "tenant": None if tenant is None else {
            "tenantId": tenant.tenant_id, "clientId": tenant.client_id, "cloud": tenant.cloud,
            "graphUrl": tenant.graph_endpoint,
        },
        "credential": config.credentials.method,
        "sync": {
            "groups": config.sync.groups, "administrativeUnits": config.sync.administrative_units,
            "teams": config.sync.teams, "teamsFor": list(config.sync.teams_for),
            "classTeamTemplate": config.sync.class_team_template,
            "mentorTeamTemplate": config.sync.mentor_team_template,
            "groupAdministrativeUnits": config.sync.group_administrative_units,
            "groupVisibility": config.sync.group_visibility,
        },
        "source": None if source is None else {
            "kind": source.kind, "path": str(source.path), "userReference": source.user_reference,
            "academicYear": source.academic_year,
        },
        "userMatch": config.users.match,
        "removal": {
            "administrativeUnits": config.removal.administrative_units, "groups": config.removal.groups,
            "teams": config.removal.teams,
        },
        "safety": {
            "maxDeleteFraction": config.safety.max_delete_fraction, "maxDeletes": config.safety.max_deletes,
            "maxMemberRemovalFraction": config.safety.max_member_removal_fraction,
            "minObjectsForFraction": config.safety.min_objects_for_fraction,
        },
        "schedule": {"times": list(config.schedule.times), "timezone": config.schedule.timezone},
    }  # fmt: skip


def _store_url(c: Checker, value: object) -> str | None:
    """``[history] path`` naming a database server (``scheme://...``): the URL, checked; else None
    (a file path). A password in it is refused: a configuration file is no place for one."""
    if not isinstance(value, str) or "://" not in value:
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(value)
    except ArgumentError:
        c.add("history.path", "is neither a database URL (postgresql+psycopg://user@host/database) "
              "nor a file path")
        return None
    if not parsed.drivername.startswith("postgresql"):
        c.add("history.path", f"names a {parsed.drivername!r} database; the run store is a SQLite file or "
              "PostgreSQL (postgresql+psycopg://user@host/database)")
        return None
    if parsed.password is not None:
        c.add("history.path", "holds a password; leave it out of the configuration and give it to the "
              "server's client as PGPASSWORD or in ~/.pgpass")
        return None
    if not parsed.database:
        c.add("history.path", "names no database: postgresql+psycopg://user@host/database")
        return None
    return value
