"""OneRoster 1.1 / 1.2 CSV (a directory or a .zip) into the school model; also the core of the
SDS v2 / v2.1 reader, whose files are a cut-down OneRoster.

Rules (see ``tests/test_providers_sources_oneroster.py`` for one test each):

* ``manifest.csv`` is required; ``file.<name>`` is ``bulk``, ``delta`` or ``absent`` (a file the
  manifest does not mention is read if present). Delta sets are refused: the model is the whole
  school, so it needs a bulk export. ``orgs``, ``users``, ``classes`` and ``enrollments`` are required.
* Rows with ``status`` = ``tobedeleted`` are treated as absent (removal by omission); references to
  them are dropped quietly. Unknown, ``metadata.*`` and ``ext_*`` columns are ignored.
* Only orgs of type ``school`` become schools; a class of another org (a district, a college) is
  skipped with a warning.
* Roles (any case): student/learner -> learner; teacher, administrator, aide, proctor (and the 1.2
  administrator kinds) -> staff; guardian/parent/relative -> ignored, never class members. A role
  nobody knows is an error. 1.2 ``roles.csv`` gives a person's roles per org; without it the
  users' own ``role`` and ``orgSourcedIds`` columns are used. ``userProfiles.csv`` is never read
  (it can hold credentials).
* ``classType`` = ``homeroom`` classes become mentor groups (their teachers are the mentors).
* A learner's year group comes from ``grades`` when it names one grade.
* The organisation is the only school's name, else the only district's (a trust), else "".
* The academic year comes from the latest ``schoolYear`` session (its dates, else its
  ``schoolYear``), else from the academic-year option.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

from reconciler.errors import SourceError
from reconciler.school import Class, MentorGroup, Person, Role, School, SchoolData

from .common import (
    ModelBuilder,
    SourceOptions,
    academic_year_from_dates,
    academic_year_from_school_year,
    display_name,
    make_ref,
    parse_date,
    resolve_academic_year,
    role_of,
)
from .csvfolder import CsvFolder, open_folder
from .csvutil import Table, split_multi
from .roster_files import COLUMNS, REF_COLUMNS, manifest_modes

__all__ = ["read_oneroster", "read_roster_folder"]

log = logging.getLogger(__name__)


def read_oneroster(path: Path, options: SourceOptions) -> SchoolData:
    """Read a OneRoster 1.1 or 1.2 CSV set. Must raise :class:`SourceError` (file, line, column)
    for anything it cannot turn into a whole, consistent school."""
    folder = open_folder(path)
    if not folder.has("manifest.csv"):
        raise SourceError("manifest.csv is missing: a OneRoster CSV set must have one", file=str(path))
    modes = manifest_modes(folder.read("manifest.csv"))
    return read_roster_folder(folder, options, modes=modes, system="oneroster")


@dataclass
class _Roles:
    """One user's role assignments: (role, org id, grade)."""

    entries: list[tuple[Role, str, str]] = field(default_factory=list)
    ignored: bool = False


