"""School data to a validated desired state at trust scale: read a synthetic Realsmart export
(schema-checked), generate, validate once and write the document as ``entra-sync render -o`` does
(the render command's steps, each timed: the cycle collector paused over them, the document
written by ``document_text``).

    python benchmarks/bench_render.py [--schools 10] [--learners 1500] [--classes 300]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from entra_sync.config.load import loads_config
from providers.sources import gc_paused, read_source
from reconciler.document.load import validate_document
from reconciler.document.parse import desired_to_document, document_text
from reconciler.generate.generator import generate


def export(schools: int, learners: int, classes: int) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "exportVersion": 1, "generatedAt": "2026-09-07T06:00:00Z", "academicYear": "2026-27",
        "organisation": {"name": "Bench Trust", "kind": "trust"},
        "schools": [], "yearGroups": [], "staff": [], "learners": [], "mentorGroups": [], "classes": [],
    }  # fmt: skip
    for s in range(schools):
        sid = f"SCH{s}"
        doc["schools"].append({"id": sid, "name": f"School {s}", "shortName": f"S{s}"})
        years = [f"{sid}-y{y}" for y in range(7, 14)]
        doc["yearGroups"] += [
            {"id": y, "schoolId": sid, "name": f"Year {y.rsplit('y', 1)[1]}"} for y in years
        ]
        staff = [f"{sid}-t{n}" for n in range(max(10, learners // 15))]
        doc["staff"] += [
            {
                "id": t,
                "schoolIds": [sid],
                "upn": f"{t}@trust.example",
                "email": f"{t}@trust.example",
                "givenName": "T",
                "familyName": t,
            }
            for t in staff
        ]
        kids = [f"{sid}-l{n}" for n in range(learners)]
        doc["learners"] += [
            {"id": k, "schoolId": sid, "upn": f"{k}@trust.example", "yearGroupId": years[i % 7],
             "givenName": "L", "familyName": k}
            for i, k in enumerate(kids)
        ]  # fmt: skip
        for m in range(learners // 30):
            doc["mentorGroups"].append({
                "id": f"{sid}-m{m}", "schoolId": sid, "name": f"{7 + m % 7}X{m}", "yearGroupId": years[m % 7],
                "mentorIds": [staff[m % len(staff)]], "learnerIds": kids[m * 30:(m + 1) * 30],
            })  # fmt: skip
        for c in range(classes):
            doc["classes"].append({
                "id": f"{sid}-c{c}", "schoolId": sid, "name": f"{7 + c % 7}A Subject {c % 40}",
                "code": f"{7 + c % 7}A-S{c}", "subject": f"Subject {c % 40}", "yearGroupId": years[c % 7],
                "teacherIds": [staff[c % len(staff)]],
                "learnerIds": [kids[(c * 28 + k) % learners] for k in range(28)],
            })  # fmt: skip
    return doc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--schools", type=int, default=10)
    ap.add_argument("--learners", type=int, default=1500)
    ap.add_argument("--classes", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.json"
        path.write_text(json.dumps(export(args.schools, args.learners, args.classes)))
        cfg = loads_config(
            f'[sync]\nteams = true\n[source]\nkind = "realsmart"\npath = "{path}"\n',
            file=Path(tmp) / "c.toml",
        )
        t0 = time.perf_counter()
        with gc_paused():
            data = read_source("realsmart", path)
            t1 = time.perf_counter()
            generated = generate(data, cfg)
            t2 = time.perf_counter()
            document = desired_to_document(generated.desired)
            t3 = time.perf_counter()
            findings = validate_document(document)
            t4 = time.perf_counter()
            text = document_text(document)
            t5 = time.perf_counter()
    d = generated.desired
    memberships = sum(len(g.members) for g in d.groups) + sum(len(a.members) for a in d.administrative_units)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"export: {len(data.people)} people, {len(data.classes)} classes, {len(data.mentor_groups)} tutor"
    )
    print(
        f"desired: {len(d.groups)} groups, {len(d.administrative_units)} AUs, {len(d.teams)} Teams, "
        f"{memberships} memberships, {len(findings)} findings"
    )
    print(f"read export {t1 - t0:.2f} s, generate {t2 - t1:.2f} s, document {t3 - t2:.2f} s, ", end="")
    print(f"validate {t4 - t3:.2f} s, write {t5 - t4:.2f} s ({len(text) / 2**20:.1f} MiB)")
    print(f"total {t5 - t0:.2f} s (CPU {time.process_time():.2f} s for the whole benchmark)")
    print(f"peak memory (maxrss): {rss:.0f} MiB")


if __name__ == "__main__":
    main()
