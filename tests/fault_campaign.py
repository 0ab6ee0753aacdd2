"""The fault campaign's machinery (issue 11), shared by ``tests/test_fault_campaign.py`` and
``benchmarks/bench_faults.py``.

One *case* is a small school synced for the first time to an emulator served over loopback (it
outlives the killed client, as Graph does) with the realistic profile plus throttled-but-applied
writes, a 20 s read lag on lists and filters, lost responses and a 5xx storm; the ``entra-sync
sync`` subprocess is killed with SIGKILL at one point (after N settled outcomes, or as Graph takes
its Nth request, which Graph then applies for a dead client); then ``sync`` is run again (at most
twice) and :meth:`Case.check` compares what Graph holds with the desired state and the run history.

Time: the served emulator and every ``entra-sync`` subprocess share one virtual clock kept in a
file (:class:`SharedClock`), so replication lag, ``Retry-After`` and the writer's lookups that wait
out the lag cost no real time, and the lag the client waits out is the lag the emulator applies.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from entra_sync.cli.running import render_config
from entra_sync.cli.wiring import DEMO_CLIENT_ID
from entra_sync.config.load import load_config
from entra_sync.runs.history import History
from providers.emulator import Tenant
from providers.emulator.faults import FaultRule, Outage
from providers.emulator.profile import Profile
from providers.emulator.seed import SeedUser, seed_users
from providers.emulator.server import EmulatorServer
from providers.entra.marker import MARKER_PROPERTY, marker_name, marker_value
from providers.sources import example_export_path
from reconciler.model import DesiredState
from tests.fault_clock import SharedClock

__all__ = [
    "Case", "CaseReport", "KillPoint", "SharedClock", "campaign_profile", "kill_points", "small_export",
]  # fmt: skip

ROOT = Path(__file__).resolve().parents[1]
MARKER = marker_name(DEMO_CLIENT_ID)


#: ``python -c CHILD KILL_AFTER ARGS...``: ``entra-sync ARGS`` on the shared clock
#: (``$FAULTS_CLOCK``), killed with SIGKILL right after its KILL_AFTER-th outcome reached the run
#: store (0: never)
CHILD = """
import os, signal, sys
import reconciler.clock  # before anything binds SystemClock
from tests.fault_clock import SharedClock

reconciler.clock.SystemClock = lambda: SharedClock(os.environ["FAULTS_CLOCK"])
from entra_sync.runs.history import History

kill_after = int(sys.argv[1])
settled = 0
record_result = History.record_result

def record_then_die(self, run_id, result):
    global settled
    record_result(self, run_id, result)
    settled += 1
    if settled == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)

History.record_result = record_then_die
from entra_sync.cli import main
sys.exit(main(sys.argv[2:]))
"""


def small_export(classes: int, mentor_groups: int) -> dict[str, Any]:
    """The example export cut down to its first school, ``classes`` classes and ``mentor_groups``
    mentor groups, and the people they name."""
    data: dict[str, Any] = json.loads(example_export_path().read_text())
    data.pop("$schema", None)
    school = data["schools"][0]["id"]
    data["schools"] = data["schools"][:1]
    data["yearGroups"] = [y for y in data["yearGroups"] if y["schoolId"] == school]
    data["classes"] = [c for c in data["classes"] if c["schoolId"] == school][:classes]
    data["mentorGroups"] = [m for m in data["mentorGroups"] if m["schoolId"] == school][:mentor_groups]
    sets = data["classes"] + data["mentorGroups"]
    learners = {i for s in sets for i in s["learnerIds"]}
    staff = {i for s in sets for i in s.get("teacherIds", []) + s.get("mentorIds", [])}
    data["learners"] = [p for p in data["learners"] if p["id"] in learners]
    data["staff"] = [dict(p, schoolIds=[school]) for p in data["staff"] if p["id"] in staff]
    return data


def campaign_profile(seed: int, storm_start: float, storm_seconds: float = 60.0) -> Profile:
    """Realistic, plus 3 % of writes throttled but applied, a 20 s read lag, 2 % lost write
    responses and a 5xx storm (half of all requests answered 503, ``Retry-After: 2``)."""
    base = Profile.realistic(seed)
    return base.with_(
        replication_lag=20.0,
        faults=(
            *base.faults,
            FaultRule(applied_error_rate=0.03, applied_status=429),
            FaultRule(method="POST", lost_response_rate=0.02),
            FaultRule(method="PATCH", lost_response_rate=0.02),
        ),
        outages=(Outage(start=storm_start, duration=storm_seconds, status=503, retry_after=2.0, rate=0.5),),
    )


@dataclass(frozen=True)
class KillPoint:
    """Kill a sync after ``n`` settled outcomes (``kind`` "outcomes") or as Graph takes its ``n``-th
    request (``kind`` "requests"): the first sync, or (``later``) a later one that moves every
    class's learners to another class (memberships removed and added)."""

    kind: str
    n: int
    seed: int
    storm_start: float
    later: bool = False

    def __str__(self) -> str:
        return f"{'later' if self.later else 'first'}-{self.kind}-{self.n}-seed{self.seed}"


