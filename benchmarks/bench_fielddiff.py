"""Benchmark the per-object field diff of updates: the diff's plain comparison against DeepDiff.

    python benchmarks/bench_fielddiff.py [--users 30000] [--groups 6000] [--members 67] [--repeat 5]

Builds the same trust as ``bench_diff.py`` and, for every group and AU present on both sides,
compares the managed fields (displayName, description, visibility) the two ways on the same
inputs: the diff's own comparison (:func:`reconciler.plan.diff._field_changes`) and
``DeepDiff(before, after)`` over the same two field documents. Prints the best of ``--repeat``
runs (wall and CPU) and checks that both find the same changed objects. Run by hand; not part of
the tests. Needs ``deepdiff`` installed (it is not a dependency of the product).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from bench_diff import build

from reconciler.plan.diff import _field_changes
from reconciler.plan.diff_support import AU_FIELDS, GROUP_FIELDS

Pair = tuple[tuple[tuple[str, str], ...], Any, Any]


def best(label: str, fn: Callable[[], int], repeat: int) -> int:
    wall = cpu = float("inf")
    out = 0
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = min(wall, time.perf_counter() - w), min(cpu, time.process_time() - c)
    print(f"{label:<28} {wall * 1000:8.1f} ms wall {cpu * 1000:8.1f} ms CPU  ({out} objects changed)")
    return out


def plain(pairs: list[Pair]) -> int:
    return sum(1 for fields, want, have in pairs if _field_changes(fields, want, have)[1])


def _doc(fields: tuple[tuple[str, str], ...], obj: Any) -> dict[str, Any]:
    doc = {name: getattr(obj, attr) for attr, name in fields}
    if "description" in doc:
        doc["description"] = doc["description"] or None  # as the plain comparison: no empty description
    return doc


def deep(pairs: list[Pair]) -> int:
    from deepdiff import DeepDiff

    return sum(1 for fields, want, have in pairs if DeepDiff(_doc(fields, have), _doc(fields, want)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=30_000)
    p.add_argument("--groups", type=int, default=6_000)
    p.add_argument("--members", type=int, default=67)
    p.add_argument("--change", type=float, default=0.03)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args(argv)
    desired, actual = build(a.users, a.groups, a.members, a.change, a.seed)
    pairs: list[Pair] = [(AU_FIELDS, au, actual.administrative_units[au.key])
                         for au in desired.administrative_units if au.key in actual.administrative_units]
    pairs += [(GROUP_FIELDS, g, actual.groups[g.key]) for g in desired.groups if g.key in actual.groups]
    print(f"{len(pairs)} objects on both sides (the update path)")
    n_plain = best("plain field comparison", lambda: plain(pairs), a.repeat)
    n_deep = best("DeepDiff per object", lambda: deep(pairs), a.repeat)
    if n_plain != n_deep:
        print(f"the two disagree: {n_plain} vs {n_deep}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
