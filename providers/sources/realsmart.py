"""The Realsmart export (JSON, ``schemas/realsmart-export.schema.json``) into the school model.

Reading is two passes: the schema (every finding, with its JSON path), then the cross-references
(ids unique across the export; every school, year group, person referenced exists and is of the
right kind; a learner's and a group's year group belong to their school). All problems of a pass
are reported together.

User reference (``ref_field``): ``default``/``upn``/``username`` -> ``upn``; ``email`` -> ``email``;
``employee_id`` -> ``employeeId`` (staff only: learners have none, so it is an error for them
unless ``skip_people_without_ref``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from reconciler.document.load import JSON_MAX_DEPTH, json_value_problem
from reconciler.errors import Finding, SourceError, findings_text
from reconciler.schema_check import Check, compile_check
from reconciler.schemas import inline_refs, load_schema
from reconciler.school import Class, MentorGroup, Person, School, SchoolData, YearGroup

from .common import ModelBuilder, SourceOptions, check_academic_year, display_name, make_ref

__all__ = ["EXAMPLE_EXPORT", "ExportError", "export_schema", "read_realsmart"]

EXAMPLE_EXPORT = "realsmart-export.example.json"  # in providers.sources.examples
_REF_KEYS = {"default": "upn", "upn": "upn", "username": "upn", "email": "email", "employee_id": "employeeId"}


class ExportError(SourceError):
    """An invalid Realsmart export: every finding, each with its JSON path."""

    def __init__(self, file: str, findings: Iterable[Finding]) -> None:
        self.findings = tuple(findings)
        n = len(self.findings)
        head = f"{n} problem{'s' if n != 1 else ''} in the Realsmart export"
        super().__init__(findings_text(head, self.findings), file=file)


def export_schema() -> dict[str, Any]:
    """The export's JSON Schema (2020-12), shipped in the ``schemas`` package."""
    return load_schema("realsmart-export")


def example_export_path() -> Path:
    """The bundled example export (a two-school trust), as a file path."""
    return Path(str(resources.files("providers.sources.examples").joinpath(EXAMPLE_EXPORT)))


def _path(parts: Iterable[object]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "$"


def _order(parts: Iterable[object]) -> tuple[tuple[int, int, str], ...]:
    """Document order: list indexes compare as numbers (staff[9] before staff[10])."""
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in parts)


@functools.cache
def _validator() -> Any:
    return Draft202012Validator(inline_refs(export_schema()), format_checker=FormatChecker())


@functools.cache
def _quick_check() -> Check:
    """Valid or not, fast (:mod:`reconciler.schema_check`); ``jsonschema`` words the findings."""
    check = compile_check(inline_refs(export_schema()), _validator().format_checker)
    return check if check is not None else (lambda doc: not any(_validator().iter_errors(doc)))


def validate_export(doc: object, file: str) -> None:
    """Must raise :class:`ExportError` with every schema finding (sorted by path)."""
    if _quick_check()(doc):
        return
    errors = sorted(_validator().iter_errors(doc), key=lambda e: (_order(e.absolute_path), e.message))
    findings = list(dict.fromkeys(Finding(_path(e.absolute_path), e.message) for e in errors))
    if findings:
        raise ExportError(file, findings)


def read_realsmart(path: Path, options: SourceOptions) -> SchoolData:
    """Read and check a Realsmart export file. Must raise :class:`SourceError` (or its
    :class:`ExportError`) for a missing, empty, unparsable, invalid or inconsistent export."""
    file = str(path)
    if not path.is_file():
        raise SourceError("the Realsmart export does not exist; check the path", file=file)
    raw = path.read_bytes()
    if not raw.strip():
        raise SourceError("the Realsmart export is empty", file=file)
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise SourceError("the Realsmart export is not UTF-8 text", file=file) from None
    except json.JSONDecodeError as exc:
        raise SourceError(
            f"not valid JSON: {exc.msg} (column {exc.colno})", file=file, line=exc.lineno
        ) from None
    except RecursionError:
        raise SourceError(
            f"the JSON is nested too deeply to read (at most {JSON_MAX_DEPTH} levels)", file=file
        ) from None
    except ValueError as exc:  # a number of more than 4300 digits
        raise SourceError(f"not valid JSON here: {str(exc).split(';')[0]}", file=file) from None
    problem = json_value_problem(doc)
    if problem is not None:
        raise SourceError(problem, file=file)
    return read_realsmart_document(doc, file, options)