def kill_points(
    count: int, seed: int, max_outcomes: int, max_requests: int, later: tuple[int, int] = (10, 15)
) -> list[KillPoint]:
    """``count`` distinct kill points drawn by ``random.Random(seed)`` (reproducible): N up to
    ``max_outcomes`` / ``max_requests`` in a first sync, and (about a third of them) up to
    ``later`` (outcomes, requests) in a later sync."""
    rng = random.Random(seed)
    seen: set[tuple[str, int, bool]] = set()
    points: list[KillPoint] = []
    while len(points) < count:
        kind = rng.choice(("outcomes", "requests"))
        is_later = rng.random() < 1 / 3
        limits = later if is_later else (max_outcomes, max_requests)
        n = rng.randint(1, limits[0] if kind == "outcomes" else limits[1])
        if (kind, n, is_later) in seen:
            continue
        seen.add((kind, n, is_later))
        points.append(KillPoint(kind, n, rng.randrange(1 << 30), rng.uniform(0.0, 200.0), is_later))
    return points


@dataclass
class CaseReport:
    point: KillPoint
    killed: bool = False
    reruns: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    duplicates: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    exits: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.killed and not (self.duplicates or self.lost or self.extra or self.history)


class Case:
    """One school on one served emulator (see the module docstring). Use as a context manager."""

    def __init__(self, root: Path, point: KillPoint, *, classes: int = 6, mentor_groups: int = 2) -> None:
        self.root, self.point = root, point
        root.mkdir(parents=True, exist_ok=True)
        (root / "realsmart-export.json").write_text(json.dumps(small_export(classes, mentor_groups)))
        self.cfg = root / "entra-sync.toml"
        self.cfg.write_text(
            '[source]\nkind = "realsmart"\npath = "realsmart-export.json"\n'
            '[history]\npath = "history.sqlite"\n[sync]\nteams = false\n'
        )
        self.desired: DesiredState = render_config(load_config(self.cfg)).desired
        tenant = Tenant()
        seed_users(tenant, [SeedUser(ref) for ref in sorted(self.desired.people())])
        # what `entra-sync setup` does (tested on its own): the ownership marker, on the app
        assert tenant.register_extension(DEMO_CLIENT_ID, MARKER_PROPERTY) == MARKER
        self.clock = SharedClock(root / "clock")
        profile = campaign_profile(point.seed, point.storm_start)
        self.server = EmulatorServer(tenant, clock=self.clock, profile=profile)
        self.report = CaseReport(point)
        self._pid: int | None = None
        self._requests = 0
        self._kill_at: int | None = None
        self._count_lock = threading.Lock()
        handle = self.server.engine.handle

        def counted(method: str, path: str, query: Any, headers: Any, body: Any, base: str) -> Any:
            # Graph requests, as Graph counts them: each one inside a $batch (the product packs the
            # requests of concurrent changes); the kill lands on the call that carries the N-th
            items = body.get("requests") if path.endswith("/$batch") and isinstance(body, dict) else None
            with self._count_lock:
                before = self._requests
                self._requests += len(items) if isinstance(items, list) else 1
                kill_at = self._kill_at
                if self._pid is not None and kill_at is not None and before < kill_at <= self._requests:
                    os.kill(self._pid, signal.SIGKILL)  # Graph applies this request for a dead client
            outcome = handle(method, path, query, headers, body, base)
            if outcome.drop == "before":
                self.report.faults["dropped connection"] += 1
            elif outcome.drop == "after":
                self.report.faults["lost response"] += 1
            return outcome

        self.server.engine.handle = counted  # type: ignore[method-assign]
        report_error = self.server.httpd.handle_error

        def handle_error(request: Any, address: Any) -> None:
            if not isinstance(sys.exc_info()[1], ConnectionError):  # a killed client resets its socket
                report_error(request, address)

        self.server.httpd.handle_error = handle_error  # type: ignore[assignment]

    def __enter__(self) -> Case:
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.cfg.write_text(
            self.cfg.read_text() + f'[tenant]\ntenant_id = "contoso.onmicrosoft.com"\n'
            f'client_id = "{DEMO_CLIENT_ID}"\ngraph_url = "{self.url}"\n'
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def entra_sync(self, *args: str, kill_after: int = 0, kill_at_request: int | None = None) -> int:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ENTRA_SYNC_", "AZURE_"))}
        env.pop("PYTHONWARNINGS", None)
        env.update(
            ENTRA_SYNC_ACCESS_TOKEN="emulator-token", ENTRA_SYNC_CLIENT_ID=DEMO_CLIENT_ID,
            ENTRA_SYNC_STATE_DIR=str(self.root / "state"), FAULTS_CLOCK=str(self.root / "clock"),
            PYTHONPATH=str(ROOT),
        )  # fmt: skip
        with subprocess.Popen(
            [sys.executable, "-c", CHILD, str(kill_after), *args], cwd=self.root, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ) as proc:  # fmt: skip
            with self._count_lock:
                self._pid, self._requests, self._kill_at = proc.pid, 0, kill_at_request
            out, err = proc.communicate(timeout=300)
            with self._count_lock:
                self._pid = None
        self.last_output = out + err
        return proc.returncode

    def run(self) -> CaseReport:
        """Kill a sync (see :class:`KillPoint`), rerun until converged (at most twice)."""
        rep = self.report
        engine = self.server.engine
        killed_run = 1
        if self.point.later:
            rep.exits.append(self.entra_sync("sync", "--config", str(self.cfg), "-q"))
            self._move_learners()
            killed_run = 2
        if self.point.kind == "outcomes":
            code = self.entra_sync("sync", "--config", str(self.cfg), "-q", kill_after=self.point.n)
        else:
            code = self.entra_sync("sync", "--config", str(self.cfg), "-q", kill_at_request=self.point.n)
        rep.killed = code == -signal.SIGKILL
        rep.exits.append(code)
        settled = self._settled(killed_run)
        for attempt in (1, 2):
            if attempt == 2:  # a scheduled rerun: after the storm (the lag need not have passed)
                storm_left = self.point.storm_start + 60.0 - (self.clock.now() - engine.started)
                self.clock.advance(max(0.0, storm_left))
            rep.exits.append(self.entra_sync("sync", "--config", str(self.cfg), "-q"))
            rep.reruns = attempt
            if not self._graph_findings():
                break
        with engine.lock:
            c = engine.counters
            rep.faults["throttled but applied"] += c.applied_despite_error
            rep.faults["5xx storm answer"] += c.outage_answers
            rep.faults["injected 5xx"] += (
                c.faults - c.applied_despite_error - c.outage_answers - c.malformed_answers
                - rep.faults["dropped connection"] - rep.faults["lost response"]
            )  # fmt: skip
            rep.faults["429 (throttle)"] += c.throttled - c.applied_despite_error
        self._graph_findings(record=True)
        self._check_history(killed_run, settled)
        return rep

    def _move_learners(self) -> None:
        """The export changes within the safety limits: each class loses its first learner and
        gains the first learner of the class half the list away (7A's and 7B's in the small school)."""
        path = self.root / "realsmart-export.json"
        data = json.loads(path.read_text())
        classes = data["classes"]
        learners = [list(c["learnerIds"]) for c in classes]
        for i, c in enumerate(classes):
            other = learners[(i + len(classes) // 2) % len(classes)]
            c["learnerIds"] = learners[i][1:] + [p for p in other if p not in learners[i]][:1]
        path.write_text(json.dumps(data))
        self.desired = render_config(load_config(self.cfg)).desired

    # ---- checks ---------------------------------------------------------------------------------
    def _settled(self, run_id: int) -> list[Any]:
        with History(self.root / "history.sqlite") as h:
            return [c.result for c in h.get_run(run_id).changes if c.result is not None]

    def _graph_findings(self, record: bool = False) -> list[str]:
        """Duplicates, lost memberships and missing/extra objects, comparing Graph with the desired state."""
        with self.server.engine.lock:
            t = self.server.engine.tenant
            upn = {u.id: str(u.props["userPrincipalName"]).lower() for u in t.users.values()}
            objs = {**t.groups, **t.admin_units}
            by_key: dict[str, list[Any]] = {}
            for o in objs.values():
                if o.ext.get(MARKER) is not None:
                    by_key.setdefault(str(o.ext[MARKER]), []).append(o)
            nicks = Counter(
                str(g.props.get("mailNickname")).lower() for g in t.groups.values()
                if "Unified" in (g.props.get("groupTypes") or [])
            )  # fmt: skip
            dups = [f"key {k}: {len(v)} objects" for k, v in sorted(by_key.items()) if len(v) > 1]
            dups += [f"mailNickname {n}: {c} Unified groups" for n, c in sorted(nicks.items()) if c > 1]
            lost: list[str] = []
            wanted = {marker_value(g.key) for g in self.desired.groups} | {
                marker_value(a.key) for a in self.desired.administrative_units
            }
            extra = [f"{k}: managed but not desired" for k in sorted(set(by_key) - wanted)]
            gid: dict[str, str] = {}
            for g in self.desired.groups:
                found = by_key.get(marker_value(g.key), [])
                if not found:
                    lost.append(f"group {g.key}: missing")
                    continue
                gid[g.key] = found[0].id
                for rel, want in (("members", g.members), ("owners", g.owners)):
                    have = {upn.get(m, m) for m in getattr(found[0], rel)}
                    if have != {r.lower() for r in want}:
                        lost.append(f"group {g.key} {rel}: {len({r.lower() for r in want} - have)} "
                                    f"missing, {len(have - {r.lower() for r in want})} extra")
            for a in self.desired.administrative_units:
                found = by_key.get(marker_value(a.key), [])
                if not found:
                    lost.append(f"AU {a.key}: missing")
                    continue
                placed = {gid.get(g.key, g.key) for g in self.desired.groups
                          if a.key in g.administrative_units}  # fmt: skip
                held = {upn.get(m, m) for m in found[0].members}
                due = {r.lower() for r in a.members} | placed
                if held != due:
                    lost.append(f"AU {a.key} members: {len(due - held)} missing, {len(held - due)} extra")
        if record:
            self.report.duplicates, self.report.lost, self.report.extra = dups, lost, extra
        return dups + lost + extra

    def _check_history(self, killed_run: int, settled_at_kill: list[Any]) -> None:
        problems = self.report.history
        with History(self.root / "history.sqlite") as h:
            runs = list(reversed(h.list_runs(100)))
            statuses = [(r.run_id, r.kind, r.status) for r in runs]
            killed = h.get_run(killed_run)
            if self.report.killed:
                if killed.summary.status != "interrupted":
                    problems.append(f"the killed run is {killed.summary.status!r}, not interrupted")
                now = [c.result for c in killed.changes if c.result is not None]
                if now != settled_at_kill:
                    problems.append("the killed run's settled outcomes changed after it was closed")
            if any(s == "running" for _, _, s in statuses):
                problems.append(f"a run is still 'running': {statuses}")
            created = h.created_since(0)
        with self.server.engine.lock:
            t = self.server.engine.tenant
            managed = {o.id for o in [*t.groups.values(), *t.admin_units.values()] if o.ext.get(MARKER)}
        if set(created) - managed:
            problems.append(f"history says created, Graph lacks: {sorted(set(created) - managed)}")
        if managed - set(created):
            problems.append(f"Graph holds, no run recorded creating: {sorted(managed - set(created))}")
