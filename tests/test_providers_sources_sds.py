"""SDS CSV reader, checked with Microsoft's own samples (tests/fixtures/sds, MIT) and edits of them."""

from __future__ import annotations

import logging
import shutil
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from providers.sources import SourceOptions, read_source
from reconciler.errors import SourceError
from reconciler.school import SchoolData

SDS = Path(__file__).parent / "fixtures" / "sds"
OPTS = SourceOptions(upn_domain="contoso.example")
PASSWORDS = ("P@ssword", "P@ssw0rd")  # also covers "P@ssword123" (v2, v2.1)


def read(path: Path, options: SourceOptions = OPTS) -> SchoolData:
    return read_source("sds", path, options=options)


def copy(tmp_path: Path, name: str) -> Path:
    return Path(shutil.copytree(SDS / name, tmp_path / name))


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_bytes().decode()
    assert old in text, old
    path.write_bytes(text.replace(old, new, count).encode())


def learner_enrolments(data: SchoolData) -> int:
    return sum(len(c.learner_ids) for c in data.classes)


def teacher_entries(data: SchoolData) -> int:
    return sum(len(c.teacher_ids) for c in data.classes)


@pytest.fixture(scope="module")
def uk100() -> SchoolData:
    return read(SDS / "uk-100-users")


# -- Microsoft's samples: the verified figures (docs/external-data.md §2.1) ----------------------


def test_uk_100_users_figures(uk100: SchoolData) -> None:
    assert [s.id for s in uk100.schools] == ["10001", "10002"]
    assert [s.name for s in uk100.schools] == ["Contoso High School", "Fabrikam High School"]
    assert len(uk100.classes) == 28
    assert len({c.name for c in uk100.classes}) == 14  # names repeat across the two schools
    assert learner_enrolments(uk100) == 602
    assert teacher_entries(uk100) == 28
    roles = Counter(p.role for p in uk100.people)
    assert roles == {"learner": 86, "staff": 12}
    per_school = Counter((p.school_ids, p.role) for p in uk100.people)
    assert per_school == {
        (("10001",), "learner"): 60,
        (("10002",), "learner"): 26,
        (("10001",), "staff"): 7,
        (("10002",), "staff"): 5,
    }
    empty = [c.id for c in uk100.classes if not c.learner_ids]
    assert empty == [str(n) for n in range(11022, 11029)]
    assert all(len(c.teacher_ids) == 1 for c in uk100.classes)
    assert uk100.system == "sds"


def test_grade_gives_year_groups(uk100: SchoolData) -> None:
    sizes = Counter(p.year_group for p in uk100.people if p.role == "learner")
    assert sizes == {
        "10001-9": 21, "10001-10": 20, "10001-11": 10, "10001-12": 9,
        "10002-9": 9, "10002-10": 8, "10002-11": 5, "10002-12": 4,
    }  # fmt: skip
    names = {(y.id, y.school_id, y.name) for y in uk100.year_groups}
    assert ("10002-12", "10002", "Year 12") in names
    assert len(uk100.year_groups) == 8
    assert all(p.year_group is None for p in uk100.people if p.role == "staff")


def test_person_fields_and_defaults(uk100: SchoolData) -> None:
    ora = uk100.person("13001")
    assert (ora.ref, ora.given_name, ora.family_name, ora.display_name) == (
        "OKlein@contoso.example", "Ora", "Klein", "Ora Klein"
    )  # fmt: skip
    assert ora.email is None and ora.role == "learner"
    craig = uk100.person("14001")
    assert craig.role == "staff" and craig.employee_id == "101"
    algebra = next(c for c in uk100.classes if c.id == "11001")
    assert (algebra.name, algebra.subject, algebra.school_id, algebra.code) == (
        "Math - Algebra 1", "Math", "10001", "11001"
    )  # fmt: skip
    assert algebra.teacher_ids == ("14001",)


def test_academic_year_from_term_dates(uk100: SchoolData) -> None:
    # Term dates 7/1/2017 - 6/30/2018: the option is only a fallback
    assert uk100.academic_year == "2017-18"
    other = read(SDS / "uk-100-users", SourceOptions(upn_domain="contoso.example", academic_year="2026-27"))
    assert other.academic_year == "2017-18"