class _Reader:
    def __init__(self, folder: CsvFolder, options: SourceOptions, modes: dict[str, str] | None, system: str):
        self.folder = folder
        self.options = options
        self.modes = modes
        self.out = ModelBuilder(system, options)
        self.deleted: set[str] = set()  # sourcedIds of tobedeleted rows, in any file
        self.org_types: dict[str, str] = {}
        self.school_of: dict[str, str] = {}  # org id -> its school (itself or an ancestor)
        self.districts: list[str] = []  # names of district orgs (a trust)

    def table(self, name: str) -> Table | None:
        """An optional file: ``None`` when absent (by the manifest or on disk)."""
        file = f"{name}.csv"
        mode = self.modes.get(name.casefold()) if self.modes is not None else None
        if mode == "absent":
            return None
        if not self.folder.has(file):
            if mode == "bulk":
                raise SourceError(
                    f"{file} is missing but manifest.csv declares it bulk", file=self.folder.display(file)
                )
            return None
        return self.folder.read(file, COLUMNS[name])

    def required(self, name: str) -> Table:
        """A required file. Must raise :class:`SourceError` if it is missing or declared absent."""
        if self.modes is not None and self.modes.get(name.casefold()) == "absent":
            raise SourceError(
                f"manifest.csv declares file.{name} absent, but it is required",
                file=self.folder.display("manifest.csv"),
            )
        return self.folder.read(f"{name}.csv", COLUMNS[name])

    def live(self, table: Table, id_col: str | None) -> Sequence[int]:
        """The rows (indexes into the table's columns) not marked ``tobedeleted``. Must raise
        :class:`SourceError` for an empty or a repeated id, on the first row that has one."""
        ids = table.column(id_col)
        if id_col and ("" in ids or len(set(ids)) != len(ids)):
            seen: dict[str, int] = {}
            for row, rid in enumerate(ids):
                if not rid:
                    raise table.empty(row, "sourcedId")
                if rid in seen:
                    raise table.error(row, "sourcedId", f"sourcedId {rid!r} also on line {seen[rid]}")
                seen[rid] = table.line(row)
        status = table.column(table.opt("status"))
        gone = {s for s in set(status) if s.casefold() == "tobedeleted"}
        if not gone:
            return range(len(table))
        dead = [row for row, s in enumerate(status) if s in gone]
        self.deleted.update(ids[row] for row in dead)
        dead_rows = set(dead)
        return [row for row in range(len(table)) if row not in dead_rows]

    # -- files -----------------------------------------------------------------------------

    def orgs(self) -> None:
        t = self.required("orgs")
        idc, namec, typec = t.col("sourcedId"), t.col("name"), t.col("type")
        ids, names, types = t.column(idc), t.column(namec), t.column(typec)
        parent_of = t.column(t.opt("parentSourcedId"))
        parents: dict[str, str] = {}
        for row in self.live(t, idc):
            oid = ids[row]
            if not types[row]:
                raise t.empty(row, "type")
            kind = types[row].casefold()
            self.org_types[oid] = kind
            if kind == "district":
                self.districts.append(names[row])
            parents[oid] = parent_of[row]
            if kind == "school":
                if not names[row]:
                    raise t.empty(row, "name")
                self.out.schools[oid] = School(id=oid, name=names[row])
        for oid in parents:  # an org inside a school (a department) counts as that school
            seen, cur, missing = set(), oid, ""
            while cur and cur not in self.out.schools and cur not in seen:
                seen.add(cur)
                if cur not in parents:
                    missing = cur  # named as a parent, but not in orgs.csv
                cur = parents.get(cur, "")
            if cur in self.out.schools:
                self.school_of[oid] = cur
            elif oid not in self.out.schools and self.org_types.get(oid) != "district":
                log.warning(
                    "%s: org %s (%s) is in no school of the file%s; its people and classes are left out",
                    t.file, oid, self.org_types.get(oid, "?"),
                    f" (its parent {missing} is not in the file)" if missing else "",
                )  # fmt: skip

    def academic_year(self) -> str | None:
        t = self.table("academicSessions")
        if t is None:
            return None
        idc = t.col("sourcedId")
        types = t.column(t.col("type"))
        starts, ends = t.column(t.opt("startDate")), t.column(t.opt("endDate"))
        years = t.column(t.opt("schoolYear"))
        found: list[str] = []  # "YYYY-YY" strings sort by year
        for row in self.live(t, idc):
            if types[row].casefold() != "schoolyear":
                continue
            start, end = parse_date(starts[row]), parse_date(ends[row])
            year = years[row]
            if start and end:
                found.append(academic_year_from_dates(start, end))
            elif year.isdigit():
                found.append(academic_year_from_school_year(int(year)))
        return max(found, default=None)

    def roles(self, users: Table, rows: Sequence[int]) -> dict[str, _Roles]:
        out: dict[str, _Roles] = defaultdict(_Roles)
        uids = users.column(users.col("sourcedId"))
        user_grades = users.column(users.opt("grades", "grade"))
        grades = {uids[row]: user_grades[row] for row in rows}
        rt = self.table("roles")
        if rt is not None:
            userc, rolec, orgc = rt.col("userSourcedId"), rt.col("role"), rt.col("orgSourcedId")
            role_users, role_values, role_orgs = rt.column(userc), rt.column(rolec), rt.column(orgc)
            role_grades = rt.column(rt.opt("grade", "grades"))
            for row in self.live(rt, rt.opt("sourcedId")):
                uid = role_users[row]
                if not uid:
                    raise rt.empty(row, "userSourcedId")
                if uid not in grades:
                    if uid in self.deleted:
                        continue
                    raise rt.error(row, "userSourcedId", f"unknown user {uid!r} (not in users.csv)")
                if not role_values[row]:
                    raise rt.empty(row, "role")
                grade = role_grades[row] or grades[uid]
                self._assign(out[uid], rt, row, role_values[row], role_orgs[row], grade)
            return out
        user_roles = users.column(users.col("role"))
        user_orgs = users.column(users.col("orgSourcedIds", "orgSourcedId"))
        kinds: dict[str, Role | Literal["ignored"] | None] = {}
        for row in rows:
            uid, value, orgs = uids[row], user_roles[row], user_orgs[row]
            if not value:
                raise users.empty(row, "role")
            kind = kinds[value] if value in kinds else kinds.setdefault(value, role_of(value))
            entry = out[uid]
            for org in (split_multi(orgs) or ("",)) if "," in orgs else (orgs,):
                self._assign(entry, users, row, value, org, grades[uid], kind)
        return out

    def _assign(
        self,
        roles: _Roles,
        t: Table,
        row: int,
        value: str,
        org: str,
        grade: str,
        kind: Role | Literal["ignored"] | None = None,
    ) -> None:
        """Add one role of a user; ``kind`` is ``role_of(value)`` when the caller has it."""
        kind = kind or role_of(value)
        if kind is None:
            raise t.error(row, "role", f"unknown role {value!r}")
        if kind == "ignored":
            roles.ignored = True
            return
        if org and org not in self.org_types and org not in self.deleted:
            raise t.error(row, "orgSourcedId", f"unknown org {org!r} (not in orgs.csv)")
        roles.entries.append((kind, org, grade))

    def run(self) -> SchoolData:
        self.orgs()
        year = self.academic_year()
        courses = self.courses()
        users = self.required("users")
        user_rows = self.live(users, users.col("sourcedId"))
        roles = self.roles(users, user_rows)
        classes = self.classes(courses)
        uids = users.column(users.col("sourcedId"))
        members = self.enrollments(classes, {uids[row] for row in user_rows}, roles)
        self.people(users, user_rows, roles, classes, members)
        self.groups(classes, members)
        ay = resolve_academic_year(year, self.options, self.folder.label)
        names = [s.name for s in self.out.schools.values()]
        organisation = names[0] if len(names) == 1 else self.districts[0] if len(self.districts) == 1 else ""
        return self.out.finish(ay, organisation, self.folder.label)

    def courses(self) -> dict[str, str]:
        t = self.table("courses")
        if t is None:
            return {}
        idc = t.col("sourcedId")
        ids, titles = t.column(idc), t.column(t.opt("title"))
        subjects = t.column(t.opt("subjects", "subject"))
        return {ids[row]: subjects[row] or titles[row] for row in self.live(t, idc)}

    def classes(self, courses: dict[str, str]) -> dict[str, dict[str, str]]:
        t = self.required("classes")
        idc = t.col("sourcedId")
        ids, titles = t.column(idc), t.column(t.col("title"))
        orgs = t.column(t.col("schoolSourcedId", "orgSourcedId"))
        types, codes = t.column(t.opt("classType")), t.column(t.opt("classCode"))
        subjects, grade_cells = t.column(t.opt("subjects")), t.column(t.opt("grades", "grade"))
        course_ids = t.column(t.opt("courseSourcedId"))
        out: dict[str, dict[str, str]] = {}
        for row in self.live(t, idc):
            cid, org = ids[row], orgs[row]
            if not org:
                raise t.empty(row, "schoolSourcedId")
            if org not in self.org_types:
                if org in self.deleted:
                    self.deleted.add(cid)
                    continue
                raise t.error(row, "schoolSourcedId", f"class {cid!r} names unknown org {org!r}")
            if org not in self.school_of:
                what = f"org {org} is a {self.org_types[org]}, not a school"
                log.warning("%s line %d: class %s skipped: %s", t.file, t.line(row), cid, what)
                self.deleted.add(cid)
                continue
            grades = split_multi(grade_cells[row])
            if not titles[row]:
                raise t.empty(row, "title")
            out[cid] = {
                "school": self.school_of[org],
                "name": titles[row],
                "type": types[row].casefold(),
                "code": codes[row],
                "subject": subjects[row] or courses.get(course_ids[row], ""),
                "grade": grades[0] if len(grades) == 1 else "",
            }
        return out

    def enrollments(
        self, classes: dict[str, dict[str, str]], users: set[str], roles: dict[str, _Roles]
    ) -> list[tuple[str, str, Role]]:
        t = self.required("enrollments")
        idc = t.col("sourcedId") if self.modes is not None else t.opt("sourcedId")
        class_ids = t.column(t.col("classSourcedId"))
        user_ids, values = t.column(t.col("userSourcedId")), t.column(t.col("role"))
        kinds = {value: role_of(value) for value in set(values)}
        rows = self.live(t, idc)
        member: dict[str, Role] = {v: k for v, k in kinds.items() if k == "learner" or k == "staff"}
        if (
            len(rows) == len(t)  # no row tobedeleted
            and len(member) == len(kinds)  # every role a learner's or staff's: none empty or unknown
            and "" not in class_ids
            and "" not in user_ids
            and classes.keys() >= set(class_ids)
            and users.issuperset(user_ids)
            and not any(roles[uid].ignored and not roles[uid].entries for uid in set(user_ids))
        ):
            # the common case, checked for the whole file at once: every row is a membership
            return list(zip(class_ids, user_ids, map(member.__getitem__, values), strict=True))
        out: list[tuple[str, str, Role]] = []
        for row in rows:
            cid, uid, value = class_ids[row], user_ids[row], values[row]
            if not cid:
                raise t.empty(row, "classSourcedId")
            if not uid:
                raise t.empty(row, "userSourcedId")
            if not value:
                raise t.empty(row, "role")
            kind = kinds[value]
            if kind is None:
                raise t.error(row, "role", f"unknown role {value!r}")
            if cid not in classes:
                if cid in self.deleted:
                    continue
                raise t.error(row, "classSourcedId", f"enrollment names unknown class {cid!r}")
            if uid not in users:
                if uid in self.deleted:
                    continue
                raise t.error(row, "userSourcedId", f"enrollment names unknown user {uid!r}")
            if kind == "ignored" or (roles[uid].ignored and not roles[uid].entries):
                log.debug("%s line %d: %s is not a learner or staff; not enrolled", t.file, t.line(row), uid)
                continue
            out.append((cid, uid, kind))
        return out

    def people(
        self,
        users: Table,
        rows: Sequence[int],
        roles: dict[str, _Roles],
        classes: dict[str, dict[str, str]],
        members: list[tuple[str, str, Role]],
    ) -> None:
        column = REF_COLUMNS.get(self.options.ref_field)
        if column is None:
            raise SourceError(
                f"ref_field {self.options.ref_field!r} is not supported for this source; "
                f"use one of {sorted(REF_COLUMNS)}",
                file=users.file,
            )
        refs = users.column(users.col(column))
        uids = users.column(users.col("sourcedId"))
        givens, families = users.column(users.opt("givenName")), users.column(users.opt("familyName"))
        emails = users.column(users.opt("email"))
        enrolled: dict[str, set[str]] | None = None  # user -> the schools of their classes

        def schools_enrolled(uid: str) -> set[str]:
            nonlocal enrolled
            if enrolled is None:
                enrolled = defaultdict(set)
                for cid, member, _ in members:
                    enrolled[member].add(classes[cid]["school"])
            return enrolled.get(uid, set())

        school_of, lines = self.school_of, users.lines
        grades_of = cache(split_multi)  # a trust's grades cells hold a few hundred values

        for row in rows:
            uid = uids[row]
            entries = roles[uid].entries if uid in roles else []
            if not entries:
                continue  # guardians and people without a role
            role: Role
            if len(entries) == 1:  # most people: one role in one org
                role, org, _ = entries[0]
                school = school_of.get(org)
                schools = [school] if school is not None else sorted(schools_enrolled(uid))
            else:
                role = "staff" if any(r == "staff" for r, _, _ in entries) else "learner"
                schools = sorted(
                    {school_of[o] for _, o, _ in entries if o in school_of} or schools_enrolled(uid)
                )
            line = lines[row]
            if not schools:
                log.warning("%s line %d: person %s skipped: in no school", users.file, line, uid)
                self.out.skipped.add(uid)
                continue
            ref = make_ref(
                refs[row], field=column, options=self.options, file=users.file, line=line, column=column
            )
            if ref is None:
                self.out.skip_or_fail(uid, users.file, line, column)
                continue
            year_group = None
            if role == "learner":
                grades = {g for r, _, cell in entries if r == "learner" for g in grades_of(cell)}
                if len(grades) == 1:
                    year_group = self.out.grade_year_group(schools[0], next(iter(grades)))
            given, family = givens[row], families[row]
            self.out.add_person(
                Person(
                    id=uid,
                    ref=ref,
                    role=role,
                    school_ids=tuple(schools),
                    given_name=given,
                    family_name=family,
                    display_name=display_name(given, family),
                    year_group=year_group,
                    email=emails[row] or None,
                ),
                f"{users.file}, line {line}",
            )

    def groups(self, classes: dict[str, dict[str, str]], members: list[tuple[str, str, Role]]) -> None:
        teachers: dict[str, list[str]] = defaultdict(list)
        learners: dict[str, list[str]] = defaultdict(list)
        for cid, uid, kind in members:
            if uid in self.out.people:
                (teachers if kind == "staff" else learners)[cid].append(uid)
        for cid, c in classes.items():
            yg = self.out.grade_year_group(c["school"], c["grade"]) if c["grade"] else None
            t, learn = tuple(teachers[cid]), tuple(learners[cid])
            if c["type"] == "homeroom":
                self.out.mentor_groups[cid] = MentorGroup(
                    id=cid,
                    school_id=c["school"],
                    name=c["name"],
                    mentor_ids=t,
                    learner_ids=learn,
                    year_group=yg,
                )
            else:
                self.out.classes[cid] = Class(
                    id=cid,
                    school_id=c["school"],
                    name=c["name"],
                    code=c["code"],
                    subject=c["subject"],
                    teacher_ids=t,
                    learner_ids=learn,
                    year_group=yg,
                )


def read_roster_folder(
    folder: CsvFolder, options: SourceOptions, *, modes: dict[str, str] | None, system: str
) -> SchoolData:
    """Read OneRoster-shaped files from an opened folder. ``modes`` is the manifest's
    ``file.*`` map (``None`` for SDS v2.x, which has no manifest)."""
    return _Reader(folder, options, modes, system).run()
