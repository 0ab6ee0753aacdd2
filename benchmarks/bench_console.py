"""The console's run page at trust scale: a synthetic 30-school trust's first sync (the plan of
bench_summary.py, ~130,000 changes) recorded in a console store with every change's result, then
the run page rendered through the app (signed in, over Starlette's TestClient): the first render
(the summary kept in the store as the run was recorded), a second one, a page filtered by school
and kind, a search for one person's UPN, the dashboard, and the first view of the same run as a
run recorded before summaries were kept (its summary counted from the rows once, then kept).

    python benchmarks/bench_console.py [--schools 30] [--learners 1500] [--classes 300] [--store PATH]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_summary import first_sync
from cryptography.fernet import Fernet
from sqlalchemy import delete

with warnings.catch_warnings():  # newer Starlette prefers its httpx fork; httpx works the same
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from entra_sync.console.app import create_app
from entra_sync.console.security import SecretBox, hash_password
from entra_sync.console.store import ConsoleStore
from entra_sync.runs.history import History
from entra_sync.store.engine import writer
from entra_sync.store.tables import run_summaries
from reconciler.apply.result import ApplyResult, ChangeResult
from reconciler.plan.model import Plan

PASSWORD = "benchmark password 1"


def record_trust_run(target: str | Path, tenant: str, plan: Plan, *, failed_every: int = 997) -> int:
    """Record ``plan`` as a finished run of ``tenant`` with results (one change in
    ``failed_every`` failed, the rest done); returns its id."""
    results = []
    for i, c in enumerate(plan.changes):
        bad = i % failed_every == 0
        results.append(ChangeResult(change_id=c.id, action=c.action, kind=c.kind, key=c.key,
                                    status="failed" if bad else "done",
                                    message="Graph 400: One or more added object references already exist"
                                    if bad else ""))
    with History(target) as h:
        run = h.start_run("console sync", {"schools": "trust"}, tenant=tenant)
        t0 = time.perf_counter()
        h.record_plan(run, plan)
        t1 = time.perf_counter()
        h.record_results(run, ApplyResult(tuple(results)))
        t2 = time.perf_counter()
        h.finish_run(run, "partial")
        t3 = time.perf_counter()
    print(f"recorded: the plan {t1 - t0:.1f} s (with its counts), the results {t2 - t1:.1f} s, "
          f"finishing the run (with its summary) {(t3 - t2) * 1000:.0f} ms")
    return run


def signed_in(store: ConsoleStore, box: SecretBox) -> TestClient:
    client = TestClient(create_app(store, box, session_secret="x" * 32), follow_redirects=False)
    page = client.get("/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    r = client.post("/login", data={"username": "bench", "password": PASSWORD, "csrf": token.group(1)})
    assert r.status_code == 303, r.text
    return client


def timed(client: TestClient, path: str, **params: str) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    r = client.get(path, params=params)
    took = time.perf_counter() - t0
    assert r.status_code == 200, r.status_code
    m = re.search(r'id="match-count">([\d,]+) change', r.text)
    return took, len(r.content), int(m.group(1).replace(",", "")) if m else -1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--schools", type=int, default=30)
    ap.add_argument("--learners", type=int, default=1500)
    # 1,300 classes a school: ~130,000 changes, the size of the 30-school first sync in issue 14
    ap.add_argument("--classes", type=int, default=1300)
    ap.add_argument("--store", help="keep the store here (default: a temporary folder)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        target = args.store or str(Path(tmp) / "console.db")
        t0 = time.perf_counter()
        desired, plan = first_sync(args.schools, args.learners, args.classes)
        t1 = time.perf_counter()
        store = ConsoleStore(target)
        store.add_tenant("trust", "Oakfield Learning Trust", Path(tmp) / "trust.toml")
        uid = store.add_user("bench", hash_password(PASSWORD))
        store.grant(uid, "trust", "viewer")
        run = record_trust_run(target, "trust", plan)
        t2 = time.perf_counter()
        client = signed_in(store, SecretBox(Fernet.generate_key()))
        print(f"plan: {len(plan.changes):,} changes in {args.schools} schools "
              f"(generate + plan {t1 - t0:.1f} s, recorded in {t2 - t1:.1f} s)")
        upn = sorted(desired.people())[len(desired.people()) // 2]
        school = sorted({k.split(":")[1] for k in (g.key for g in desired.groups) if k.count(":") >= 2})[0]
        name = desired.groups[len(desired.groups) // 2].display_name
        for label, params in (
            ("run page, first render (summary kept when recorded)", {}),
            ("run page, again", {}),
            ("run page, page 500", {"page": "500"}),
            (f"filtered: school {school}, kind group", {"school": school, "kind": "group"}),
            ("filtered: failed only", {"status": "failed"}),
            (f"search: one person {upn}", {"q": upn}),
            (f"search: a class name {name!r}", {"q": name}),
        ):
            took, size, matches = timed(client, f"/t/trust/runs/{run}", **params)
            print(f"{label}: {took * 1000:.0f} ms, {size / 1024:.0f} KiB, {matches:,} matching")
        took, size, _ = timed(client, "/t/trust")
        print(f"dashboard: {took * 1000:.0f} ms, {size / 1024:.0f} KiB")
        with writer(store.engine).begin() as w:  # as a run recorded before migration 0006
            w.execute(delete(run_summaries))
        for label in ("old run, first view (summary counted from the rows, then kept)", "old run, again"):
            took, size, _ = timed(client, f"/t/trust/runs/{run}")
            print(f"{label}: {took * 1000:.0f} ms")
        store.close()


if __name__ == "__main__":
    main()
