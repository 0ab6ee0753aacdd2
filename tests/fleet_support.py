"""The fleet tests' helpers: a throwaway Redis server, small emulated schools as tenants, and
worker processes.

``redis_server`` starts the system's ``redis-server`` on 127.0.0.1 on a free port (no persistence)
and stops it at the end; ``ENTRA_SYNC_TEST_REDIS_URL`` names one instead. Without one the tests
are skipped with the reason, except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from providers.emulator import Tenant
from tests.postgres import _free_port

__all__ = [
    "SCHEDULE", "Worker", "duplicates", "redis_server", "served_tenant", "small_export", "write_tenant",
]

#: local times of the tenants' slots (Europe/London)
SCHEDULE = ("04:00", "08:00", "12:00")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"Redis is required in CI: {reason}")
    pytest.skip(f"no Redis server: {reason}")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A URL of a Redis server (``redis://127.0.0.1:PORT/0``)."""
    given = os.environ.get("ENTRA_SYNC_TEST_REDIS_URL")
    if given:
        yield given
        return
    system = Path("/usr/bin/redis-server")
    binary = shutil.which("redis-server") or (str(system) if system.exists() else None)
    if binary is None:
        _unavailable("no redis-server binary (apt-get install redis-server)")
        return
    folder = Path(tempfile.mkdtemp(prefix="entra-sync-redis-"))
    port = _free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(folder), "--logfile", str(folder / "log")]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from redis import Redis

    client = Redis(host="127.0.0.1", port=port)
    try:
        for _ in range(200):
            try:
                if client.ping():
                    break
            except Exception:
                if proc.poll() is not None:
                    break
                time.sleep(0.05)
        else:
            proc.kill()
        if proc.poll() is not None:
            log = (folder / "log").read_text(errors="replace") if (folder / "log").exists() else ""
            _unavailable(f"could not start it (exit {proc.returncode}): {log[-2000:]}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def small_export(out: Path, classes: int = 3) -> list[str]:
    """A one-school Realsmart export cut from the bundled example (``classes`` classes, one mentor
    group, their people); returns the people's UPNs."""
    from providers.sources import example_export_path

    d = json.loads(example_export_path().read_text(encoding="utf-8"))
    school = d["schools"][0]["id"]
    kept = [c for c in d["classes"] if c["schoolId"] == school][:classes]
    mentors = [m for m in d["mentorGroups"] if m["schoolId"] == school][:1]
    learners = {i for g in kept + mentors for i in g["learnerIds"]}
    staff = {i for c in kept for i in c["teacherIds"]} | {i for m in mentors for i in m["mentorIds"]}
    d["schools"] = d["schools"][:1]
    d["classes"], d["mentorGroups"] = kept, mentors
    d["learners"] = [p for p in d["learners"] if p["id"] in learners]
    d["staff"] = [dict(p, schoolIds=[school]) for p in d["staff"] if p["id"] in staff]
    years = {p["yearGroupId"] for p in d["learners"]} | {g.get("yearGroupId") for g in kept + mentors}
    d["yearGroups"] = [y for y in d["yearGroups"] if y["id"] in years]
    out.write_text(json.dumps(d), encoding="utf-8")
    return sorted(p["upn"] for p in d["learners"] + d["staff"])


def write_tenant(
    folder: Path,
    *,
    graph_url: str | None = None,
    token_env: str | None = None,
    classes: int = 3,
    times: tuple[str, ...] = SCHEDULE,
    teams: bool = False,
    catch_up_minutes: int = 0,
) -> Path:
    """A school as a tenant: its export, its configuration and (in-process emulator, the default)
    its tenant file seeded with the school's users. Returns the configuration file."""
    from entra_sync.cli.wiring import DEMO_CLIENT_ID
    from providers.emulator.seed import SeedUser, seed_users

    folder.mkdir(parents=True, exist_ok=True)
    people = small_export(folder / "export.json", classes)
    if graph_url is None:
        tenant = Tenant()
        seed_users(tenant, [SeedUser(p) for p in people])
        tenant.save(folder / "tenant.json")
        graph_url = "emulator:tenant.json"
    creds = f'[credentials]\naccess_token_env = "{token_env}"\n' if token_env else ""
    cfg = folder / "entra-sync.toml"
    cfg.write_text(
        f'[tenant]\ntenant_id = "{folder.name}.example"\nclient_id = "{DEMO_CLIENT_ID}"\n'
        f'graph_url = "{graph_url}"\n'
        f'{creds}[source]\nkind = "realsmart"\npath = "export.json"\n'
        f"[sync]\nteams = {str(teams).lower()}\n"
        f'[schedule]\ntimes = {json.dumps(list(times))}\ntimezone = "Europe/London"\n'
        f"catch_up_minutes = {catch_up_minutes}\n",
        encoding="utf-8",
    )
    return cfg


class Worker:
    """``entra-sync worker`` in its own process group (so that SIGKILL takes all its processes)."""

    def __init__(self, env: dict[str, str], name: str, log: Path, concurrency: int = 2,
                 command: list[str] | None = None) -> None:  # fmt: skip
        self.name = name
        self.log = log
        self._out = log.open("wb")
        args = command or ["worker", "--concurrency", str(concurrency), "--name", name, "--loglevel", "INFO"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "entra_sync.cli", *args],
            env=env, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once (a machine dying)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._out.close()


def served_tenant(folder: Path, classes: int = 3) -> Tenant:
    """The emulated tenant of a school written by :func:`write_tenant` for a served emulator: its
    users seeded and the marker registered (what `entra-sync setup` does)."""
    import httpx

    from entra_sync.cli.wiring import DEMO_CLIENT_ID
    from providers.emulator import EmulatorTransport, Profile
    from providers.emulator.seed import SeedUser, seed_users
    from providers.entra.client import GraphClient
    from providers.entra.marker import ensure_marker
    from reconciler.clock import SystemClock

    folder.mkdir(parents=True, exist_ok=True)
    people = small_export(folder / "export.json", classes)
    tenant = Tenant()
    seed_users(tenant, [SeedUser(p) for p in people])
    root = "https://graph.microsoft.com/v1.0"
    clock = SystemClock()
    transport = EmulatorTransport(tenant, clock=clock, profile=Profile.ideal())
    http = httpx.Client(transport=transport, base_url=root, headers={"Authorization": "Bearer setup"})
    client = GraphClient(http, token=None, clock=clock)
    try:
        ensure_marker(client, DEMO_CLIENT_ID, graph_root=root)
    finally:
        client.close()
    return tenant


def duplicates(tenant: Tenant) -> list[str]:
    """Names that more than one group (or unit) of the tenant carries."""
    from collections import Counter

    names = Counter(g.props.get("mailNickname") for g in tenant.groups.values())
    names.update(f"au:{a.props.get('displayName')}" for a in tenant.admin_units.values())
    return sorted(str(k) for k, n in names.items() if n > 1)
