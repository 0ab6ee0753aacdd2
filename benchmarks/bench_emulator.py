"""Benchmark: a 50,000-user tenant with 5,000 groups and 400,000 memberships, paged through the
httpx transport the way the product reads it ($top=999, following @odata.nextLink).

Run: /work/venv/bin/python benchmarks/bench_emulator.py [--users N --groups N --memberships N]
Prints build time, paging time, request counts and peak memory (ru_maxrss).
"""

from __future__ import annotations

import argparse
import random
import resource
import time
from pathlib import Path

import httpx

from providers.emulator import EmulatorTransport, Profile, Tenant
from reconciler.clock import VirtualClock

GRAPH = "https://graph.microsoft.com/v1.0"


def build(users: int, groups: int, memberships: int, seed: int = 1) -> tuple[Tenant, list[str]]:
    rng = random.Random(seed)
    tenant = Tenant(seed=seed)
    uids = [tenant.add_user(f"user{i:06d}@oak.example", f"User {i}", None, f"E{i:06d}") for i in range(users)]
    per_group = memberships // groups
    gids = []
    for g in range(groups):
        gid = tenant.add_group(f"Class {g:05d}", mail_nickname=f"class{g:05d}", owners=[uids[g % users]])
        for uid in rng.sample(uids, per_group):
            tenant.add_member(gid, uid)
        gids.append(gid)
    return tenant, gids


def page_all(http: httpx.Client, url: str) -> tuple[int, int]:
    items = pages = 0
    next_url: str | None = url
    while next_url:
        r = http.get(next_url)
        r.raise_for_status()
        body = r.json()
        items += len(body["value"])
        pages += 1
        next_url = body.get("@odata.nextLink")
    return items, pages


def write_phase(http: httpx.Client, tenant: Tenant, groups: int) -> int:
    """Create ``groups`` groups and bind 80 members to each through ``$batch``; returns HTTP calls."""
    users = tenant.sorted_ids("user")
    calls = 0
    patches = []
    for g in range(groups):
        body = {
            "displayName": f"Bench {g}",
            "mailEnabled": True,
            "mailNickname": f"bench{g:05d}",
            "securityEnabled": False,
            "groupTypes": ["Unified"],
            "owners@odata.bind": [f"{GRAPH}/users/{users[g % len(users)]}"],
        }
        r = http.post("/groups", json=body)
        calls += 1
        r.raise_for_status()
        gid = r.json()["id"]
        members = [users[(g * 80 + i) % len(users)] for i in range(80)]
        for k in range(0, 80, 20):
            binds = [f"{GRAPH}/directoryObjects/{m}" for m in members[k : k + 20]]
            patches.append(
                {
                    "id": str(len(patches) % 20),
                    "method": "PATCH",
                    "url": f"/groups/{gid}",
                    "headers": {"Content-Type": "application/json"},
                    "body": {"members@odata.bind": binds},
                }
            )
    for i in range(0, len(patches), 20):
        chunk = [dict(p, id=str(j)) for j, p in enumerate(patches[i : i + 20])]
        r = http.post("/$batch", json={"requests": chunk})
        calls += 1
        bad = [x for x in r.json()["responses"] if x["status"] != 204]
        if bad:
            raise SystemExit(f"batch item failed: {bad[0]}")
    return calls


def page_delta(http: httpx.Client, url: str) -> tuple[int, int]:
    items = pages = 0
    next_url: str | None = url
    while next_url:
        body = http.get(next_url).json()
        items += len(body["value"])
        pages += 1
        next_url = body.get("@odata.nextLink")
    return items, pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--groups", type=int, default=5_000)
    parser.add_argument("--memberships", type=int, default=400_000)
    parser.add_argument("--save", type=Path, help="also time save/load of the tenant JSON to this path")
    parser.add_argument(
        "--writes",
        type=int,
        default=500,
        help="then create this many groups (POST) and fill each with 80 members "
        "(PATCH members@odata.bind x20, sent in $batch calls of 20)",
    )
    args = parser.parse_args()

    t0 = time.perf_counter()
    tenant, gids = build(args.users, args.groups, args.memberships)
    t_build = time.perf_counter() - t0
    summary = (
        f"tenant: {len(tenant.users)} users, {len(tenant.groups)} groups, "
        f"{sum(len(g.members) for g in tenant.groups.values())} memberships"
    )

    transport = EmulatorTransport(tenant, clock=VirtualClock(), profile=Profile.ideal())
    http = httpx.Client(transport=transport, base_url=GRAPH, headers={"Authorization": "Bearer bench"})
    t1 = time.perf_counter()
    users, user_pages = page_all(http, "/users?$top=999&$select=id,userPrincipalName,employeeId")
    t_users = time.perf_counter() - t1
    t2 = time.perf_counter()
    groups, _ = page_all(http, "/groups?$top=999&$select=id,displayName")
    members = member_pages = 0
    for gid in gids:
        n, p = page_all(http, f"/groups/{gid}/members?$top=999&$select=id")
        members += n
        member_pages += p
    t_groups = time.perf_counter() - t2
    t6 = time.perf_counter()
    delta_items, delta_pages = page_delta(http, "/groups/delta?$select=displayName,members")
    t_delta = time.perf_counter() - t6

    write_line = ""
    if args.writes:
        t5 = time.perf_counter()
        n_req = write_phase(http, tenant, args.writes)
        t_writes = time.perf_counter() - t5
        write_line = (
            f"writes: {args.writes} groups created and {args.writes * 80} memberships added in "
            f"{n_req} HTTP calls, {t_writes:.2f} s\n"
        )

    save_line = ""
    if args.save:
        t3 = time.perf_counter()
        tenant.save(args.save)
        t_save = time.perf_counter() - t3
        t4 = time.perf_counter()
        Tenant.load(args.save)
        t_load = time.perf_counter() - t4
        size = args.save.stat().st_size / 1e6
        save_line = f"save {t_save:.2f} s, load {t_load:.2f} s, file {size:.1f} MB\n"

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    snap = transport.counters.snapshot()
    print(
        f"{summary}\n"
        f"build (load) {t_build:.2f} s\n"
        f"page users: {users} users in {user_pages} pages, {t_users:.2f} s\n"
        f"page groups + members: {groups} groups, {members} members in {member_pages} member pages, "
        f"{t_groups:.2f} s\n"
        f"total paging {t_users + t_groups:.2f} s; total {t_build + t_users + t_groups:.2f} s\n"
        f"groups delta full sync: {delta_items} groups in {delta_pages} pages, {t_delta:.2f} s\n"
        f"requests (all phases) {snap['total_requests']}, resource units {snap['resource_units']}\n"
        f"{write_line}"
        f"{save_line}"
        f"peak RSS {peak_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
