"""The generator: school model + configuration -> desired state."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entra_sync.config.load import loads_config
from reconciler.document.load import validate_document
from reconciler.document.parse import desired_to_document
from reconciler.document.rules import mail_nickname_problem
from reconciler.errors import ConfigError, SourceError
from reconciler.generate.generator import Generated, generate, key_part
from reconciler.generate.naming import short_hash
from reconciler.model import EducationClass
from reconciler.school import Class, MentorGroup, Person, School, SchoolData, YearGroup
from reconciler.settings import Config

FIXTURES = Path(__file__).resolve().parent / "fixtures"
AT = "2026-09-01T04:00:00Z"


def person(pid: str, role: str, school: str, year: str | None = None, ref: str | None = None) -> Person:
    return Person(
        id=pid,
        ref=f"{pid}@oak.example" if ref is None else ref,
        role=role,  # type: ignore[arg-type]
        school_ids=(school,),
        year_group=year,
    )


def school_data() -> SchoolData:
    """Two schools; the same class names in both (as in Microsoft's SDS sample)."""
    people = [
        person("t1", "staff", "S1"),
        person("t2", "staff", "S1"),
        person("t3", "staff", "S2"),
        person("m1", "staff", "S1"),
        person("l1", "learner", "S1", "7"),
        person("l2", "learner", "S1", "7"),
        person("l3", "learner", "S1", "8"),
        person("l4", "learner", "S2", "7"),
        person("l5", "learner", "S2", "9"),  # year 9 is not listed for S2: made up
    ]
    classes = [
        Class("c1", "S1", "Math - Algebra 1", teacher_ids=("t1",), learner_ids=("l1", "l2")),
        Class("c2", "S1", "English 1", teacher_ids=("t2",), learner_ids=("l3",)),
        Class("c3", "S2", "Math - Algebra 1", teacher_ids=("t3",), learner_ids=("l4", "l5")),
        Class("c4", "S2", "English 1", learner_ids=("l4",)),  # no teacher: no owner
    ]
    mentors = [MentorGroup("7X", "S1", "7X", mentor_ids=("m1",), learner_ids=("l1", "l2"), year_group="7")]
    return SchoolData(
        academic_year="2026-27",
        schools=(School("S1", "Oak Academy", "Oak"), School("S2", "Elm School")),
        people=tuple(people),
        year_groups=(
            YearGroup("7", "S1", "Year 7"),
            YearGroup("8", "S1", "Year 8"),
            YearGroup("7", "S2", "Y7"),
        ),
        mentor_groups=tuple(mentors),
        classes=tuple(classes),
        system="realsmart",
        organisation="Tree Trust",
    )


def config(text: str = "") -> Config:
    return loads_config(text, file="/srv/entra-sync.toml")


def run(text: str = "", data: SchoolData | None = None) -> Generated:
    return generate(data or school_data(), config(text), generated_at=AT)


def by_key(result: Generated) -> dict[str, object]:
    d = result.desired
    return {o.key: o for o in (*d.administrative_units, *d.groups, *d.teams)}


def assert_valid(result: Generated) -> None:
    assert validate_document(desired_to_document(result.desired)) == []


# -- groups ------------------------------------------------------------------------------------------


def test_class_groups_teachers_own_learners_and_teachers_are_members() -> None:
    groups = {g.key: g for g in run().desired.groups}
    c1 = groups["class:S1:2026-27:c1"]
    assert c1.kind == "microsoft365"
    assert c1.owners == {"t1@oak.example"}
    assert c1.members == {"t1@oak.example", "l1@oak.example", "l2@oak.example"}
    assert c1.display_name == "Oak Math - Algebra 1 (2026-27)"
    assert c1.description == "Class Math - Algebra 1 at Oak Academy, academic year 2026-27"
    # an education class: Graph gives a class hidden membership
    assert c1.visibility == "HiddenMembership"
    assert c1.education == EducationClass(
        external_id="class:S1:2026-27:c1", class_code=None, external_name="Math - Algebra 1", term="2026-27"
    )
    assert c1.administrative_units == {"au:S1:classes"}


def test_mentor_groups_mentors_own_learners_and_mentors_are_members() -> None:
    groups = {g.key: g for g in run().desired.groups}
    m = groups["mentor:S1:2026-27:7X"]
    assert m.owners == {"m1@oak.example"}
    assert m.members == {"m1@oak.example", "l1@oak.example", "l2@oak.example"}
    assert m.display_name == "Oak mentor group 7X (2026-27)"
    assert m.mail_nickname == f"mentor-7x-2026-27-{short_hash('mentor:S1:2026-27:7X')}"
    assert m.education is None  # a plain Microsoft 365 group (its Team template is "standard")
    assert m.visibility == "Private"
    assert m.administrative_units == {"au:S1:mentor-groups"}


def test_class_groups_are_plain_groups_when_education_classes_are_off() -> None:
    result = run('[sync]\neducation_classes = false\nclass_team_template = "standard"\n')
    c1 = {g.key: g for g in result.desired.groups}["class:S1:2026-27:c1"]
    assert c1.education is None
    assert c1.visibility == "Private"
    assert_valid(result)


def test_mentor_groups_are_classes_only_when_their_team_template_is_educationclass() -> None:
    result = run(
        '[sync]\nteams = true\nteams_for = ["mentor_groups"]\nmentor_team_template = "educationClass"\n'
    )
    m = {g.key: g for g in result.desired.groups}["mentor:S1:2026-27:7X"]
    assert m.education == EducationClass(
        external_id="mentor:S1:2026-27:7X", external_name="7X", term="2026-27"
    )
    assert m.visibility == "HiddenMembership"
    assert [t.template for t in result.desired.teams] == ["educationClass"] * len(result.desired.teams)


def test_the_education_properties_survive_the_document_round_trip() -> None:
    from reconciler.document.parse import parse_desired

    result = run()
    doc = desired_to_document(result.desired)
    c1 = next(g for g in doc["groups"] if g["key"] == "class:S1:2026-27:c1")
    assert c1["education"] == {
        "externalId": "class:S1:2026-27:c1", "externalName": "Math - Algebra 1", "term": "2026-27"
    }
    assert parse_desired(doc) == result.desired
    assert_valid(result)


def test_a_nickname_depends_only_on_its_own_group() -> None:
    """Removing a school's class never changes another class's nickname (a hash of its own key)."""
    full = {g.key: g.mail_nickname for g in run().desired.groups}
    data = school_data()
    fewer = replace(data, classes=tuple(c for c in data.classes if c.school_id != "S2"))
    after = {g.key: g.mail_nickname for g in run(data=fewer).desired.groups}
    assert after and all(full[k] == n for k, n in after.items())


def test_keys_carry_school_and_academic_year() -> None:
    keys = {g.key for g in run().desired.groups}
    assert keys == {
        "class:S1:2026-27:c1",
        "class:S1:2026-27:c2",
        "class:S2:2026-27:c3",
        "class:S2:2026-27:c4",
        "mentor:S1:2026-27:7X",
    }
    assert all("2026-27" in g.mail_nickname for g in run().desired.groups)


def test_a_new_academic_year_makes_new_keys_and_names() -> None:
    result = run(data=replace(school_data(), academic_year="2027-28"))
    assert {g.key for g in result.desired.groups} >= {"class:S1:2027-28:c1", "mentor:S1:2027-28:7X"}
    assert all("2027-28" in g.display_name and "2027-28" in g.mail_nickname for g in result.desired.groups)
    assert result.desired.source.academic_year == "2027-28"


def test_config_academic_year_overrides_the_source() -> None:
    result = run('[source]\nkind = "sds"\npath = "x"\nacademic_year = "2030-31"\n')
    assert "class:S1:2030-31:c1" in by_key(result)


def test_bad_academic_year_is_an_error_naming_the_setting() -> None:
    with pytest.raises(SourceError, match=r"academic_year in \[source\]"):
        run(data=replace(school_data(), academic_year="SY1516"))


def test_ids_with_separators_are_encoded_in_keys() -> None:
    data = school_data()
    data = replace(data, classes=(replace(data.classes[0], id="7A:Ma 1/2"),))
    result = run(data=data)
    assert "class:S1:2026-27:7A%3AMa%201%2F2" in by_key(result)
    assert key_part("7A-Ma1") == "7A-Ma1"
    assert_valid(result)


# -- mailNicknames -----------------------------------------------------------------------------------


def test_repeated_names_across_schools_get_unique_legal_nicknames() -> None:
    """Microsoft's SDS sample: 14 section names repeated across 2 schools."""
    names = [f"Subject {i} - Level {i % 3}" for i in range(14)]
    schools = (School("10001", "Contoso High"), School("10002", "Fabrikam High"))
    people = [person("t", "staff", "10001"), person("u", "staff", "10002")]
    classes = [
        Class(f"{s.id}-{i}", s.id, name, teacher_ids=("t" if s.id == "10001" else "u",))
        for s in schools
        for i, name in enumerate(names)
    ]
    data = SchoolData("2017-18", schools, tuple(people), classes=tuple(classes), system="sds")
    result = run('[naming.class_group]\nmail_nickname = "{{ class.name }}"\n', data)
    nicknames = [g.mail_nickname for g in result.desired.groups]
    assert len(nicknames) == 28
    assert len({n.casefold() for n in nicknames}) == 28
    assert all(mail_nickname_problem(n) is None for n in nicknames)
    groups = {g.key: g.mail_nickname for g in result.desired.groups}
    # the two schools' same-named classes get a hash of their own key (never the other's school)
    for key in ("class:10001:2017-18:10001-0", "class:10002:2017-18:10002-0"):
        assert groups[key] == f"Subject-0-Level-0-{short_hash(key)}"
    assert_valid(result)


def test_collisions_inside_one_school_fall_back_to_a_hash_of_the_key() -> None:
    data = school_data()
    data = replace(
        data,
        classes=(
            Class("a", "S1", "Same", teacher_ids=("t1",)),
            Class("b", "S1", "Same", teacher_ids=("t1",)),
            Class("c", "S1", "Other", teacher_ids=("t1",)),
        ),
    )
    result = run('[naming.class_group]\nmail_nickname = "{{ class.name }}"\n', data)
    nicks = {g.key: g.mail_nickname for g in result.desired.groups}
    assert nicks["class:S1:2026-27:c"] == "Other"  # uninvolved groups keep their nickname
    a, b = nicks["class:S1:2026-27:a"], nicks["class:S1:2026-27:b"]
    assert a == f"Same-{short_hash('class:S1:2026-27:a')}" and b == f"Same-{short_hash('class:S1:2026-27:b')}"
    assert_valid(result)


def test_nickname_collisions_ignore_case() -> None:
    data = replace(
        school_data(),
        classes=(Class("a", "S1", "abc", teacher_ids=("t1",)), Class("b", "S2", "ABC", teacher_ids=("t3",))),
    )
    result = run('[naming.class_group]\nmail_nickname = "{{ class.name }}"\n', data)
    assert sorted(g.mail_nickname for g in result.desired.groups if g.key.startswith("class")) == sorted([
        f"ABC-{short_hash('class:S2:2026-27:b')}",
        f"abc-{short_hash('class:S1:2026-27:a')}",
    ])


def test_long_and_unicode_names_still_give_legal_nicknames() -> None:
    data = replace(
        school_data(),
        classes=(Class("a", "S1", "Ünïcödé " * 20, teacher_ids=("t1",)), Class("b", "S1", "日本語")),
    )
    result = run('[naming.class_group]\nmail_nickname = "{{ class.name }}"\n', data)
    for g in result.desired.groups:
        assert mail_nickname_problem(g.mail_nickname) is None
    assert_valid(result)


# -- administrative units -----------------------------------------------------------------------------


def test_administrative_units_per_school() -> None:
    units = {a.key: a for a in run().desired.administrative_units}
    assert set(units) == {
        "au:S1:mentors",
        "au:S1:learners",
        "au:S1:year-7",
        "au:S1:year-8",
        "au:S1:classes",
        "au:S1:mentor-groups",
        "au:S2:learners",
        "au:S2:year-7",
        "au:S2:year-9",
        "au:S2:classes",
    }
    assert units["au:S1:mentors"].members == {"m1@oak.example"}
    assert units["au:S1:learners"].members == {"l1@oak.example", "l2@oak.example", "l3@oak.example"}
    assert units["au:S1:year-7"].members == {"l1@oak.example", "l2@oak.example"}
    assert units["au:S1:year-7"].display_name == "Oak Academy - Year 7"
    assert units["au:S2:year-7"].display_name == "Elm School - Y7"
    assert units["au:S2:year-9"].display_name == "Elm School - Year 9"  # made up from the learner
    assert units["au:S2:year-9"].members == {"l5@oak.example"}
    assert units["au:S1:classes"].members == frozenset()


def test_groups_are_not_placed_when_disabled() -> None:
    result = run("[sync]\ngroup_administrative_units = false\n")
    assert all(not g.administrative_units for g in result.desired.groups)
    assert not any(
        a.key.endswith((":classes", ":mentor-groups")) for a in result.desired.administrative_units
    )


# -- switches ------------------------------------------------------------------------------------------


def test_switches_groups_off() -> None:
    result = run("[sync]\ngroups = false\n")
    assert result.desired.groups == () and result.desired.teams == ()
    assert {a.key for a in result.desired.administrative_units} >= {"au:S1:learners"}
    assert not any(a.key.endswith(":classes") for a in result.desired.administrative_units)


def test_switches_administrative_units_off() -> None:
    result = run("[sync]\nadministrative_units = false\n")
    assert result.desired.administrative_units == ()
    assert all(not g.administrative_units for g in result.desired.groups)
    assert_valid(result)


def test_teams_are_off_by_default() -> None:
    assert run().desired.teams == ()


def test_teams_for_classes_with_the_class_template() -> None:
    result = run("[sync]\nteams = true\n")
    teams = {t.key: t for t in result.desired.teams}
    assert set(teams) == {"team:class:S1:2026-27:c1", "team:class:S1:2026-27:c2", "team:class:S2:2026-27:c3"}
    assert teams["team:class:S1:2026-27:c1"].group == "class:S1:2026-27:c1"
    assert teams["team:class:S1:2026-27:c1"].template == "educationClass"


def test_class_without_owner_gets_no_team_and_a_warning() -> None:
    result = run("[sync]\nteams = true\n")
    assert "team:class:S2:2026-27:c4" not in by_key(result)
    assert "class:S2:2026-27:c4" in by_key(result)  # the group itself is still made
    warnings = [w for w in result.warnings if w.code == "teamWithoutOwner"]
    assert [w.key for w in warnings] == ["class:S2:2026-27:c4"]


def test_teams_for_mentor_groups_with_their_template() -> None:
    result = run('[sync]\nteams = true\nteams_for = ["mentor_groups"]\nmentor_team_template = "standard"\n')
    assert [(t.key, t.template) for t in result.desired.teams] == [("team:mentor:S1:2026-27:7X", "standard")]
    assert_valid(result)


def test_policy_and_user_match_come_from_the_config() -> None:
    result = run('[removal]\ngroups = "keep"\nteams = "keep"\n[users]\nmatch = "mail"\n')
    assert result.desired.policy.groups == "keep" and result.desired.policy.teams == "keep"
    assert result.desired.user_match == "mail"
    assert result.desired.source.system == "realsmart"
    assert result.desired.source.generated_at == AT


# -- people ------------------------------------------------------------------------------------------


def test_people_without_reference_are_left_out_with_a_warning() -> None:
    data = school_data()
    people = tuple(replace(p, ref="") if p.id == "l2" else p for p in data.people)
    result = run(data=replace(data, people=people))
    assert "l2@oak.example" not in result.desired.people()
    assert [w.code for w in result.warnings if "l2" in w.message] == ["personWithoutReference"]
    assert_valid(result)


def test_malformed_reference_is_left_out_with_a_warning() -> None:
    data = school_data()
    people = tuple(replace(p, ref="not an address") if p.id == "l1" else p for p in data.people)
    result = run(data=replace(data, people=people))
    assert any(w.code == "invalidUserReference" for w in result.warnings)
    assert_valid(result)


def test_ids_that_name_nobody_are_warned_about() -> None:
    data = school_data()
    data = replace(data, classes=(replace(data.classes[0], learner_ids=("l1", "ghost")),))
    result = run(data=data)
    assert any(w.code == "unknownPerson" and "ghost" in w.message for w in result.warnings)


def test_references_are_normalised() -> None:
    data = school_data()
    people = tuple(replace(p, ref="  T1@Oak.Example ") if p.id == "t1" else p for p in data.people)
    groups = {g.key: g for g in run(data=replace(data, people=people)).desired.groups}
    assert groups["class:S1:2026-27:c1"].owners == {"t1@oak.example"}


def test_reference_template_builds_references() -> None:
    result = run('[users]\nreference = "{{ person.id }}@{{ school.id | lower }}.example"\n')
    assert "l1@s1.example" in result.desired.people()


def test_empty_data_is_an_error_never_remove_everyone() -> None:
    with pytest.raises(SourceError, match="no people"):
        run(data=replace(school_data(), people=()))
    with pytest.raises(SourceError, match="no schools"):
        run(data=replace(school_data(), schools=()))


def test_duplicate_class_ids_are_an_error() -> None:
    data = school_data()
    with pytest.raises(SourceError, match="same key"):
        run(data=replace(data, classes=(data.classes[0], data.classes[0])))


def test_ids_differing_only_in_case_are_an_error() -> None:
    data = school_data()
    with pytest.raises(SourceError, match="ignore case"):
        run(data=replace(data, classes=(data.classes[0], replace(data.classes[0], id="C1"))))


def test_undefined_attribute_at_render_names_the_naming_key() -> None:
    with pytest.raises(ConfigError) as err:
        run('[naming.mentor_group]\ndisplay_name = "{{ group.tutor }}"\n')
    assert "naming.mentor_group.display_name" in str(err.value)
    assert "mentor:S1:2026-27:7X" in str(err.value)


def test_empty_rendered_name_falls_back_with_a_warning() -> None:
    result = run('[naming.class_group]\ndisplay_name = "{{ class.code }}"\n')
    groups = {g.key: g for g in result.desired.groups}
    assert groups["class:S1:2026-27:c1"].display_name == "Math - Algebra 1"
    assert any(w.code == "emptyName" for w in result.warnings)


# -- determinism and validity --------------------------------------------------------------------------


def test_output_is_deterministic_whatever_the_input_order() -> None:
    data = school_data()
    first = json.dumps(desired_to_document(run("[sync]\nteams = true\n", data).desired), sort_keys=True)
    rng = random.Random(7)
    for _ in range(5):
        shuffled = replace(
            data,
            people=tuple(rng.sample(data.people, len(data.people))),
            classes=tuple(rng.sample(data.classes, len(data.classes))),
            schools=tuple(rng.sample(data.schools, len(data.schools))),
        )
        again = run("[sync]\nteams = true\n", shuffled)
        assert json.dumps(desired_to_document(again.desired), sort_keys=True) == first
        assert again.warnings == run("[sync]\nteams = true\n", data).warnings


def test_full_output_validates() -> None:
    assert_valid(run('[sync]\nteams = true\nteams_for = ["classes", "mentor_groups"]\n'))


def test_sds_sample_gives_28_valid_class_groups_with_unique_nicknames() -> None:
    sources = pytest.importorskip("providers.sources")
    data = sources.read_source(
        "sds",
        FIXTURES / "sds" / "uk-100-users",
        options=sources.SourceOptions(academic_year="2017-18", upn_domain="school.example"),
    )
    result = generate(
        data, config('[sync]\nteams = true\n[naming.class_group]\nmail_nickname = "{{ class.name }}"\n')
    )
    groups = result.desired.groups
    assert len(groups) == 28
    assert len({g.mail_nickname.casefold() for g in groups}) == 28
    assert sum(len(g.members - g.owners) for g in groups) == 602
    assert sum(len(g.owners) for g in groups) == 28
    assert len(result.desired.teams) == 28
    assert_valid(result)


def test_bundled_realsmart_example_validates() -> None:
    sources = pytest.importorskip("providers.sources")
    from providers.sources.realsmart import example_export_path

    data = sources.read_source("realsmart", example_export_path())
    result = generate(data, config('[sync]\nteams = true\nteams_for = ["classes", "mentor_groups"]\n'))
    assert result.desired.groups and result.desired.administrative_units and result.desired.teams
    assert_valid(result)


names = st.text(alphabet=st.sampled_from("Aaé .-_:@7"), min_size=0, max_size=12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["S1", "S2"]), names, names), min_size=1, max_size=25))
def test_any_names_give_unique_legal_nicknames_and_a_valid_document(rows: list[tuple[str, str, str]]) -> None:
    schools = (School("S1", "Oak"), School("S2", "Elm"))
    people = (person("t", "staff", "S1"),)
    classes = tuple(
        Class(f"c{i}", school, name, code=code, teacher_ids=("t",))
        for i, (school, name, code) in enumerate(rows)
    )
    data = SchoolData("2026-27", schools, people, classes=classes)
    result = run(
        '[sync]\nteams = true\n[naming.class_group]\nmail_nickname = "{{ class.code }}{{ class.name }}"\n',
        data,
    )
    nicknames = [g.mail_nickname.casefold() for g in result.desired.groups]
    assert len(set(nicknames)) == len(rows)
    assert all(mail_nickname_problem(g.mail_nickname) is None for g in result.desired.groups)
    assert_valid(result)
    assert result == run(
        '[sync]\nteams = true\n[naming.class_group]\nmail_nickname = "{{ class.code }}{{ class.name }}"\n',
        replace(data, classes=classes[::-1]),
    )
