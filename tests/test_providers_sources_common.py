"""The model every reader builds (``ModelBuilder``): what ``finish`` cleans, sorts and keeps."""

from __future__ import annotations

from providers.sources import SourceOptions
from providers.sources.common import ModelBuilder
from reconciler.school import Class, MentorGroup, Person, School

RLO, PDF = "\u202e", "\u202c"


def builder() -> ModelBuilder:
    out = ModelBuilder("oneroster", SourceOptions())
    out.schools["s2"] = School(id="s2", name="Birch")
    out.schools["s1"] = School(id="s1", name=f"Oak{RLO}")
    return out


def person(pid: str, given: str = "Amy", schools: tuple[str, ...] = ("s1",)) -> Person:
    return Person(
        id=pid, ref=f"{pid}@oak.example", role="learner", school_ids=schools, given_name=given,
        display_name=f"{given} X",
    )  # fmt: skip


def test_finish_keeps_clean_objects_as_they_are_and_sorts_by_id() -> None:
    out = builder()
    amy, ben = person("p2"), person("p1", "Ben")
    out.add_person(amy, "here")
    out.add_person(ben, "there")
    out.classes["c1"] = maths = Class(id="c1", school_id="s1", name="7A Maths", learner_ids=("p1", "p2"))
    data = out.finish("2026-27", "Trust", "src")
    assert data.people == (ben, amy)
    assert data.people[0] is ben and data.classes[0] is maths  # nothing to change: not copied
    assert [s.name for s in data.schools] == ["Oak", "Birch"]  # sorted by id, cleaned


def test_finish_removes_bidi_controls_and_sorts_lists_wherever_they_are() -> None:
    out = builder()
    out.add_person(person("p1", f"A{RLO}my"), "here")
    out.add_person(person("p2", "Ben", schools=("s2", "s1", "s2")), "there")
    out.add_person(person("p3", "Cy"), "there")
    out.skipped.add("gone")
    out.classes["c1"] = Class(
        id="c1", school_id="s1", name="7A Maths", code=f"7A{PDF}-Ma", learner_ids=("p3", "gone", "p1", "p3")
    )
    out.classes["c2"] = Class(id="c2", school_id="s1", name="7A Art")
    out.mentor_groups["m1"] = MentorGroup(id="m1", school_id="s1", name=f"7{RLO}X", mentor_ids=("p2",))
    data = out.finish("2026-27", f"Trust{RLO}", "src")
    amy, ben, cy = data.people
    assert (amy.given_name, amy.display_name) == ("Amy", "Amy X")
    assert ben.school_ids == ("s1", "s2")
    assert cy.given_name == "Cy"
    assert data.classes[0].code == "7A-Ma" and data.classes[0].learner_ids == ("p1", "p3")
    assert data.mentor_groups[0].name == "7X"
    assert data.organisation == "Trust"
