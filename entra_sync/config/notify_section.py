"""``[notify]``: read and checked into a :class:`~reconciler.settings.NotifyConfig`.

Secrets go by reference only: the SMTP password and the webhook URLs (a Teams Workflows or incoming
webhook URL carries its signature) are named as an environment variable or a file, never written
in the configuration. A value that looks like a URL or a secret where a name belongs is refused
without being echoed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from entra_sync.config.checker import Checker
from reconciler.settings import NotifyConfig

__all__ = ["NOTIFY_EVENTS", "NOTIFY_KEYS", "read_notify"]

NOTIFY_KEYS: tuple[str, ...] = (
    "on", "email_to", "email_from", "smtp_host", "smtp_port", "smtp_starttls", "smtp_username",
    "smtp_password_env", "smtp_password_file", "teams_webhook_url_env", "teams_webhook_url_file",
    "webhook_url_env", "webhook_url_file", "webhook_token_env", "report_base_url", "timeout_seconds",
)  # fmt: skip
NOTIFY_EVENTS = ("failed", "partial", "refused", "unresolved", "conflicts", "always")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def _env(c: Checker, t: Mapping[str, Any], key: str) -> str | None:
    name = c.string(t, key, f"notify.{key}", echo=False)
    if name is not None and not _ENV_NAME.match(name):
        c.add(f"notify.{key}", "is not an environment variable name (letters, digits, underscores; the value "
              "is not shown). Name the variable that holds the secret; never paste the secret here")
        return None
    return name


def _address(c: Checker, value: str | None, path: str) -> None:
    if value is not None and not _ADDRESS.match(value):
        c.add(path, f"is not an email address: {value!r}")


def read_notify(c: Checker, t: Mapping[str, Any]) -> NotifyConfig:
    default = NotifyConfig()
    on = c.strings(t, "on", "notify.on", choices=NOTIFY_EVENTS)
    email_to = c.strings(t, "email_to", "notify.email_to") or ()
    for i, a in enumerate(email_to):
        _address(c, a, f"notify.email_to[{i}]")
    email_from = c.string(t, "email_from", "notify.email_from")
    _address(c, email_from, "notify.email_from")
    host = c.string(t, "smtp_host", "notify.smtp_host")
    if email_to and host is None:
        c.add("notify.smtp_host", "is required to send email (the SMTP server, e.g. smtp.office365.com)")
    if email_to and email_from is None:
        c.add("notify.email_from", "is required to send email (the sender's address)")
    password_env = _env(c, t, "smtp_password_env")
    password_file = c.path(t, "smtp_password_file", "notify.smtp_password_file")
    if password_env and password_file:
        c.add("notify", "give the SMTP password one way: smtp_password_env or smtp_password_file, not both")
    pairs = (("teams_webhook_url_env", "teams_webhook_url_file"), ("webhook_url_env", "webhook_url_file"))
    refs: dict[str, Any] = {}
    for env_key, file_key in pairs:
        refs[env_key] = _env(c, t, env_key)
        refs[file_key] = c.path(t, file_key, f"notify.{file_key}")
        if refs[env_key] and refs[file_key]:
            c.add("notify", f"give the URL one way: {env_key} or {file_key}, not both")
    report = c.string(t, "report_base_url", "notify.report_base_url")
    if report is not None and urlsplit(report).scheme not in ("http", "https"):
        c.add("notify.report_base_url", f"must be an http(s) URL, got {report!r}")
    return NotifyConfig(
        on=on if on is not None else default.on,
        email_to=email_to, email_from=email_from, smtp_host=host,
        smtp_port=c.integer(t, "smtp_port", "notify.smtp_port", default.smtp_port, minimum=1),
        smtp_starttls=c.boolean(t, "smtp_starttls", "notify.smtp_starttls", default.smtp_starttls),
        smtp_username=c.string(t, "smtp_username", "notify.smtp_username"),
        smtp_password_env=password_env, smtp_password_file=password_file,
        webhook_token_env=_env(c, t, "webhook_token_env"), report_base_url=report,
        timeout_seconds=c.integer(t, "timeout_seconds", "notify.timeout_seconds", default.timeout_seconds,
                                  minimum=1),
        **refs,
    )  # fmt: skip
