"""Delta reads through the real provider on the emulator: the plan from a delta read equals the
plan from a full read, after this tool's own changes and after changes made by hand in Entra."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entra_sync.store.delta import SqlDeltaStore, decode_snapshot, encode_snapshot
from providers.emulator import EmulatorTransport, Profile, Tenant
from providers.entra.client import GraphClient
from providers.entra.delta import DeltaPolicy, DeltaSnapshot, Note
from providers.entra.directory import EntraDirectory
from providers.entra.marker import ensure_marker, marker_name
from reconciler.apply.executor import apply
from reconciler.clock import VirtualClock
from reconciler.model import DesiredState
from reconciler.plan.diff import diff
from tests.test_e2e_convergence import desired_states
from tests.test_reconciler_apply import PEOPLE

APP = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
GRAPH = "https://graph.microsoft.com/v1.0"
MARKER = marker_name(APP)


class MemoryDeltaStore:
    """The port in memory; snapshots go through the store's encoding, as in the database."""

    def __init__(self) -> None:
        self.snapshots: dict[str, str] = {}
        self.rows: list[tuple[int, str, Note]] = []
        self.seq = 0

    def load(self, scope: str) -> DeltaSnapshot | None:
        text = self.snapshots.get(scope)
        return None if text is None else decode_snapshot(text)

    def notes(self, scope: str) -> tuple[int, list[Note]]:
        mine = [(n, note) for n, s, note in self.rows if s == scope]
        return (mine[-1][0] if mine else 0), [note for _, note in mine]

    def save(self, scope: str, snapshot: DeltaSnapshot, notes_upto: int) -> None:
        self.snapshots[scope] = encode_snapshot(snapshot)
        self.rows = [r for r in self.rows if r[1] != scope or r[0] > notes_upto]

    def add_notes(self, scope: str, notes: Sequence[Note]) -> None:
        for note in notes:
            self.seq += 1
            self.rows.append((self.seq, scope, note))


class World:
    def __init__(self, store: Any = None, *, runs: int = 1000, seconds: float = 1e9, seed: int = 3,
                 profile: Profile | None = None) -> None:  # fmt: skip
        self.clock = VirtualClock()
        self.tenant = Tenant(seed=seed, clock=self.clock)
        for ref in PEOPLE:
            self.tenant.add_user(ref)
        self.transport = EmulatorTransport(self.tenant, clock=self.clock, profile=profile or Profile.ideal())
        http = httpx.Client(transport=self.transport, base_url=GRAPH, headers={"Authorization": "Bearer t"})
        self.http = http
        self.client = GraphClient(http, clock=self.clock, rng=random.Random(seed))
        ensure_marker(self.client, APP)
        self.store = store if store is not None else MemoryDeltaStore()
        self.policy = DeltaPolicy(self.store, "scope", self.clock, full_every_runs=runs,
                                  full_every_seconds=seconds)  # fmt: skip

    def delta_dir(self) -> EntraDirectory:
        return EntraDirectory.for_app(self.client, APP, delta=self.policy)

    def full_dir(self) -> EntraDirectory:
        return EntraDirectory.for_app(self.client, APP)

    def sync(self, d: EntraDirectory, target: DesiredState) -> None:
        actual = d.read(target)
        plan = diff(target, actual)
        result = apply(plan, d, actual, max_workers=2)
        assert result.ok, [(r.change_id, r.message) for r in result.results if r.status != "done"]
        d.flush_notes()
        self.clock.advance(3600)

    def plans(self, target: DesiredState) -> tuple[list[Any], list[Any], EntraDirectory]:
        """The plan from a delta read and from a full read of the same tenant."""
        d = self.delta_dir()
        by_delta = diff(target, d.read(target)).to_dict()["changes"]
        by_full = diff(target, self.full_dir().read(target)).to_dict()["changes"]
        return by_delta, by_full, d

    def user(self, n: int) -> str:
        return sorted(self.tenant.users)[n % len(self.tenant.users)]

    def managed_groups(self) -> list[str]:
        return sorted(gid for gid, g in self.tenant.groups.items() if g.ext.get(MARKER))


@pytest.fixture(scope="module")
def target() -> DesiredState:
    return _find_target()


