"""The run lock on both code paths: the operating system's lock (fcntl here) and, with ``fcntl``
unavailable (as on a platform without it), filelock's soft lock; the CLI runs there too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from entra_sync.runs.lock import lock_kind

ROOT = Path(__file__).resolve().parents[1]
NO_FCNTL = "import sys; sys.modules['fcntl'] = None\n"

_HOLDER = NO_FCNTL + """
import logging
logging.basicConfig(level=logging.WARNING, format="%(message)s")
from entra_sync.runs.lock import RunLock, LockHeldError, lock_kind
lock = RunLock(sys.argv[1])
try:
    lock.acquire()
except LockHeldError as exc:
    print("held:", exc.pid, flush=True)
    raise SystemExit(3)
print("locked", lock_kind(), flush=True)
if sys.argv[2] == "wait":
    sys.stdin.readline()
lock.release()
"""


def _run(path: Path, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _HOLDER, str(path), mode], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, check=False)


def test_this_platform_gets_the_operating_systems_lock() -> None:
    assert lock_kind() in ("UnixFileLock", "WindowsFileLock")


def test_without_fcntl_the_soft_lock_refuses_a_second_run_and_takes_over_a_dead_ones(tmp_path: Path) -> None:
    path = tmp_path / "run" / "history.lock"
    with subprocess.Popen([sys.executable, "-c", _HOLDER, str(path), "wait"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().split() == ["locked", "SoftFileLock"]
            second = _run(path, "once")
            assert second.returncode == 3, second.stderr
            assert second.stdout.strip() == f"held: {holder.pid}"
        finally:
            holder.kill()  # dies holding the lock
            holder.wait(timeout=30)
    assert path.read_text().strip() == str(holder.pid)
    third = _run(path, "once")
    assert third.returncode == 0, third.stderr
    assert third.stdout.split() == ["locked", "SoftFileLock"]
    assert f"left by process {holder.pid}, which is no longer running" in third.stderr
    assert path.read_text() == ""  # released


def test_without_fcntl_a_released_soft_lock_is_free_again(tmp_path: Path) -> None:
    path = tmp_path / "history.lock"
    for _ in range(2):
        r = _run(path, "once")
        assert r.returncode == 0, r.stderr
        assert "left by process" not in r.stderr


def test_the_cli_runs_a_sync_without_fcntl(tmp_path: Path) -> None:
    script = NO_FCNTL + (
        "from entra_sync.cli import entry\n"
        "sys.argv = ['entra-sync', *sys.argv[1:]]\n"
        "entry()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENTRA_SYNC_", "AZURE_"))}
    demo = tmp_path / "demo"
    r = subprocess.run([sys.executable, "-c", script, "demo", "--dir", str(demo), "-q"], capture_output=True,
                       text=True, timeout=300, cwd=ROOT, env=env, check=False)
    assert r.returncode == 0, r.stderr
    assert "Applied" in r.stdout and "failed" not in r.stdout
    assert "soft file lock" not in r.stderr
    config = str(demo / "entra-sync.toml")
    r = subprocess.run([sys.executable, "-c", script, "sync", "--config", config, "-q"], capture_output=True,
                       text=True, timeout=300, cwd=ROOT, env=env, check=False)
    assert r.returncode == 0, r.stderr
    assert "No changes" in r.stdout
