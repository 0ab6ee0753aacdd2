"""A small school whose plan uses every kind of change; shared by the plan and renderer tests."""

from __future__ import annotations

from reconciler.model import (
    ActualState,
    AdministrativeUnit,
    DesiredState,
    Group,
    Team,
    UnmanagedObject,
)
from reconciler.plan.diff import diff
from reconciler.plan.model import Plan

PUPILS = [f"pupil{i:02}@oak.example" for i in range(30)]
STAFF = ["t.adams@oak.example", "t.brown@oak.example", "t.clark@oak.example"]
USERS = {ref: f"00000000-0000-0000-0000-{i:012d}" for i, ref in enumerate([*PUPILS, *STAFF])}


def fs(refs: list[str]) -> frozenset[str]:
    return frozenset(refs)


def sample_desired() -> DesiredState:
    return DesiredState(
        administrative_units=(
            AdministrativeUnit("au:OAK:year-7", "Oak Academy - Year 7", "Year 7 learners", fs(PUPILS[:20])),
            AdministrativeUnit("au:OAK:year-8", "Oak Academy - Year 8", None, fs(PUPILS[8:])),
        ),
        groups=(
            Group("class:OAK:2026-27:7A-Ma1", "7A Maths (2026-27)", "oak-2627-7a-ma1", "microsoft365",
                  "Year 7 set 1 maths", "Private", fs(STAFF[:1]),
                  fs([*PUPILS[:14], "new.pupil@oak.example"]), fs(["au:OAK:year-7"])),
            Group("class:OAK:2026-27:7A-En1", "7A English | Set 1", "oak-2627-7a-en1", "microsoft365", None,
                  "Private", fs(STAFF[1:2]), fs(PUPILS[5:10]), fs(["au:OAK:year-7"])),
            Group("class:OAK:2026-27:8B-Sc1", "8B Science", "oak-2627-8b-sc1", "microsoft365", None,
                  "Private", fs(STAFF[2:]), fs(PUPILS[20:25])),
            Group("mentor:OAK:7R", "Mentor group 7R", "oak-mentor-7r", "security", None, "Private",
                  fs(STAFF[:1]), fs(PUPILS[:3])),
        ),
        teams=(
            Team("team:class:OAK:2026-27:7A-Ma1", "class:OAK:2026-27:7A-Ma1", "educationClass"),
            Team("team:class:OAK:2026-27:8B-Sc1", "class:OAK:2026-27:8B-Sc1", "educationClass"),
            Team("team:class:OAK:2026-27:7A-En1", "class:OAK:2026-27:7A-En1", "educationClass"),
        ),
    )


def sample_actual() -> ActualState:
    ma = Group("class:OAK:2026-27:7A-Ma1", "7A Maths", "oak-2627-7a-ma1", "microsoft365", None, "Public",
               fs(STAFF[1:2]), fs(PUPILS[2:18]), fs(["au:OAK:year-8"]))
    old = Group("class:OAK:2025-26:6A-Ma1", "6A Maths (2025-26)", "oak-2526-6a-ma1", "microsoft365", None,
                "Private", fs(STAFF[:1]), fs(PUPILS[:4]))
    sci = Group("class:OAK:2026-27:8B-Sc1", "8B Science", "oak-2627-8b-sc1", "microsoft365", None, "Private",
                fs(STAFF[2:]), fs(PUPILS[20:25]))
    old_mentor = Group("mentor:OAK:6R", "Mentor group 6R", "oak-mentor-6r", "security", None, "Private",
                       fs(STAFF[:1]), fs(PUPILS[:2]))
    aus = {
        "au:OAK:year-7": AdministrativeUnit("au:OAK:year-7", "Oak Year 7", None, fs(PUPILS[:18])),
        "au:OAK:year-8": AdministrativeUnit("au:OAK:year-8", "Oak Academy - Year 8", None, fs(PUPILS[20:])),
        "au:OAK:year-6": AdministrativeUnit("au:OAK:year-6", "Oak Academy - Year 6", None, fs(PUPILS[:2])),
    }
    groups = {g.key: g for g in (ma, old, sci, old_mentor)}
    teams = {
        ma.key: Team("team:" + ma.key, ma.key),
        old.key: Team("team:" + old.key, old.key),
        sci.key: Team("team:" + sci.key, sci.key, archived=True),
    }
    ids = {key: f"11111111-0000-0000-0000-{i:012d}" for i, key in enumerate(sorted([*aus, *groups]))}
    ids.update({t.key: ids[t.group] for t in teams.values()})
    unmanaged = (UnmanagedObject("group", "99999999-0000-0000-0000-000000000001", "Mentor Group 7R",
                                 "oak-mentor-7r"),)
    return ActualState(administrative_units=aus, groups=groups, teams=teams, ids=ids, users=USERS,
                       unmanaged=unmanaged)


def sample_plan() -> Plan:
    return diff(sample_desired(), sample_actual())
