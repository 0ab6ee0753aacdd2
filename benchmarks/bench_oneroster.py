"""A trust's OneRoster 1.1 CSV set to a validated desired state, timed as ``entra-sync render -o
FILE`` runs (the command's own function: read, generate, validate, write the document).

The set is synthetic and deterministic (``--seed``): one district, ``--schools`` school orgs, each
with ``--learners`` learners (7 year groups), a teacher per 15 learners, ``--classes`` scheduled
classes of a teacher and 28 learners, and a homeroom (a mentor group) per 30 learners; orgs, users,
courses, classes, academicSessions, enrollments and manifest.csv. The defaults make 40,500 learners.

Each run is a fresh process (so ``ru_maxrss`` is that run's own); the figures are the best of
``--repeat``. The tracemalloc peak is taken in a separate run, as tracing slows the code it measures.
``--against TREE`` runs the same script of another checkout on the same files, interleaved with
this one's runs (base, this, base, this ...) so that the machine's load falls on both alike; its
runs use ``--against-python`` (default: this interpreter), for a checkout whose dependencies
differ (an old commit in a venv of its own)::

    python benchmarks/bench_oneroster.py [--schools 27] [--learners 1500] [--classes 300]
        [--seed 1] [--repeat 3] [--against ../other-checkout [--against-python VENV/bin/python]]
        [--read-only]

``--read-only`` measures the read of the set alone (``read_source``: CSV files to the school
model), without generating, validating or writing the document.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

STAMP = "2026-09-01T06:00:00Z"
_T = TypeVar("_T")
BASE = "sourcedId status dateLastModified"  # the columns every OneRoster file starts with


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(header)
        w.writerows(rows)


def build_set(out: Path, *, schools: int, learners: int, classes: int, seed: int) -> dict[str, int]:
    """Write a OneRoster 1.1 bulk set for a trust into ``out``; return row counts per file."""
    rng = random.Random(seed)
    orgs = [["org-trust", "active", STAMP, "Bench Learning Trust", "district", "BLT", ""]]
    users: list[list[str]] = []
    courses: list[list[str]] = []
    cls: list[list[str]] = []
    enrol: list[list[str]] = []
    subjects = [f"Subject {n}" for n in range(40)]
    for s in range(schools):
        org = f"org-{s:02d}"
        orgs.append([org, "active", STAMP, f"School {s}", "school", f"88{s:05d}", "org-trust"])
        staff = [f"{org}-t{n}" for n in range(max(10, learners // 15))]
        for n, t in enumerate(staff):
            mail = f"t{n}.s{s}@trust.example"
            role = "aide" if n % 25 == 24 else "teacher"
            users.append([t, "active", STAMP, "true", org, role, mail, f"Given{n}", f"Staff{n}", mail, ""])
        kids = [f"{org}-l{n}" for n in range(learners)]
        year_of: dict[str, int] = {}
        for n, k in enumerate(kids):
            year = 7 + n % 7
            year_of[k] = year
            mail = f"l{n}.s{s}@trust.example"
            users.append([k, "active", STAMP, "true", org, "student", mail, f"Given{n}", f"Learner{n}",
                          mail if n % 2 else "", f"{year:02d}"])  # fmt: skip
        for c, subject in enumerate(subjects):
            courses.append([f"{org}-crs{c}", "active", STAMP, "ay-2026", subject, f"C{c}", "", org, subject])
        by_year = {y: [k for k in kids if year_of[k] == y] for y in range(7, 14)}
        for c in range(classes):
            year = 7 + c % 7
            cid = f"{org}-c{c}"
            name, course = f"{year}A Subject {c % 40}", f"{org}-crs{c % 40}"
            cls.append([cid, "active", STAMP, name, f"{year:02d}", course, f"{year}A-S{c}", "scheduled", org,
                        "ay-2026", ""])  # fmt: skip
            teacher = staff[rng.randrange(len(staff))]
            enrol.append([f"{cid}-e-t", "active", STAMP, cid, org, teacher, "teacher"])
            pool = by_year[year]
            for k in rng.sample(pool, min(28, len(pool))):
                enrol.append([f"{cid}-e-{k}", "active", STAMP, cid, org, k, "student"])
        for m in range(learners // 30):
            year = 7 + m % 7
            cid = f"{org}-m{m}"
            cls.append([cid, "active", STAMP, f"{year}X{m}", f"{year:02d}", "", f"{year}X{m}", "homeroom",
                            org, "ay-2026", ""])  # fmt: skip
            enrol.append([f"{cid}-e-t", "active", STAMP, cid, org, staff[m % len(staff)], "teacher"])
            for k in kids[m * 30 : (m + 1) * 30]:
                enrol.append([f"{cid}-e-{k}", "active", STAMP, cid, org, k, "student"])
    year_row = ["ay-2026", "active", STAMP, "2026-27", "schoolYear", "2026-09-01", "2027-07-21", "", "2027"]
    files = {
        "orgs": (f"{BASE} name type identifier parentSourcedId", orgs),
        "users": (f"{BASE} enabledUser orgSourcedIds role username givenName familyName email grades", users),
        "courses": (f"{BASE} schoolYearSourcedId title courseCode grades orgSourcedId subjects", courses),
        "classes": (
            f"{BASE} title grades courseSourcedId classCode classType schoolSourcedId termSourcedIds"
            " subjects",
            cls,
        ),
        "enrollments": (f"{BASE} classSourcedId schoolSourcedId userSourcedId role", enrol),
        "academicSessions": (f"{BASE} title type startDate endDate parentSourcedId schoolYear", [year_row]),
    }
    for name, (header, rows) in files.items():
        write_csv(out / f"{name}.csv", header.split(), rows)
    manifest = [["manifest.version", "1.0"], ["oneroster.version", "1.1"]]
    manifest += [[f"file.{n}", "bulk"] for n in files]
    manifest += [[f"file.{n}", "absent"] for n in ("demographics", "lineItems", "results", "categories")]
    write_csv(out / "manifest.csv", ["propertyName", "value"], manifest)
    return {name: len(rows) for name, (_, rows) in files.items()}


def measured(work: Callable[[], _T], trace: bool) -> tuple[_T, dict[str, float]]:
    """``work()``'s result, and its wall and CPU time, this process's maxrss and (with ``trace``)
    the tracemalloc peak while it ran."""
    if trace:
        tracemalloc.start()
    w0, c0 = time.perf_counter(), time.process_time()
    result = work()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    return result, {
        "wall": wall,
        "cpu": cpu,
        "traced_mib": peak / 2**20,
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def read_once(data: Path, trace: bool) -> dict[str, Any]:
    """Only read ``data`` (``read_source``, as ``render`` does before it generates); the figures."""
    from providers.sources import SourceOptions, read_source

    school, figures = measured(
        lambda: read_source("oneroster", data, options=SourceOptions(ref_field="username")), trace
    )
    return figures | {
        "people": len(school.people),
        "classes": len(school.classes),
        "mentor_groups": len(school.mentor_groups),
    }


def run_once(data: Path, trace: bool) -> dict[str, Any]:
    """Render ``data`` once in this process, as ``entra-sync render -o`` does (the command's own
    function: load the config, read, generate, validate, write the document); the figures."""
    from entra_sync.cli.runs import render

    config = data.parent / "c.toml"
    config.write_text(
        f'[sync]\nteams = true\n[source]\nkind = "oneroster"\npath = "{data}"\nuser_reference = "username"\n',
        encoding="utf-8",
    )
    output = data.parent / "desired.json"
    _, figures = measured(lambda: render(config, output), trace)
    text = output.read_text(encoding="utf-8")
    document = json.loads(text)
    groups = document["groups"]
    return figures | {
        "people": len(
            {ref for g in groups for ref in (*g["members"], *g["owners"])}
            | {ref for u in document["administrativeUnits"] for ref in u["members"]}
        ),
        "groups": len(groups),
        "teams": len(document.get("teams", [])),
        "memberships": sum(len(g["members"]) for g in groups),
        "document_mib": len(text.encode("utf-8")) / 2**20,
    }


def child(tree: Path, python: str, data: Path, trace: bool, read_only: bool = False) -> dict[str, Any]:
    """Run ``tree``'s copy of this script once with ``python``, in a fresh process importing
    ``tree``'s code."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    script = tree / "benchmarks" / "bench_oneroster.py"
    cmd = [python, str(script), "--child", str(data)] + (["--trace"] if trace else [])
    cmd += ["--read-only"] if read_only else []
    out = subprocess.run(cmd, cwd=tree, env=env, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--schools", type=int, default=27)
    ap.add_argument("--learners", type=int, default=1500, help="learners per school")
    ap.add_argument("--classes", type=int, default=300, help="scheduled classes per school")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--against", type=Path, help="another checkout to measure on the same files")
    ap.add_argument("--against-python", default=sys.executable, help="the interpreter for --against")
    ap.add_argument(
        "--read-only",
        action="store_true",
        help="measure only the read of the set (read_source), not the render",
    )
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps((read_once if args.read_only else run_once)(args.child, args.trace)))
        return
    here = Path(__file__).resolve().parent.parent
    trees = ([args.against.resolve()] if args.against else []) + [here]
    python = {here: sys.executable} | ({trees[0]: args.against_python} if args.against else {})
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "oneroster"
        data.mkdir()
        counts = build_set(
            data, schools=args.schools, learners=args.learners, classes=args.classes, seed=args.seed
        )
        size = sum(f.stat().st_size for f in data.iterdir()) / 2**20
        print(f"set: {', '.join(f'{n} {c:,}' for n, c in counts.items())} rows ({size:.1f} MiB)")
        runs: dict[Path, list[dict[str, Any]]] = {t: [] for t in trees}
        for _ in range(args.repeat):
            for tree in trees:  # interleaved: base, this, base, this ...
                runs[tree].append(child(tree, python[tree], data, trace=False, read_only=args.read_only))
        for tree in trees:
            # the tracemalloc peak: one run each
            runs[tree].append(child(tree, python[tree], data, trace=True, read_only=args.read_only))
    best: dict[Path, dict[str, float]] = {}
    for tree, rs in runs.items():
        timed = rs[:-1]
        b = best[tree] = {
            "wall": min(r["wall"] for r in timed),
            "cpu": min(r["cpu"] for r in timed),
            "rss": min(r["rss_mib"] for r in timed),
            "traced": rs[-1]["traced_mib"],
        }
        r = rs[0]
        if args.read_only:
            print(f"{tree}: read {r['people']:,} people, {r['classes']:,} classes, "
                  f"{r['mentor_groups']:,} mentor groups")  # fmt: skip
        else:
            print(f"{tree}: {r['people']:,} people in the desired state, {r['groups']:,} groups, "
              f"{r['teams']:,} Teams, "
              f"{r['memberships']:,} memberships, document {r['document_mib']:.1f} MiB")  # fmt: skip
        print(f"  best of {len(timed)}: wall {b['wall']:.2f} s, CPU {b['cpu']:.2f} s, "
              f"maxrss {b['rss']:.0f} MiB, tracemalloc peak {b['traced']:.0f} MiB")  # fmt: skip
    if args.against:
        base, new = best[trees[0]], best[trees[1]]
        ratios = ", ".join(f"{k} {new[k] / base[k]:.2f}" for k in ("wall", "cpu", "rss", "traced"))
        print(f"this / against: {ratios}")


if __name__ == "__main__":
    main()