def test_us_column_names_give_the_same_model(uk100: SchoolData) -> None:
    assert read(SDS / "us-100-users") == uk100


@pytest.mark.parametrize("name", ["us-min-required", "uk-min-required"])
def test_min_required_attributes_load_with_defaults(name: str) -> None:
    data = read(SDS / name, SourceOptions(upn_domain="contoso.example", academic_year="2026-27"))
    assert data.academic_year == "2026-27"
    assert Counter(p.role for p in data.people) == {"learner": 22, "staff": 2}
    assert all(p.given_name == "" and p.year_group is None and p.email is None for p in data.people)
    assert all(p.display_name == "" for p in data.people)
    assert all(c.subject == "" and c.code == "" for c in data.classes)
    assert data.year_groups == ()
    expected = (2, 44, 2) if name.startswith("us") else (28, 154, 4)
    assert (len(data.classes), learner_enrolments(data), teacher_entries(data)) == expected


def test_min_required_without_academic_year_is_an_error() -> None:
    with pytest.raises(SourceError, match="academic year"):
        read(SDS / "us-min-required")


def test_2018_uk_set_adds_24_students_and_168_enrolments(uk100: SchoolData) -> None:
    new = read(SDS / "uk-2018")
    old_people, new_people = {p.id: p for p in uk100.people}, {p.id: p for p in new.people}
    added = set(new_people) - set(old_people)
    assert len(added) == 24 and not set(old_people) - set(new_people)
    assert {new_people[i].school_ids for i in added} == {("10002",)}
    assert all(new_people[i].role == "learner" for i in added)
    assert all(new_people[i] == p for i, p in old_people.items())  # the 86 + 12 are unchanged
    old_m = {(c.id, p) for c in uk100.classes for p in c.learner_ids}
    new_m = {(c.id, p) for c in new.classes for p in c.learner_ids}
    assert len(new_m - old_m) == 168 and not old_m - new_m
    assert {p for _, p in new_m - old_m} == added  # every add is one of the new students
    # the 7 sections that were empty are filled (20 each); the other 28 adds go to 11015-11021
    assert Counter(c for c, _ in new_m - old_m) == {
        **{str(n): 20 for n in range(11022, 11029)},
        **{str(n): 4 for n in range(11015, 11022)},
    }
    assert all(c.learner_ids for c in new.classes)
    assert [(c.id, c.name, c.teacher_ids) for c in new.classes] == [
        (c.id, c.name, c.teacher_ids) for c in uk100.classes
    ]
    assert new.schools == uk100.schools


# -- SDS v2 / v2.1 -------------------------------------------------------------------------------


def test_v21_only_school_orgs_become_schools_and_guardians_are_not_people() -> None:
    data = read(SDS / "v2.1")
    assert [(s.id, s.name) for s in data.schools] == [("110003", "School of TwoDotOne")]
    assert {p.id: p.role for p in data.people} == {
        "114001": "learner", "114003": "learner", "114004": "learner", "114007": "staff"
    }  # fmt: skip
    assert "114002" not in {p.id for p in data.people}  # guardian
    assert data.person("114007").school_ids == ("110003",)  # primary role is at the ministry
    assert data.person("114001").ref == "jcraig@classrmtest31.org"
    assert data.person("114001").year_group == "110003-10"
    [biology] = data.classes
    assert (biology.id, biology.name, biology.teacher_ids) == ("112002", "Biology 10", ("114007",))
    assert biology.learner_ids == ("114001", "114003", "114004")
    assert data.academic_year == "2021-22"  # from the schoolYear session's dates


def test_v2_roles_any_case_and_cross_org_enrolment() -> None:
    data = read(SDS / "v2", SourceOptions(academic_year="2026-27"))
    assert [s.id for s in data.schools] == ["10001", "10002"]
    algebra2 = next(c for c in data.classes if c.id == "11002")
    assert algebra2.teacher_ids == ("14002", "14008", "14009", "14010")  # teacher, Staff, Faculty, Aide
    assert "13007" in algebra2.learner_ids
    assert data.person("13007").school_ids == ("10001",)  # enrolled across orgs, still at 10001
    assert {c.id for c in data.classes} == {"11001", "11002"}  # the college's classes are skipped


