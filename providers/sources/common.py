"""What every source reader shares: options, user references, roles, academic years, and a
builder that checks duplicates and returns a sorted :class:`SchoolData`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from itertools import chain
from operator import attrgetter
from typing import Any, Literal, TypeVar

from reconciler.document.rules import clean_text, holds_bidi
from reconciler.errors import SourceError
from reconciler.school import Class, MentorGroup, Person, Role, School, SchoolData, YearGroup

__all__ = [
    "REF_FIELDS",
    "ModelBuilder",
    "SourceOptions",
    "academic_year_from_dates",
    "academic_year_from_school_year",
    "check_academic_year",
    "grade_year_group",
    "make_ref",
    "parse_date",
    "role_of",
]

log = logging.getLogger(__name__)

REF_FIELDS = ("default", "username", "upn", "email", "employee_id")


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """How a source is read.

    ``academic_year``: used only when the source does not say ("2026-27").
    ``ref_field``: which field becomes a person's user reference: ``default`` (the source's own
    choice: ``upn`` for Realsmart, ``username`` for OneRoster and SDS), ``username``/``upn``,
    ``email`` or ``employee_id`` (Realsmart staff only).
    ``upn_domain``: appended (``name@domain``) to a username/UPN that has no ``@``; without it
    such a value is an error.
    ``skip_people_without_ref``: skip (with a warning, and drop them from every group) people
    whose reference is empty, instead of failing. Default: fail, naming the row.
    """

    academic_year: str | None = None
    ref_field: str = "default"
    upn_domain: str | None = None
    skip_people_without_ref: bool = False


_AY = re.compile(r"^(\d{4})-(\d{2})$")
_UPN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_academic_year(value: str, *, file: str | None = None, column: str | None = None) -> str:
    """``value`` if it is ``YYYY-YY`` with consecutive years, else :class:`SourceError`."""
    m = _AY.match(value.strip())
    if not m or (int(m.group(1)) + 1) % 100 != int(m.group(2)):
        raise SourceError(
            f"academic year {value!r} is not like '2026-27' (two consecutive years)", file=file, column=column
        )
    return value.strip()


def academic_year_from_dates(start: date, end: date) -> str:
    """The academic year (August to July) holding the middle of a session."""
    mid = start + (end - start) / 2
    first = mid.year if mid.month >= 8 else mid.year - 1
    return f"{first}-{(first + 1) % 100:02d}"


def academic_year_from_school_year(year: int) -> str:
    """OneRoster's ``schoolYear`` names the year a school year ends: 2027 -> "2026-27"."""
    return f"{year - 1}-{year % 100:02d}"


def parse_date(value: str) -> date | None:
    """``YYYY-MM-DD`` (optionally with a time) or ``M/D/YYYY``; ``None`` if neither."""
    value = value.strip()
    for fmt in ("%Y-%m-%d", "%m/%d/%Y"):
        try:
            return datetime.strptime(value[:10] if fmt == "%Y-%m-%d" else value, fmt).date()
        except ValueError:
            continue
    return None


def resolve_academic_year(found: str | None, options: SourceOptions, file: str) -> str:
    if found:
        return found
    if options.academic_year:
        return check_academic_year(options.academic_year, column="academic_year")
    raise SourceError(
        "the source does not say which academic year it is; set the academic year option (e.g. '2026-27')",
        file=file,
    )


def make_ref(
    raw: str, *, field: str, options: SourceOptions, file: str, line: int | None, column: str
) -> str | None:
    """The user reference from a cell, or ``None`` when the cell is empty.

    Must raise :class:`SourceError` (file, line, column) for a username/UPN without ``@`` when no
    ``upn_domain`` is set, or a value that does not look like ``name@domain.tld``.
    """
    value = raw.strip()
    if not value:
        return None
    if field in ("username", "upn") and "@" not in value:
        if not options.upn_domain:
            raise SourceError(
                f"{value!r} is not a UPN (no @domain); set the upn_domain option to append one, "
                "or choose another ref_field",
                file=file,
                line=line,
                column=column,
            )
        value = f"{value}@{options.upn_domain.lstrip('@')}"
    if field in ("username", "upn", "email") and not _UPN.match(value):
        raise SourceError(f"{value!r} does not look like name@domain", file=file, line=line, column=column)
    return value


def grade_year_group(school_id: str, grade: str) -> YearGroup:
    """A year group from a grade: id ``<school>-<grade>`` (unique in a trust), name "Year 9"."""
    g = grade.strip()
    if g.isdigit():
        g = str(int(g))
        return YearGroup(id=f"{school_id}-{g}", school_id=school_id, name=f"Year {g}")
    return YearGroup(id=f"{school_id}-{g}", school_id=school_id, name=g)


LEARNER_ROLES = frozenset({"student", "learner", "pupil"})
STAFF_ROLES = frozenset(
    {
        "teacher", "administrator", "aide", "proctor", "districtadministrator", "siteadministrator",
        "systemadministrator", "principal", "counselor", "staff", "faculty", "professor", "lecturer",
        "instructor",
    }
)  # fmt: skip
IGNORED_ROLES = frozenset({"guardian", "parent", "relative"})


def role_of(value: str) -> Role | Literal["ignored"] | None:
    """Normalise a role (any case): ``learner``, ``staff``, ``ignored`` (guardians, parents,
    relatives, ``ext:`` roles) or ``None`` when unknown (the caller reports it)."""
    v = value.strip().casefold().replace(" ", "")
    if v in LEARNER_ROLES:
        return "learner"
    if v in STAFF_ROLES:
        return "staff"
    if v in IGNORED_ROLES or v.startswith("ext:"):
        return "ignored"
    return None


