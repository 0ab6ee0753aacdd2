"""Notifications after a run: by email, to a Microsoft Teams channel, or to a generic webhook.

:func:`notify` is called by the pipeline with the run-result document
(:mod:`entra_sync.runs.result_json`) once a run has ended. It sends when the run reports one of
the events ``[notify] on`` lists (by default: failed, partly done, refused, people not in Entra)
through every channel configured. Secrets (the SMTP password, the webhook URLs, a bearer token)
are read by reference at send time, from an environment variable or a file.

Must: never fail the run: a channel that cannot send is logged (without its URL or password) and
the others still go. Must not: log or return a secret.
"""

from __future__ import annotations

import logging
import os
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from entra_sync.notify.channels import SmtpFactory, post_json, send_email, teams_payload
from entra_sync.notify.message import events
from reconciler.settings import NotifyConfig

__all__ = ["Outcome", "notify", "should_notify"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    channel: str  # email, teams, webhook
    sent: bool
    #: why it was not sent (never a secret)
    error: str = ""


class _MissingSecret(Exception):
    pass


def should_notify(doc: Mapping[str, Any], cfg: NotifyConfig) -> bool:
    return "always" in cfg.on or bool(events(doc) & set(cfg.on))


def _secret(env_name: str | None, file: Path | None, env: Mapping[str, str], what: str) -> str | None:
    if env_name:
        value = env.get(env_name, "").strip()
        if not value:
            raise _MissingSecret(f"the environment variable {env_name} ({what}) is not set")
        return value
    if file is not None:
        try:
            value = file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise _MissingSecret(f"cannot read {file} ({what}): {reason}") from None
        if not value:
            raise _MissingSecret(f"{file} ({what}) is empty")
        return value
    return None


def _http_error(exc: Exception) -> str:
    """An HTTP failure without the URL (a webhook URL carries its secret)."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"the server answered HTTP {exc.response.status_code}"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return f"could not connect ({type(exc).__name__})"


def notify(doc: Mapping[str, Any], cfg: NotifyConfig, *, env: Mapping[str, str] | None = None,
           smtp: SmtpFactory = smtplib.SMTP, transport: httpx.BaseTransport | None = None,
           report_url: str | None = None) -> list[Outcome]:
    """Send the run's notifications if its events call for them; never raises."""
    if not (cfg.email or cfg.teams or cfg.webhook) or not should_notify(doc, cfg):
        return []
    env = os.environ if env is None else env
    run_id = doc["run"]["id"]
    if report_url is None and cfg.report_base_url and run_id is not None:
        report_url = f"{cfg.report_base_url.rstrip('/')}/run-{run_id}.html"
    out: list[Outcome] = []
    if cfg.email:
        try:
            password = _secret(cfg.smtp_password_env, cfg.smtp_password_file, env, "the SMTP password")
            send_email(doc, cfg, password, smtp=smtp, report_url=report_url)
            out.append(Outcome("email", True))
        except _MissingSecret as exc:
            out.append(Outcome("email", False, str(exc)))
        except (smtplib.SMTPException, OSError) as exc:
            out.append(Outcome("email", False, f"{type(exc).__name__}: {exc}"))
        except Exception as exc:  # a notification never fails the run
            out.append(Outcome("email", False, f"unexpected {type(exc).__name__}"))
    hooks: list[tuple[str, str | None, Path | None, dict[str, Any]]] = []
    if cfg.teams:
        hooks.append(("teams", cfg.teams_webhook_url_env, cfg.teams_webhook_url_file,
                      teams_payload(doc, report_url)))
    if cfg.webhook:
        hooks.append(("webhook", cfg.webhook_url_env, cfg.webhook_url_file, dict(doc)))
    for channel, ref_env, ref_file, payload in hooks:
        try:
            url = _secret(ref_env, ref_file, env, f"the {channel} URL")
            token = _secret(cfg.webhook_token_env, None, env, "the webhook token") if channel == "webhook" \
                else None
            assert url is not None
            post_json(url, payload, timeout=cfg.timeout_seconds, token=token, transport=transport)
            out.append(Outcome(channel, True))
        except _MissingSecret as exc:
            out.append(Outcome(channel, False, str(exc)))
        except httpx.HTTPError as exc:
            out.append(Outcome(channel, False, _http_error(exc)))
        except Exception as exc:  # a notification never fails the run
            out.append(Outcome(channel, False, f"unexpected {type(exc).__name__}"))
    for o in out:
        if o.sent:
            log.info("sent the %s notification of %s", o.channel, f"run {run_id}" if run_id else "the run")
        else:
            log.warning("could not send the %s notification: %s", o.channel, o.error)
    return out
