"""The fleet's throughput: N small emulated tenants (in-process emulator tenant files) through W
`entra-sync worker` processes on a real Redis and a real PostgreSQL, two slots (a first sync, then
a no-change run): tenants per minute, and the time from the slot being queued to its last tenant
finishing, with each run's duration (p50, p95).

    python benchmarks/bench_fleet.py [--tenants 200] [--workers 4] [--concurrency 1] [--classes 2]
        [--store postgresql://...] [--redis redis://...]

Without --store / --redis it starts a throwaway PostgreSQL (the system's, as tests/postgres.py
does) and redis-server on 127.0.0.1. All of a slot's tasks are queued at once (no jitter), so the
figure is the fleet's capacity, not the schedule's spread.

Measured here (2 CPUs; PostgreSQL, Redis, the workers and the in-process emulated tenants all on
this one machine), 200 tenants of 2 classes (about 15 objects and 40 changes each on a first sync):

    workers x concurrency   first sync            no-change run
    1 x 1                   384 tenants/min 31 s  1106 tenants/min 11 s
    2 x 1                   776 tenants/min 16 s  1549 tenants/min  8 s
    4 x 1                   759 tenants/min 16 s  1522 tenants/min  8 s
    4 x 2                   616 tenants/min 20 s  1167 tenants/min 10 s
    4 x 1, 10 classes       338 tenants/min 36 s  1016 tenants/min 12 s

(the seconds: from the slot's tasks being queued to the last tenant's run finishing). It scales
with processes up to the CPUs (1 -> 2 workers doubles it) and no further here: with the emulator
in-process every run is CPU work (render, read, diff, apply on the emulator, the store's writes),
so more processes than CPUs only add switching. A real tenant's run mostly waits on Graph, which
more workers per CPU absorb; the per-task overhead of the fleet itself (broker, lease, slot and
health rows) is about 0.05 s (the no-change runs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from entra_sync.fleet import slots  # noqa: E402
from entra_sync.fleet.app import RUN_TASK, make_app  # noqa: E402
from entra_sync.fleet.registry import FleetStore  # noqa: E402
from entra_sync.fleet.settings import FleetSettings  # noqa: E402
from entra_sync.runs.history import History  # noqa: E402
from tests.fleet_support import Worker, write_tenant  # noqa: E402
from tests.postgres import _bin_dir, _free_port  # noqa: E402

LONDON = ZoneInfo("Europe/London")


@contextmanager
def _redis() -> Iterator[str]:
    port = _free_port()
    folder = tempfile.mkdtemp(prefix="bench-redis-")
    proc = subprocess.Popen([shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(port),
                             "--bind", "127.0.0.1", "--save", "", "--dir", folder],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(0.5)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _postgres() -> Iterator[str]:
    bin_dir = _bin_dir()
    if bin_dir is None:
        raise SystemExit("no PostgreSQL binaries: pass --store")
    folder = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        import pwd

        pw = pwd.getpwnam("postgres")
        os.chown(folder, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()
    subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                    "--no-sync"], check=True, capture_output=True)  # fmt: skip
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c max_connections=300"
    log = str(folder / "log")
    ctl = [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data)]
    subprocess.run([*ctl, "-o", options, "-l", log, "-w", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, check=False)  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


def _at(hhmm: str) -> float:
    return datetime.fromisoformat(f"2026-11-02T{hhmm}:00").replace(tzinfo=LONDON).timestamp()


def _slot(store: FleetStore, history: History, app: object, hhmm: str, n: int) -> dict[str, float]:
    started = time.time()
    sent = slots.tick(store, _at(hhmm) + 60, 0, lambda i: app.send_task(RUN_TASK, args=[i]))  # type: ignore[attr-defined]
    assert len(sent) == n, f"{len(sent)} slots queued, expected {n}"
    while True:
        done = [s for s in slots.slots(store) if s.slot_at == _at(hhmm)]
        if all(s.state in slots.FINISHED for s in done):
            break
        time.sleep(0.25)
    last = max(s.finished_at or 0.0 for s in done)
    runs = {s.run_id for s in done}
    durations = sorted(r.duration or 0.0 for r in history.list_runs(10 * n) if r.run_id in runs)
    failed = sum(1 for s in done if s.message != "succeeded")
    span = last - started
    return {"span": span, "per_minute": n / span * 60, "p50": statistics.median(durations),
            "p95": durations[int(0.95 * (len(durations) - 1))], "failed": failed}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tenants", type=int, default=200)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--store")
    ap.add_argument("--redis")
    args = ap.parse_args()
    with ExitStack() as stack:
        store_url = args.store or stack.enter_context(_postgres())
        redis_url = args.redis or stack.enter_context(_redis())
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-fleet-")))
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("ENTRA_SYNC_") and k != "PYTHONWARNINGS"
        }
        env.update({"ENTRA_SYNC_FLEET_STORE": store_url, "ENTRA_SYNC_FLEET_BROKER": redis_url,
                    "ENTRA_SYNC_FLEET_JITTER": "0"})  # fmt: skip
        settings = FleetSettings.from_env(env)
        store = stack.enter_context(FleetStore(store_url))
        history = stack.enter_context(History(store_url))
        t = time.perf_counter()
        for i in range(args.tenants):
            name = f"t{i:03d}"
            store.add(name, write_tenant(tmp / name, classes=args.classes, times=("04:00", "08:00")))
        print(f"registered {args.tenants} tenants in {time.perf_counter() - t:.1f} s")
        slots.tick(store, _at("03:00"), 0, lambda _i: None)
        app = make_app(settings)
        workers = [
            Worker(env, f"b{i}", tmp / f"b{i}.log", concurrency=args.concurrency) for i in range(args.workers)
        ]
        stack.callback(lambda: [w.stop() for w in workers])
        for w in workers:
            while b"ready." not in w.log.read_bytes():
                time.sleep(0.2)
        print(f"{args.workers} workers x concurrency {args.concurrency}, {os.cpu_count()} CPUs; "
              f"{args.classes} classes per tenant")  # fmt: skip
        for hhmm, what in (("04:00", "first sync"), ("08:00", "no-change run")):
            r = _slot(store, history, app, hhmm, args.tenants)
            print(
                f"{what:>14}: {r['per_minute']:.0f} tenants/min; slot queued -> last tenant done "
                f"{r['span']:.1f} s; run p50 {r['p50']:.2f} s, p95 {r['p95']:.2f} s; "
                f"not succeeded {r['failed']:.0f}"
            )


if __name__ == "__main__":
    main()
