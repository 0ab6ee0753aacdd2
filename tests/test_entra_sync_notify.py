"""Notifications against servers on 127.0.0.1: email over SMTP, a Teams Workflows/incoming webhook
(Adaptive Card), a generic webhook (the run-result document); only for runs that need someone; a
channel that fails is logged and never fails the run; secrets stay out of logs and results."""

from __future__ import annotations

import email
import json
import logging
from dataclasses import replace
from email import policy
from pathlib import Path

import pytest

from entra_sync.config.load import loads_config
from entra_sync.notify import notify, should_notify
from entra_sync.notify.channels import teams_payload
from reconciler.errors import ConfigError
from reconciler.settings import NotifyConfig
from tests.local_servers import http_server, smtp_server
from tests.run_results import clean_run, partial_run, refused_run

SECRET = "s3cr3t-Pa55"


def email_cfg(port: int, **kw: object) -> NotifyConfig:
    return NotifyConfig(email_to=("it@trust.example", "head@oak.example"), email_from="sync@trust.example",
                        smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False, timeout_seconds=5,
                        **kw)  # type: ignore[arg-type]


def test_email_of_a_partial_run_reaches_the_smtp_server() -> None:
    with smtp_server(password=SECRET) as (port, box):
        out = notify(partial_run(), email_cfg(port, smtp_username="sync", smtp_password_env="SMTP_PW"),
                     env={"SMTP_PW": SECRET})
    assert [(o.channel, o.sent) for o in out] == [("email", True)]
    assert box.logins == [("sync", SECRET)]
    (msg,) = box.messages
    assert msg["from"] == "sync@trust.example"
    assert msg["to"] == ["it@trust.example", "head@oak.example"]
    parsed = email.message_from_string(msg["data"], policy=policy.default)
    assert parsed["Subject"] == ("Entra Sync run 7 partial: 2 changes not done, 1 people not in Entra, "
                                 "1 conflicts")
    body = parsed.get_content()
    assert "failed: create group class:OAK:2026-27:7A-En1 (7A English | Set 1): Graph answered 400" in body
    assert "People not in Entra: 1 (OAK 1)" in body
    assert SECRET not in msg["data"]


def test_password_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text(SECRET + "\n")
    with smtp_server(password=SECRET) as (port, box):
        out = notify(refused_run(), email_cfg(port, smtp_username="sync", smtp_password_file=tmp_path / "pw"),
                     env={})
    assert out[0].sent and box.logins == [("sync", SECRET)]
    assert "raise safety.max_deletes" in box.messages[0]["data"]


def test_starttls_refused_by_the_server_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    with smtp_server() as (port, box), caplog.at_level(logging.WARNING, logger="entra_sync.notify"):
        out = notify(partial_run(), replace(email_cfg(port), smtp_starttls=True), env={})
    assert not out[0].sent and "STARTTLS" in out[0].error
    assert box.messages == []
    assert "could not send the email notification" in caplog.text


def test_a_clean_run_sends_nothing_unless_always() -> None:
    with smtp_server() as (port, box):
        assert notify(clean_run(), email_cfg(port), env={}) == []
        assert box.messages == []
        out = notify(clean_run(), email_cfg(port, on=("always",)), env={})
    assert out[0].sent and len(box.messages) == 1
    assert "Subject: Entra Sync run 9 succeeded\r\n" in box.messages[0]["data"]


@pytest.mark.parametrize(
    ("on", "build", "sent"),
    [(("refused",), refused_run, True), (("refused",), partial_run, False),
     (("unresolved",), partial_run, True), (("failed",), partial_run, False),
     (("partial",), partial_run, True), (("conflicts",), refused_run, True)],
)
def test_events_choose_when_to_send(on: tuple[str, ...], build, sent: bool) -> None:
    assert should_notify(build(), NotifyConfig(on=on)) is sent


