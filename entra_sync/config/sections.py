"""The readers of each section of the configuration file, used by :mod:`entra_sync.config.load`.

Each ``read_<section>`` takes the :class:`~entra_sync.config.checker.Checker` (which collects every
problem) and the section's table, and returns its value (defaults where a key is absent). Internal.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from difflib import get_close_matches
from typing import Any, cast

from entra_sync.config.checker import Checker
from entra_sync.config.notify_section import NOTIFY_KEYS
from providers.entra.urls import graph_url_problem
from reconciler.generate.naming import DEFAULT_TEMPLATES, TEMPLATE_VARIABLES, template_problems
from reconciler.model import RemovalPolicy, TeamTemplate, UserMatch, Visibility
from reconciler.settings import (
    ACADEMIC_YEAR,
    CLOUDS,
    REF_FIELDS,
    SOURCE_KINDS,
    TEAM_GROUP_KINDS,
    Cloud,
    CredentialMethod,
    CredentialsConfig,
    NamingConfig,
    SafetyConfig,
    ScheduleConfig,
    SourceConfig,
    SourceKind,
    SyncConfig,
    TeamGroupKind,
    TemplateSet,
    TenantConfig,
    UsersConfig,
)

__all__ = [
    "HOME",
    "SECTIONS",
    "read_credentials",
    "read_naming",
    "read_removal",
    "read_safety",
    "read_schedule",
    "read_source",
    "read_sync",
    "read_tenant",
    "read_users",
]

_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(r"^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")

#: every section and its known keys (``naming`` lists its sub-tables); anything else is reported
SECTIONS: dict[str, tuple[str, ...]] = {
    "tenant": ("tenant_id", "client_id", "cloud", "graph_url"),
    "credentials": (
        "client_secret_env", "client_secret_file", "certificate_path", "certificate_password_env",
        "federated_token_file", "managed_identity", "access_token_env",
    ),
    "sync": (
        "groups", "administrative_units", "teams", "teams_for", "class_team_template",
        "mentor_team_template", "group_administrative_units", "group_visibility", "education_classes",
        "welcome_email", "subscribe_members_to_mail", "hide_from_address_lists",
    ),
    "source": (
        "kind", "path", "user_reference", "academic_year", "upn_domain", "skip_people_without_reference",
    ),
    "users": ("match", "reference"),
    "naming": tuple(DEFAULT_TEMPLATES),
    "removal": ("administrative_units", "groups", "teams"),
    "safety": (
        "max_delete_fraction", "max_deletes", "max_member_removal_fraction", "min_objects_for_fraction",
    ),
    "schedule": ("times", "timezone", "catch_up_minutes"),
    "history": ("path",),
    "notify": NOTIFY_KEYS,
}  # fmt: skip
#: key -> the section it belongs to, to tell a user where a misplaced key goes
HOME = {key: section for section, keys in reversed(SECTIONS.items()) for key in keys}
_TEAM_TEMPLATES = ("standard", "educationClass")
_USER_MATCHES = ("userPrincipalName", "mail", "employeeId")
_VISIBILITIES = ("Private", "Public", "HiddenMembership")


def read_tenant(c: Checker, t: Mapping[str, Any]) -> TenantConfig | None:
    tenant_id = c.string(t, "tenant_id", "tenant.tenant_id", required=True, echo=False)
    if tenant_id is not None and not (_GUID.match(tenant_id) or _DOMAIN.match(tenant_id)):
        c.add(
            "tenant.tenant_id",
            "must be the directory (tenant) id, a GUID, or its domain (contoso.onmicrosoft.com)",
        )
        tenant_id = None
    client_id = c.string(t, "client_id", "tenant.client_id", required=True, echo=False)
    if client_id is not None and not _GUID.match(client_id):
        c.add("tenant.client_id", "must be the application (client) id of the app registration, a GUID")
        client_id = None
    cloud = c.string(t, "cloud", "tenant.cloud", choices=CLOUDS) or "global"
    graph_url = c.string(t, "graph_url", "tenant.graph_url", echo=False)
    if graph_url is not None:
        graph_url = _graph_url(c, graph_url)
    if tenant_id is None or client_id is None:
        return None
    return TenantConfig(
        tenant_id=tenant_id, client_id=client_id, cloud=cast(Cloud, cloud), graph_url=graph_url
    )


def _graph_url(c: Checker, url: str) -> str | None:
    if url.startswith("emulator:"):
        # the built-in Graph emulator, in-process, over a tenant file (the demo)
        if not url[len("emulator:") :].strip():
            c.add("tenant.graph_url", "emulator: needs a tenant file, e.g. emulator:tenant.json")
            return None
        return url
    problem = graph_url_problem(url)  # the one rule for flag, environment and configuration
    if problem is not None:
        c.add("tenant.graph_url", f"{problem} (or emulator:FILE for the built-in emulator)")
        return None
    return url.rstrip("/")


def _env_name(c: Checker, t: Mapping[str, Any], key: str) -> str | None:
    name = c.string(t, key, f"credentials.{key}", echo=False)
    if name is not None and not _ENV_NAME.match(name):
        c.add(
            f"credentials.{key}",
            "is not an environment variable name (letters, digits, underscores; the value is not shown). "
            "Name the variable that holds the secret, e.g. ENTRA_SYNC_CLIENT_SECRET; "
            "never paste the secret here",
        )
        return None
    return name


def read_credentials(c: Checker, t: Mapping[str, Any]) -> CredentialsConfig:
    secret_env = _env_name(c, t, "client_secret_env")
    secret_file = c.path(t, "client_secret_file", "credentials.client_secret_file")
    cert = c.path(t, "certificate_path", "credentials.certificate_path")
    cert_password_env = _env_name(c, t, "certificate_password_env")
    federated = c.path(t, "federated_token_file", "credentials.federated_token_file")
    managed = c.string(t, "managed_identity", "credentials.managed_identity", echo=False)
    if managed is not None and managed != "system" and not _GUID.match(managed):
        c.add(
            "credentials.managed_identity",
            'must be "system" or the client id (a GUID) of a user-assigned identity',
        )
    token_env = _env_name(c, t, "access_token_env")
    chosen: list[CredentialMethod] = []
    for method, key in (
        ("client_secret_env", "client_secret_env"), ("client_secret_file", "client_secret_file"),
        ("certificate", "certificate_path"), ("federated_token_file", "federated_token_file"),
        ("managed_identity", "managed_identity"), ("access_token_env", "access_token_env"),
    ):  # fmt: skip
        if key in t:
            chosen.append(cast(CredentialMethod, method))
    if len(chosen) > 1:
        c.add("credentials", f"choose one way to sign in, not {len(chosen)}: {', '.join(chosen)}")
    if "certificate_password_env" in t and "certificate_path" not in t:
        c.add("credentials.certificate_password_env", "only applies with certificate_path")
    return CredentialsConfig(
        method=chosen[0] if len(chosen) == 1 else None,
        client_secret_env=secret_env, client_secret_file=secret_file, certificate_path=cert,
        certificate_password_env=cert_password_env, federated_token_file=federated,
        managed_identity=managed, access_token_env=token_env,
    )  # fmt: skip


def read_sync(c: Checker, t: Mapping[str, Any]) -> SyncConfig:
    d = SyncConfig()
    groups = c.boolean(t, "groups", "sync.groups", d.groups)
    teams = c.boolean(t, "teams", "sync.teams", d.teams)
    teams_for = c.strings(t, "teams_for", "sync.teams_for", choices=TEAM_GROUP_KINDS)
    if teams and not groups:
        c.add("sync.teams", "Teams are made from groups: set groups = true, or teams = false")
    if teams and teams_for == ():
        c.add("sync.teams_for", 'is empty while teams = true: list "classes" and/or "mentor_groups"')
    education = c.boolean(t, "education_classes", "sync.education_classes", d.education_classes)
    class_template = c.string(t, "class_team_template", "sync.class_team_template", choices=_TEAM_TEMPLATES)
    mentor_template = c.string(
        t, "mentor_team_template", "sync.mentor_team_template", choices=_TEAM_TEMPLATES
    )
    for name, value in (("class_team_template", class_template or d.class_team_template),
                        ("mentor_team_template", mentor_template)):
        if not education and value == "educationClass":
            c.add(f"sync.{name}", '"educationClass" needs the groups created as education classes (Graph '
                  'refuses the template on any other group): set education_classes = true, or use "standard"')
    return SyncConfig(
        groups=groups,
        administrative_units=c.boolean(
            t, "administrative_units", "sync.administrative_units", d.administrative_units
        ),
        teams=teams,
        teams_for=cast(tuple[TeamGroupKind, ...], teams_for if teams_for is not None else d.teams_for),
        class_team_template=cast(TeamTemplate, class_template or d.class_team_template),
        mentor_team_template=cast(TeamTemplate, mentor_template or d.mentor_team_template),
        group_administrative_units=c.boolean(
            t, "group_administrative_units", "sync.group_administrative_units", d.group_administrative_units
        ),
        group_visibility=cast(
            Visibility,
            c.string(t, "group_visibility", "sync.group_visibility", choices=_VISIBILITIES)
            or d.group_visibility,
        ),
        education_classes=education,
        welcome_email=c.boolean(t, "welcome_email", "sync.welcome_email", d.welcome_email),
        subscribe_members_to_mail=c.boolean(
            t, "subscribe_members_to_mail", "sync.subscribe_members_to_mail", d.subscribe_members_to_mail
        ),
        hide_from_address_lists=c.boolean(
            t, "hide_from_address_lists", "sync.hide_from_address_lists", d.hide_from_address_lists
        ),
    )


def _academic_year(c: Checker, value: str | None, path: str) -> str | None:
    m = ACADEMIC_YEAR.match(value) if value is not None else None
    if value is not None and (m is None or (int(value[:4]) + 1) % 100 != int(value[5:])):
        c.add(
            path,
            f'must be written YYYY-YY with consecutive years, such as "2026-27" (it is part of keys), '
            f"got {value!r}",
        )
        return None
    return value


def read_source(c: Checker, t: Mapping[str, Any]) -> SourceConfig | None:
    kind = c.string(t, "kind", "source.kind", required=True, choices=SOURCE_KINDS)
    path = c.path(t, "path", "source.path", required=True)
    reference = c.string(t, "user_reference", "source.user_reference", choices=REF_FIELDS) or "default"
    year = _academic_year(c, c.string(t, "academic_year", "source.academic_year"), "source.academic_year")
    domain = c.string(t, "upn_domain", "source.upn_domain")
    if domain is not None and not _DOMAIN.match(domain.lstrip("@")):
        c.add("source.upn_domain", f"must be a domain such as oak.example, got {domain!r}")
        domain = None
    skip = c.boolean(t, "skip_people_without_reference", "source.skip_people_without_reference", False)
    if kind is None or path is None:
        return None
    return SourceConfig(
        kind=cast(SourceKind, kind), path=path, user_reference=reference, academic_year=year,
        upn_domain=domain.lstrip("@") if domain else None, skip_people_without_reference=skip,
    )  # fmt: skip


def _template(
    c: Checker, t: Mapping[str, Any], key: str, path: str, variables: str, default: str | None
) -> str | None:
    source = c.string(t, key, path)
    if source is None:
        return default
    problems = template_problems(path, source, TEMPLATE_VARIABLES[variables])
    for problem in problems:
        c.add(path, problem)
    return default if problems else source


def read_users(c: Checker, t: Mapping[str, Any]) -> UsersConfig:
    match = c.string(t, "match", "users.match", choices=_USER_MATCHES) or "userPrincipalName"
    reference = _template(c, t, "reference", "users.reference", "users.reference", None)
    return UsersConfig(match=cast(UserMatch, match), reference=reference)


def read_naming(c: Checker, t: Mapping[str, Any]) -> NamingConfig:
    c.keys(t, "naming", SECTIONS["naming"], {})
    sets: dict[str, TemplateSet] = {}
    for kind, defaults in DEFAULT_TEMPLATES.items():
        sub = c.table(t, kind, f"naming.{kind}") or {}
        c.keys(sub, f"naming.{kind}", tuple(defaults), {})
        values = {
            field: _template(c, sub, field, f"naming.{kind}.{field}", kind, default)
            for field, default in defaults.items()
        }
        sets[kind] = TemplateSet(
            display_name=values["display_name"] or defaults["display_name"],
            description=values["description"] or defaults["description"],
            mail_nickname=values.get("mail_nickname"),
        )
    return NamingConfig(**sets)


def read_removal(c: Checker, t: Mapping[str, Any]) -> RemovalPolicy:
    keep = ("delete", "keep")
    return RemovalPolicy(
        administrative_units=cast(
            Any, c.string(t, "administrative_units", "removal.administrative_units", choices=keep) or "delete"
        ),
        groups=cast(Any, c.string(t, "groups", "removal.groups", choices=keep) or "delete"),
        teams=cast(Any, c.string(t, "teams", "removal.teams", choices=("archive", "keep")) or "archive"),
    )


def read_safety(c: Checker, t: Mapping[str, Any]) -> SafetyConfig:
    d = SafetyConfig()
    return SafetyConfig(
        max_delete_fraction=c.fraction(
            t, "max_delete_fraction", "safety.max_delete_fraction", d.max_delete_fraction
        ),
        max_deletes=c.integer(t, "max_deletes", "safety.max_deletes", d.max_deletes),
        max_member_removal_fraction=c.fraction(
            t,
            "max_member_removal_fraction",
            "safety.max_member_removal_fraction",
            d.max_member_removal_fraction,
        ),
        min_objects_for_fraction=c.integer(
            t, "min_objects_for_fraction", "safety.min_objects_for_fraction", d.min_objects_for_fraction
        ),
    )


def read_schedule(c: Checker, t: Mapping[str, Any]) -> ScheduleConfig:
    d = ScheduleConfig()
    times = c.strings(t, "times", "schedule.times")
    normal: set[str] = set()
    for i, value in enumerate(times or ()):
        m = _TIME.match(value)
        if m is None:
            c.add(f"schedule.times[{i}]", f'must be a 24-hour local time "HH:MM", got {value!r}')
        else:
            normal.add(f"{int(m.group(1)):02d}:{m.group(2)}")
    if times == ():
        c.add(
            "schedule.times",
            "must list at least one time (remove the key for the default 04:00, 08:00, 12:00)",
        )
    zone = c.string(t, "timezone", "schedule.timezone")
    if zone is not None:
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            close = get_close_matches(zone, sorted(zoneinfo.available_timezones()), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            c.add(
                "schedule.timezone",
                f"unknown time zone {zone!r} (use an IANA name such as Europe/London){hint}",
            )
            zone = None
    catch_up = c.integer(t, "catch_up_minutes", "schedule.catch_up_minutes", d.catch_up_minutes)
    if catch_up > 24 * 60:
        c.add("schedule.catch_up_minutes", f"must be at most 1440 (a day; 0: none), got {catch_up}")
        catch_up = d.catch_up_minutes
    return ScheduleConfig(
        times=tuple(sorted(normal)) if normal else d.times,
        timezone=zone or d.timezone,
        catch_up_minutes=catch_up,
    )
