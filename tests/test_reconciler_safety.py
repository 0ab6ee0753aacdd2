"""Safety limits: each rule refuses with counts, limit, override and what would go."""

from __future__ import annotations

import dataclasses

from reconciler.model import ActualState, AdministrativeUnit, DesiredState, Group, Team
from reconciler.plan.diff import diff
from reconciler.plan.safety import SafetyLimits, check

USERS = {f"u{i:03}@oak.example": f"uid-{i}" for i in range(200)}


def groups(n: int, members: int = 0) -> tuple[Group, ...]:
    people = frozenset(sorted(USERS)[:members])
    return tuple(Group(f"g:{i:03}", f"G{i}", f"g{i}", owners=frozenset({"u000@oak.example"}), members=people)
                 for i in range(n))


def actual(gs: tuple[Group, ...] = (), aus: tuple[AdministrativeUnit, ...] = (),
           teams: tuple[Team, ...] = ()) -> ActualState:
    ids = {o.key: "id-" + o.key for o in (*gs, *aus)}
    return ActualState(administrative_units={a.key: a for a in aus}, groups={g.key: g for g in gs},
                       teams={t.group: t for t in teams}, ids=ids, users=USERS)


def reasons(desired: DesiredState, have: ActualState, limits: SafetyLimits | None = None) -> list[str]:
    return check(diff(desired, have), desired, have, limits or SafetyLimits())


def test_a_small_plan_passes() -> None:
    gs = groups(20)
    assert reasons(DesiredState(groups=gs[:17]), actual(gs)) == []  # 3 of 20 = 15%


def test_delete_fraction_refuses_with_counts_limit_override_and_keys() -> None:
    gs = groups(20)
    [r] = reasons(DesiredState(groups=gs[:10]), actual(gs))
    assert "10 of 20 managed groups would be deleted (50%)" in r
    assert "limit of 30%" in r
    assert "use --force for one run, or raise safety.max_delete_fraction in the configuration" in r
    assert r.endswith("g:010, g:011, g:012, g:013, g:014, g:015, g:016, g:017, g:018, g:019")
    assert reasons(DesiredState(groups=gs[:10]), actual(gs), SafetyLimits(max_delete_fraction=0.5)) == []


def test_delete_fraction_needs_a_minimum_number_of_objects() -> None:
    gs = groups(9)
    assert reasons(DesiredState(groups=gs[:1]), actual(gs)) == []
    lower = SafetyLimits(min_objects_for_fraction=5)
    assert len(reasons(DesiredState(groups=gs[:1]), actual(gs), lower)) == 1


def test_absolute_delete_limit_truncates_the_list() -> None:
    gs = groups(30)
    limits = SafetyLimits(max_delete_fraction=1.0, max_deletes=5)
    [r] = reasons(DesiredState(groups=gs[:1]), actual(gs), limits)
    assert r.startswith("29 objects would be deleted, more than the limit of 5 per run")
    assert "safety.max_deletes" in r
    assert r.endswith("and 9 more")


def test_member_removal_fraction_per_object() -> None:
    gs = groups(2, members=20)
    fewer = (dataclasses.replace(gs[0], members=frozenset(sorted(gs[0].members)[:10])),
             dataclasses.replace(gs[1], members=frozenset(sorted(gs[1].members)[:15])))
    [r] = reasons(DesiredState(groups=fewer), actual(gs))
    assert "1 object would lose more than 30% of their members or owners" in r
    assert "g:000 (-10 of 20 members, 50%)" in r and "g:001" not in r
    assert "safety.max_member_removal_fraction" in r
    small = groups(1, members=9)
    emptied = (dataclasses.replace(small[0], members=frozenset()),)
    assert reasons(DesiredState(groups=emptied), actual(small)) == []


def test_au_member_removals_count_too() -> None:
    au = AdministrativeUnit("au:1", "A", members=frozenset(sorted(USERS)[:10]))
    [r] = reasons(DesiredState(administrative_units=(dataclasses.replace(au, members=frozenset()),)),
                  actual(aus=(au,)))
    assert "au:1 (-10 of 10 members, 100%)" in r


def test_empty_desired_collection_is_refused_unless_allowed() -> None:
    gs = groups(2)
    teams = (Team("team:g:000", "g:000"),)
    rs = reasons(DesiredState(groups=gs), actual(gs, teams=teams))
    assert len(rs) == 1
    assert "no Teams (teams is empty) while 1 managed Teams exist" in rs[0]
    assert "team:g:000" in rs[0] and "run once with --force" in rs[0]
    all_gone = reasons(DesiredState(), actual(gs, aus=(AdministrativeUnit("au:1", "A"),)))
    assert len(all_gone) == 2
    assert reasons(DesiredState(), actual(gs), SafetyLimits(allow_empty=True)) == []


def test_archiving_most_teams_at_once_is_refused_like_a_mass_delete() -> None:
    gs = groups(20)
    teams = tuple(Team(f"team:{g.key}", g.key) for g in gs)
    keep = DesiredState(groups=gs[:5], teams=teams[:5])
    [r] = reasons(keep, actual(gs, teams=teams))
    assert "15 of 20 managed Teams would be archived (75%)" in r
    assert "--force" in r
    # the groups themselves are kept (deleting one would delete its Team)
    assert not [c for c in diff(keep, actual(gs, teams=teams)).changes if c.action == "delete"]
    assert reasons(DesiredState(groups=gs[:17], teams=teams[:17]), actual(gs, teams=teams)) == []


def test_member_removal_fraction_minimum_is_min_objects_for_fraction() -> None:
    """One setting, as documented: safety.min_objects_for_fraction governs memberships too."""
    gs = groups(1, members=6)
    emptied = (dataclasses.replace(gs[0], members=frozenset()),)
    assert reasons(DesiredState(groups=emptied), actual(gs)) == []  # 6 members: under the default 10
    [r] = reasons(DesiredState(groups=emptied), actual(gs), SafetyLimits(min_objects_for_fraction=5))
    assert "g:000 (-6 of 6 members, 100%)" in r


def test_every_setting_a_refusal_names_exists() -> None:
    import re

    from entra_sync.config.sections import SECTIONS

    gs = groups(30, members=20)
    shrunk = (dataclasses.replace(gs[0], members=frozenset()),)
    all_kinds = [
        *reasons(DesiredState(groups=gs[:10]), actual(gs)),  # delete fraction
        *reasons(DesiredState(groups=gs[:1]), actual(gs), SafetyLimits(max_delete_fraction=1, max_deletes=5)),
        *reasons(DesiredState(groups=shrunk + gs[1:]), actual(gs)),  # member removals
        *reasons(DesiredState(), actual(gs, aus=(AdministrativeUnit("au:1", "A"),))),  # empty source
    ]
    assert len(all_kinds) >= 5
    named = {m for r in all_kinds for m in re.findall(r"safety\.(\w+)", r)}
    assert named == {"max_delete_fraction", "max_deletes", "max_member_removal_fraction"}
    assert named <= set(SECTIONS["safety"])
    assert all("--force" in r for r in all_kinds)
