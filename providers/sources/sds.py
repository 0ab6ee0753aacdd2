"""Microsoft School Data Sync (SDS) CSV into the school model.

Two formats, told apart by their files:

* **v1** ("classic"): ``School.csv``, ``Section.csv``, ``Student.csv``, ``Teacher.csv``,
  ``StudentEnrollment.csv``, ``TeacherRoster.csv``. US column names (``SIS ID``,
  ``School SIS ID``, ``Section SIS ID``) and UK ones (``ID``, ``DfE Number``,
  ``School DfE Number``, ``Section ID``) read the same. Only the key columns are required
  (Microsoft's "Min Required Attributes"); the rest default to empty. ``Grade`` gives a learner's
  year group; the sections' term dates give the academic year. SDS v1 has no tutor groups.
* **v2 / v2.1**: ``orgs.csv``, ``users.csv``, ``classes.csv``, ``enrollments.csv`` (+ ``roles.csv``,
  ``academicSessions.csv``, ``courses.csv``): a cut-down OneRoster, read by the OneRoster core
  without a manifest.

A person's user reference is ``Username`` (``ref_field`` ``email`` takes ``Secondary Email``);
a username without ``@`` needs the ``upn_domain`` option. ``Password`` columns are dropped as
the files are parsed: never read into the model, never logged.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from reconciler.errors import SourceError
from reconciler.school import Class, Person, Role, School, SchoolData

from .common import (
    ModelBuilder,
    SourceOptions,
    academic_year_from_dates,
    display_name,
    make_ref,
    parse_date,
    resolve_academic_year,
)
from .csvfolder import CsvFolder, open_folder
from .csvutil import Table
from .oneroster import read_roster_folder

__all__ = ["V1_FILES", "V2_FILES", "read_sds"]

V1_FILES = (
    "School.csv",
    "Section.csv",
    "Student.csv",
    "Teacher.csv",
    "StudentEnrollment.csv",
    "TeacherRoster.csv",
)
V2_FILES = ("orgs.csv", "users.csv", "classes.csv", "enrollments.csv")

# One internal name per column, with the US and UK spellings it may have.
_ID = ("SIS ID", "ID", "DfE Number")
_SCHOOL = ("School SIS ID", "School DfE Number")
_SECTION = ("Section SIS ID", "Section ID")
_REF = {
    "default": ("Username",),
    "username": ("Username",),
    "upn": ("Username",),
    "email": ("Secondary Email",),
}


def read_sds(path: Path, options: SourceOptions) -> SchoolData:
    """Read an SDS v1 or v2.x CSV set (a directory or a .zip).

    Must raise :class:`SourceError` naming file, line and column for a missing file or column,
    a duplicate id, an enrolment of an unknown person or section, or a person with no usable
    user reference (unless ``skip_people_without_ref``).
    """
    folder = open_folder(path)
    if any(folder.has(f) for f in V1_FILES):
        return _V1(folder, options).run()
    if any(folder.has(f) for f in V2_FILES):
        return read_roster_folder(folder, options, modes=None, system="sds")
    raise SourceError(
        f"no SDS files found (expected {', '.join(V1_FILES)} for v1, or {', '.join(V2_FILES)} for v2.1)",
        file=str(path),
    )


class _V1:
    def __init__(self, folder: CsvFolder, options: SourceOptions) -> None:
        self.folder = folder
        self.options = options
        self.out = ModelBuilder("sds", options)

    def run(self) -> SchoolData:
        self.schools(self.folder.read("School.csv"))
        sections = self.folder.read("Section.csv")
        years = self.sections(sections)
        self.people(self.folder.read("Student.csv"), "learner")
        self.people(self.folder.read("Teacher.csv"), "staff")
        self.members(self.folder.read("StudentEnrollment.csv"), "learner")
        self.members(self.folder.read("TeacherRoster.csv"), "staff")
        found = None
        if years:
            # the most common year among the sections; the latest on a tie
            found = max(years.items(), key=lambda kv: (kv[1], kv[0]))[0]
        ay = resolve_academic_year(found, self.options, sections.file)
        names = [s.name for s in self.out.schools.values()]
        return self.out.finish(ay, names[0] if len(names) == 1 else "", self.folder.label)

    @staticmethod
    def _unique(t: Table, idc: str, rid: str, seen: dict[str, int], line: int, what: str) -> None:
        if rid in seen:
            raise SourceError(
                f"{what} id {rid!r} also on line {seen[rid]}", file=t.file, line=line, column=idc
            )
        seen[rid] = line

    def schools(self, t: Table) -> None:
        idc = t.col(*_ID)
        id_name = t.header_name(idc)
        ids, names = t.column(idc), t.column(t.col("Name"))
        seen: dict[str, int] = {}
        for row, (sid, name) in enumerate(zip(ids, names, strict=True)):
            if not sid:
                raise t.empty(row, id_name)
            self._unique(t, id_name, sid, seen, t.line(row), "school")
            if not name:
                raise t.empty(row, "Name")
            self.out.schools[sid] = School(id=sid, name=name)

    def _school(self, t: Table, row_school: str, line: int, column: str) -> str:
        if row_school not in self.out.schools:
            raise SourceError(
                f"unknown school {row_school!r} (not in School.csv)", file=t.file, line=line, column=column
            )
        return row_school

    def sections(self, t: Table) -> Counter[str]:
        idc, schoolc = t.col(*_SECTION, *_ID), t.col(*_SCHOOL)
        id_name, school_name = t.header_name(idc), t.header_name(schoolc)
        ids, schools, names = t.column(idc), t.column(schoolc), t.column(t.col("Section Name"))
        numbers, subjects = t.column(t.opt("Section Number")), t.column(t.opt("Course Subject"))
        starts, ends = t.column(t.opt("Term StartDate")), t.column(t.opt("Term EndDate"))
        seen: dict[str, int] = {}
        years: Counter[str] = Counter()
        for row in range(len(t)):
            line = t.line(row)
            cid = _need(t, ids, row, id_name)
            self._unique(t, id_name, cid, seen, line, "section")
            school = self._school(t, _need(t, schools, row, school_name), line, school_name)
            self.out.classes[cid] = Class(
                id=cid,
                school_id=school,
                name=_need(t, names, row, "Section Name"),
                code=numbers[row],
                subject=subjects[row],
            )
            start, end = parse_date(starts[row]), parse_date(ends[row])
            if start and end:
                years[academic_year_from_dates(start, end)] += 1
        return years

    def people(self, t: Table, role: Role) -> None:
        columns = _REF.get(self.options.ref_field)
        if columns is None:
            raise SourceError(
                f"ref_field {self.options.ref_field!r} is not supported for SDS; use one of {sorted(_REF)}",
                file=t.file,
            )
        idc, schoolc = t.col(*_ID), t.col(*_SCHOOL)
        id_name, school_name = t.header_name(idc), t.header_name(schoolc)
        ids, schools, refs = t.column(idc), t.column(schoolc), t.column(t.col(*columns))
        givens, families = t.column(t.opt("First Name")), t.column(t.opt("Last Name"))
        emails, grades = t.column(t.opt("Secondary Email")), t.column(t.opt("Grade"))
        numbers = t.column(t.opt("Teacher Number"))
        field = "email" if self.options.ref_field == "email" else "username"
        for row in range(len(t)):
            line = t.line(row)
            pid = _need(t, ids, row, id_name)
            if pid in self.out.people or pid in self.out.skipped:
                raise SourceError(
                    f"person id {pid!r} appears twice (in Student.csv or Teacher.csv)",
                    file=t.file,
                    line=line,
                    column=id_name,
                )
            school = self._school(t, _need(t, schools, row, school_name), line, school_name)
            ref = make_ref(
                refs[row], field=field, options=self.options, file=t.file, line=line, column=columns[0]
            )
            if ref is None:
                self.out.skip_or_fail(pid, t.file, line, columns[0])
                continue
            year_group = None
            grade = grades[row]
            if role == "learner" and grade:
                year_group = self.out.grade_year_group(school, grade)
            given, family = givens[row], families[row]
            self.out.add_person(
                Person(
                    id=pid,
                    ref=ref,
                    role=role,
                    school_ids=(school,),
                    given_name=given,
                    family_name=family,
                    display_name=display_name(given, family),
                    year_group=year_group,
                    email=emails[row] or None,
                    employee_id=numbers[row] or None,
                ),
                f"{t.file}, line {line}",
            )

    def members(self, t: Table, role: Role) -> None:
        sectionc, personc = t.col(*_SECTION), t.col(*_ID)
        section_name, person_name = t.header_name(sectionc), t.header_name(personc)
        sections, persons = t.column(sectionc), t.column(personc)
        who = "student" if role == "learner" else "teacher"
        source = "Student.csv" if role == "learner" else "Teacher.csv"
        added: dict[str, list[str]] = defaultdict(list)
        for row in range(len(t)):
            cid = _need(t, sections, row, section_name)
            pid = _need(t, persons, row, person_name)
            if cid not in self.out.classes:
                raise t.error(row, section_name, f"unknown section {cid!r} (not in Section.csv)")
            if pid in self.out.skipped:
                continue
            person = self.out.people.get(pid)
            if person is None or person.role != role:
                raise t.error(row, person_name, f"unknown {who} {pid!r} (not in {source})")
            added[cid].append(pid)
        for cid, ids in added.items():
            c = self.out.classes[cid]
            if role == "learner":
                self.out.classes[cid] = replace(c, learner_ids=c.learner_ids + tuple(ids))
            else:
                self.out.classes[cid] = replace(c, teacher_ids=c.teacher_ids + tuple(ids))


def _need(t: Table, cells: Sequence[str], row: int, name: str) -> str:
    """A cell every row must fill in. Must raise :class:`SourceError` (file, line, column) when
    it is empty."""
    if not cells[row]:
        raise t.empty(row, name)
    return cells[row]
