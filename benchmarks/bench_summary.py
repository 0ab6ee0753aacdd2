"""The summary of a trust's first sync: a synthetic trust's export generated to a desired state,
planned against an empty tenant where every person exists, then summarised; prints the text
summary's lines and the Markdown's size (they must stay under 200 lines and 65,536 characters).

    python benchmarks/bench_summary.py [--schools 30] [--learners 1500] [--classes 300]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_render import export

from entra_sync.config.load import loads_config
from providers.sources import read_source
from reconciler.generate.generator import generate
from reconciler.model import ActualState, DesiredState
from reconciler.plan.diff import diff
from reconciler.plan.model import Plan
from reconciler.render.summary import SummaryContext, context_from_desired, summarise
from reconciler.render.summary_format import render_summary_markdown, render_summary_text


def first_sync(schools: int, learners: int, classes: int) -> tuple[DesiredState, Plan]:
    """A first-sync plan of a synthetic trust (every person has an account, nothing exists yet)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.json"
        path.write_text(json.dumps(export(schools, learners, classes)))
        cfg = loads_config(
            f'[sync]\nteams = true\n[source]\nkind = "realsmart"\npath = "{path}"\n',
            file=Path(tmp) / "c.toml",
        )
        desired = generate(read_source("realsmart", path), cfg).desired
    refs = {r for a in desired.administrative_units for r in a.members}
    refs |= {r for g in desired.groups for r in g.members | g.owners}
    users = {r: f"00000000-0000-0000-0000-{i:012d}" for i, r in enumerate(sorted(refs))}
    return desired, diff(desired, ActualState(users=users))


def measure(desired: DesiredState, plan: Plan) -> tuple[SummaryContext, str, str]:
    ctx = context_from_desired(desired)
    summary = summarise(plan, None, ctx)
    return ctx, render_summary_text(summary), render_summary_markdown(summary)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--schools", type=int, default=30)
    ap.add_argument("--learners", type=int, default=1500)
    ap.add_argument("--classes", type=int, default=300)
    args = ap.parse_args()
    t0 = time.perf_counter()
    desired, plan = first_sync(args.schools, args.learners, args.classes)
    t1 = time.perf_counter()
    _, text, markdown = measure(desired, plan)
    t2 = time.perf_counter()
    print(f"plan: {len(plan.changes)} changes, {len(plan.to_json())} bytes of plan JSON")
    print(f"summary text: {text.count(chr(10))} lines, {len(text)} characters")
    print(f"summary Markdown: {len(markdown)} characters (limit 65,536)")
    print(f"generate + plan {t1 - t0:.2f} s, summarise + render {t2 - t1:.2f} s")


if __name__ == "__main__":
    main()
