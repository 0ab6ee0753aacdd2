"""Benchmark: the GraphClient against the emulator on a virtual clock, ideal and realistic profiles.

1. page a tenant of N users ($top=999) through ``get_all``;
2. add M memberships through ``batch`` (POST .../members/$ref, 20 per $batch, up to 4 in flight)
   with the emulator's throttling, 429s, 5xx and dropped connections switched on.

Run: /work/venv/bin/python benchmarks/bench_client.py [--users N --members M --seed S]
Prints wall time, simulated (virtual) time, requests, 429s and failures per phase.
"""

from __future__ import annotations

import argparse
import logging
import random
import time
from collections import Counter

from providers.emulator import EmulatorTransport, Profile, Tenant
from providers.entra.batch import BatchRequest
from providers.entra.connect import ConnectionSettings, open_graph
from reconciler.clock import VirtualClock

GRAPH = "https://graph.microsoft.com/v1.0"


def run(users: int, members: int, profile: Profile, seed: int) -> None:
    tenant = Tenant(seed=seed)
    uids = [tenant.add_user(f"user{i:06d}@oak.example") for i in range(users)]
    gids = [tenant.add_group(f"Class {g}", mail_nickname=f"class{g}") for g in range(max(1, members // 500))]
    clock = VirtualClock()
    transport = EmulatorTransport(tenant, clock=clock, profile=profile)
    settings = ConnectionSettings.from_env(
        {"ENTRA_SYNC_ACCESS_TOKEN": "bench", "ENTRA_SYNC_GRAPH_URL": GRAPH}
    )
    with open_graph(settings, clock=clock, transport=transport, rng=random.Random(seed)) as client:
        t0, v0 = time.perf_counter(), clock.now()
        got = client.get_all("/users", params={"$select": "id,userPrincipalName", "$top": 999})
        t1, v1 = time.perf_counter(), clock.now()
        assert len(got) == users, len(got)
        print(
            f"  page {users} users: {t1 - t0:.2f} s wall, {v1 - v0:.1f} s virtual, "
            f"{transport.counters.total_requests} requests"
        )
        transport.counters.reset()
        rng = random.Random(seed)
        reqs = [
            BatchRequest(
                "POST",
                f"/groups/{gids[i % len(gids)]}/members/$ref",
                {"@odata.id": f"{GRAPH}/directoryObjects/{uid}"},
            )
            for i, uid in enumerate(rng.sample(uids, min(members, users)))
        ]
        t0, v0 = time.perf_counter(), clock.now()
        results = client.batch(reqs)
        t1, v1 = time.perf_counter(), clock.now()
        statuses = Counter(r.status for r in results)
        c = transport.counters
        print(
            f"  add {len(reqs)} members: {t1 - t0:.2f} s wall, {v1 - v0:.1f} s virtual, "
            f"{c.batch_calls} $batch calls, {c.throttled} x 429, {c.faults} faults, results {dict(statuses)}"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--members", type=int, default=5_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name, profile in (("ideal", Profile.ideal()), ("realistic", Profile.realistic(seed=args.seed))):
        print(f"{name}:")
        run(args.users, args.members, profile, args.seed)


if __name__ == "__main__":
    main()
