"""The HTML run report: structure, content and escaping."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from entra_sync.runs.history import History, RunDetail, run_status_for
from entra_sync.runs.report import MAX_MEMBERS_SHOWN, format_duration, render_run_report
from reconciler.apply.executor import apply
from reconciler.clock import VirtualClock
from reconciler.plan.model import Conflict, Plan, Warning
from reconciler.plan.operations import AddGroupMembers, CreateGroup, CreateTeam, UpdateGroup
from reconciler.plan.payloads import GroupDocument, GroupFields, TeamDocument
from tests.fakes import FakeDirectory, fake_id

AMY = "amy.learner@oak.example"
TEA = "t.teacher@oak.example"
EVIL = 'Oak <script>alert("x")</script> & Sons'
G1 = "class:SCH1:2026-27:7A-Ma1"
G2 = "class:SCH1:2026-27:7B-En1"
G3 = "class:SCH1:2026-27:7C-Sc1"
JULY = 1_783_000_000.0  # 2026-07-02, British Summer Time


class _Structure(HTMLParser):
    VOID = frozenset({"meta", "br", "link", "img", "input", "hr"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}> after {self.stack[-3:]}"
        self.stack.pop()


def _run(tmp_history: History, clock: VirtualClock) -> RunDetail:
    plan = Plan(
        changes=(
            CreateGroup(G1, after=GroupDocument(EVIL, "7a", owners=(TEA,),
                                                  members=(AMY, "ghost@oak.example"))),
            CreateGroup(G2, after=GroupDocument("7B English", "7b", owners=(TEA,))),
            UpdateGroup(G3, before=GroupFields(display_name="Old <name>"),
                        after=GroupFields(display_name="7C Sci")),
            AddGroupMembers(G2, members=(AMY,), depends_on=(f"create:group:{G2}",)),
            CreateTeam("team:" + G1, after=TeamDocument(G1, "educationClass"),
                   depends_on=(f"create:group:{G1}",)),
        ),
        warnings=(Warning("unresolvedUser", "ghost@oak.example is not in Entra <check MIS>", key=G1,
                          ref="ghost@oak.example"),),
        conflicts=(Conflict("group", "class:SCH1:x", "u-1", "mailNickname", "<dup>"),),
    )
    d = FakeDirectory([AMY, TEA])
    d.seed_group(G3, owners=(TEA,))
    d.fail_on("create_group", G2, RuntimeError("mailNickname <7b> already used"))
    d.defer_teams = True
    run_id = tmp_history.start_run("sync", {"tenantId": "t-1", "clientSecret": "hunter2", "school": EVIL})
    clock.advance(12.5)
    tmp_history.record_plan(run_id, plan)
    clock.advance(125)
    result = apply(plan, d, d.read(), max_workers=1)
    tmp_history.record_results(run_id, result)
    tmp_history.finish_run(run_id, run_status_for(result))
    return tmp_history.get_run(run_id)


@pytest.fixture
def run() -> RunDetail:
    clock = VirtualClock(JULY)
    with History(":memory:", clock) as h:
        return _run(h, clock)


def test_report_structure_and_content(run: RunDetail) -> None:
    html = render_run_report(run)
    parser = _Structure()
    parser.feed(html)
    assert parser.stack == []
    assert html.startswith("<!DOCTYPE html>")
    assert parser.tags.count("style") == 1
    # self-contained: no scripts, no external resources
    assert "script" not in parser.tags
    assert not [a for a in parser.attrs if a[0] in ("src", "href")]

    sections = re.findall(r'<section id="([a-z]+)">', html)
    assert sections == ["summary", "needs", "failed", "partial", "skipped", "deferred", "done", "warnings",
                        "conflicts", "config"]
    assert "<h1>Entra Sync run 1 " in html
    assert 'class="status status-partial">partial<' in html
    assert "Applied 5 changes: 1 done, 1 partial, 1 failed, 1 skipped, 1 deferred" in html
    assert "unexpected RuntimeError: mailNickname &lt;7b&gt; already used" in html
    assert f"skipped: depends on create:group:{G2}, which failed" in html
    assert "<code>ghost@oak.example</code>: user not found" in html
    assert "<summary>1 member</summary>" in html
    assert "<li>1 owner</li><li>2 members</li>" in html  # a create's relations, counted
    assert "<li>template educationClass</li>" in html
    assert "displayName: &#39;Old &lt;name&gt;&#39; → &#39;7C Sci&#39;" in html
    assert f"<code>{fake_id(G1)}</code>" in html
    assert "2026-07-02 " in html and " BST" in html
    assert "Took plan 12.5 s, apply 2 min 5 s, total 2 min 18 s." in html


def test_report_escapes_school_data_and_hides_secrets(run: RunDetail) -> None:
    html = render_run_report(run)
    assert "<script>" not in html
    assert "Oak &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Sons" in html
    assert "ghost@oak.example is not in Entra &lt;check MIS&gt;" in html
    assert "&lt;dup&gt;" in html
    assert "hunter2" not in html
    assert "[redacted]" in html


def test_report_is_deterministic_and_uses_the_given_zone(run: RunDetail) -> None:
    assert render_run_report(run) == render_run_report(run)
    utc = render_run_report(run, tz="UTC")
    assert " UTC (UTC)" in utc
    assert utc != render_run_report(run)


def test_planned_only_run_and_long_member_lists() -> None:
    clock = VirtualClock(JULY)
    with History(":memory:", clock) as h:
        run_id = h.start_run("plan")
        refs = tuple(f"pupil{i:04d}@oak.example" for i in range(MAX_MEMBERS_SHOWN + 5))
        h.record_plan(run_id, Plan(changes=(AddGroupMembers(G1, members=refs),)))
        h.finish_run(run_id, "succeeded")
        html = render_run_report(h.get_run(run_id))
    assert re.findall(r'<section id="([a-z]+)">', html) == ["summary", "needs", "planned"]
    assert "Planned, not applied (1)" in html
    assert f"<summary>{MAX_MEMBERS_SHOWN + 5} members</summary>" in html
    assert "… and 5 more" in html
    assert "pupil0199@oak.example" in html and "pupil0200@oak.example" not in html
    assert "Applied" not in html


def test_failed_run_shows_its_error() -> None:
    with History(":memory:", VirtualClock(JULY)) as h:
        run_id = h.start_run("sync")
        h.finish_run(run_id, "failed", error="directory: token request refused <AADSTS7000215>")
        html = render_run_report(h.get_run(run_id))
    assert '<div class="error" role="alert"><strong>Error:</strong> directory: token request refused ' \
           "&lt;AADSTS7000215&gt;</div>" in html


@pytest.mark.parametrize(("seconds", "text"), [(0.4, "0.4 s"), (59.94, "59.9 s"), (123, "2 min 3 s"),
                                               (3720, "1 h 2 min")])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


# -- summary first, needs you next, grouped by school, done rows collapsed ---------------------

def _two_school_run(refused: bool = False) -> RunDetail:
    clock = VirtualClock(JULY)
    xss = "<script>alert(1)</script>"
    changes = [CreateGroup(f"class:{school}:2026-27:c{n}",
                      after=GroupDocument(xss if n == 0 else f"{school} class {n}", f"c{n}", owners=(TEA,)))
               for school in ("ELM", "OAK") for n in range(3)]
    warnings = [Warning("unresolvedUser", f"user 'p{i}@x' ...: class:OAK:2026-27:c1", None, f"p{i}@x")
                for i in range(3)]
    refusals = ("40 groups would be deleted, more than the limit of 30% "
                "(use --force for one run, or raise safety.max_delete_fraction)",) if refused else ()
    plan = Plan(changes=tuple(changes), warnings=tuple(warnings), refusals=refusals)
    with History(":memory:", clock) as h:
        run_id = h.start_run("sync")
        h.record_plan(run_id, plan)
        if refused:
            h.finish_run(run_id, "refused", "refused by a safety limit")
        else:
            d = FakeDirectory([TEA])
            d.fail_on("create_group", "class:OAK:2026-27:c2", RuntimeError("nickname taken"))
            result = apply(plan, d, d.read(), max_workers=1)
            h.record_results(run_id, result)
            h.finish_run(run_id, run_status_for(result))
        return h.get_run(run_id)


def test_report_leads_with_the_school_summary_then_needs_you() -> None:
    html = render_run_report(_two_school_run())
    assert html.index('<section id="summary">') < html.index('<section id="needs">') \
        < html.index('<section id="failed">') < html.index('<section id="done">')
    summary = html[html.index('<section id="summary">'):html.index('<section id="needs">')]
    assert "6 changes (6 memberships) across 2 schools: 5 done, 1 failed." in summary
    assert re.search(r"<th>ELM</th><td>group</td><td>3</td><td>3</td><td>0</td>", summary)
    assert re.search(r"<th>OAK</th><td>group</td><td>3</td><td>3</td><td>1</td>", summary)
    needs = html[html.index('<section id="needs">'):html.index('<section id="failed">')]
    assert "Not done: 1 failed" in needs
    assert "3 people are not in Entra" in needs and "<tr><td>OAK</td><td>3</td></tr>" in needs


def test_done_rows_are_collapsed_per_school_and_others_grouped_by_school() -> None:
    html = render_run_report(_two_school_run())
    done = html[html.index('<section id="done">'):]
    assert '<details class="school"><summary>ELM: 3 done</summary>' in done
    assert '<details class="school"><summary>OAK: 2 done</summary>' in done
    failed = html[html.index('<section id="failed">'):html.index('<section id="done">')]
    assert '<h3 class="school">OAK (1)</h3>' in failed and "nickname taken" in failed
    parser = _Structure()
    parser.feed(html)
    assert parser.stack == []


def test_a_refused_run_shows_the_refusal_with_its_limit_and_way_out() -> None:
    html = render_run_report(_two_school_run(refused=True))
    needs = html[html.index('<section id="needs">'):html.index('<section id="planned">')]
    assert "Refused by a safety limit (1): nothing was changed" in needs
    assert "more than the limit of 30% (use --force for one run, or raise safety.max_delete_fraction)" \
        in needs


def test_a_class_named_like_a_script_is_shown_escaped() -> None:
    html = render_run_report(_two_school_run())
    assert "<script>" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2  # one class per school
    parser = _Structure()
    parser.feed(html)
    assert "script" not in parser.tags