def display_name(given: str, family: str, display: str = "") -> str:
    return display.strip() or f"{given.strip()} {family.strip()}".strip()


_T = TypeVar("_T")


def _changed(value: _T, **fields: Any) -> _T:
    """``dataclasses.replace(value, **fields)``, or ``value`` itself when no field would change
    (most of a trust's people and classes: replace is slow at that scale)."""
    if all(getattr(value, name) == new for name, new in fields.items()):
        return value
    return replace(value, **fields)  # type: ignore[type-var]


def _same(text: str) -> str:
    return text


def _any_bidi(objects: Sequence[object], *fields: str) -> bool:
    """Whether a text field of any of ``objects`` holds a bidirectional control (one search of
    all of them, not one a field)."""
    values: Iterable[str]
    if len(fields) == 1:
        values = map(attrgetter(fields[0]), objects)
    else:
        values = chain.from_iterable(map(attrgetter(*fields), objects))
    return holds_bidi("\n".join(values))


class ModelBuilder:
    """Collects one source's objects, refuses duplicates, and returns a sorted SchoolData."""

    def __init__(self, system: str, options: SourceOptions) -> None:
        self.system = system
        self.options = options
        self.schools: dict[str, School] = {}
        self.people: dict[str, Person] = {}
        self.year_groups: dict[str, YearGroup] = {}
        self.mentor_groups: dict[str, MentorGroup] = {}
        self.classes: dict[str, Class] = {}
        self.skipped: set[str] = set()
        self._refs: dict[str, tuple[str, str]] = {}  # casefolded ref -> (person id, where)
        self._grades: dict[tuple[str, str], str] = {}  # (school, grade) -> year group id

    def skip_or_fail(self, person_id: str, file: str, line: int | None, column: str) -> None:
        """A person without a usable reference: skip with a warning if allowed, else raise."""
        if not self.options.skip_people_without_ref:
            raise SourceError(
                f"person {person_id!r} has no user reference ({column} is empty); fill it in, or set "
                "skip_people_without_ref to skip such people",
                file=file,
                line=line,
                column=column,
            )
        log.warning("%s line %s: skipping person %s: %s is empty", file, line, person_id, column)
        self.skipped.add(person_id)

    def add_person(self, person: Person, where: str) -> None:
        """Must raise :class:`SourceError` for a repeated id or a reference used twice."""
        if person.id in self.people:
            raise SourceError(f"person id {person.id!r} appears twice; ids must be unique", file=where)
        key = person.ref.casefold()
        if key in self._refs:
            other, other_where = self._refs[key]
            raise SourceError(
                f"user reference {person.ref!r} is used by person {other!r} ({other_where}) and "
                f"person {person.id!r}; each person needs their own account",
                file=where,
            )
        self._refs[key] = (person.id, where)
        self.people[person.id] = person

    def add_year_group(self, yg: YearGroup) -> str:
        self.year_groups.setdefault(yg.id, yg)
        return yg.id

    def grade_year_group(self, school_id: str, grade: str) -> str:
        """The id of the year group of a grade (:func:`grade_year_group`), added once: a trust
        names a few hundred for tens of thousands of learners."""
        made = self._grades.get((school_id, grade))
        if made is None:
            made = self._grades[school_id, grade] = self.add_year_group(grade_year_group(school_id, grade))
        return made

    def finish(self, academic_year: str, organisation: str, source: str) -> SchoolData:
        """Must raise :class:`SourceError` when there are no schools or no people."""
        if not self.schools:
            raise SourceError("the source has no schools; nothing would be synchronised", file=source)
        if not self.people:
            raise SourceError("the source has no people; nothing would be synchronised", file=source)

        skipped = self.skipped

        def ids(values: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(sorted(set(values).difference(skipped) if skipped else set(values)))

        # names leave the source without bidirectional controls (they would reorder what people
        # see in Entra and on a terminal): one place for every reader. A trust's names are
        # searched for them all at once, and only objects that change are copied.
        people = [p for _, p in sorted(self.people.items())]
        names_to_clean = _any_bidi(people, "given_name", "family_name", "display_name")
        people = [
            _changed(
                p,
                school_ids=tuple(sorted(set(p.school_ids))),
                given_name=clean_text(p.given_name),
                family_name=clean_text(p.family_name),
                display_name=clean_text(p.display_name),
            )
            if names_to_clean or len(p.school_ids) > 1
            else p
            for p in people
        ]
        mentor_groups = [m for _, m in sorted(self.mentor_groups.items())]
        text = clean_text if _any_bidi(mentor_groups, "name") else _same
        mentor_groups = [
            _changed(m, name=text(m.name), mentor_ids=ids(m.mentor_ids), learner_ids=ids(m.learner_ids))
            for m in mentor_groups
        ]
        classes = [c for _, c in sorted(self.classes.items())]
        text = clean_text if _any_bidi(classes, "name", "code", "subject") else _same
        classes = [
            _changed(
                c,
                name=text(c.name),
                code=text(c.code),
                subject=text(c.subject),
                teacher_ids=ids(c.teacher_ids),
                learner_ids=ids(c.learner_ids),
            )
            for c in classes
        ]
        return SchoolData(
            academic_year=academic_year,
            schools=tuple(
                replace(s, name=clean_text(s.name), short_name=clean_text(s.short_name))
                for _, s in sorted(self.schools.items())
            ),
            people=tuple(people),
            year_groups=tuple(
                replace(y, name=clean_text(y.name)) for _, y in sorted(self.year_groups.items())
            ),
            mentor_groups=tuple(mentor_groups),
            classes=tuple(classes),
            system=self.system,
            organisation=clean_text(organisation),
        )
