"""The run store: recording a big plan, then each change's outcome as it settles (one committed
transaction each), then reading the run back and one person's history.

    python benchmarks/bench_store.py [--changes 20000] [--members 30] [--url postgresql+psycopg://...]

Without ``--url`` it uses a SQLite file in a temporary folder (synchronous=FULL, WAL: each outcome
is on disk before the next is recorded).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from entra_sync.runs.history import History
from reconciler.apply.result import ChangeResult
from reconciler.plan.model import Plan
from reconciler.plan.operations import CreateGroup
from reconciler.plan.payloads import GroupDocument


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=20000)
    ap.add_argument("--members", type=int, default=30, help="people per created group")
    ap.add_argument("--url", default=None)
    args = ap.parse_args()
    plan = Plan(changes=tuple(
        CreateGroup(f"class:S{i % 30}:2026-27:G{i}", after=GroupDocument(
            f"G{i}", f"g{i}", owners=(f"t{i % 50}@trust.example",),
            members=tuple(sorted(f"l{(i * 7 + m) % 40000}@trust.example" for m in range(args.members)))))
        for i in range(args.changes)
    ))
    with tempfile.TemporaryDirectory() as tmp:
        target = args.url or str(Path(tmp) / "history.sqlite")
        t = time.perf_counter()
        h = History(target)
        opened = time.perf_counter() - t
        run_id = h.start_run("sync")
        t = time.perf_counter()
        h.record_plan(run_id, plan)
        planned = time.perf_counter() - t
        t = time.perf_counter()
        for c in plan.changes:
            h.record_result(run_id, ChangeResult(c.id, c.action, c.kind, c.key, "done", object_id="x"))
        settled = time.perf_counter() - t
        t = time.perf_counter()
        run = h.get_run(run_id)
        read = time.perf_counter() - t
        t = time.perf_counter()
        person = h.changes_for_person("l7@trust.example")
        asked = time.perf_counter() - t
        h.close()
    people = args.changes * (args.members + 1)
    print(f"backend        {'PostgreSQL' if args.url else 'SQLite file'}")
    print(f"open+migrate   {opened * 1000:.0f} ms")
    print(f"record_plan    {planned:.2f} s  ({args.changes} changes, {people} person rows)")
    print(f"record_result  {settled:.2f} s  ({args.changes / settled:.0f} outcomes/s, one commit each)")
    print(f"get_run        {read:.2f} s  ({len(run.changes)} changes)")
    print(f"person history {asked * 1000:.1f} ms  ({len(person)} memberships)")


if __name__ == "__main__":
    main()
