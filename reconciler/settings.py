"""The configuration as values: frozen dataclasses that :func:`entra_sync.config.load.load_config` fills.

A :class:`Config` never holds a secret. Credentials are *references* (the name of an environment
variable, a file path, "use the managed identity"); whoever needs the secret (the CLI, when it
builds the Graph client) reads it from there at the last moment. So ``repr(config)`` is safe to log.

Paths are absolute: relative paths in the file are resolved against the config file's directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Literal

from reconciler.model import RemovalPolicy, TeamTemplate, UserMatch, Visibility

__all__ = [
    "ACADEMIC_YEAR",
    "AUTHORITY_HOSTS",
    "CLOUDS",
    "CREDENTIAL_METHODS",
    "DEFAULT_HISTORY_FILE",
    "GRAPH_ENDPOINTS",
    "REF_FIELDS",
    "SOURCE_KINDS",
    "TEAM_GROUP_KINDS",
    "Cloud",
    "Config",
    "CredentialMethod",
    "CredentialsConfig",
    "HistoryConfig",
    "NamingConfig",
    "NotifyConfig",
    "SafetyConfig",
    "ScheduleConfig",
    "SourceConfig",
    "SourceKind",
    "SyncConfig",
    "TeamGroupKind",
    "TemplateSet",
    "TenantConfig",
    "UsersConfig",
]

Cloud = Literal["global", "usgov", "usgovdod", "china"]
CLOUDS: tuple[Cloud, ...] = ("global", "usgov", "usgovdod", "china")
#: Microsoft Graph endpoint of each national cloud (graph-facts.md, "National clouds").
GRAPH_ENDPOINTS: dict[Cloud, str] = {
    "global": "https://graph.microsoft.com",
    "usgov": "https://graph.microsoft.us",
    "usgovdod": "https://dod-graph.microsoft.us",
    "china": "https://microsoftgraph.chinacloudapi.cn",
}
#: Entra sign-in (authority) host of each national cloud.
AUTHORITY_HOSTS: dict[Cloud, str] = {
    "global": "login.microsoftonline.com",
    "usgov": "login.microsoftonline.us",
    "usgovdod": "login.microsoftonline.us",
    "china": "login.chinacloudapi.cn",
}

SourceKind = Literal["realsmart", "oneroster", "sds"]
SOURCE_KINDS: tuple[SourceKind, ...] = ("realsmart", "oneroster", "sds")
#: the values of ``[source] user_reference`` (``providers.sources.REF_FIELDS``)
REF_FIELDS = ("default", "username", "upn", "email", "employee_id")

TeamGroupKind = Literal["classes", "mentor_groups"]
TEAM_GROUP_KINDS: tuple[TeamGroupKind, ...] = ("classes", "mentor_groups")

CredentialMethod = Literal[
    "client_secret_env",
    "client_secret_file",
    "certificate",
    "federated_token_file",
    "managed_identity",
    "access_token_env",
]
CREDENTIAL_METHODS: tuple[CredentialMethod, ...] = (
    "client_secret_env",
    "client_secret_file",
    "certificate",
    "federated_token_file",
    "managed_identity",
    "access_token_env",
)

DEFAULT_HISTORY_FILE = "entra-sync-history.sqlite"
#: An academic year, written YYYY-YY (``2026-27``), as the desired-state schema requires.
ACADEMIC_YEAR = re.compile(r"^[0-9]{4}-[0-9]{2}$")


@dataclass(frozen=True, slots=True)
class TenantConfig:
    """``[tenant]``: which Entra tenant and which app registration."""

    tenant_id: str
    client_id: str
    cloud: Cloud = "global"
    #: overrides the cloud's Graph endpoint (e.g. the local emulator, ``http://127.0.0.1:8765``)
    graph_url: str | None = None

    @property
    def graph_endpoint(self) -> str:
        """The Graph base URL to call (without ``/v1.0``): ``graph_url`` or the cloud's endpoint."""
        return self.graph_url or GRAPH_ENDPOINTS[self.cloud]

    @property
    def authority_host(self) -> str:
        return AUTHORITY_HOSTS[self.cloud]


