"""The three ways a notification goes out: email over SMTP, a Microsoft Teams channel (a Workflows
"send webhook alerts to a channel" URL or an incoming webhook, posted an Adaptive Card), and a
generic webhook (posted the run-result document as JSON).

Each takes the secret it needs already resolved; none logs a URL or a password.
"""

from __future__ import annotations

import json
import smtplib
import ssl
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import httpx

from entra_sync.notify.message import facts, needs_lines, subject, text_body
from reconciler.settings import NotifyConfig

__all__ = ["SmtpFactory", "adaptive_card", "post_json", "send_email", "teams_payload"]

SmtpFactory = Callable[..., smtplib.SMTP]
#: Teams refuses a card payload larger than about 28 KB; stay well under it
_CARD_TEXT_LIMIT = 12_000


def send_email(doc: Mapping[str, Any], cfg: NotifyConfig, password: str | None, *,
               smtp: SmtpFactory = smtplib.SMTP, report_url: str | None = None) -> None:
    """Send the run's message to ``cfg.email_to``; STARTTLS first when ``cfg.smtp_starttls``."""
    assert cfg.smtp_host is not None and cfg.email_from is not None
    msg = EmailMessage()
    msg["Subject"] = subject(doc)
    msg["From"] = cfg.email_from
    msg["To"] = ", ".join(cfg.email_to)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=cfg.email_from.rsplit("@", 1)[-1])
    msg.set_content(text_body(doc, report_url))
    with smtp(cfg.smtp_host, cfg.smtp_port, timeout=cfg.timeout_seconds) as server:
        server.ehlo()
        if cfg.smtp_starttls:
            server.starttls(context=ssl.create_default_context())
            server.ehlo()
        if cfg.smtp_username:
            server.login(cfg.smtp_username, password or "")
        server.send_message(msg)


def adaptive_card(doc: Mapping[str, Any], report_url: str | None = None) -> dict[str, Any]:
    """An Adaptive Card (1.4) with the subject, the run's facts and what needs you."""
    needs = "\n".join(needs_lines(doc))
    if len(needs) > _CARD_TEXT_LIMIT:
        needs = needs[:_CARD_TEXT_LIMIT] + "\n... (cut; the run report has it all)"
    bad = doc["run"]["status"] in ("failed", "refused", "interrupted")
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": True, "text": subject(doc),
         "color": "Attention" if bad else "Warning"},
        {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in facts(doc)]},
    ]
    if needs:
        body.append({"type": "TextBlock", "wrap": True, "text": needs, "fontType": "Monospace"})
    card: dict[str, Any] = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                            "type": "AdaptiveCard", "version": "1.4", "body": body}
    if report_url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the run report", "url": report_url}]
    return card


def teams_payload(doc: Mapping[str, Any], report_url: str | None = None) -> dict[str, Any]:
    """The message a Teams Workflows webhook (and an incoming webhook) accepts: one Adaptive Card
    attachment."""
    return {"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
        "content": adaptive_card(doc, report_url),
    }]}  # fmt: skip


def post_json(url: str, payload: Mapping[str, Any], *, timeout: float, token: str | None = None,
              transport: httpx.BaseTransport | None = None) -> int:
    """POST ``payload`` as JSON; raises :class:`httpx.HTTPStatusError` on a non-2xx answer."""
    headers = {"Content-Type": "application/json", "User-Agent": "realsmart-entra-sync"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    with httpx.Client(timeout=timeout, transport=transport, follow_redirects=False) as client:
        response = client.post(url, content=json.dumps(payload, ensure_ascii=False).encode(), headers=headers)
        response.raise_for_status()
        return response.status_code
