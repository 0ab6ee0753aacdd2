"""OneRoster 1.1 / 1.2 CSV reader, on sets we wrote ourselves (tests/fixtures/oneroster)."""

from __future__ import annotations

import logging
import shutil
import zipfile
from pathlib import Path

import pytest

from providers.sources import SourceOptions, read_source
from reconciler.errors import SourceError
from reconciler.school import SchoolData

OR = Path(__file__).parent / "fixtures" / "oneroster"


def read(path: Path, options: SourceOptions | None = None) -> SchoolData:
    return read_source("oneroster", path, options=options or SourceOptions())


def copy(tmp_path: Path, name: str = "v1.1") -> Path:
    return Path(shutil.copytree(OR / name, tmp_path / name))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def header_only(path: Path) -> None:
    path.write_text(path.read_text().splitlines()[0] + "\n")


@pytest.fixture(scope="module")
def v11() -> SchoolData:
    return read(OR / "v1.1")


def test_schools_are_school_orgs_only(v11: SchoolData) -> None:
    # the district and the department are not schools; the tobedeleted school is absent
    assert [(s.id, s.name) for s in v11.schools] == [
        ("org-elm", "Elmbridge School"),
        ("org-oak", "Oakfield Academy"),
    ]
    assert v11.system == "oneroster" and v11.organisation == "Oakfield Learning Trust"  # the district


def test_people_roles_and_removal_by_omission(v11: SchoolData) -> None:
    roles = {p.id: p.role for p in v11.people}
    assert roles == {
        "t-patel": "staff", "t-jones": "staff", "t-okafor": "staff",  # teacher, teacher, aide
        "s-khan": "learner", "s-smith": "learner", "s-begum": "learner", "s-nowak": "learner",
        "s-kaur": "learner",
    }  # fmt: skip
    # g-khan (guardian) is not a person; s-left (tobedeleted) is absent; a-clarke is in no school
    assert v11.person("t-jones").school_ids == ("org-elm", "org-oak")  # quoted multi-value orgSourcedIds
    assert v11.person("t-okafor").school_ids == ("org-oak",)  # a department counts as its school
    khan = v11.person("s-khan")
    assert (khan.ref, khan.given_name, khan.family_name, khan.display_name, khan.email) == (
        "26akhan@oakfield.example", "Amelia", "Khan", "Amelia Khan", None
    )  # fmt: skip
    assert v11.person("t-patel").email == "a.patel@oakfield.example"


def test_year_group_from_grades(v11: SchoolData) -> None:
    assert v11.person("s-khan").year_group == "org-oak-7"  # "07"
    assert v11.person("s-begum").year_group == "org-oak-7"  # "7", role "Student"
    assert v11.person("s-nowak").year_group == "org-elm-8"
    assert v11.person("s-kaur").year_group is None  # "07,08": no single year group
    assert [(y.id, y.school_id, y.name) for y in v11.year_groups] == [
        ("org-elm-8", "org-elm", "Year 8"),
        ("org-oak-7", "org-oak", "Year 7"),
    ]


def test_homeroom_classes_are_mentor_groups(v11: SchoolData) -> None:
    [form] = v11.mentor_groups
    assert (form.id, form.name, form.school_id, form.year_group) == ("cls-7x", "7X", "org-oak", "org-oak-7")
    assert form.mentor_ids == ("t-patel",)
    assert form.learner_ids == ("s-begum", "s-khan", "s-smith")
    assert "cls-7x" not in {c.id for c in v11.classes}


def test_classes_and_enrolments(v11: SchoolData) -> None:
    classes = {c.id: c for c in v11.classes}
    assert sorted(classes) == ["cls-7a-ma1", "cls-chess"]  # cls-old is tobedeleted
    maths = classes["cls-7a-ma1"]
    assert (maths.name, maths.code, maths.subject, maths.year_group) == (
        "7A Maths 1", "7A-Ma1", "Mathematics", "org-oak-7"
    )  # fmt: skip
    assert maths.teacher_ids == ("t-jones", "t-okafor")  # the aide is staff
    # s-begum's enrolment is tobedeleted, s-left is tobedeleted, the guardian is never a member
    assert maths.learner_ids == ("s-khan", "s-smith")
    chess = classes["cls-chess"]
    assert (chess.subject, chess.year_group, chess.school_id) == ("Chess", None, "org-elm")
    assert chess.learner_ids == ("s-kaur", "s-nowak")