@dataclass(frozen=True, slots=True)
class CredentialsConfig:
    """``[credentials]``: at most one way to obtain a token, always by reference.

    ``method`` is None when the section is absent or empty (fine for ``render``; a command that
    talks to Graph must then refuse with a clear message).
    """

    method: CredentialMethod | None = None
    client_secret_env: str | None = None
    client_secret_file: Path | None = None
    certificate_path: Path | None = None
    certificate_password_env: str | None = None
    federated_token_file: Path | None = None
    #: ``"system"`` for the system-assigned identity, or the client id of a user-assigned one
    managed_identity: str | None = None
    access_token_env: str | None = None


@dataclass(frozen=True, slots=True)
class SyncConfig:
    """``[sync]``: the three switches and what becomes a Team."""

    groups: bool = True
    administrative_units: bool = True
    teams: bool = False
    teams_for: tuple[TeamGroupKind, ...] = ("classes",)
    class_team_template: TeamTemplate = "educationClass"
    mentor_team_template: TeamTemplate = "standard"
    #: place each school's class groups and mentor groups in per-school AUs
    #: (``au:{school}:classes``, ``au:{school}:mentor-groups``); needs groups and AUs on
    group_administrative_units: bool = True
    #: visibility of mentor groups (and of class groups when ``education_classes`` is off); an
    #: education class always has hidden membership (Graph makes it so)
    group_visibility: Visibility = "Private"
    #: create class groups as education classes (``POST /education/classes``), which Teams'
    #: ``educationClass`` template needs (mentor groups too, only when their Team template is
    #: ``educationClass``); needs ``EduRoster.ReadWrite.All`` and an education tenant
    education_classes: bool = True
    #: creation-only (``resourceBehaviorOptions``): mail a welcome message to every member added
    welcome_email: bool = False
    #: creation-only: subscribe members to the group's conversations and calendar in their inbox
    subscribe_members_to_mail: bool = False
    #: creation-only: hide the group from Outlook (its address lists and group directory)
    hide_from_address_lists: bool = True

    def resource_behavior_options(self) -> tuple[str, ...]:
        """The ``resourceBehaviorOptions`` a new Microsoft 365 group is created with (sorted)."""
        options: set[str] = set()
        if not self.welcome_email:
            options.add("WelcomeEmailDisabled")
        if self.subscribe_members_to_mail:
            options.add("SubscribeNewGroupMembers")
        else:
            options.add("SubscribeMembersToCalendarEventsDisabled")
        if self.hide_from_address_lists:
            options.add("HideGroupInOutlook")
        return tuple(sorted(options))


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """``[source]``: where the school data comes from."""

    kind: SourceKind
    path: Path
    #: which source field becomes the user reference: "default" (the reader's choice), "username",
    #: "upn", "email" or "employee_id" (see ``providers.sources.SourceOptions.ref_field``)
    user_reference: str = "default"
    #: overrides the academic year the source states (``"2026-27"``)
    academic_year: str | None = None
    #: appended (``name@domain``) to a username that has no ``@``
    upn_domain: str | None = None
    #: skip people whose reference is empty (with a warning) instead of failing
    skip_people_without_reference: bool = False


@dataclass(frozen=True, slots=True)
class UsersConfig:
    """``[users]``: how people are matched with Entra users."""

    match: UserMatch = "userPrincipalName"
    #: optional Jinja2 template that builds the reference from the person (None: the source's ref)
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class TemplateSet:
    """The Jinja2 templates (source text) for one kind of object."""

    display_name: str
    description: str
    mail_nickname: str | None = None  # groups only