# -- passwords ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["uk-100-users", "uk-2018", "v2.1"])
def test_passwords_never_reach_the_model(name: str) -> None:
    text = repr(read(SDS / name, SourceOptions(upn_domain="contoso.example", academic_year="2026-27")))
    assert not any(p in text for p in PASSWORDS)


def test_passwords_never_reach_errors_or_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    d = copy(tmp_path, "uk-100-users")
    edit(
        d / "Student.csv", "13002,10001,Beulah,McMillan,BMcMillan,", "13001,10001,Beulah,McMillan,BMcMillan,"
    )
    with pytest.raises(SourceError) as err:
        read(d)
    assert "13001" in str(err.value) and "line 3" in str(err.value)
    edit(d / "Student.csv", "13001,10001,Beulah,McMillan,BMcMillan,", "13002,10001,Beulah,McMillan,,")
    data = read(d, SourceOptions(upn_domain="contoso.example", skip_people_without_ref=True))
    assert "13002" not in {p.id for p in data.people}
    everything = str(err.value) + repr(data) + caplog.text
    assert not any(p in everything for p in PASSWORDS)


# -- references -----------------------------------------------------------------------------------


def test_username_without_domain_needs_upn_domain() -> None:
    with pytest.raises(SourceError) as err:
        read(SDS / "uk-100-users", SourceOptions())
    e = err.value
    assert e.file and e.file.endswith("Student.csv") and e.line == 2 and e.column == "Username"
    assert "upn_domain" in str(e)


def test_empty_username_is_an_error_naming_the_row(tmp_path: Path) -> None:
    d = copy(tmp_path, "uk-100-users")
    edit(d / "Teacher.csv", "14002,10001,Daisy,Todd,DTodd,", "14002,10001,Daisy,Todd,,")
    with pytest.raises(SourceError) as err:
        read(d)
    assert (err.value.line, err.value.column) == (3, "Username")
    assert "14002" in str(err.value) and "skip_people_without_ref" in str(err.value)


