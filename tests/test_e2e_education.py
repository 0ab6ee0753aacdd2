"""Class Teams on an education tenant, end to end on the Graph emulator (the realistic profile:
lag, throttling and faults, plus Teams' educationClass template refused on a group that is not a
class), on a virtual clock: the example two-school trust, rendered by the generator."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import httpx

from entra_sync.config.load import loads_config
from providers.emulator import EmulatorTransport, Profile, Tenant
from providers.entra.client import GraphClient
from providers.entra.directory import EntraDirectory
from providers.entra.marker import ensure_marker
from providers.sources import read_source
from providers.sources.realsmart import example_export_path
from reconciler.apply.executor import apply
from reconciler.apply.result import ApplyResult
from reconciler.clock import VirtualClock
from reconciler.generate.generator import generate
from reconciler.model import DesiredState
from reconciler.plan.diff import diff
from reconciler.plan.model import Plan
from reconciler.school import SchoolData

APP = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
CONFIG = """
[sync]
teams = true
teams_for = ["classes", "mentor_groups"]
"""


class RecordingClock(VirtualClock):
    """A virtual clock that remembers every sleep (what a run waited for)."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        super().sleep(seconds)


class TeamSleeps:
    """The clock the Teams writer sees: the run's clock, recording what Teams waited for."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.clock.now()

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.sleep(seconds)


@dataclass
class World:
    tenant: Tenant
    transport: EmulatorTransport
    clock: RecordingClock
    directory: EntraDirectory
    teams: TeamSleeps


def world(data: SchoolData, seed: int = 7) -> World:
    clock = RecordingClock()
    tenant = Tenant(seed=seed, clock=clock)
    desired = render(data)
    for ref in sorted(desired.people()):
        tenant.add_user(ref)
    # the realistic profile (lag, throttling, faults) with Teams' education rule on
    profile = Profile.realistic(seed=seed).with_(education_rules=True)
    transport = EmulatorTransport(tenant, clock=clock, profile=profile)
    http = httpx.Client(transport=transport, base_url="https://graph.microsoft.com/v1.0",
                        headers={"Authorization": "Bearer t"})  # fmt: skip
    client = GraphClient(http, clock=clock, rng=random.Random(seed))
    ensure_marker(client, APP)
    directory = EntraDirectory.for_app(client, APP)
    teams = TeamSleeps(clock)
    directory.writer.teams.clock = teams
    return World(tenant, transport, clock, directory, teams)


def render(data: SchoolData) -> DesiredState:
    return generate(data, loads_config(CONFIG)).desired


def run(w: World, desired: DesiredState) -> tuple[Plan, ApplyResult]:
    w.clock.sleeps.clear()
    w.teams.sleeps.clear()
    actual = w.directory.read(desired)
    plan = diff(desired, actual)
    return plan, apply(plan, w.directory, actual, max_workers=4)


def example() -> SchoolData:
    return read_source("realsmart", example_export_path())


def test_first_sync_makes_class_teams_from_education_classes_quietly_and_a_catch_up_run_the_rest() -> None:
    data = example()
    assert len(data.schools) == 2
    w = world(data)
    desired = render(data)
    classes = [g for g in desired.groups if g.key.startswith("class:")]
    assert classes and all(g.education is not None for g in classes)

    plan, result = run(w, desired)
    statuses = {r.change_id: r.status for r in result.results}
    assert not [r for r in result.results if r.status in ("failed", "partial", "skipped")], [
        (r.change_id, r.message) for r in result.results if r.status != "done"
    ]
    # every class group is an education class in the tenant, carrying our marker
    ids = w.directory.read(desired).ids
    assert {ids[g.key] for g in classes} <= set(w.tenant.classes)
    assert w.transport.counters.welcome_emails == 0 and w.tenant.welcome_emails == 0
    # the Teams of groups created minutes ago are deferred at once; nothing waits for them
    team_changes = [c for c in plan.changes if c.kind == "team"]
    assert team_changes and all(statuses[c.id] == "deferred" for c in team_changes)
    assert w.teams.sleeps == []  # deferred without a request: no Team waited for anything

    w.clock.advance(20 * 60)  # the catch-up run, 20 minutes later
    plan, result = run(w, desired)
    assert [c.kind for c in plan.changes] == ["team"] * len(team_changes)
    assert all(r.status == "done" for r in result.results), [(r.change_id, r.message) for r in result.results]
    # no sleep of 10 s or more in the run, and the Teams only ever waited for their pacing
    assert max(w.clock.sleeps, default=0.0) < 10.0
    assert max(w.teams.sleeps, default=0.0) < 1.0
    for t in desired.teams:
        gid = ids[t.group]
        assert gid in w.tenant.teams
        if t.group.startswith("class:"):
            assert t.template == "educationClass"
    assert w.tenant.welcome_emails == 0

    w.clock.advance(4 * 3600)
    plan, _ = run(w, desired)
    assert plan.empty, [c.id for c in plan.changes]


def test_a_renamed_class_then_a_new_class_with_the_old_name_converge_without_warnings() -> None:
    """9B renamed 9H (same class id), then a new 9B: the new group's nickname is its own (a hash of
    its key), never the one the renamed group still holds, so nothing fails and nothing warns."""
    data = example()
    first = data.classes[0]
    w = world(data)
    desired = render(data)
    run(w, desired)
    w.clock.advance(20 * 60)
    run(w, desired)

    renamed = replace(first, name=first.name + " (renamed)", code=(first.code or first.name) + "H")
    data_renamed = replace(data, classes=(renamed, *data.classes[1:]))
    twin = replace(first, id=first.id + "-new")  # a new class with the old name and code
    data_new = replace(data_renamed, classes=(*data_renamed.classes, twin))
    old_key = f"class:{first.school_id}:{desired.source.academic_year}:{first.id}"
    new_key = f"class:{first.school_id}:{desired.source.academic_year}:{first.id}-new"
    for step in (data_renamed, data_new, data_new, data_new):
        w.clock.advance(4 * 3600)
        plan, result = run(w, render(step))
        # the renamed class itself is told it keeps its mail address; nothing else warns
        others = [x for x in plan.warnings if not (x.code == "mailNicknameKept" and old_key in x.message
                                                   and x.message.startswith("1 existing group(s)"))]
        assert others == [] and plan.conflicts == (), plan.warnings
        # the new class's Team waits for Graph's window (deferred at once), then is made
        bad = [(r.change_id, r.message) for r in result.results
               if r.status != "done" and not (r.status == "deferred" and r.key == f"team:{new_key}")]
        assert bad == []
    assert plan.empty and plan.changes == ()
    groups = w.directory.read(render(data_new)).groups
    assert groups[old_key].mail_nickname != groups[new_key].mail_nickname
    assert groups[new_key].display_name == groups[old_key].display_name.replace(" (renamed)", "")
