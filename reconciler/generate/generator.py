"""The generator: school model + configuration -> desired state (``render`` in the design).

Pure: values in, values out, no I/O. Same inputs, same output, byte for byte.

What it makes, following ``[sync]``:

* groups on: a Microsoft 365 group per class (owners: its teachers; members: its learners and
  teachers) keyed ``class:{school}:{academic year}:{class id}``, and one per mentor group (owners:
  its mentors; members: its learners and mentors) keyed ``mentor:{school}:{year}:{group id}``;
* administrative units on, per school: ``au:{school}:mentors`` (every mentor of the school's mentor
  groups; only for a school with mentor groups), ``au:{school}:learners`` (every learner of the
  school) and ``au:{school}:year-{id}``
  per year group (its learners; a year group a learner names but the source does not list is made
  up, named "Year {id}"). With groups on too and ``group_administrative_units`` (default), a
  school with class groups also gets ``au:{school}:classes`` holding them, and one with mentor
  groups ``au:{school}:mentor-groups`` (groups are placed in these units, people are not);
* Teams on: ``team:{group key}`` for each group of the kinds in ``teams_for``, with the configured
  template; a group without an owner cannot become a Team and is skipped with a warning.

Class groups are education classes (``[sync] education_classes``, default on): each carries an
:class:`~reconciler.model.EducationClass` (externalId = its key, classCode, externalName = the
class's name, term = the academic year) and hidden membership (what Graph gives a class). Mentor
groups are plain Microsoft 365 groups unless their Team template is ``educationClass``.

Ids in keys are percent-encoded where they hold ``:``, ``%``, ``/`` or whitespace, so a key can
always be split on ``:``. mailNicknames are made legal by :func:`reconciler.generate.naming.nickname`.
The default templates end them in a hash of the group's own key, so a nickname depends on nothing
but its own group; only when a custom template gives two groups the same nickname do those two
get ``-{hash of the key}`` appended (case-insensitively unique across the output).

People without a usable user reference, and ids that name nobody, are left out with a warning.
An empty school data set (no schools or no people) is an error, never "remove everyone".
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from reconciler.document.rules import DISPLAY_NAME_MAX, MAIL_NICKNAME_MAX, key_problem, user_ref_problem
from reconciler.errors import SourceError
from reconciler.generate.naming import (
    TEMPLATE_VARIABLES,
    CompiledTemplate,
    compile_template,
    nickname,
    short_hash,
)
from reconciler.generate.naming import truncate_to as _truncate_to
from reconciler.identity import Key, user_ref
from reconciler.model import (
    AdministrativeUnit,
    DesiredState,
    EducationClass,
    Group,
    SourceInfo,
    Team,
)
from reconciler.plan.model import Warning
from reconciler.school import Class, MentorGroup, Person, School, SchoolData, YearGroup
from reconciler.settings import ACADEMIC_YEAR, Config

__all__ = ["DESCRIPTION_MAX", "MAX_OWNERS", "Generated", "generate", "key_part"]

log = logging.getLogger(__name__)

DESCRIPTION_MAX = 1024
MAX_OWNERS = 100
_KEY_SAFE = "-._~!$&'()*+,;=@"
#: an id of only the characters :func:`key_part` keeps as they are
_KEY_PLAIN = re.compile(r"[A-Za-z0-9" + re.escape(_KEY_SAFE) + r"]*").fullmatch
_GROUP_KINDS = ("class_group", "mentor_group", "au_mentors", "au_learners", "au_year_group", "au_classes",
                "au_mentor_groups")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Generated:
    """The desired state and what the generator left out or could not do, with reasons (sorted)."""

    desired: DesiredState
    warnings: tuple[Warning, ...] = ()


def key_part(value: str) -> str:
    """An id as it appears in a key: percent-encoded except letters, digits and ``-._~!$&'()*+,;=@``."""
    if _KEY_PLAIN(value):  # the common id: nothing to encode (quote takes 20 times as long)
        return value
    return quote(unicodedata.normalize("NFC", value), safe=_KEY_SAFE)


