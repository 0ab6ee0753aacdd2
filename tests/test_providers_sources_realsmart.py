"""Realsmart export reader, its schema and the bundled example export."""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from providers.sources import SourceOptions, read_source
from providers.sources.realsmart import ExportError, example_export_path, export_schema
from reconciler.errors import SourceError
from reconciler.school import SchoolData


def read(path: Path, options: SourceOptions | None = None) -> SchoolData:
    return read_source("realsmart", path, options=options or SourceOptions())


@pytest.fixture(scope="module")
def example_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(example_export_path().read_text("utf-8"))
    return doc


@pytest.fixture(scope="module")
def example() -> SchoolData:
    return read(example_export_path())


def write(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(doc))
    return path


def findings(tmp_path: Path, doc: object) -> list[str]:
    with pytest.raises(ExportError) as err:
        read(write(tmp_path, doc))
    return [str(f) for f in err.value.findings]


# -- the example ----------------------------------------------------------------------------------


def test_example_is_a_realistic_two_school_trust(example: SchoolData) -> None:
    assert (example.academic_year, example.organisation, example.system) == (
        "2026-27", "Oakfield Learning Trust", "realsmart"
    )  # fmt: skip
    assert [(s.id, s.name, s.short_name) for s in example.schools] == [
        ("8804012", "Oakfield Academy", "Oakfield"),
        ("8804027", "Elmbridge School", "Elmbridge"),
    ]
    assert 60 <= len(example.people) <= 150
    assert Counter(p.role for p in example.people) == {"learner": 97, "staff": 24}
    years = Counter(y.school_id for y in example.year_groups)
    assert years == {"8804012": 7, "8804027": 5}  # years 7-13 and 7-11
    assert {m.name for m in example.mentor_groups} >= {"7X", "7Y", "12X", "13X"}
    maths = next(c for c in example.classes if c.name == "7A Maths 1" and c.school_id == "8804012")
    assert (maths.code, maths.subject, maths.year_group) == ("7A-Ma1", "Maths", "oak-y7")
    assert all(p.ref.endswith("@oakfield.example") for p in example.people)
    assert any(len(p.school_ids) == 2 for p in example.people)  # a trust-wide teacher
    assert all(c.teacher_ids and c.learner_ids for c in example.classes)
    assert all(m.mentor_ids and m.learner_ids for m in example.mentor_groups)
    learners = {p.id for p in example.people if p.role == "learner"}
    in_a_form = {lid for m in example.mentor_groups for lid in m.learner_ids}
    assert in_a_form == learners  # every learner is in exactly one form
    assert sum(len(m.learner_ids) for m in example.mentor_groups) == len(learners)


def test_example_is_package_data_and_valid(example_doc: dict[str, Any]) -> None:
    assert example_export_path().is_file()
    assert list(Draft202012Validator(export_schema()).iter_errors(example_doc)) == []


def test_person_fields(example: SchoolData) -> None:
    head = next(p for p in example.people if p.display_name.endswith("(Headteacher)"))
    assert head.role == "staff" and head.employee_id and head.email == head.ref
    learner = example.person("lrn-0001")
    assert learner.year_group == "oak-y7" and learner.email is None and learner.school_ids == ("8804012",)
    assert learner.display_name == f"{learner.given_name} {learner.family_name}"


# -- the schema -----------------------------------------------------------------------------------


def _objects(node: object) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def test_schema_is_2020_12_and_every_property_is_described() -> None:
    schema = export_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    undescribed = [
        name
        for obj in _objects(schema)
        for name, prop in obj.get("properties", {}).items()
        if "description" not in prop
    ]
    assert undescribed == []


