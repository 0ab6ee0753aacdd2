"""The school model: what every source (Realsmart export, OneRoster, SDS CSV) is read into, and
what the generator turns into a desired state. Pure values, no I/O.

People are named by ``ref``: the user reference used to match them in Entra (UPN by default).
Ids (``id`` fields) are the source system's own stable identifiers and are what keys are made of.
Passwords are never part of the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Class", "MentorGroup", "Person", "Role", "School", "SchoolData", "YearGroup"]

Role = Literal["learner", "staff"]


@dataclass(frozen=True, slots=True)
class Person:
    id: str  # source id, stable
    ref: str  # user reference (UPN, mail or employeeId, per the source/config)
    role: Role
    school_ids: tuple[str, ...]
    given_name: str = ""
    family_name: str = ""
    display_name: str = ""
    year_group: str | None = None  # year group id, learners only
    email: str | None = None
    employee_id: str | None = None


@dataclass(frozen=True, slots=True)
class School:
    id: str  # e.g. DfE number or source id; part of every key
    name: str
    short_name: str = ""  # for display names, e.g. "Oak"


@dataclass(frozen=True, slots=True)
class YearGroup:
    id: str  # e.g. "7", "Y7", "12"
    school_id: str
    name: str  # "Year 7"


@dataclass(frozen=True, slots=True)
class MentorGroup:
    """A form / tutor / registration group: mentors (form tutors) and learners."""

    id: str
    school_id: str
    name: str  # "7X"
    mentor_ids: tuple[str, ...] = ()
    learner_ids: tuple[str, ...] = ()
    year_group: str | None = None


@dataclass(frozen=True, slots=True)
class Class:
    """A teaching group / section: teachers and learners."""

    id: str
    school_id: str
    name: str  # "7A Maths 1"
    code: str = ""  # short code, e.g. "7A-Ma1"
    subject: str = ""
    teacher_ids: tuple[str, ...] = ()
    learner_ids: tuple[str, ...] = ()
    year_group: str | None = None


@dataclass(frozen=True, slots=True)
class SchoolData:
    """Everything one source says, for one school or a whole trust."""

    academic_year: str  # "2026-27"
    schools: tuple[School, ...]
    people: tuple[Person, ...]
    year_groups: tuple[YearGroup, ...] = ()
    mentor_groups: tuple[MentorGroup, ...] = ()
    classes: tuple[Class, ...] = ()
    system: str = "realsmart"
    organisation: str = ""  # trust or school name

    def person(self, person_id: str) -> Person:
        for p in self.people:
            if p.id == person_id:
                return p
        raise KeyError(person_id)