def generate(data: SchoolData, config: Config, *, generated_at: str | None = None) -> Generated:
    """Turn school data into the desired state, following ``config`` (switches, naming, policy).

    Must raise SourceError for data with no schools or no people, an academic year that is not
    ``YYYY-YY`` (unless ``[source] academic_year`` overrides it), two objects with the same key, or
    a key that is too long; ConfigError (naming the ``[naming]`` key) for a template that fails.
    Must-not fail on a person without a usable reference or an id that names nobody: those are
    left out with a warning. ``generated_at`` (RFC 3339) is copied into the source information.
    """
    if not data.schools:
        raise SourceError(f"the {data.system} data has no schools; refusing to generate an empty state")
    if not data.people:
        raise SourceError(
            f"the {data.system} data has no people; refusing to generate a state that would remove everyone"
        )
    year = _academic_year(data, config)
    g = _Context(data, config, year)
    groups: list[tuple[Group, str, str]] = []  # group, wanted nickname, school id
    if config.sync.groups:
        groups += [item for c in data.classes if (item := _class_group(g, c)) is not None]
        groups += [item for m in data.mentor_groups if (item := _mentor_group(g, m)) is not None]
    final = _unique_nicknames(groups)
    aus = _administrative_units(g, final) if config.sync.administrative_units else []
    teams = _teams(g, final) if config.sync.teams else []
    _check_keys([*aus, *final, *teams])
    desired = DesiredState(
        administrative_units=tuple(sorted(aus, key=lambda a: a.key)),
        groups=tuple(sorted(final, key=lambda x: x.key)),
        teams=tuple(sorted(teams, key=lambda t: t.key)),
        policy=config.removal,
        source=SourceInfo(system=data.system, generated_at=generated_at, academic_year=year),
        user_match=config.users.match,
    )
    warnings = tuple(sorted(g.warnings, key=lambda w: (w.code, w.key or "", w.ref or "", w.message)))
    if log.isEnabledFor(logging.INFO):  # counting the people walks every member list
        log.info(
            "generated %d administrative units, %d groups, %d teams for %d people (%d warnings)",
            len(desired.administrative_units), len(desired.groups), len(desired.teams),
            len(desired.people()), len(warnings),
        )  # fmt: skip
    return Generated(desired=desired, warnings=warnings)


def _academic_year(data: SchoolData, config: Config) -> str:
    override = config.source.academic_year if config.source is not None else None
    year = override or data.academic_year.strip()
    if not ACADEMIC_YEAR.match(year):
        raise SourceError(
            f"the academic year {year!r} from the {data.system} data is not written YYYY-YY (such as "
            '"2026-27"); set academic_year in [source] of the configuration'
        )
    return year


# -- context: compiled templates, people, warnings ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Names:
    display_name: CompiledTemplate
    description: CompiledTemplate
    mail_nickname: CompiledTemplate | None