def test_academic_year_from_latest_school_year_session(v11: SchoolData, tmp_path: Path) -> None:
    assert v11.academic_year == "2026-27"
    d = copy(tmp_path)
    edit(d / "academicSessions.csv", "2026-09-01,2027-07-21", ",")
    assert read(d).academic_year == "2026-27"  # from schoolYear 2027 alone


def test_academic_year_fallback_and_error(tmp_path: Path) -> None:
    d = copy(tmp_path)
    (d / "academicSessions.csv").unlink()
    edit(d / "manifest.csv", "file.academicSessions,bulk", "file.academicSessions,absent")
    with pytest.raises(SourceError, match="academic year"):
        read(d)
    assert read(d, SourceOptions(academic_year="2025-26")).academic_year == "2025-26"
    with pytest.raises(SourceError, match="not like '2026-27'"):
        read(d, SourceOptions(academic_year="2025-2026"))


def test_v12_roles_file_gives_the_same_model(v11: SchoolData) -> None:
    # roles.csv (per org, a guardian role beside a teacher one, districtAdministrator) and
    # userProfiles.csv (never read: it holds credentials)
    assert read(OR / "v1.2") == v11


def test_v12_user_profiles_are_never_read(tmp_path: Path, v11: SchoolData) -> None:
    d = copy(tmp_path, "v1.2")
    (d / "userProfiles.csv").write_text('not,a\n"broken,csv\n')
    assert read(d) == v11


def test_v12_role_for_unknown_user(tmp_path: Path) -> None:
    d = copy(tmp_path, "v1.2")
    edit(
        d / "roles.csv", "r07,active,2026-09-01T06:00:00Z,s-smith", "r07,active,2026-09-01T06:00:00Z,s-nobody"
    )
    with pytest.raises(SourceError, match="unknown user 's-nobody'") as err:
        read(d)
    assert (err.value.line, err.value.column) == (8, "userSourcedId")


