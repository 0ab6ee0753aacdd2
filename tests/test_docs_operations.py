"""The deployment examples in docs/operations.md: systemd units with no comment at the end of a
directive line (systemd reads it as part of the value), hardened, with a state directory; verified
by ``systemd-analyze verify`` where it is installed; cron with CRON_TZ and secrets; Windows."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "operations.md"
_UNIT = re.compile(r"```ini\n# /etc/systemd/system/(\S+)\n(.*?)```", re.S)


def units() -> dict[str, str]:
    return {name: body for name, body in _UNIT.findall(DOC.read_text(encoding="utf-8"))}


def problems(body: str) -> list[str]:
    """Lines systemd would misread: trailing comments, lines that are not section/key=value/comment."""
    out: list[str] = []
    section = None
    for n, line in enumerate(body.splitlines(), 1):
        text = line.strip()
        if not text or text[0] in "#;":
            continue
        if re.fullmatch(r"\[[A-Za-z]+\]", text):
            section = text
            continue
        m = re.fullmatch(r"([A-Za-z][A-Za-z0-9]*)=(.*)", text)
        if m is None or section is None:
            out.append(f"line {n}: not a directive: {text}")
        elif re.search(r"\s[#;]", m.group(2)):
            out.append(f"line {n}: comment at the end of a directive: {text}")
        elif line != text:
            out.append(f"line {n}: indented directive: {line!r}")
    return out


def test_the_checker_catches_the_old_trailing_comment() -> None:
    bad = "[Service]\nEnvironmentFile=/etc/entra-sync/credentials.env   # ENTRA_SYNC_CLIENT_SECRET=...\n"
    assert problems(bad) == [
        "line 2: comment at the end of a directive: "
        "EnvironmentFile=/etc/entra-sync/credentials.env   # ENTRA_SYNC_CLIENT_SECRET=..."]
    assert problems("[Service]\n# a comment line is fine\nUser=x\n") == []


def test_documented_units_have_no_trailing_comments() -> None:
    found = units()
    assert set(found) == {"entra-sync.service", "entra-sync-run.service", "entra-sync-run.timer"}
    for name, body in found.items():
        assert problems(body) == [], name


def test_services_are_hardened_with_a_state_directory() -> None:
    for name in ("entra-sync.service", "entra-sync-run.service"):
        lines = set(units()[name].splitlines())
        for directive in ("StateDirectory=entra-sync", "NoNewPrivileges=yes", "ProtectSystem=strict",
                          "ProtectHome=yes", "PrivateTmp=yes", "CapabilityBoundingSet=",
                          "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "User=entra-sync"):
            assert directive in lines, f"{name}: {directive}"
    timer = units()["entra-sync-run.timer"]
    assert "OnCalendar=*-*-* 04,08,12:00:00 Europe/London" in timer and "Persistent=true" in timer


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    true = shutil.which("true")
    assert true is not None
    for name, body in units().items():
        # the program and the secrets file are not installed here; everything else is as documented
        body = body.replace("/opt/entra-sync/.venv/bin/entra-sync", true)
        body = body.replace("EnvironmentFile=/", "EnvironmentFile=-/")
        (tmp_path / name).write_text(body, encoding="utf-8")
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", *sorted(units())], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    mine = [line for line in (r.stdout + r.stderr).splitlines() if "entra-sync" in line]
    assert mine == [], mine


def test_cron_names_its_time_zone_and_how_secrets_arrive() -> None:
    text = DOC.read_text(encoding="utf-8")
    cron = re.search(r"```cron\n(.*?)```", text, re.S)
    assert cron is not None
    assert "CRON_TZ=Europe/London" in cron.group(1)
    assert "/opt/entra-sync/run-sync" in cron.group(1)
    wrapper = re.search(r"```sh\n#!/bin/sh\n(.*?)```", text, re.S)
    assert wrapper is not None and "set -a\n. /etc/entra-sync/credentials.env\nset +a" in wrapper.group(1)
    assert "system** time zone" in text


def test_windows_task_scheduler_example() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "Register-ScheduledTask" in text and "-MultipleInstances IgnoreNew" in text
    assert "schtasks /Create" in text
