"""A whole first sync and a no-change repeat run of a synthetic trust, through the real provider on
the Graph emulator (virtual clock): wall time, simulated Graph time, requests, writes, 429s.

    python benchmarks/bench_sync.py [--schools 10] [--learners 1500] [--classes 120] [--profile realistic]
        [--served [--save-interval 1.0]]

``--served`` runs the same sync over HTTP against ``EmulatorServer`` on 127.0.0.1 with a tenant
file (as ``entra-sync emulator serve`` does); ``--save-interval 0`` saves after every write.
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from pathlib import Path

import httpx

from providers.emulator import EmulatorTransport, Profile, Tenant
from providers.emulator.server import EmulatorServer
from providers.entra.client import GraphClient
from providers.entra.directory import EntraDirectory
from providers.entra.marker import ensure_marker
from reconciler.apply.executor import apply
from reconciler.clock import VirtualClock
from reconciler.model import AdministrativeUnit, DesiredState, EducationClass, Group, Team
from reconciler.plan.diff import diff

APP = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def trust(schools: int, learners: int, classes: int, rng: random.Random) -> tuple[list[str], DesiredState]:
    people: list[str] = []
    aus: list[AdministrativeUnit] = []
    groups: list[Group] = []
    for s in range(schools):
        kids = [f"l{s}-{n}@trust.example" for n in range(learners)]
        staff = [f"t{s}-{n}@trust.example" for n in range(max(10, learners // 15))]
        people += kids + staff
        aus.append(AdministrativeUnit(f"au:S{s}:learners", f"School {s} - Learners", None, frozenset(kids)))
        aus.append(AdministrativeUnit(f"au:S{s}:mentors", f"School {s} - Mentors", None, frozenset(staff)))
        for y in range(7, 12):
            year = frozenset(k for i, k in enumerate(kids) if i % 5 == y - 7)
            aus.append(AdministrativeUnit(f"au:S{s}:year-{y}", f"School {s} - Year {y}", None, year))
        for c in range(classes):
            members = frozenset(rng.sample(kids, 28))
            teacher = rng.choice(staff)
            groups.append(
                Group(
                    f"class:S{s}:2026-27:C{c}",
                    f"S{s} Class {c}",
                    f"s{s}-c{c}-2026-27",
                    owners=frozenset({teacher}),
                    members=members | {teacher},
                    visibility="HiddenMembership",
                    education=EducationClass(f"class:S{s}:2026-27:C{c}", f"C{c}", f"Class {c}", "2026-27"),
                )
            )
    teams = [Team("team:" + g.key, g.key, "educationClass") for g in groups]
    return people, DesiredState(administrative_units=tuple(aus), groups=tuple(groups), teams=tuple(teams))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--schools", type=int, default=10)
    ap.add_argument("--learners", type=int, default=1500)
    ap.add_argument("--classes", type=int, default=120)
    ap.add_argument("--profile", choices=("ideal", "realistic", "strict"), default="realistic")
    ap.add_argument("--catch-up-minutes", type=float, default=20.0,
                    help="minutes between the first run and the catch-up run for deferred Teams")
    ap.add_argument("--served", action="store_true", help="over HTTP against EmulatorServer")
    ap.add_argument("--save-interval", type=float, default=1.0, help="served: seconds between saves")
    args = ap.parse_args()

    rng = random.Random(1)
    people, desired = trust(args.schools, args.learners, args.classes, rng)
    clock = VirtualClock()
    tenant = Tenant(seed=1, clock=clock)
    for ref in people:
        tenant.add_user(ref)
    profiles = {"realistic": Profile.realistic, "strict": Profile.strict}
    profile = profiles[args.profile](seed=1) if args.profile in profiles else Profile.ideal()
    server: EmulatorServer | None = None
    if args.served:
        state = Path(tempfile.mkdtemp(prefix="bench-sync-")) / "tenant.json"
        tenant.save(state)
        server = EmulatorServer(
            tenant, port=0, state_path=state, profile=profile, clock=clock, save_interval=args.save_interval
        )
        server.start()
        counters = server.engine.counters
        http = httpx.Client(base_url=server.url, headers={"Authorization": "Bearer b"}, timeout=60)
    else:
        transport = EmulatorTransport(tenant, clock=clock, profile=profile)
        counters = transport.counters
        http = httpx.Client(
            transport=transport,
            base_url="https://graph.microsoft.com/v1.0",
            headers={"Authorization": "Bearer b"},
        )
    client = GraphClient(http, clock=clock, rng=random.Random(2))
    ensure_marker(client, APP)
    d = EntraDirectory.for_app(client, APP)
    memberships = sum(len(g.members) for g in desired.groups) + sum(
        len(a.members) for a in desired.administrative_units
    )
    print(
        f"trust: {args.schools} schools, {len(people)} users, {len(desired.groups)} groups, "
        f"{len(desired.administrative_units)} AUs, {len(desired.teams)} Teams, {memberships} memberships; "
        f"profile {args.profile}; "
        + (f"served over HTTP, save interval {args.save_interval:g} s" if server else "in-process transport")
    )

    for run in (1, 2, 3):
        counters.reset()
        saves0 = server.saves if server else 0
        v0, w0 = clock.now(), time.perf_counter()
        actual = d.read(desired)
        plan = diff(desired, actual)
        result = apply(plan, d, actual, max_workers=4)
        wall, virtual = time.perf_counter() - w0, clock.now() - v0
        c = counters
        saved = f", tenant saves {server.saves - saves0}" if server else ""
        print(
            f"run {run}: {len(plan.changes)} changes ({result.summary_text()}) "
            f"wall {wall:.1f} s, simulated Graph {virtual / 60:.1f} min, requests {c.total_requests}, "
            f"writes {c.writes}, 429s {c.throttled}, faults {c.faults}, "
            f"POST /teams {c.requests.get(('POST', '/teams'), 0)}, welcome emails {c.welcome_emails}{saved}"
        )
        # the catch-up run for deferred Teams, then the next scheduled run
        clock.advance(args.catch_up_minutes * 60 if run == 1 else 4 * 3600)
    if server is not None:
        w0 = time.perf_counter()
        server.stop()
        print(f"final save on stop: {time.perf_counter() - w0:.2f} s, {server.saves} saves in all")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (maxrss): {rss:.0f} MiB")


if __name__ == "__main__":
    main()
