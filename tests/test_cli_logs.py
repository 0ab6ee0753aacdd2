"""Log lines: an ISO 8601 time with its offset on every line, text or one JSON object per line,
the run id where known, and no secret in either form."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from entra_sync.cli.logs import LogFormat, configure_logging, secret_values
from entra_sync.runs.logcontext import RUN_ID
from providers.sources import example_export_path

pytestmark = pytest.mark.usefixtures("clean_env")

SECRET = "Zq8~s3cr3t.Value-From-Entra_0123"
JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJncmFwaCJ9.c2lnbmF0dXJl"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d ")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_text_lines_start_with_an_iso_time_and_name_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(logging.INFO, LogFormat.text)
    logging.getLogger("entra_sync.test").warning("before the run")
    token = RUN_ID.set(42)
    try:
        logging.getLogger("entra_sync.test").info("inside the run")
    finally:
        RUN_ID.reset(token)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert all(ISO.match(line) for line in lines), lines
    assert lines[0].endswith(" WARNING entra_sync.test: before the run")
    assert lines[1].endswith(" INFO entra_sync.test [run 42]: inside the run")
    datetime.fromisoformat(lines[0].split()[0])  # a parseable timestamp with an offset


def test_json_lines_are_one_object_each(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(logging.INFO, LogFormat.json)
    token = RUN_ID.set(7)
    try:
        logging.getLogger("providers.entra.client").info("GET /users -> 200\nsecond line")
    finally:
        RUN_ID.reset(token)
    logging.getLogger("entra_sync.test").error("no run here")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2  # a message's newline stays inside its object
    first, second = (json.loads(line) for line in lines)
    assert first == {"ts": first["ts"], "level": "INFO", "logger": "providers.entra.client",
                     "message": "GET /users -> 200\nsecond line", "run": 7}
    assert datetime.fromisoformat(first["ts"]).utcoffset() is not None
    assert "run" not in second and second["level"] == "ERROR"


@pytest.mark.parametrize("fmt", list(LogFormat))
def test_no_secret_reaches_a_log_line(fmt: LogFormat, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("ENTRA_SYNC_CLIENT_SECRET_FILE", "/run/secrets/entra")  # a path, not a secret
    configure_logging(logging.DEBUG, fmt)
    log = logging.getLogger("entra_sync.test")
    log.warning("token request with client_secret=%s failed", SECRET)
    log.info("Authorization: Bearer %s", JWT)
    try:
        raise RuntimeError(f"boom {SECRET} {JWT}")
    except RuntimeError:
        log.exception("unexpected")
    log.info("reading /run/secrets/entra")
    err = capsys.readouterr().err
    assert SECRET not in err and JWT not in err and JWT[:20] not in err
    assert err.count("[redacted]") >= 4
    assert "/run/secrets/entra" in err
    if fmt is LogFormat.json:
        docs = [json.loads(line) for line in err.splitlines()]
        assert "Traceback" in docs[2]["exception"]


def test_secret_values_are_those_of_secret_names_only() -> None:
    env = {"ENTRA_SYNC_CLIENT_SECRET": "abcdefgh", "ENTRA_SYNC_ACCESS_TOKEN": "tok-123456",
           "ENTRA_SYNC_CLIENT_ID": "11111111-2222", "ENTRA_SYNC_CERTIFICATE_PASSWORD": "pw",
           "ENTRA_SYNC_CLIENT_SECRET_FILE": "/secret/file"}
    assert secret_values(env) == ["tok-123456", "abcdefgh"]  # too short to search: "pw"


def test_the_cli_logs_with_times_in_either_format(run_cli, tmp_path: Path) -> None:
    cfg = tmp_path / "entra-sync.toml"
    cfg.write_text(f'[source]\nkind = "realsmart"\npath = "{example_export_path()}"\n')
    r = run_cli("-v", "render", "--config", cfg, "-o", tmp_path / "d.json")
    assert r.exit_code == 0, r.output
    logged = [line for line in r.stderr.splitlines() if " INFO " in line]
    assert logged and all(ISO.match(line) for line in logged), r.stderr
    r = run_cli("-v", "--log-format", "json", "render", "--config", cfg, "-o", tmp_path / "d.json")
    assert r.exit_code == 0, r.output
    docs = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    assert any(d["logger"].startswith("reconciler.") and d["level"] == "INFO" for d in docs), r.stderr
    r = run_cli("--log-format", "xml", "render", "--config", cfg)
    assert r.exit_code == 2 and "xml" in r.stderr
