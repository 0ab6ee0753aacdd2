"""Benchmark: EntraDirectory.read() of a large school trust through the Graph emulator.

    /work/venv/bin/python benchmarks/bench_read.py [--users 20000] [--groups 2000] [--members 30]
        [--aus 20] [--profile ideal|realistic] [--in-flight 4] [--seed 1]

Builds a tenant whose groups and AUs carry the ownership marker (plus as many unmanaged groups),
then reads it the way the product does (users index, paged lists, first member/owner pages through
``$batch``, Teams) and prints wall time, simulated Graph time on the virtual clock (throttling
waits and latency), request counts and peak memory. Run by hand; not part of the tests.
"""

from __future__ import annotations

import argparse
import random
import resource
import time

import httpx

from providers.emulator import EmulatorTransport, Profile, Tenant
from providers.entra.client import GraphClient
from providers.entra.directory import EntraDirectory
from providers.entra.marker import MARKER_PROPERTY, marker_name
from reconciler.clock import VirtualClock

APP = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def build(args: argparse.Namespace, clock: VirtualClock) -> Tenant:
    rng = random.Random(args.seed)
    tenant = Tenant(seed=args.seed, clock=clock)
    marker = tenant.register_extension(APP, MARKER_PROPERTY)
    uids = [tenant.add_user(f"user{i:06d}@trust.example", f"User {i}") for i in range(args.users)]
    for i in range(args.groups):
        gid = tenant.add_group(f"Class {i}", mail_nickname=f"class-{i}", owners=[rng.choice(uids)],
                               members=rng.sample(uids, args.members), extensions={marker: f"class:{i}"})
        tenant.add_group(f"Club {i}", mail_nickname=f"club-{i}", members=rng.sample(uids, 5))
        if i % 5:
            tenant.add_team(gid)
    step = max(1, args.users // max(1, args.aus))
    for a in range(args.aus):
        tenant.add_admin_unit(f"AU {a}", members=uids[a * step:(a + 1) * step],
                              extensions={marker: f"au:{a}"})
    return tenant


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--users", type=int, default=20000)
    p.add_argument("--groups", type=int, default=2000)
    p.add_argument("--members", type=int, default=30)
    p.add_argument("--aus", type=int, default=20)
    p.add_argument("--profile", choices=("ideal", "realistic"), default="realistic")
    p.add_argument("--in-flight", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()

    clock = VirtualClock()
    t0 = time.perf_counter()
    tenant = build(args, clock)
    print(f"build tenant               {time.perf_counter() - t0:8.2f} s")

    profile = Profile.realistic(seed=args.seed) if args.profile == "realistic" else Profile.ideal()
    transport = EmulatorTransport(tenant, clock=clock, profile=profile)
    http = httpx.Client(transport=transport, base_url="https://graph.microsoft.com/v1.0",
                        headers={"Authorization": "Bearer bench"})
    client = GraphClient(http, clock=clock, max_in_flight=args.in_flight, rng=random.Random(args.seed))
    directory = EntraDirectory(client, marker_name(APP), clock=clock)

    v0, t0 = clock.now(), time.perf_counter()
    state = directory.read()
    wall = time.perf_counter() - t0
    memberships = sum(len(g.members) + len(g.owners) for g in state.groups.values())
    memberships += sum(len(a.members) for a in state.administrative_units.values())
    c = transport.counters
    print(f"read (wall)                {wall:8.2f} s")
    print(f"read (simulated Graph)     {clock.now() - v0:8.1f} s")
    counts = f"{len(state.groups)}/{len(state.administrative_units)}/{len(state.teams)}"
    print(f"managed groups/AUs/teams   {counts}")
    print(f"memberships read           {memberships}")
    print(f"requests / $batch calls    {c.total_requests} / {c.batch_calls} (items {c.batch_items})")
    print(f"resource units charged     {c.resource_units}")
    print(f"429s / injected faults     {c.throttled} / {c.faults}")
    print(f"peak memory                {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:8.0f} MiB")


if __name__ == "__main__":
    main()