def _find_target() -> DesiredState:
    """A desired state with groups, owners and a Team (hypothesis' example, searched for once)."""
    from hypothesis import find

    def rich(s: DesiredState) -> bool:
        return len(s.groups) >= 2 and bool(s.teams) and any(g.owners for g in s.groups) and any(
            g.members for g in s.groups)

    return find(desired_states(), rich)


def test_first_read_is_full_then_delta_and_a_no_change_run_costs_three_requests(target: DesiredState) -> None:
    w = World()
    d = w.delta_dir()
    w.sync(d, target)
    assert d.last_read == ("full", "no snapshot in the run store")
    w.sync(w.delta_dir(), target)  # takes in the first sync's own changes
    before = w.transport.counters.total_requests
    d = w.delta_dir()
    plan = diff(target, d.read(target))
    assert d.last_read is not None and d.last_read[0] == "delta"
    assert plan.empty, plan.to_dict()["changes"]
    assert w.transport.counters.total_requests - before == 3  # users, groups, AUs: one page each


def test_out_of_band_member_add_is_planned_as_a_full_read_would(target: DesiredState) -> None:
    w = World()
    w.sync(w.delta_dir(), target)
    w.sync(w.delta_dir(), target)
    gid = w.managed_groups()[0]
    stranger = w.tenant.add_user("stranger@oak.example")
    r = w.http.post(f"/groups/{gid}/members/$ref", json={"@odata.id": f"{GRAPH}/directoryObjects/{stranger}"})
    assert r.status_code == 204
    by_delta, by_full, d = w.plans(target)
    assert d.last_read is not None and d.last_read[0] == "delta"
    assert by_delta == by_full
    assert any(c["kind"] == "groupMembers" for c in by_full)  # the correction is there


def test_expired_link_falls_back_to_a_full_read_with_the_same_plan(target: DesiredState) -> None:
    w = World()
    w.sync(w.delta_dir(), target)
    w.clock.advance(8 * 86400)  # a school holiday: Graph has dropped the sync state
    gid = w.managed_groups()[0]
    w.http.patch(f"/groups/{gid}", json={"description": "changed by hand"})
    by_delta, by_full, d = w.plans(target)
    assert d.last_read is not None and d.last_read[0] == "full"
    assert "410" in d.last_read[1]
    assert by_delta == by_full and by_full


def test_full_read_every_n_runs_and_every_d_seconds(target: DesiredState) -> None:
    w = World(runs=3, seconds=5 * 3600)
    modes = []
    for _ in range(5):
        d = w.delta_dir()
        w.sync(d, target)
        assert d.last_read is not None
        modes.append(d.last_read[0])
    assert modes == ["full", "delta", "delta", "full", "delta"]
    w.clock.advance(5 * 3600)
    d = w.delta_dir()
    d.read(target)
    assert d.last_read == ("full", "every 18000 s")


def test_owner_and_team_changes_by_this_tool_are_noted(target: DesiredState) -> None:
    """Delta does not report owners or a Team's archive state: the tool's own changes are noted, so
    the next delta read plans nothing."""
    w = World()
    w.sync(w.delta_dir(), target)
    w.sync(w.delta_dir(), target)
    gid = next(g for g in w.managed_groups() if w.tenant.groups[g].owners)
    owner = next(iter(w.tenant.groups[gid].owners))
    new_owner = next(u for u in sorted(w.tenant.users) if u not in w.tenant.groups[gid].owners)
    w.http.post(f"/groups/{gid}/owners/$ref", json={"@odata.id": f"{GRAPH}/directoryObjects/{new_owner}"})
    w.http.delete(f"/groups/{gid}/owners/{owner}/$ref")
    # by hand: the delta read does not see it (documented), the next full read does
    by_delta, by_full, _ = w.plans(target)
    assert by_full and not by_delta
    d = w.full_dir()
    w.sync(d, target)  # the full read puts it right
    d = w.delta_dir()
    w.sync(d, target)  # this tool's own owner changes were noted: nothing to redo
    by_delta, by_full, _ = w.plans(target)
    assert by_delta == by_full == []


