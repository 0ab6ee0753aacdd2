"""Plan renderings: golden files for text, Markdown and JSON, and the rules they follow.

Regenerate the golden files after an intended change with ``UPDATE_GOLDEN=1 pytest tests/test_...``
and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.document.snapshot import snapshot
from reconciler.model import DesiredState, Group, RemovalPolicy
from reconciler.plan.diff import diff
from reconciler.plan.model import Plan, Warning
from reconciler.plan.operations import AddGroupMembers, ArchiveTeam
from reconciler.plan.payloads import TeamStatus
from reconciler.render.common import summary_line
from reconciler.render.markdown import code, md, render_markdown
from reconciler.render.text import render_text
from tests.plan_samples import sample_actual, sample_desired, sample_plan

GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs; UPDATE_GOLDEN=1 to regenerate"


@pytest.mark.parametrize(
    ("name", "render"),
    [("plan_sample.txt", render_text), ("plan_sample.md", render_markdown),
     ("plan_sample.json", Plan.to_json)],
)
def test_sample_plan_renderings_match_golden_files(name: str, render: object) -> None:
    assert callable(render)
    check_golden(name, render(sample_plan()))


def test_empty_plan_renderings() -> None:
    actual = sample_actual()
    plan = diff(snapshot(actual), actual)
    assert plan.empty
    check_golden("plan_empty.txt", render_text(plan))
    check_golden("plan_empty.md", render_markdown(plan))
    assert render_text(plan).endswith("No changes. Entra matches the desired state.\n")


def test_summary_line_counts_memberships_including_those_bound_at_creation() -> None:
    plan = sample_plan()
    assert summary_line(plan) == ("Plan: 2 to create, 2 to update, 2 to delete, 1 Team to archive, "
                                  "1 to unarchive; 25 memberships to add, 6 to remove.")
    one = Plan(changes=(ArchiveTeam("team:g", "id", before=TeamStatus("g", False),
                               after=TeamStatus("g", True)),))
    assert summary_line(one) == ("Plan: 0 to create, 0 to update, 0 to delete, 1 Team to archive; "
                                 "0 memberships to add, 0 to remove.")


def test_text_truncates_long_lists_and_markdown_lists_everything() -> None:
    members = tuple(f"p{i:03}@oak.example" for i in range(40))
    plan = Plan(changes=(AddGroupMembers("g:1", "id-1", members=members),))
    text = render_text(plan)
    assert "  ~ group g:1  members +40 -0\n" in text
    assert "      + p009@oak.example\n      ... and 30 more\n" in text
    assert "p010@" not in text
    assert "... and 35 more" in render_text(plan, list_limit=5)
    markdown = render_markdown(plan)
    assert all(f"- \\+ `{m}`" in markdown for m in members)
    assert "<details><summary>Memberships: 40 to add, 0 to remove</summary>" in markdown


def test_text_groups_changes_by_object_in_sections() -> None:
    text = render_text(sample_plan())
    sections = [text.index(s) for s in ("Administrative units:", "Groups:", "Teams:", "Conflicts (1)",
                                        "Warnings (2)", "Plan: ")]
    assert sections == sorted(sections)
    groups_section = text[text.index("Groups:"):text.index("Teams:")].splitlines()
    heads = [line for line in groups_section if line.startswith("  ") and not line.startswith("   ")]
    keys = [next(w for w in line.split() if ":" in w) for line in heads]
    assert len(keys) == 7
    firsts = list(dict.fromkeys(keys))
    assert keys == sorted(keys, key=firsts.index)  # one object's lines stay together
    assert firsts == sorted(firsts)


def test_markdown_escapes_cells() -> None:
    assert md("a|b *c* <x>") == "a\\|b \\*c\\* &lt;x&gt;"
    assert code("k|1") == "`k\\|1`"
    assert code("a`b") == "a\\`b"
    g = Group("g:1", "Maths | <b>Set</b>", "m1", owners=frozenset({"t@oak.example"}))
    markdown = render_markdown(diff(DesiredState(groups=(g,)), sample_actual().__class__(
        users={"t@oak.example": "1"})))
    assert "Maths \\| &lt;b&gt;Set&lt;/b&gt;" in markdown
    assert "<b>" not in markdown


def test_kept_objects_and_warnings_are_shown() -> None:
    desired = sample_desired()
    kept = diff(DesiredState(groups=desired.groups, administrative_units=desired.administrative_units,
                             teams=desired.teams, policy=RemovalPolicy(groups="keep")), sample_actual())
    text = render_text(kept)
    assert "! kept: 2 groups no longer desired kept as they are (policy groups=keep)" in text
    plan = Plan(warnings=(Warning("unresolvedUser", "user 'x' is not in Entra", ref="x"),))
    assert render_text(plan) == ("Warnings (1):\n  ! unresolvedUser: user 'x' is not in Entra\n\n"
                                 "No changes. Entra matches the desired state.\n")
    assert "- **unresolvedUser**: user 'x' is not in Entra" in render_markdown(plan)


def test_brief_text_shows_counts_without_names() -> None:
    plan = sample_plan()
    brief = render_text(plan, list_limit=0)
    full = render_text(plan)
    assert brief.splitlines()[-1] == full.splitlines()[-1]  # the same summary line
    refs = {m for c in plan.changes for m in c.members if "@" in m}
    assert refs and all(ref not in brief for ref in refs)
    assert "... and" not in brief
    assert len(brief.splitlines()) < len(full.splitlines())