@pytest.mark.parametrize("name", ["v1.1", "v1.2"])
def test_passwords_never_reach_the_model(name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert "P@ssword" not in repr(read(OR / name)) + caplog.text


def test_passwords_never_reach_errors(tmp_path: Path) -> None:
    d = copy(tmp_path)
    edit(d / "users.csv", "07,P@ssword,,", "07,P@ssword,,,surplus")
    with pytest.raises(SourceError) as err:
        read(d)
    assert err.value.line == 6 and "P@ssword" not in str(err.value)


# -- manifest -------------------------------------------------------------------------------------


def test_missing_manifest(tmp_path: Path) -> None:
    d = copy(tmp_path)
    (d / "manifest.csv").unlink()
    with pytest.raises(SourceError, match=r"manifest\.csv is missing"):
        read(d)


def test_delta_files_are_refused(tmp_path: Path) -> None:
    d = copy(tmp_path)
    edit(d / "manifest.csv", "file.users,bulk", "file.users,delta")
    with pytest.raises(SourceError, match="delta") as err:
        read(d)
    assert err.value.file and err.value.file.endswith("manifest.csv")
    assert (err.value.line, err.value.column) == (16, "value")


def test_required_file_declared_absent(tmp_path: Path) -> None:
    d = copy(tmp_path)
    edit(d / "manifest.csv", "file.enrollments,bulk", "file.enrollments,absent")
    with pytest.raises(SourceError, match=r"file\.enrollments absent, but it is required"):
        read(d)


def test_bulk_file_missing(tmp_path: Path) -> None:
    d = copy(tmp_path)
    (d / "courses.csv").unlink()
    with pytest.raises(SourceError, match=r"courses\.csv is missing but manifest\.csv declares it bulk"):
        read(d)


def test_bad_manifest_value(tmp_path: Path) -> None:
    d = copy(tmp_path)
    edit(d / "manifest.csv", "file.orgs,bulk", "file.orgs,full")
    with pytest.raises(SourceError, match="expected bulk, delta or absent"):
        read(d)


# -- files and columns ----------------------------------------------------------------------------


def test_header_only_bulk_files_are_fine_when_optional(tmp_path: Path, v11: SchoolData) -> None:
    d = copy(tmp_path)
    header_only(d / "courses.csv")
    data = read(d)
    assert next(c for c in data.classes if c.id == "cls-7a-ma1").subject == ""
    header_only(d / "enrollments.csv")
    data = read(d)
    assert all(not c.learner_ids and not c.teacher_ids for c in data.classes)
    assert data.people == v11.people


@pytest.mark.parametrize(("file", "match"), [("users.csv", "no people"), ("orgs.csv", "no schools")])
def test_header_only_required_content_is_an_error(tmp_path: Path, file: str, match: str) -> None:
    d = copy(tmp_path)
    others = ["enrollments.csv", "classes.csv", "users.csv"] if file == "orgs.csv" else ["enrollments.csv"]
    for f in [file, *others]:
        header_only(d / f)
    with pytest.raises(SourceError, match=match):
        read(d)


def test_missing_source_and_empty_source(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        read(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="empty"):
        read(tmp_path / "empty")
    d = copy(tmp_path)
    (d / "users.csv").write_text("")
    with pytest.raises(SourceError, match="the file is empty"):
        read(d)


def test_missing_required_column(tmp_path: Path) -> None:
    d = copy(tmp_path)
    edit(d / "enrollments.csv", "sourcedId,classSourcedId,", "sourcedId,klassSourcedId,")
    with pytest.raises(SourceError) as err:
        read(d)
    assert err.value.file and err.value.file.endswith("enrollments.csv")
    assert (err.value.line, err.value.column) == (1, "classSourcedId")


def test_duplicate_sourced_id(tmp_path: Path) -> None:
    d = copy(tmp_path)
    edit(d / "enrollments.csv", "e03,", "e02,")
    with pytest.raises(SourceError, match="'e02' also on line 3") as err:
        read(d)
    assert (err.value.line, err.value.column) == (4, "sourcedId")


@pytest.mark.parametrize(
    ("old", "new", "column", "match"),
    [
        (
            "e08,cls-7a-ma1,org-oak,s-smith",
            "e08,cls-7a-ma1,org-oak,s-ghost",
            "userSourcedId",
            "unknown user 's-ghost'",
        ),
        (
            "e08,cls-7a-ma1,org-oak,s-smith",
            "e08,cls-ghost,org-oak,s-smith",
            "classSourcedId",
            "unknown class",
        ),
        (
            "e08,cls-7a-ma1,org-oak,s-smith,student",
            "e08,cls-7a-ma1,org-oak,s-smith,wizard",
            "role",
            "unknown role",
        ),
    ],
)
def test_bad_enrolment_names_file_line_and_column(
    tmp_path: Path, old: str, new: str, column: str, match: str
) -> None:
    d = copy(tmp_path)
    edit(d / "enrollments.csv", old, new)
    with pytest.raises(SourceError, match=match) as err:
        read(d)
    assert err.value.file and err.value.file.endswith("enrollments.csv")
    assert (err.value.line, err.value.column) == (9, column)


def test_class_of_an_unknown_org_and_user_of_an_unknown_org(tmp_path: Path) -> None:
    d = copy(tmp_path)
    edit(d / "classes.csv", "Library,org-elm", "Library,org-ghost")
    with pytest.raises(SourceError, match="unknown org 'org-ghost'"):
        read(d)
    d = copy(tmp_path / "b")
    edit(d / "users.csv", "true,org-elm,student,25g", "true,org-ghost,student,25g")
    with pytest.raises(SourceError, match="unknown org 'org-ghost'"):
        read(d)


def test_class_of_a_district_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    d = copy(tmp_path)
    edit(d / "classes.csv", "Library,org-elm", "Library,org-trust")
    data = read(d)
    assert "cls-chess" not in {c.id for c in data.classes}
    assert "class cls-chess skipped: org org-trust is a district" in caplog.text


def test_username_without_domain(tmp_path: Path) -> None:
    d = copy(tmp_path)
    edit(d / "users.csv", ",26osmith@oakfield.example,", ",26osmith,")
    with pytest.raises(SourceError, match="not a UPN") as err:
        read(d)
    assert (err.value.line, err.value.column) == (7, "username")
    assert read(d, SourceOptions(upn_domain="oakfield.example")).person("s-smith").ref == (
        "26osmith@oakfield.example"
    )


def test_ref_field_email_and_people_without_one(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="person 's-khan' has no user reference") as err:
        read(OR / "v1.1", SourceOptions(ref_field="email"))
    assert err.value.column == "email"
    data = read(OR / "v1.1", SourceOptions(ref_field="email", skip_people_without_ref=True))
    assert [p.id for p in data.people] == ["t-jones", "t-okafor", "t-patel"]
    assert all(not c.learner_ids for c in data.classes)
    with pytest.raises(SourceError, match="not supported"):
        read(OR / "v1.1", SourceOptions(ref_field="employee_id"))


# -- CSV variants ---------------------------------------------------------------------------------


def test_file_name_case_bom_and_extra_columns(tmp_path: Path, v11: SchoolData) -> None:
    d = copy(tmp_path)
    (d / "users.csv").rename(d / "Users.CSV")
    (d / "manifest.csv").rename(d / "MANIFEST.csv")
    lines = (d / "orgs.csv").read_text().splitlines()
    lines[0] = (
        lines[0].replace("sourcedId,status", "SourcedID , Status", 1) + ',"ext_vendor.notes, with comma"'
    )
    lines[1:] = [line + ',"x, y"' for line in lines[1:]]
    data = "\r\n".join(lines) + "\r\n"
    (d / "orgs.csv").unlink()
    (d / "Orgs.csv").write_bytes(b"\xef\xbb\xbf" + data.encode())
    assert read(d) == v11


def test_two_files_differing_in_case(tmp_path: Path) -> None:
    d = copy(tmp_path)
    shutil.copy(d / "users.csv", d / "USERS.csv")
    if len(list(d.glob("*.csv"))) == len(list((OR / "v1.1").glob("*.csv"))):
        pytest.skip("case-insensitive file system")
    with pytest.raises(SourceError, match="differ only in case"):
        read(d)


def test_zip(tmp_path: Path, v11: SchoolData) -> None:
    z = tmp_path / "oneroster.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in sorted((OR / "v1.1").iterdir()):
            zf.write(f, f.name)
    assert read(z) == v11


def test_deterministic(v11: SchoolData) -> None:
    again = read(OR / "v1.1")
    assert again == v11 and repr(again) == repr(v11)
    assert [p.id for p in v11.people] == sorted(p.id for p in v11.people)


def test_line_numbers_count_physical_lines(tmp_path: Path) -> None:
    d = copy(tmp_path)
    edit(d / "classes.csv", "Room 3", '"Room 3\nNorth"')  # a quoted cell over two lines (7A)
    edit(d / "classes.csv", "Library,org-elm", "Library,org-gone")
    with pytest.raises(SourceError, match="unknown org 'org-gone'") as err:
        read(d)
    assert err.value.line == 5  # header, 7X, 7A (two lines), then Chess Club


def test_an_org_whose_parent_is_missing_is_named_and_its_content_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    d = copy(tmp_path)
    orgs = (d / "orgs.csv").read_text().splitlines()
    orgs.append("dept-lost,active,2026-09-01T06:00:00Z,Lost Department,department,LOST,,org-not-in-file")
    (d / "orgs.csv").write_text("\n".join(orgs) + "\n")
    with caplog.at_level(logging.WARNING):
        data = read(d)
    assert "dept-lost" not in {s.id for s in data.schools}
    assert "org dept-lost (department) is in no school of the file" in caplog.text
    assert "(its parent org-not-in-file is not in the file)" in caplog.text


def test_enrolments_read_in_bulk_give_what_the_row_loop_gives(tmp_path: Path, v11: SchoolData) -> None:
    # without its rows the loop drops (tobedeleted, a guardian's, a deleted class's or user's),
    # every enrolment is a membership: the reader takes the file in one pass, and must give the
    # model the row loop gave with them
    d = copy(tmp_path)
    path = d / "enrollments.csv"
    lines = path.read_text().splitlines(keepends=True)
    dropped = ("tobedeleted", "guardian", ",cls-old,", ",s-left,")
    kept = [line for line in lines if not any(word in line for word in dropped)]
    assert len(kept) == len(lines) - 4
    path.write_text("".join(kept))
    assert read(d) == v11