def read_realsmart_document(doc: object, file: str, options: SourceOptions) -> SchoolData:
    """Check and convert an already parsed export (``file`` names it in messages)."""
    validate_export(doc, file)
    assert isinstance(doc, dict)
    key = _REF_KEYS.get(options.ref_field)
    if key is None:
        raise SourceError(
            f"ref_field {options.ref_field!r} is not supported for Realsmart exports", file=file
        )
    academic_year = check_academic_year(doc["academicYear"], file=file, column="academicYear")
    findings: list[Finding] = []
    kinds: dict[str, str] = {}  # id -> what it is, for references and uniqueness

    def register(section: str, items: list[dict[str, Any]], kind: str) -> None:
        for i, item in enumerate(items):
            if item["id"] in kinds:
                findings.append(
                    Finding(
                        f"{section}[{i}].id", f"id {item['id']!r} is already used by a {kinds[item['id']]}"
                    )
                )
            else:
                kinds[item["id"]] = kind

    register("schools", doc["schools"], "school")
    register("yearGroups", doc["yearGroups"], "year group")
    register("staff", doc["staff"], "staff member")
    register("learners", doc["learners"], "learner")
    register("mentorGroups", doc["mentorGroups"], "mentor group")
    register("classes", doc["classes"], "class")
    year_school = {y["id"]: y["schoolId"] for y in doc["yearGroups"]}

    def ref(where: str, value: str, kind: str, *, school: str | None = None) -> None:
        if kinds.get(value) != kind:
            what = f"a {kinds[value]}, not a {kind}" if value in kinds else f"no {kind} has this id"
            findings.append(Finding(where, f"{value!r}: {what}"))
        elif school is not None and kind == "year group" and year_school[value] != school:
            findings.append(Finding(where, f"year group {value!r} belongs to school {year_school[value]!r}"))

    def fine(value: str, kind: str, school: str | None = None) -> bool:  # ref's question, no message
        return kinds.get(value) == kind and (school is None or year_school[value] == school)

    for i, y in enumerate(doc["yearGroups"]):
        if not fine(y["schoolId"], "school"):
            ref(f"yearGroups[{i}].schoolId", y["schoolId"], "school")
    for i, s in enumerate(doc["staff"]):
        for j, sid in enumerate(s["schoolIds"]):
            if not fine(sid, "school"):
                ref(f"staff[{i}].schoolIds[{j}]", sid, "school")
    for i, learner in enumerate(doc["learners"]):
        school = learner["schoolId"]
        if not fine(school, "school"):
            ref(f"learners[{i}].schoolId", school, "school")
        if not fine(learner["yearGroupId"], "year group", school):
            ref(f"learners[{i}].yearGroupId", learner["yearGroupId"], "year group", school=school)
    for section, staff_key in (("mentorGroups", "mentorIds"), ("classes", "teacherIds")):
        for i, g in enumerate(doc[section]):
            school = g["schoolId"]
            if not fine(school, "school"):
                ref(f"{section}[{i}].schoolId", school, "school")
            if "yearGroupId" in g and not fine(g["yearGroupId"], "year group", school):
                ref(f"{section}[{i}].yearGroupId", g["yearGroupId"], "year group", school=school)
            for j, pid in enumerate(g[staff_key]):
                if kinds.get(pid) != "staff member":
                    ref(f"{section}[{i}].{staff_key}[{j}]", pid, "staff member")
            for j, pid in enumerate(g["learnerIds"]):
                if kinds.get(pid) != "learner":
                    ref(f"{section}[{i}].learnerIds[{j}]", pid, "learner")
    if findings:
        raise ExportError(file, findings)
    return _build(doc, file, options, key, academic_year)


def _build(
    doc: dict[str, Any], file: str, options: SourceOptions, key: str, academic_year: str
) -> SchoolData:
    out = ModelBuilder("realsmart", options)
    for s in doc["schools"]:
        out.schools[s["id"]] = School(id=s["id"], name=s["name"], short_name=s["shortName"])
    for y in doc["yearGroups"]:
        out.year_groups[y["id"]] = YearGroup(id=y["id"], school_id=y["schoolId"], name=y["name"])
    field = "email" if key == "email" else "upn" if key == "upn" else "employee_id"
    for section, role in (("staff", "staff"), ("learners", "learner")):
        for i, p in enumerate(doc[section]):
            where = f"{section}[{i}].{key}"
            value = make_ref(
                str(p.get(key, "")), field=field, options=options, file=file, line=None, column=where
            )
            if value is None:
                out.skip_or_fail(p["id"], file, None, where)
                continue
            out.add_person(
                Person(
                    id=p["id"],
                    ref=value,
                    role="staff" if role == "staff" else "learner",
                    school_ids=tuple(p["schoolIds"]) if role == "staff" else (p["schoolId"],),
                    given_name=p["givenName"],
                    family_name=p["familyName"],
                    display_name=display_name(p["givenName"], p["familyName"], p.get("displayName", "")),
                    year_group=p.get("yearGroupId"),
                    email=p.get("email"),
                    employee_id=p.get("employeeId"),
                ),
                f"{file}: {section}[{i}]",
            )
    for g in doc["mentorGroups"]:
        out.mentor_groups[g["id"]] = MentorGroup(
            id=g["id"],
            school_id=g["schoolId"],
            name=g["name"],
            mentor_ids=tuple(g["mentorIds"]),
            learner_ids=tuple(g["learnerIds"]),
            year_group=g.get("yearGroupId"),
        )
    for c in doc["classes"]:
        out.classes[c["id"]] = Class(
            id=c["id"],
            school_id=c["schoolId"],
            name=c["name"],
            code=c["code"],
            subject=c["subject"],
            teacher_ids=tuple(c["teacherIds"]),
            learner_ids=tuple(c["learnerIds"]),
            year_group=c.get("yearGroupId"),
        )
    return out.finish(academic_year, doc["organisation"]["name"], file)