@dataclass
class _Context:
    data: SchoolData
    config: Config
    year: str
    warnings: set[Warning] = field(default_factory=set)
    names: dict[str, _Names] = field(default_factory=dict)
    schools: dict[str, School] = field(default_factory=dict)
    years: dict[tuple[str, str], YearGroup] = field(default_factory=dict)
    person_ids: frozenset[str] = frozenset()
    refs: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind in _GROUP_KINDS:
            t = getattr(self.config.naming, kind)
            allowed = TEMPLATE_VARIABLES[kind]
            self.names[kind] = _Names(
                display_name=compile_template(f"naming.{kind}.display_name", t.display_name, allowed),
                description=compile_template(f"naming.{kind}.description", t.description, allowed),
                mail_nickname=(
                    compile_template(f"naming.{kind}.mail_nickname", t.mail_nickname, allowed)
                    if t.mail_nickname is not None
                    else None
                ),
            )
        self.schools = {s.id: s for s in self.data.schools}
        self.years = {(y.school_id, y.id): y for y in self.data.year_groups}
        self.person_ids = frozenset(p.id for p in self.data.people)
        self.refs = self._references()

    def warn(self, code: str, message: str, *, key: str | None = None, ref: str | None = None) -> None:
        self.warnings.add(Warning(code=code, message=message, key=key, ref=ref))

    def _references(self) -> dict[str, str]:
        source = self.config.users.reference
        allowed = TEMPLATE_VARIABLES["users.reference"]
        template = compile_template("users.reference", source, allowed) if source else None
        refs: dict[str, str] = {}
        for p in self.data.people:
            raw = p.ref
            if template is not None:
                school = self.schools.get(p.school_ids[0]) if p.school_ids else None
                variables = {
                    "person": _person_vars(p),
                    "school": _school_vars(school) if school else None,
                    "organisation": self.data.organisation,
                }
                raw = template.render(variables, subject=f"person {p.id}")
            ref = user_ref(raw)
            if not ref:
                self.warn(
                    "personWithoutReference", f"{p.role} {p.id} has no user reference; left out everywhere"
                )
                continue
            problem = user_ref_problem(ref, self.config.users.match)
            if problem is not None:
                self.warn("invalidUserReference", f"{p.role} {p.id}: {problem}; left out everywhere", ref=ref)
                continue
            refs[p.id] = ref
        return refs

    def people(self, ids: Collection[str], key: str) -> frozenset[str]:
        """The references of the people ``ids`` names; a warning for an id the source lacks."""
        found: set[str | None] = set(map(self.refs.get, ids))
        if None in found:  # someone without a usable reference, or an unknown id
            found.discard(None)
            for pid in ids:
                if pid not in self.refs and pid not in self.person_ids:
                    self.warn(
                        "unknownPerson",
                        f"person id {pid!r} is not among the source's people; left out",
                        key=key,
                    )
        return frozenset(found)  # type: ignore[arg-type]  # None is gone

    def school(self, school_id: str, what: str) -> School | None:
        school = self.schools.get(school_id)
        if school is None:
            self.warn(
                "unknownSchool",
                f"{what} names school {school_id!r}, which the source does not list; left out",
            )
        return school

    def year_group(self, school_id: str, year_id: str | None) -> YearGroup | None:
        if not year_id:
            return None
        found = self.years.get((school_id, year_id))
        if found is None:
            name = f"Year {year_id}" if year_id.isdigit() else year_id
            found = YearGroup(id=year_id, school_id=school_id, name=name)
        return found

    def variables(self, school: School, key: str, **extra: Any) -> dict[str, Any]:
        organisation = self.data.organisation
        return {"school": _school_vars(school), "academic_year": self.year, "organisation": organisation,
                "key": key, **extra}  # fmt: skip

    def render(
        self, kind: str, key: str, variables: Mapping[str, Any], fallback: str
    ) -> tuple[str, str | None]:
        """Display name (never empty: ``fallback`` with a warning) and description (None if empty)."""
        names = self.names[kind]
        display = names.display_name.render(variables, subject=key)
        if not display:
            self.warn("emptyName", f"the display name template gave nothing; using {fallback!r}", key=key)
            display = fallback
        description = names.description.render(variables, subject=key) or None
        return _cut(display, DISPLAY_NAME_MAX), (_cut(description, DESCRIPTION_MAX) if description else None)

    def nickname(self, kind: str, key: str, variables: Mapping[str, Any]) -> str:
        template = self.names[kind].mail_nickname
        return nickname(template.render(variables, subject=key) if template is not None else key)


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else _truncate_to(text, n).strip()


def _school_vars(s: School) -> dict[str, Any]:
    return {"id": s.id, "name": s.name, "short_name": s.short_name or s.name}


def _year_vars(y: YearGroup | None) -> dict[str, Any] | None:
    return None if y is None else {"id": y.id, "name": y.name}


def _person_vars(p: Person) -> dict[str, Any]:
    return {
        "id": p.id, "ref": p.ref, "role": p.role, "given_name": p.given_name, "family_name": p.family_name,
        "display_name": p.display_name, "year_group": p.year_group or "", "email": p.email or "",
        "employee_id": p.employee_id or "",
    }  # fmt: skip


# -- groups -----------------------------------------------------------------------------------------


