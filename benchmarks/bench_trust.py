"""The 30-school trust, side by side: first sync, the run after it, a no-change run and a day-2
run, through the real provider on the emulator's quota profile (Graph's documented limits, virtual
clock), with delta reads kept in a run store; and the naive one-request-per-membership baseline.

    python benchmarks/bench_trust.py [--schools 30] [--learners 1500] [--classes 300]
        [--profile quota|ideal|realistic] [--no-delta]

The quota profile also refuses member binds to a group younger than 3 s (400), as Graph does.
Figures per run: Graph requests (inner ``$batch`` requests counted one by one), HTTP calls, 429s,
400/404 answers,
writes against the minimum the plan needs, simulated Graph time against the quota bound, wall time,
peak memory (maxrss, whole process). The naive baseline is computed from the same plans: a full
read every run (measured once) plus one request per membership, owner, placement and object, with
no ``$batch``; it is not run (at 20 writes/s it would take days of simulated time).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_render import export

from entra_sync.config.load import loads_config
from entra_sync.store.delta import SqlDeltaStore
from providers.emulator import EmulatorTransport, Profile, Tenant
from providers.entra.client import GraphClient
from providers.entra.delta import DeltaPolicy
from providers.entra.directory import EntraDirectory
from providers.entra.marker import ensure_marker
from providers.sources import read_source
from reconciler.apply.executor import apply
from reconciler.clock import VirtualClock
from reconciler.generate.generator import generate
from reconciler.model import DesiredState
from reconciler.plan.diff import diff
from reconciler.plan.model import Plan

APP = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
#: Graph's quotas (graph-facts §3, §5) as token buckets that start full: (capacity, per second) for
#: writes per app and tenant, resource units (large tenant), Team creations (POST /teams, 10/s)
WRITES = (3000, 3000 / 150)
RU = (8000, 8000 / 10)
TEAMS = (10, 10)
#: changes applied at once (their requests are packed together, 20 to a $batch)
WORKERS = 100


def desired_state(schools: int, learners: int, classes: int) -> DesiredState:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.json"
        path.write_text(json.dumps(export(schools, learners, classes)))
        text = f'[sync]\nteams = true\n[source]\nkind = "realsmart"\npath = "{path}"\n'
        cfg = loads_config(text, file=Path(tmp) / "c.toml")
        return generate(read_source("realsmart", path), cfg).desired


def day_two(desired: DesiredState, rng: random.Random) -> tuple[DesiredState, list[str]]:
    """A school day's changes: 2% of class groups swap two learners, 60 learners join the trust
    (placed in a class each) and 30 leave (out of every group and unit)."""
    people = sorted({m for g in desired.groups for m in g.members})
    leavers = set(rng.sample(people, 30))
    joiners = [f"new-{n}@trust.example" for n in range(60)]
    groups = []
    for i, g in enumerate(desired.groups):
        members = set(g.members) - leavers
        if rng.random() < 0.02 and len(members) > 2:
            out = rng.sample(sorted(members - g.owners), 2)
            members -= set(out)
            members |= set(rng.sample(people, 2)) - leavers
        if i < len(joiners) and g.key.startswith("class:"):
            members.add(joiners[i])
        groups.append(replace(g, members=frozenset(members)))
    aus = [replace(a, members=frozenset(set(a.members) - leavers)) for a in desired.administrative_units]
    return replace(desired, groups=tuple(groups), administrative_units=tuple(aus)), joiners


def minimum_writes(plan: Plan) -> int:
    """The fewest write requests Graph allows for the plan: a create binds up to 20 relationships,
    member adds go 20 to a PATCH; removals, owner adds, AU members and placements one by one. An
    education class binds nothing at creation (``POST /education/classes``): its marker is one
    PATCH, each teacher one ``$ref``, its members 20 to a PATCH. (A Team deferred because its group
    is too young sends nothing: the caller takes those off.)"""
    n = 0
    for c in plan.changes:
        after = c.after or {}
        if c.action == "create" and c.kind == "group" and after.get("education"):
            n += 2 + len(after.get("owners", ())) + math.ceil(len(after.get("members", ())) / 20)
        elif c.action == "create" and c.kind == "group":
            binds = len(after.get("owners", ())) + len(after.get("members", ()))
            extra_members = max(0, binds - 20)
            n += 1 + math.ceil(extra_members / 20)
        elif c.action == "create" and c.kind == "administrativeUnit":
            n += 1 + len(after.get("members", ()))
        elif c.action == "add" and c.kind == "groupMembers":
            n += math.ceil(len(c.members) / 20)
        elif c.action in ("add", "remove"):
            n += len(c.members)
        else:
            n += 1
    return n


def naive_requests(plan: Plan) -> int:
    """One request per object, membership, owner and placement (no binds, no ``$batch``)."""
    n = 0
    for c in plan.changes:
        after = c.after or {}
        if c.action == "create" and c.kind in ("group", "administrativeUnit"):
            n += 1 + len(after.get("owners", ())) + len(after.get("members", ()))
        elif c.action in ("add", "remove"):
            n += len(c.members)
        else:
            n += 1
    return n


@dataclass
class Run:
    name: str
    changes: int
    failed: int
    requests: int
    http_calls: int
    throttled: int
    refused: int
    writes: int
    min_writes: int
    simulated: float
    bound: float
    wall: float
    rss_mib: float
    read: str
    naive: int


def _bound(writes: int, ru: int, teams: int) -> float:
    """The least simulated time the quotas allow: what exceeds each full bucket, at its refill rate."""
    return max(max(0, n - cap) / rate for n, (cap, rate) in ((writes, WRITES), (ru, RU), (teams, TEAMS)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--schools", type=int, default=30)
    ap.add_argument("--learners", type=int, default=1500)
    ap.add_argument("--classes", type=int, default=300)
    ap.add_argument("--profile", choices=("quota", "ideal", "realistic"), default="quota")
    ap.add_argument("--no-delta", action="store_true", help="every read full (as before delta reads)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    t0 = time.perf_counter()
    desired = desired_state(args.schools, args.learners, args.classes)
    second, joiners = day_two(desired, random.Random(5))
    print(f"generated in {time.perf_counter() - t0:.1f} s", flush=True)
    clock = VirtualClock()
    tenant = Tenant(seed=1, clock=clock)
    refs = {r for a in desired.administrative_units for r in a.members}
    refs |= {r for g in desired.groups for r in g.members | g.owners}
    for ref in sorted(refs):
        tenant.add_user(ref)
    profile = {"quota": Profile.quota, "ideal": lambda seed: Profile.ideal(),
               "realistic": Profile.realistic}[args.profile](1)  # fmt: skip
    transport = EmulatorTransport(tenant, clock=clock, profile=profile)
    counters = transport.counters
    http = httpx.Client(transport=transport, base_url="https://graph.microsoft.com/v1.0",
                        headers={"Authorization": "Bearer b"})  # fmt: skip
    client = GraphClient(http, clock=clock, rng=random.Random(2))
    ensure_marker(client, APP)
    tmp = Path(tempfile.mkdtemp(prefix="bench-trust-"))
    store = None if args.no_delta else SqlDeltaStore(tmp / "history.db", clock=clock)
    memberships = sum(len(g.members) + len(g.owners) for g in desired.groups) + sum(
        len(a.members) for a in desired.administrative_units)
    print(f"trust: {args.schools} schools, {len(refs)} people, {len(desired.groups)} groups, "
          f"{len(desired.administrative_units)} AUs, {len(desired.teams)} Teams, {memberships} memberships; "
          f"profile {args.profile}; delta reads {'off' if store is None else 'on'}", flush=True)  # fmt: skip

    runs: list[Run] = []
    full_read_cost = 0
    plan_of: dict[str, Plan] = {}
    for name, target in (("first sync", desired), ("after first sync", desired), ("no change", desired),
                         ("day 2", second)):  # fmt: skip
        if name == "day 2":
            for ref in joiners:
                tenant.add_user(ref)
        policy = None if store is None else DeltaPolicy(store, "bench", clock)
        d = EntraDirectory.for_app(client, APP, delta=policy)
        counters.reset()
        v0, w0 = clock.now(), time.perf_counter()
        actual = d.read(target)
        plan = diff(target, actual)
        result = apply(plan, d, actual, max_workers=WORKERS)
        d.flush_notes()
        wall, simulated = time.perf_counter() - w0, clock.now() - v0
        plan_of[name] = plan
        c = counters
        teams = sum(1 for ch in plan.changes if ch.kind == "team" and ch.action == "create")
        requests = c.total_requests - c.batch_calls
        runs.append(Run(
            name, len(plan.changes), result.counts["failed"] + result.counts.get("partial", 0), requests,
            c.total_requests - c.batch_items, c.throttled, c.statuses[400] + c.statuses[404], c.writes,
            minimum_writes(plan) - result.counts.get("deferred", 0), simulated,
            _bound(c.writes, c.resource_units, teams), wall,
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            d.last_read[0] if d.last_read else "?", 0,
        ))  # fmt: skip
        print(f"{name}: {runs[-1]}", flush=True)
        clock.advance(4 * 3600)
        if name == "first sync":  # what every run's read cost before delta reads
            counters.reset()
            EntraDirectory.for_app(client, APP).read(desired)
            full_read_cost = counters.total_requests - counters.batch_calls
            print(f"a full read of the synced tenant: {full_read_cost:,} Graph requests, "
                  f"{counters.total_requests - counters.batch_items:,} HTTP calls", flush=True)
            clock.advance(600)
    for r in runs:
        r.naive = full_read_cost + naive_requests(plan_of[r.name])
    table = _table(runs)
    print(table)
    if args.json:
        args.json.write_text(json.dumps([vars(r) for r in runs], indent=1))


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / max(whole, 1):.2f}%"


def _table(runs: list[Run]) -> str:
    head = ("| | " + " | ".join(r.name for r in runs) + " |\n|---|" + "---:|" * len(runs) + "\n")
    rows: list[tuple[str, Any]] = [
        ("read", lambda r: r.read),
        ("changes planned (failed)", lambda r: f"{r.changes:,} ({r.failed})"),
        ("Graph requests", lambda r: f"{r.requests:,}"),
        ("HTTP calls", lambda r: f"{r.http_calls:,}"),
        ("HTTP calls / requests", lambda r: f"{r.http_calls / max(r.requests, 1):.3f}"),
        ("429s (% of requests)", lambda r: f"{r.throttled:,} ({_pct(r.throttled, r.requests)})"),
        ("400/404 answers (new-group lag and others)", lambda r: f"{r.refused:,}"),
        ("writes / minimum", lambda r: f"{r.writes:,} / {r.min_writes:,}"),
        ("requests / (writes + 50)", lambda r: f"{r.requests / (r.writes + 50):.2f}"),
        ("simulated Graph time", lambda r: f"{r.simulated / 60:.1f} min"),
        ("quota bound", lambda r: f"{r.bound / 60:.1f} min"),
        ("simulated / quota bound", lambda r: f"{r.simulated / r.bound:.2f}" if r.bound else "-"),
        ("wall time", lambda r: f"{r.wall:.1f} s"),
        ("peak memory (process)", lambda r: f"{r.rss_mib:.0f} MiB"),
        ("naive baseline: requests = HTTP calls", lambda r: f"{r.naive:,}"),
    ]
    return head + "".join(f"| {label} | " + " | ".join(f(r) for r in runs) + " |\n" for label, f in rows)


if __name__ == "__main__":
    main()