def test_sql_store_keeps_snapshot_and_notes(tmp_path: Path, target: DesiredState) -> None:
    store = SqlDeltaStore(tmp_path / "history.db")
    w = World(store)
    w.sync(w.delta_dir(), target)
    w.sync(w.delta_dir(), target)  # makes the Teams the first deferred (their groups were too young)
    w.sync(w.delta_dir(), target)
    assert store.load("scope") is not None
    assert store.count_notes("scope") == 0  # folded into the snapshot by the next read
    d = w.delta_dir()
    d._note(Note("team", "x", "archived"))
    d.flush_notes()
    assert store.notes("scope")[1] == [Note("team", "x", "archived")]
    by_delta, by_full, _ = w.plans(target)
    assert by_delta == by_full == []
    store.forget("scope")
    assert store.load("scope") is None


_HAND = st.lists(
    st.tuples(
        st.sampled_from(["add", "remove", "rename", "delete", "unmark", "au-add", "user-new", "user-del"]),
        st.integers(0, 50),
        st.integers(0, 50),
    ),
    max_size=8,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=desired_states(), steps=st.lists(st.tuples(_HAND, desired_states()), min_size=1, max_size=3))
def test_plan_from_delta_read_equals_plan_from_full_read(
    start: DesiredState, steps: list[tuple[list[tuple[str, int, int]], DesiredState]]
) -> None:
    """Random changes by hand in Entra (members, names, deletes, markers, AU members, users) and
    random desired states applied through delta reads: at every step the delta read plans exactly
    what a full read plans."""
    w = World()
    w.sync(w.delta_dir(), start)
    for hand, target in steps:
        for op, a, b in hand:
            _by_hand(w, op, a, b)
        by_delta, by_full, d = w.plans(target)
        assert by_delta == by_full
        w.sync(d, target)


def _by_hand(w: World, op: str, a: int, b: int) -> None:
    groups = sorted(w.tenant.groups)
    aus = sorted(w.tenant.admin_units)
    uid = w.user(b)
    if op == "user-new":
        w.http.post("/users", json={"userPrincipalName": f"new{a}-{b}@oak.example", "accountEnabled": True,
                                    "displayName": "n", "mailNickname": f"new{a}{b}"})  # fmt: skip
        return
    if op == "user-del":
        if len(w.tenant.users) > 3:
            w.http.delete(f"/users/{uid}")
        return
    if op == "au-add" and aus:
        aid = aus[a % len(aus)]
        w.http.post(f"/directory/administrativeUnits/{aid}/members/$ref",
                    json={"@odata.id": f"{GRAPH}/users/{uid}"})  # fmt: skip
        return
    if not groups:
        return
    gid = groups[a % len(groups)]
    if op == "add":
        w.http.post(f"/groups/{gid}/members/$ref", json={"@odata.id": f"{GRAPH}/directoryObjects/{uid}"})
    elif op == "remove":
        members = sorted(w.tenant.groups[gid].members)
        if members:
            w.http.delete(f"/groups/{gid}/members/{members[b % len(members)]}/$ref")
    elif op == "rename":
        w.http.patch(f"/groups/{gid}", json={"displayName": f"Renamed {b}"})
    elif op == "delete":
        w.http.delete(f"/groups/{gid}")
    elif op == "unmark":
        w.http.patch(f"/groups/{gid}", json={MARKER: None})


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=desired_states(), target=desired_states(), seed=st.integers(0, 1000))
def test_delta_reads_converge_on_a_realistic_tenant(
    start: DesiredState, target: DesiredState, seed: int
) -> None:
    """Throttling, replication lag (new objects unlisted, delta held back), Team windows, 5xx and
    lost responses: runs a scheduled gap apart converge through delta reads, and the last delta
    read plans what a full read plans (nothing)."""
    w = World(seed=seed, profile=Profile.realistic(seed=seed))
    for desired in (start, target):
        for _ in range(3):
            d = w.delta_dir()
            actual = d.read(desired)
            plan = diff(desired, actual)
            if plan.empty:
                break
            apply(plan, d, actual, max_workers=4)
            d.flush_notes()
            w.clock.advance(4 * 3600)
    by_delta, by_full, _ = w.plans(target)
    assert by_delta == by_full == []
