"""Benchmark the pure plan path on a large trust: diff(), fingerprint, renderings, JSON.

    /work/venv/bin/python benchmarks/bench_diff.py [--users 50000] [--groups 5000] [--members 80]
        [--change 0.03] [--seed 1]

Builds an actual state (groups with ``--members`` members each, year-group AUs holding every
user, a Team for 80% of the groups) and a desired state that differs from it by about
``--change`` (members swapped, groups renamed, created and deleted), then times each step and
prints the figures and the process's peak memory (maxrss). Run by hand; not part of the tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import resource
import sys
import time
from collections.abc import Callable
from typing import TypeVar

from reconciler.model import ActualState, AdministrativeUnit, DesiredState, Group, Team
from reconciler.plan.diff import diff
from reconciler.plan.fingerprint import fingerprint
from reconciler.plan.safety import SafetyLimits, check
from reconciler.render.markdown import render_markdown
from reconciler.render.text import render_text

T = TypeVar("T")


def timed(label: str, fn: Callable[[], T]) -> T:
    start = time.perf_counter()
    out = fn()
    print(f"{label:<28} {time.perf_counter() - start:8.3f} s")
    return out


def build(
    users: int, groups: int, members: int, change: float, seed: int
) -> tuple[DesiredState, ActualState]:
    rng = random.Random(seed)
    refs = [f"user{i:06}@trust.example" for i in range(users)]
    index = {r: f"{i:08x}-0000-4000-8000-000000000000" for i, r in enumerate(refs)}
    years = 7
    aus = [AdministrativeUnit(f"au:T:year-{y}", f"Year {y}", None, frozenset(refs[y::years]))
           for y in range(years)]
    actual_groups = []
    for i in range(groups):
        year = i % years
        pool = refs[year::years]
        actual_groups.append(Group(
            f"class:T:2026-27:{i:05}", f"Class {i}", f"t-2627-c{i:05}", owners=frozenset({rng.choice(refs)}),
            members=frozenset(rng.sample(pool, members)), administrative_units=frozenset({aus[year].key})))
    teams = [Team("team:" + g.key, g.key) for g in actual_groups[: int(groups * 0.8)]]
    ids = {o.key: f"obj-{n:08}" for n, o in enumerate([*aus, *actual_groups])}
    ids.update({t.key: ids[t.group] for t in teams})
    actual = ActualState({a.key: a for a in aus}, {g.key: g for g in actual_groups},
                         {t.group: t for t in teams}, ids, index)

    desired_groups = []
    for g in actual_groups:
        r = rng.random()
        if r < change / 3:  # swap a few members
            gone = set(rng.sample(sorted(g.members), 3))
            g = dataclasses.replace(g, members=(g.members - gone) | set(rng.sample(refs, 3)))
        elif r < change / 2:
            g = dataclasses.replace(g, display_name=g.display_name + " (renamed)")
        elif r < change * 2 / 3:
            continue  # deleted
        desired_groups.append(g)
    for i in range(int(groups * change / 3)):  # new groups
        desired_groups.append(Group(f"class:T:2026-27:n{i:05}", f"New class {i}", f"t-2627-n{i:05}",
                                    owners=frozenset({rng.choice(refs)}),
                                    members=frozenset(rng.sample(refs, members)),
                                    administrative_units=frozenset({aus[0].key})))
    wanted = {g.key for g in desired_groups}
    desired_teams = [t for t in teams if t.group in wanted]
    desired = DesiredState(tuple(aus), tuple(desired_groups), tuple(desired_teams))
    return desired, actual


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=50_000)
    p.add_argument("--groups", type=int, default=5_000)
    p.add_argument("--members", type=int, default=80)
    p.add_argument("--change", type=float, default=0.03)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    desired, actual = timed("build states", lambda: build(a.users, a.groups, a.members, a.change, a.seed))
    memberships = sum(len(g.members) for g in actual.groups.values())
    au_memberships = sum(len(x.members) for x in actual.administrative_units.values())
    print(f"trust: {a.users} users, {len(actual.groups)} groups, {memberships} group memberships, "
          f"{au_memberships} AU memberships, {len(actual.teams)} Teams")
    plan = timed("diff (incl. fingerprint)", lambda: diff(desired, actual))
    timed("fingerprint alone", lambda: fingerprint(actual))
    timed("safety check", lambda: check(plan, desired, actual, SafetyLimits()))
    text = timed("render_text", lambda: render_text(plan))
    timed("render_markdown", lambda: render_markdown(plan))
    js = timed("to_json", plan.to_json)
    print(f"plan: {len(plan.changes)} changes, {len(plan.warnings)} warnings; "
          f"text {len(text) // 1024} KiB, JSON {len(js) // 1024} KiB")
    print(text.splitlines()[-1])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak memory (maxrss): {peak / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