def test_teams_gets_an_adaptive_card(caplog: pytest.LogCaptureFixture) -> None:
    with http_server() as (url, inbox), caplog.at_level(logging.INFO, logger="entra_sync.notify"):
        hook = f"{url}/workflows/abc?sig={SECRET}"
        cfg = NotifyConfig(teams_webhook_url_env="TEAMS_URL", report_base_url="https://reports.example/sync")
        out = notify(refused_run(), cfg, env={"TEAMS_URL": hook})
    assert out[0].sent
    (post,) = inbox.posts
    assert post["path"] == f"/workflows/abc?sig={SECRET}"
    assert post["headers"]["Content-Type"] == "application/json"
    payload = json.loads(post["body"])
    assert payload["type"] == "message"
    (attachment,) = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"][0]["text"].startswith("Entra Sync run 8 refused: 1 safety refusal")
    assert any("raise safety.max_deletes" in b.get("text", "") for b in card["body"])
    assert card["actions"][0]["url"] == "https://reports.example/sync/run-8.html"
    assert SECRET not in caplog.text and "sent the teams notification of run 8" in caplog.text


def test_teams_card_stays_small_for_a_huge_run() -> None:
    doc = partial_run()
    doc["needsYou"]["failures"] = doc["needsYou"]["failures"] * 5000
    doc["needsYou"]["refusals"] = ["x" * 2000] * 50
    assert len(json.dumps(teams_payload(doc))) < 28_000


def test_generic_webhook_gets_the_run_result_with_a_bearer_token() -> None:
    with http_server() as (url, inbox):
        cfg = NotifyConfig(webhook_url_env="HOOK", webhook_token_env="HOOK_TOKEN")
        out = notify(partial_run(), cfg, env={"HOOK": f"{url}/hook", "HOOK_TOKEN": SECRET})
    assert out[0].sent
    (post,) = inbox.posts
    assert post["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert json.loads(post["body"]) == partial_run()


def test_failing_channels_are_logged_without_secrets_and_the_others_still_go(
        caplog: pytest.LogCaptureFixture) -> None:
    with http_server() as (url, inbox), smtp_server() as (port, box), \
            caplog.at_level(logging.WARNING, logger="entra_sync.notify"):
        inbox.status = 500
        cfg = replace(email_cfg(port), teams_webhook_url_env="TEAMS_URL", webhook_url_env="MISSING")
        out = notify(partial_run(), cfg, env={"TEAMS_URL": f"{url}/hook?sig={SECRET}"})
    assert [(o.channel, o.sent) for o in out] == [("email", True), ("teams", False), ("webhook", False)]
    assert out[1].error == "the server answered HTTP 500"
    assert out[2].error == "the environment variable MISSING (the webhook URL) is not set"
    assert len(box.messages) == 1
    assert SECRET not in caplog.text and all(SECRET not in o.error for o in out)
    assert "could not send the teams notification: the server answered HTTP 500" in caplog.text


def test_an_unreachable_server_is_an_outcome_not_an_exception() -> None:
    with http_server() as (url, _):
        dead = url  # closed once the block ends
    out = notify(partial_run(), NotifyConfig(webhook_url_env="HOOK"), env={"HOOK": dead})
    assert not out[0].sent and out[0].error.startswith("could not connect")
    with smtp_server() as (port, _):
        pass
    out = notify(partial_run(), email_cfg(port), env={})
    assert not out[0].sent and "ConnectionRefusedError" in out[0].error


def test_notify_section_is_read_and_checked(tmp_path: Path) -> None:
    cfg = loads_config(
        '[notify]\non = ["failed", "refused"]\nemail_to = ["it@trust.example"]\n'
        'email_from = "sync@trust.example"\nsmtp_host = "smtp.office365.com"\nsmtp_username = "sync"\n'
        'smtp_password_env = "SMTP_PASSWORD"\nteams_webhook_url_file = "teams.url"\n',
        file=tmp_path / "c.toml",
    ).notify
    assert cfg.on == ("failed", "refused") and cfg.smtp_port == 587 and cfg.smtp_starttls
    assert cfg.teams_webhook_url_file == tmp_path / "teams.url"
    assert cfg.email and cfg.teams and not cfg.webhook
    with pytest.raises(ConfigError) as info:
        loads_config(
            f'[notify]\nwebhook_url_env = "https://hooks.example/{SECRET}"\nemail_to = ["it@trust.example"]\n'
            'on = ["sometimes"]\n',
            file=tmp_path / "c.toml",
        )
    text = str(info.value)
    assert "notify.webhook_url_env: is not an environment variable name" in text
    assert "notify.smtp_host: is required to send email" in text
    assert "notify.on[0]: must be one of" in text
    assert SECRET not in text