@dataclass(frozen=True, slots=True)
class NamingConfig:
    """``[naming]``: templates per object kind. Defaults in :mod:`reconciler.generate.naming`."""

    class_group: TemplateSet
    mentor_group: TemplateSet
    au_mentors: TemplateSet
    au_learners: TemplateSet
    au_year_group: TemplateSet
    au_classes: TemplateSet
    au_mentor_groups: TemplateSet


@dataclass(frozen=True, slots=True)
class SafetyConfig:
    """``[safety]``: limits checked before any write; a run above them is refused unless forced."""

    max_delete_fraction: float = 0.3
    max_deletes: int = 500
    max_member_removal_fraction: float = 0.3
    min_objects_for_fraction: int = 10


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    """``[schedule]``: local times of the automatic runs, normalised ``HH:MM``, sorted; and the
    minutes after a run that deferred Teams at which one catch-up run follows (0: none)."""

    times: tuple[str, ...] = ("04:00", "08:00", "12:00")
    timezone: str = "Europe/London"
    catch_up_minutes: int = 20

    def local_times(self) -> tuple[time, ...]:
        return tuple(time(int(t[:2]), int(t[3:])) for t in self.times)


@dataclass(frozen=True, slots=True)
class DeltaConfig:
    """``[delta]``: read only what changed in Entra since the last run (Graph delta queries, the
    last-known state kept in the run history), with a full read every ``full_every_runs`` runs and
    at least every ``full_every_days`` days as a safety net (owners and Teams changed by hand are
    seen then). Off, or without a run history, every read is full."""

    enabled: bool = True
    full_every_runs: int = 50
    full_every_days: float = 1.0


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    """``[notify]``: who hears about a run that failed, was refused or left people unresolved.
    Secrets (the SMTP password, webhook URLs, which carry their signature) only by reference."""

    #: when to send: "failed", "partial", "refused", "unresolved", "conflicts" or "always"
    on: tuple[str, ...] = ("failed", "partial", "refused", "unresolved")
    email_to: tuple[str, ...] = ()
    email_from: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_username: str | None = None
    smtp_password_env: str | None = None
    smtp_password_file: Path | None = None
    teams_webhook_url_env: str | None = None
    teams_webhook_url_file: Path | None = None
    webhook_url_env: str | None = None
    webhook_url_file: Path | None = None
    webhook_token_env: str | None = None
    #: where the HTML reports can be opened, named in messages (optional, not a secret)
    report_base_url: str | None = None
    timeout_seconds: int = 15

    @property
    def email(self) -> bool:
        return bool(self.email_to and self.smtp_host)

    @property
    def teams(self) -> bool:
        return bool(self.teams_webhook_url_env or self.teams_webhook_url_file)

    @property
    def webhook(self) -> bool:
        return bool(self.webhook_url_env or self.webhook_url_file)


@dataclass(frozen=True, slots=True)
class HistoryConfig:
    """``[history]``: the run store that records every run (a SQLite file, or a database server
    such as the console's), and how long runs are kept."""

    #: the SQLite file; with ``url``, the place beside which the run lock and reports are kept
    path: Path
    #: keep the newest N runs (None: all); older ones and their HTML reports are pruned after a run
    keep_runs: int | None = None
    #: keep runs started in the last D days (None: all)
    keep_days: int | None = None
    #: the run store at a database server (``postgresql+psycopg://user@host/db``, no password)
    url: str | None = None

    @property
    def target(self) -> str | Path:
        """The run store: the URL, else the file."""
        return self.url if self.url is not None else self.path


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """``[metrics]``: a Prometheus textfile written after every run (None: none)."""

    textfile: Path | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """A whole configuration file. Holds no secret, so its repr is safe to log."""

    file: Path
    naming: NamingConfig
    history: HistoryConfig
    tenant: TenantConfig | None = None
    credentials: CredentialsConfig = field(default_factory=CredentialsConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    source: SourceConfig | None = None
    users: UsersConfig = field(default_factory=UsersConfig)
    removal: RemovalPolicy = field(default_factory=RemovalPolicy)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    delta: DeltaConfig = field(default_factory=DeltaConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
