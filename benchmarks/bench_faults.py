"""Benchmark: the fault campaign of issue 11, bigger than the one in the test suite.

Each kill point is one school (``--classes`` classes, ``--mentor-groups`` mentor groups of the
example export's first school) synced for the first time to an emulator served over loopback, with
the realistic profile plus 3 % throttled-but-applied writes, a 20 s read lag, 2 % lost write
responses and a 5xx storm (see ``tests/fault_campaign.py``); the ``entra-sync sync`` subprocess is
killed with SIGKILL at the point (after N settled outcomes, or as Graph takes its Nth request;
drawn by ``random.Random(--seed)``), then synced again until Graph matches (at most twice).

Run: python benchmarks/bench_faults.py [--points 40 --seed 2026 --classes 12 --mentor-groups 4]
Prints runs, kill points, faults injected by type, duplicates, lost memberships, history mismatches
and the reruns needed; exits 1 if any kill point did not converge cleanly.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fault_campaign import Case, CaseReport, kill_points


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=40)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--classes", type=int, default=12)
    ap.add_argument("--mentor-groups", type=int, default=4)
    ap.add_argument("--max-outcomes", type=int, default=40, help="kill after 1..N settled outcomes")
    ap.add_argument("--max-requests", type=int, default=60, help="kill at Graph request 1..N")
    args = ap.parse_args()
    for name in [n for n in os.environ if n.startswith(("ENTRA_SYNC_", "AZURE_"))]:
        del os.environ[name]
    points = kill_points(args.points, args.seed, args.max_outcomes, args.max_requests)
    reports: list[CaseReport] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        for i, point in enumerate(points):
            with Case(Path(tmp) / f"case{i}", point, classes=args.classes,
                      mentor_groups=args.mentor_groups) as case:  # fmt: skip
                rep = case.run()
            reports.append(rep)
            state = "ok" if rep.ok else "FAILED"
            print(f"{i + 1:3d} {point!s:32} killed={rep.killed!s:5} reruns={rep.reruns} "
                  f"exits={rep.exits} {state}")
            for problem in rep.duplicates + rep.lost + rep.extra + rep.history:
                print(f"      {problem}")
    faults: Counter[str] = Counter()
    for rep in reports:
        faults.update(rep.faults)
    killed = sum(r.killed for r in reports)
    print()
    print(f"kill points: {len(points)} ({killed} killed: "
          f"{sum(p.kind == 'outcomes' for p in points)} after N outcomes, "
          f"{sum(p.kind == 'requests' for p in points)} at Graph request N), seed {args.seed}")
    print(f"school: {args.classes} classes, {args.mentor_groups} mentor groups")
    print(f"runs: {sum(len(r.exits) for r in reports)} "
          f"(killed {killed}, reruns {sum(r.reruns for r in reports)}; "
          f"reruns needed: {dict(sorted(Counter(r.reruns for r in reports).items()))})")
    print("faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(faults.items())) +
          f" (total {sum(faults.values())})")
    print(f"duplicates: {sum(len(r.duplicates) for r in reports)}")
    print(f"lost memberships or objects: {sum(len(r.lost) for r in reports)}")
    print(f"managed objects not desired: {sum(len(r.extra) for r in reports)}")
    print(f"history mismatches: {sum(len(r.history) for r in reports)}")
    print(f"wall time: {time.perf_counter() - started:.0f} s")
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
