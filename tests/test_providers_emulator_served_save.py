"""The served emulator's saves: one consistent state, written temp-then-rename by a save process,
so a save or a server killed at any moment leaves a tenant file that loads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from providers.emulator import Tenant
from providers.emulator import server as server_module
from providers.emulator.persist import to_json
from providers.emulator.server import EmulatorServer

needs_fork = pytest.mark.skipif(not server_module.FORK, reason="saves in a forked process only with fork")


def _tenant() -> Tenant:
    t = Tenant(seed=3)
    users = [t.add_user(f"u{i}@oak.example") for i in range(20)]
    t.add_group("g", members=users[1:], owners=users[:1])
    return t


def _write_users(server: EmulatorServer, names: list[str]) -> None:
    with httpx.Client(base_url=server.url, timeout=10, headers={"Authorization": "Bearer x"}) as http:
        for name in names:
            r = http.post("/users", json={"userPrincipalName": f"{name}@oak.example"})
            assert r.status_code == 201, r.text


def _upns(path: Path) -> set[str]:
    return {u.props["userPrincipalName"] for u in Tenant.load(path).users.values()}


def _leftover_temps(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.tmp"))


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "in-process"])
def test_a_save_writes_exactly_the_served_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fork: bool
) -> None:
    if fork and not server_module.FORK:
        pytest.skip("no fork here")
    monkeypatch.setattr(server_module, "FORK", fork)
    state = tmp_path / "tenant.json"
    server = EmulatorServer(_tenant(), port=0, state_path=state, save_interval=600.0)
    server.start()
    try:
        _write_users(server, ["a", "b"])
        server.flush()
        with server.engine.lock:
            expected = json.loads(json.dumps(to_json(server.engine.tenant)))
        assert json.loads(state.read_text()) == expected
        assert server.saves == 1
    finally:
        server.stop()
    assert _leftover_temps(tmp_path) == []


def _killed_mid_write(fd: int, tmp: str, data: dict[str, Any], path: Any) -> None:
    """What a save process does when it is killed halfway through writing the file."""
    text = json.dumps(data).encode()
    os.write(fd, text[: len(text) // 2])
    os.kill(os.getpid(), signal.SIGKILL)


def _failing(fd: int, tmp: str, data: dict[str, Any], path: Any) -> None:
    raise OSError("disk full")


@needs_fork
@pytest.mark.parametrize("save", [_killed_mid_write, _failing], ids=["killed", "failed"])
def test_a_save_process_killed_or_failing_mid_write_leaves_the_last_tenant_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, save: Any
) -> None:
    state = tmp_path / "tenant.json"
    server = EmulatorServer(_tenant(), port=0, state_path=state, save_interval=600.0)
    server.start()
    try:
        _write_users(server, ["saved"])
        server.flush()
        before = state.read_bytes()
        _write_users(server, ["pending"])
        with monkeypatch.context() as m:
            m.setattr(server_module, "finish_snapshot", save)
            with pytest.raises(OSError, match="save process"):
                server.flush()
        assert state.read_bytes() == before  # the old file, whole
        assert "saved@oak.example" in _upns(state) and "pending@oak.example" not in _upns(state)
        assert _leftover_temps(tmp_path) == []
        server.flush()  # still pending, so the next round saves it
        assert "pending@oak.example" in _upns(state)
    finally:
        server.stop()


SERVE = """
import sys, time
from providers.emulator import Tenant
from providers.emulator.server import EmulatorServer
server = EmulatorServer(Tenant.load(sys.argv[1]), port=0, state_path=sys.argv[1], save_interval=0.01)
server.start()
print(server.url, flush=True)
time.sleep(600)
"""


def test_a_server_killed_while_writes_and_saves_go_on_leaves_a_tenant_file_that_loads(
    tmp_path: Path,
) -> None:
    state = tmp_path / "tenant.json"
    big = _tenant()
    for i in range(3000):  # big enough that a save takes a while, so kills land inside saves too
        big.add_user(f"seed{i}@oak.example")
    big.save(state)
    written: list[str] = []
    for round_ in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(state)], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
        )
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            with httpx.Client(base_url=url, timeout=10, headers={"Authorization": "Bearer x"}) as http:
                started = time.monotonic()
                n = 0
                while time.monotonic() - started < 0.3 + 0.2 * round_:  # kill at a different moment
                    name = f"r{round_}-{n}@oak.example"
                    assert http.post("/users", json={"userPrincipalName": name}).status_code == 201
                    written.append(name)
                    n += 1
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        upns = _upns(state)  # loads: never a torn or half-written file
        assert {f"seed{i}@oak.example" for i in range(3000)} <= upns
        assert upns <= {*written, *(f"seed{i}@oak.example" for i in range(3000))} | {
            f"u{i}@oak.example" for i in range(20)
        }