def _owners(g: _Context, owners: frozenset[str], key: str) -> frozenset[str]:
    if len(owners) <= MAX_OWNERS:
        return owners
    g.warn(
        "tooManyOwners",
        f"{len(owners)} owners; a group may have {MAX_OWNERS}, the first by reference kept",
        key=key,
    )
    return frozenset(sorted(owners)[:MAX_OWNERS])


def _placement(g: _Context, unit: str) -> frozenset[Key]:
    sync = g.config.sync
    placed = sync.administrative_units and sync.group_administrative_units
    return frozenset({Key(unit)}) if placed else frozenset()


def _class_group(g: _Context, c: Class) -> tuple[Group, str, str] | None:
    school = g.school(c.school_id, f"class {c.id}")
    if school is None:
        return None
    key = Key(f"class:{key_part(school.id)}:{g.year}:{key_part(c.id)}")
    variables = g.variables(
        school, key, year_group=_year_vars(g.year_group(school.id, c.year_group)),
        **{"class": {"id": c.id, "name": c.name, "code": c.code, "subject": c.subject,
                     "year_group": c.year_group or ""}},
    )  # fmt: skip
    display, description = g.render("class_group", key, variables, fallback=c.name or c.code or c.id)
    teachers = g.people(c.teacher_ids, key)
    owners = _owners(g, teachers, key)
    education = _education(g, key, c.code, c.name) if g.config.sync.education_classes else None
    group = Group(
        key=key, display_name=display, mail_nickname="", description=description,
        visibility="HiddenMembership" if education else g.config.sync.group_visibility, owners=owners,
        members=g.people(c.learner_ids, key) | teachers,
        administrative_units=_placement(g, f"au:{key_part(school.id)}:classes"), education=education,
    )  # fmt: skip
    return group, g.nickname("class_group", key, variables), school.id


def _mentor_group(g: _Context, m: MentorGroup) -> tuple[Group, str, str] | None:
    school = g.school(m.school_id, f"mentor group {m.id}")
    if school is None:
        return None
    key = Key(f"mentor:{key_part(school.id)}:{g.year}:{key_part(m.id)}")
    variables = g.variables(
        school, key, year_group=_year_vars(g.year_group(school.id, m.year_group)),
        group={"id": m.id, "name": m.name, "year_group": m.year_group or ""},
    )  # fmt: skip
    display, description = g.render("mentor_group", key, variables, fallback=m.name or m.id)
    mentors = g.people(m.mentor_ids, key)
    owners = _owners(g, mentors, key)
    sync = g.config.sync
    as_class = sync.education_classes and sync.mentor_team_template == "educationClass"
    education = _education(g, key, None, m.name) if as_class else None
    group = Group(
        key=key, display_name=display, mail_nickname="", description=description,
        visibility="HiddenMembership" if education else sync.group_visibility, owners=owners,
        members=g.people(m.learner_ids, key) | mentors,
        administrative_units=_placement(g, f"au:{key_part(school.id)}:mentor-groups"), education=education,
    )  # fmt: skip
    return group, g.nickname("mentor_group", key, variables), school.id


def _education(g: _Context, key: str, code: str | None, name: str | None) -> EducationClass:
    """A class's education properties: externalId = its key (unique across a trust), the term = the
    academic year (the school model has no terms), each cut to Graph's string limits."""
    return EducationClass(
        external_id=key,
        class_code=_cut(code, DISPLAY_NAME_MAX) if code else None,
        external_name=_cut(name, DISPLAY_NAME_MAX) if name else None,
        term=g.year,
    )


def _with_suffix(base: str, suffix: str) -> str:
    head = base[: MAIL_NICKNAME_MAX - len(suffix) - 1].rstrip("-")
    return nickname(f"{head}-{suffix}" if head else suffix)