def test_schema_findings_carry_json_paths(tmp_path: Path, example_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(example_doc)
    del doc["learners"][0]["upn"]
    doc["staff"][1]["password"] = "P@ssword"
    doc["academicYear"] = "2026"
    doc["organisation"]["kind"] = "federation"
    doc["classes"][2]["teacherIds"] = "stf-0001"
    found = findings(tmp_path, doc)
    assert found == [
        "academicYear: '2026' does not match '^[0-9]{4}-[0-9]{2}$'",
        "classes[2].teacherIds: 'stf-0001' is not of type 'array'",
        "learners[0]: 'upn' is a required property",
        "organisation.kind: 'federation' is not one of ['trust', 'school']",
        "staff[1]: Additional properties are not allowed ('password' was unexpected)",
    ]
    with pytest.raises(ExportError) as err:
        read(write(tmp_path, doc))
    assert "P@ssword" not in str(err.value) and "5 problems" in str(err.value)


def test_other_export_versions_are_refused(tmp_path: Path, example_doc: dict[str, Any]) -> None:
    doc = {**example_doc, "exportVersion": 2}
    assert findings(tmp_path, doc) == ["exportVersion: 1 was expected"]


# -- cross-references -----------------------------------------------------------------------------


def test_cross_references_are_checked(tmp_path: Path, example_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(example_doc)
    doc["staff"][0]["schoolIds"] = ["8804012", "9999999"]
    doc["learners"][0]["yearGroupId"] = "elm-y7"  # a year group of the other school
    doc["mentorGroups"][0]["learnerIds"].append("stf-0002")  # staff, not a learner
    doc["classes"][0]["teacherIds"] = ["lrn-0003"]  # a learner, not staff
    doc["classes"][1]["learnerIds"].append("lrn-9999")
    doc["classes"][2]["yearGroupId"] = "no-such-year"
    assert findings(tmp_path, doc) == [
        "staff[0].schoolIds[1]: '9999999': no school has this id",
        "learners[0].yearGroupId: year group 'elm-y7' belongs to school '8804027'",
        "mentorGroups[0].learnerIds[6]: 'stf-0002': a staff member, not a learner",
        "classes[0].teacherIds[0]: 'lrn-0003': a learner, not a staff member",
        "classes[1].learnerIds[6]: 'lrn-9999': no learner has this id",
        "classes[2].yearGroupId: 'no-such-year': no year group has this id",
    ]


def test_duplicate_ids(tmp_path: Path, example_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(example_doc)
    doc["learners"][1]["id"] = doc["learners"][0]["id"]
    doc["classes"][0]["id"] = "oak-y7"
    found = findings(tmp_path, doc)
    assert "learners[1].id: id 'lrn-0001' is already used by a learner" in found
    assert "classes[0].id: id 'oak-y7' is already used by a year group" in found


def test_academic_year_must_be_consecutive(tmp_path: Path, example_doc: dict[str, Any]) -> None:
    with pytest.raises(SourceError, match="not like '2026-27'") as err:
        read(write(tmp_path, {**example_doc, "academicYear": "2026-28"}))
    assert err.value.column == "academicYear"


def test_duplicate_user_reference(tmp_path: Path, example_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(example_doc)
    doc["learners"][1]["upn"] = doc["learners"][0]["upn"].upper()
    with pytest.raises(SourceError, match="used by person 'lrn-0001'"):
        read(write(tmp_path, doc))


# -- user reference -------------------------------------------------------------------------------


def test_ref_field_email_and_employee_id(tmp_path: Path) -> None:
    path = example_export_path()
    with pytest.raises(SourceError, match="person 'lrn-0001' has no user reference") as err:
        read(path, SourceOptions(ref_field="email"))
    assert err.value.column == "learners[0].email"
    staff_only = read(path, SourceOptions(ref_field="employee_id", skip_people_without_ref=True))
    assert {p.role for p in staff_only.people} == {"staff"}
    assert all(p.ref == p.employee_id for p in staff_only.people)
    assert all(not c.learner_ids for c in staff_only.classes)
    assert all(not m.learner_ids for m in staff_only.mentor_groups)


# -- files ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "does not exist"),
        (b"", "is empty"),
        (b"  \n", "is empty"),
        (b'{"exportVersion": 1,\n  "schools": [}', "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[]", "is not of type 'object'"),
    ],
)
def test_bad_files(tmp_path: Path, content: bytes | None, match: str) -> None:
    path = tmp_path / "export.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceError, match=match) as err:
        read(path)
    assert err.value.file == str(path)
    if match == "not valid JSON":
        assert err.value.line == 2


def test_bom_is_accepted_and_order_does_not_matter(
    tmp_path: Path, example_doc: dict[str, Any], example: SchoolData
) -> None:
    doc = copy.deepcopy(example_doc)
    for key in ("schools", "yearGroups", "staff", "learners", "mentorGroups", "classes"):
        doc[key].reverse()
    for c in doc["classes"]:
        c["learnerIds"].reverse()
    path = tmp_path / "export.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(doc, indent=1).encode())
    assert read(path) == example


def test_an_export_with_no_people_is_an_error(tmp_path: Path, example_doc: dict[str, Any]) -> None:
    doc = {**example_doc, "staff": [], "learners": [], "mentorGroups": [], "classes": []}
    with pytest.raises(SourceError, match="no people"):
        read(write(tmp_path, doc))


def test_unknown_kind_and_ref_field() -> None:
    with pytest.raises(SourceError, match="unknown source kind 'wonde'"):
        read_source("wonde", example_export_path())
    with pytest.raises(SourceError, match="unknown ref_field 'mail'"):
        read_source("realsmart", example_export_path(), options=SourceOptions(ref_field="mail"))


def test_many_findings_come_in_document_order_and_the_message_is_capped(
    tmp_path: Path, example_doc: dict[str, Any]
) -> None:
    doc = copy.deepcopy(example_doc)
    template = doc["staff"][0]
    doc["staff"] = [dict(template, id=f"stf-x{n}", upn=f"x{n}@oakfield.example") for n in range(60)]
    for person in doc["staff"]:
        del person["email"]
    with pytest.raises(ExportError) as info:
        read(write(tmp_path, doc))
    paths = [f.path for f in info.value.findings if f.message == "'email' is a required property"]
    assert paths == [f"staff[{n}]" for n in range(60)]  # staff[9] before staff[10]
    message = str(info.value)
    assert "... and " in message and len(message.splitlines()) <= 52