def test_skipped_people_leave_every_group(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    d = copy(tmp_path, "uk-100-users")
    edit(d / "Teacher.csv", "14001,10001,Craig,Beane,CBeane,", "14001,10001,Craig,Beane,,")
    data = read(d, SourceOptions(upn_domain="contoso.example", skip_people_without_ref=True))
    assert "14001" not in {p.id for p in data.people}
    assert not any("14001" in c.teacher_ids for c in data.classes)
    assert "skipping person 14001" in caplog.text


def test_ref_field_email_uses_secondary_email(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="Secondary Email"):
        read(SDS / "uk-100-users", SourceOptions(ref_field="email"))
    d = copy(tmp_path, "us-min-required")
    rows = (d / "Student.csv").read_text().splitlines()
    out = [rows[0] + ",Secondary Email"] + [f"{r},{r.split(',')[2]}@mail.example" for r in rows[1:]]
    (d / "Student.csv").write_text("\n".join(out) + "\n")
    (d / "Teacher.csv").write_text(
        "SIS ID,School SIS ID,Username,Secondary Email\n14001,10001,CBeane,cb@x.example\n"
    )
    (d / "TeacherRoster.csv").write_text("Section SIS ID,SIS ID\n11001,14001\n")
    data = read(d, SourceOptions(ref_field="email", academic_year="2026-27"))
    assert data.person("13001").ref == "OKlein@mail.example"


def test_duplicate_reference_is_an_error(tmp_path: Path) -> None:
    d = copy(tmp_path, "uk-100-users")
    edit(d / "Student.csv", ",BMcMillan,", ",oklein,")
    with pytest.raises(SourceError, match="used by person '13001'"):
        read(d)


# -- bad files ------------------------------------------------------------------------------------


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    d = copy(tmp_path, "uk-100-users")
    (d / "TeacherRoster.csv").unlink()
    with pytest.raises(SourceError, match=r"TeacherRoster\.csv is missing"):
        read(d)


def test_missing_required_column_names_file_and_column(tmp_path: Path) -> None:
    d = copy(tmp_path, "uk-100-users")
    edit(d / "Section.csv", "Section Name", "Title")
    with pytest.raises(SourceError) as err:
        read(d)
    assert err.value.file and err.value.file.endswith("Section.csv")
    assert (err.value.line, err.value.column) == (1, "Section Name")


def test_enrolment_of_unknown_student_names_line_and_column(tmp_path: Path) -> None:
    d = copy(tmp_path, "uk-100-users")
    edit(d / "StudentEnrollment.csv", "11003,13001", "11003,99999")
    with pytest.raises(SourceError) as err:
        read(d)
    assert (err.value.line, err.value.column) == (3, "ID") and "99999" in str(err.value)


def test_enrolment_in_unknown_section(tmp_path: Path) -> None:
    d = copy(tmp_path, "uk-100-users")
    edit(d / "TeacherRoster.csv", "11002,14002", "19999,14002")
    with pytest.raises(SourceError, match="unknown section '19999'") as err:
        read(d)
    assert err.value.column == "Section ID"


def test_teacher_in_student_enrolment_is_an_error(tmp_path: Path) -> None:
    d = copy(tmp_path, "uk-100-users")
    edit(d / "StudentEnrollment.csv", "11003,13001", "11003,14001")
    with pytest.raises(SourceError, match="unknown student '14001'"):
        read(d)


def test_duplicate_section_id(tmp_path: Path) -> None:
    d = copy(tmp_path, "us-100-users")
    edit(d / "Section.csv", "11002,10001,Math - Algebra 2", "11001,10001,Math - Algebra 2")
    with pytest.raises(SourceError, match="section id '11001' also on line 2") as err:
        read(d)
    assert err.value.line == 3 and err.value.column == "SIS ID"


@pytest.mark.parametrize("setup", ["missing", "empty-dir", "no-sds-files", "empty-file", "header-only"])
def test_missing_or_empty_source_is_an_error(tmp_path: Path, setup: str) -> None:
    d = tmp_path / "src"
    if setup != "missing":
        d.mkdir()
    if setup == "no-sds-files":
        (d / "other.csv").write_text("a,b\n1,2\n")
    if setup in ("empty-file", "header-only"):
        shutil.copytree(SDS / "us-min-required", d, dirs_exist_ok=True)
    if setup == "empty-file":
        (d / "Student.csv").write_text("")
    if setup == "header-only":
        for f in ("Student.csv", "Teacher.csv", "StudentEnrollment.csv", "TeacherRoster.csv"):
            (d / f).write_text((d / f).read_text().splitlines()[0] + "\n")
    with pytest.raises(SourceError):
        read(d, SourceOptions(upn_domain="x.example", academic_year="2026-27"))


# -- CSV variants ---------------------------------------------------------------------------------


def test_bom_lf_header_and_file_name_variants_read_the_same(tmp_path: Path, uk100: SchoolData) -> None:
    d = copy(tmp_path, "uk-100-users")
    for f in list(d.iterdir()):
        text = f.read_bytes().decode().replace("\r\n", "\n")
        head, _, body = text.partition("\n")
        head = (
            head.lower()
            .replace("school dfe number", "School_DfE_Number ")
            .replace("section id", "SECTION-ID")
        )
        f.unlink()
        (d / f.name.lower()).write_bytes(b"\xef\xbb\xbf" + (head + "\n" + body).encode())
    assert read(d) == uk100


def test_zip_with_one_top_folder(tmp_path: Path, uk100: SchoolData) -> None:
    z = tmp_path / "sds.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in sorted((SDS / "uk-100-users").iterdir()):
            zf.write(f, f"export/{f.name}")
    assert read(z) == uk100


def test_output_is_sorted_and_repeatable(uk100: SchoolData) -> None:
    assert [c.id for c in uk100.classes] == sorted(c.id for c in uk100.classes)
    assert [p.id for p in uk100.people] == sorted(p.id for p in uk100.people)
    assert all(list(c.learner_ids) == sorted(c.learner_ids) for c in uk100.classes)
    assert read(SDS / "uk-100-users") == uk100


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    d = copy(tmp_path, "uk-100-users")
    edit(d / "Teacher.csv", "Daisy", "Zoë")
    (d / "Teacher.csv").write_bytes((d / "Teacher.csv").read_bytes().decode().encode("cp1252"))
    with pytest.raises(SourceError, match="not UTF-8") as err:
        read(d)
    assert err.value.line == 3