def _unique_nicknames(items: list[tuple[Group, str, str]]) -> list[Group]:
    """Give every group a mailNickname unique (case-insensitively) in the output, deterministically.
    The default templates already are (they end in a hash of the key); with a custom template,
    groups that share a wanted nickname get ``-{hash of key}`` (longer hashes while any still share)."""
    wanted = {group.key: base for group, base, _ in items}
    chosen: dict[Key, str] = dict(wanted)
    for length in (8, 12, 16, 64):
        counts = Counter(n.casefold() for n in chosen.values())
        clashing = [k for k, n in chosen.items() if counts[n.casefold()] > 1]
        if not clashing:
            break
        for k in clashing:
            chosen[k] = _with_suffix(chosen[k] if length == 8 else wanted[k], short_hash(k, length))
    return [replace(group, mail_nickname=chosen[group.key]) for group, _, _ in items]


# -- administrative units and teams ----------------------------------------------------------------


def _administrative_units(g: _Context, groups: list[Group]) -> list[AdministrativeUnit]:
    units: list[AdministrativeUnit] = []
    mentors: dict[str, set[str]] = defaultdict(set)
    for m in g.data.mentor_groups:
        mentors[m.school_id].update(m.mentor_ids)
    learners: dict[str, set[str]] = defaultdict(set)
    by_year: dict[tuple[str, str], set[str]] = defaultdict(set)
    for p in g.data.people:
        if p.role != "learner":
            continue
        for sid in p.school_ids:
            learners[sid].add(p.id)
            if p.year_group:
                by_year[(sid, p.year_group)].add(p.id)
    placed = {unit for group in groups for unit in group.administrative_units}

    def unit(kind: str, key: str, school: School, ids: Iterable[str], fallback: str, **extra: Any) -> None:
        display, description = g.render(kind, key, g.variables(school, key, **extra), fallback=fallback)
        members = g.people(sorted(ids), key)
        units.append(
            AdministrativeUnit(key=Key(key), display_name=display, description=description, members=members)
        )

    for school in g.data.schools:
        sid = key_part(school.id)
        if any(m.school_id == school.id for m in g.data.mentor_groups):
            unit("au_mentors", f"au:{sid}:mentors", school, mentors[school.id], f"{school.name} - Mentors")
        unit("au_learners", f"au:{sid}:learners", school, learners[school.id], f"{school.name} - Learners")
        year_ids = {y.id for y in g.data.year_groups if y.school_id == school.id}
        year_ids |= {y for (s, y) in by_year if s == school.id}
        for year_id in sorted(year_ids):
            yg = g.year_group(school.id, year_id)
            assert yg is not None
            key = f"au:{sid}:year-{key_part(year_id)}"
            unit(
                "au_year_group",
                key,
                school,
                by_year[(school.id, year_id)],
                yg.name,
                year_group=_year_vars(yg),
            )
        for kind, key in (
            ("au_classes", f"au:{sid}:classes"),
            ("au_mentor_groups", f"au:{sid}:mentor-groups"),
        ):
            if key in placed:
                unit(kind, key, school, (), key)
    return units


def _teams(g: _Context, groups: list[Group]) -> list[Team]:
    sync = g.config.sync
    wanted = {"class": "classes", "mentor": "mentor_groups"}
    teams: list[Team] = []
    for group in groups:
        prefix = group.key.split(":", 1)[0]
        if wanted.get(prefix) not in sync.teams_for:
            continue
        if not group.owners:
            g.warn(
                "teamWithoutOwner",
                "the group has no owner, so it cannot become a Team; Team skipped",
                key=group.key,
            )
            continue
        template = sync.class_team_template if prefix == "class" else sync.mentor_team_template
        teams.append(Team.of(group.key, template))
    return teams


def _check_keys(objects: list[AdministrativeUnit | Group | Team]) -> None:
    counts = Counter(o.key.folded for o in objects)
    repeated = sorted(o.key for o in objects if counts[o.key.folded] > 1)
    if repeated:
        raise SourceError(
            f"two objects would have the same key {repeated[0]!r} (keys ignore case: a school, class, "
            "mentor group or year group id repeated, or differing only in case); ids must be unique"
        )
    for o in objects:
        problem = key_problem(o.key)
        if problem is not None:
            raise SourceError(f"cannot make a key from the source ids: {problem}")
