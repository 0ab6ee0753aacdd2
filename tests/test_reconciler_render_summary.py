"""The one summary model (reconciler.render.summary) and its renderings: golden files for text,
Markdown and JSON, before and after an apply; schools from keys; refusals, failures, conflicts and
unresolved people in "needs you"; the 30-school first sync stays short.

Regenerate the golden files after an intended change with ``UPDATE_GOLDEN=1 pytest tests/test_...``
and review the diff.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.apply.result import ApplyResult, ChangeResult
from reconciler.plan.model import Plan, Warning
from reconciler.plan.operations import CreateGroup
from reconciler.plan.payloads import GroupDocument
from reconciler.ports import ItemFailure
from reconciler.render.summary import (
    NO_SCHOOL,
    ObjectInfo,
    SummaryContext,
    context_from_desired,
    school_of,
    summarise,
)
from reconciler.render.summary_format import (
    MARKDOWN_LIMIT,
    render_summary_markdown,
    render_summary_text,
)
from tests.plan_samples import sample_desired, sample_plan

GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs; UPDATE_GOLDEN=1 to regenerate"


def refused_plan() -> Plan:
    plan = sample_plan()
    refusal = ("3 groups would be deleted, more than the limit of 2 per run "
               "(use --force for one run, or raise safety.max_deletes in the configuration)")
    return replace(plan, refusals=(refusal,))


def applied() -> ApplyResult:
    plan = sample_plan()
    results = []
    for c in plan.changes:
        if c.key == "class:OAK:2026-27:7A-En1" and c.kind == "group":
            results.append(
                ChangeResult(c.id, c.action, c.kind, c.key, "failed", "Graph said 400: bad nickname"))
        elif c.kind == "groupMembers" and c.action == "add":
            results.append(ChangeResult(c.id, c.action, c.kind, c.key, "partial", "1 of 2 members failed",
                                        (ItemFailure("u-1", "not found"),)))
        else:
            results.append(ChangeResult(c.id, c.action, c.kind, c.key, "done"))
    return ApplyResult(tuple(results))


CTX = context_from_desired(sample_desired())


@pytest.mark.parametrize("case", ["planned", "refused", "applied"])
def test_summary_renderings_match_golden_files(case: str) -> None:
    plan = refused_plan() if case == "refused" else sample_plan()
    summary = summarise(plan, applied() if case == "applied" else None, CTX)
    check_golden(f"summary_{case}.txt", render_summary_text(summary, detail_limit=100))
    check_golden(f"summary_{case}.md", render_summary_markdown(summary))
    check_golden(f"summary_{case}.json", json.dumps(summary.to_dict(), indent=2, ensure_ascii=False) + "\n")


def test_empty_plan_summary_says_no_changes_and_nothing_needs_you() -> None:
    summary = summarise(Plan())
    text = render_summary_text(summary)
    assert text == "No changes. Entra matches the desired state.\n\nNothing needs you.\n"
    assert "Nothing needs you." in render_summary_markdown(summary)


def test_unresolved_people_alone_are_not_hidden_behind_no_changes() -> None:
    plan = Plan(warnings=(Warning("unresolvedUser", "user 'a@x' is not in Entra; not added to 1 object: "
                                  "class:OAK:2026-27:7A-Ma1", None, "a@x"),))
    text = render_summary_text(summarise(plan))
    assert "People not in Entra: 1 (OAK 1)" in text


@pytest.mark.parametrize(
    ("key", "school"),
    [("class:SCH1:2026-27:7A-Ma1", "SCH1"), ("au:SCH1:year-7", "SCH1"),
     ("mentor:SCH%3A2:2026-27:7R", "SCH:2"),
     ("team:class:SCH1:2026-27:7A-Ma1", "SCH1"), ("au:SCH1:learners", "SCH1"), ("staff-all", NO_SCHOOL),
     ("custom:thing", NO_SCHOOL)],
)
def test_school_comes_from_the_key(key: str, school: str) -> None:
    assert school_of(key) == school


def test_context_schools_and_names_win_over_keys() -> None:
    plan = Plan(changes=(CreateGroup("staff-all", after=GroupDocument("All staff", "staff-all")),))
    ctx = SummaryContext(objects={"staff-all": ObjectInfo("Every member of staff", "TRUST")})
    (row,) = summarise(plan, None, ctx).detail
    assert (row.school, row.name) == ("TRUST", "Every member of staff")
    (row,) = summarise(plan).detail
    assert (row.school, row.name) == (NO_SCHOOL, "All staff")


def test_unresolved_people_are_counted_per_school_once_each() -> None:
    warnings = (
        Warning("unresolvedUser", "user 'a@x' ...: class:A:2026-27:c1, au:B:learners", None, "a@x"),
        Warning("unresolvedUser", "user 'b@x' ...: class:A:2026-27:c2 and 3 more", None, "b@x"),
    )
    needs = summarise(Plan(warnings=warnings)).needs_you
    assert needs.unresolved_people == 2
    assert needs.unresolved == (("A", 2), ("B", 1))
    # the desired state knows better than a cut message
    ctx = SummaryContext(people={"b@x": frozenset({"C"})})
    needs = summarise(Plan(warnings=warnings), None, ctx).needs_you
    assert needs.unresolved == (("A", 1), ("B", 1), ("C", 1))


def test_refusals_failures_and_conflicts_need_you() -> None:
    summary = summarise(refused_plan(), applied(), CTX)
    needs = summary.needs_you
    assert len(needs.refusals) == 1 and "raise safety.max_deletes" in needs.refusals[0]
    assert refused_plan().refusals == needs.refusals
    assert [(f.status, f.key) for f in needs.failures] == [
        ("failed", "class:OAK:2026-27:7A-En1"), ("partial", "class:OAK:2026-27:7A-Ma1")]
    assert [c.key for c in needs.conflicts] == ["mentor:OAK:7R"]
    assert summary.status_counts() == {"done": 15, "failed": 1, "partial": 1}
    text = render_summary_text(summary)
    assert text.index("Needs you:") > text.index("Total")
    assert "Graph said 400: bad nickname" in text and "raise safety.max_deletes" in text


def test_markdown_is_cut_under_the_limit_and_says_what_it_left_out() -> None:
    changes = tuple(CreateGroup(f"class:S{s}:2026-27:c{n}", after=GroupDocument(f"Class {n}", f"c{n}"))
                    for s in range(5) for n in range(400))
    summary = summarise(Plan(changes=changes))
    md = render_summary_markdown(summary, limit=20_000)
    assert len(md) < 20_000
    assert "changes in" in md and "left out to stay under 20,000 characters" in md
    full = render_summary_markdown(summary)
    assert len(full) < MARKDOWN_LIMIT


def test_markdown_escapes_names() -> None:
    plan = Plan(changes=(CreateGroup("class:S:2026-27:x",
                                after=GroupDocument("<script>alert(1)</script> | *bold*", "x")),))
    md = render_summary_markdown(summarise(plan))
    assert "<script>" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt; \\| \\*bold\\*" in md


def test_a_30_school_first_sync_summary_is_short() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_summary import first_sync, measure

    desired, plan = first_sync(30, 150, 40)
    _, text, markdown = measure(desired, plan)
    assert len(plan.changes) > 2_000
    assert text.count("\n") < 200
    assert len(markdown) < MARKDOWN_LIMIT
    assert "SCH29" in text and "SCH0" in text
