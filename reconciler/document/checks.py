"""Semantic checks of a desired-state document: what its JSON Schema cannot say.

Used by :func:`reconciler.document.load.validate_document`. The checks walk the raw parsed JSON
defensively, so they also run on a document that failed the schema (skipping what has the wrong
shape) and every problem is reported in one pass. Keys and user references are compared
case-insensitively, as Entra compares strings in ``$filter``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from reconciler.document import rules
from reconciler.identity import Key, team_key, user_ref
from reconciler.model import UserMatch

__all__ = ["Path", "count_objects", "format_path", "semantic_findings", "sort_findings"]

#: a JSON path as segments: ``("groups", 3, "mailNickname")``
Path = tuple[str | int, ...]
Found = tuple[Path, str]

_TOP_ORDER = ("version", "source", "userMatch", "administrativeUnits", "groups", "teams", "policy")
_USER_MATCHES: tuple[UserMatch, ...] = ("userPrincipalName", "mail", "employeeId")


def format_path(path: Path) -> str:
    """``("groups", 3, "mailNickname")`` -> ``groups[3].mailNickname``; ``()`` -> ``""``."""
    out = ""
    for seg in path:
        if isinstance(seg, int):
            out += f"[{seg}]"
        elif seg.isidentifier():
            out += f".{seg}" if out else seg
        else:
            out += f"[{json.dumps(seg, ensure_ascii=False)}]"
    return out


def _sort_key(item: Found) -> tuple[Any, ...]:
    path, message = item
    segs: list[tuple[int, int, str]] = []
    for i, seg in enumerate(path):
        if isinstance(seg, int):
            segs.append((0, seg, ""))
        elif i == 0 and seg in _TOP_ORDER:
            segs.append((1, _TOP_ORDER.index(seg), seg))
        else:
            segs.append((2, 0, seg))
    return (segs, message)


def sort_findings(found: Sequence[Found]) -> list[Found]:
    """Findings in document order: top-level fields in schema order, list items by index."""
    return sorted(found, key=_sort_key)


def _objects(data: Mapping[str, Any], name: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    items = data.get(name)
    if isinstance(items, list):
        for i, item in enumerate(items):
            if isinstance(item, Mapping):
                yield i, item


def _strings(obj: Mapping[str, Any], name: str) -> Iterator[tuple[int, str]]:
    items = obj.get(name)
    if isinstance(items, list):
        for i, item in enumerate(items):
            if isinstance(item, str):
                yield i, item


def _text(obj: Mapping[str, Any], name: str) -> str | None:
    value = obj.get(name)
    return value if isinstance(value, str) else None


def _keys(data: Mapping[str, Any], name: str, what: str, out: list[Found]) -> dict[str, str]:
    """Check the keys of one collection; return folded key -> exact key of its first holder."""
    first: dict[str, tuple[int, str]] = {}
    for i, obj in _objects(data, name):
        key = _text(obj, "key")
        if key is None:
            continue
        problem = rules.key_problem(key)
        if problem:
            out.append(((name, i, "key"), problem))
        folded = Key(key).folded
        if folded in first:
            j, other = first[folded]
            case = "" if other == key else f" ({rules.quote(other)}: keys are compared ignoring case)"
            message = f"{rules.quote(key)} is already the key of {name}[{j}]{case}; give each {what} its own"
            out.append(((name, i, "key"), message))
        else:
            first[folded] = (i, key)
    return {folded: key for folded, (_, key) in first.items()}


def _resolve(ref: str, known: Mapping[str, str], collection: str, what: str) -> str | None:
    """Why ``ref`` does not name an object of ``known`` (folded -> exact key), or ``None``."""
    exact = known.get(Key(ref).folded)
    if exact == ref:
        return None
    if exact is not None:
        return f"{rules.quote(ref)} differs only in case from the {what} key {rules.quote(exact)}; match it"
    return f"no {what} in {collection} has the key {rules.quote(ref)}; add one or fix the reference"


class _Refs:
    """What the checks know of each user reference met so far: a person is in many lists."""

    def __init__(self, match: UserMatch) -> None:
        self.match = match
        self.memo: dict[str, tuple[str | None, str]] = {}  # ref -> (its form problem, folded)
        self.fine: dict[str, str] = {}  # ref -> folded, for the refs of a good form
        self.own: set[str] = set()  # the fine refs that are their own folded form (most)

    def learn(self, ref: str) -> tuple[str | None, str]:
        known = self.memo.get(ref)
        if known is None:
            known = self.memo[ref] = (rules.user_ref_problem(ref, self.match), user_ref(ref))
            if known[0] is None:
                self.fine[ref] = known[1]
                if known[1] == ref:
                    self.own.add(ref)
        return known

    def all_fine(self, items: list[Any]) -> bool:
        """Whether ``items`` are references of a good form, each person once (case aside): the
        common case, checked a set at a time; a list this says nothing about is walked item by
        item, which finds and words its problems."""
        try:
            distinct = set(items)
        except TypeError:  # something unhashable in the list: not a reference
            return False
        if len(distinct) != len(items):
            return False
        if self.own >= distinct:  # distinct refs, each its own folded form: distinct people
            return True
        fine = self.fine
        if not fine.keys() >= distinct:
            for ref in [ref for ref in distinct if ref not in fine]:
                if not isinstance(ref, str) or self.learn(ref)[0] is not None:
                    return False
        return len(set(map(fine.__getitem__, distinct))) == len(distinct)


def _people(obj: Mapping[str, Any], base: Path, name: str, out: list[Found], refs: _Refs) -> None:
    items = obj.get(name)
    if not isinstance(items, list) or refs.all_fine(items):
        return
    seen: dict[str, int] = {}
    for i, ref in _strings(obj, name):
        problem, folded = refs.learn(ref)
        if problem:
            out.append(((*base, name, i), problem))
        if folded in seen:
            out.append(
                (
                    (*base, name, i),
                    f"{rules.quote(ref)} is already listed at {name}[{seen[folded]}] "
                    "(case does not matter); list each person once",
                )
            )
        else:
            seen[folded] = i


def _source(data: Mapping[str, Any], out: list[Found]) -> None:
    source = data.get("source")
    year = _text(source, "academicYear") if isinstance(source, Mapping) else None
    if year and len(year) == 7 and year[:4].isdigit() and year[5:].isdigit() and year[4] == "-":
        expected = f"{(int(year[:4]) + 1) % 100:02d}"
        if year[5:] != expected:
            message = f"{rules.quote(year)} is not one academic year; did you mean {year[:5]}{expected}?"
            out.append((("source", "academicYear"), message))


def semantic_findings(data: Mapping[str, Any]) -> list[Found]:
    """Every semantic problem of the (possibly schema-invalid) document ``data``, unsorted."""
    out: list[Found] = []
    raw_match = data.get("userMatch", "userPrincipalName")
    match: UserMatch = raw_match if raw_match in _USER_MATCHES else "userPrincipalName"
    refs = _Refs(match)
    _source(data, out)
    au_keys = _keys(data, "administrativeUnits", "administrative unit", out)
    group_keys = _keys(data, "groups", "group", out)
    _keys(data, "teams", "team", out)

    for i, au in _objects(data, "administrativeUnits"):
        name = _text(au, "displayName")
        problem = rules.display_name_problem(name) if name is not None else None
        if problem:
            out.append((("administrativeUnits", i, "displayName"), problem))
        _people(au, ("administrativeUnits", i), "members", out, refs)

    nicknames: dict[str, int] = {}
    groups_by_key: dict[str, tuple[int, Mapping[str, Any]]] = {}
    for i, g in _objects(data, "groups"):
        base: Path = ("groups", i)
        key = _text(g, "key")
        if key is not None and key not in groups_by_key:
            groups_by_key[key] = (i, g)
        name = _text(g, "displayName")
        problem = rules.display_name_problem(name) if name is not None else None
        if problem:
            out.append(((*base, "displayName"), problem))
        nick = _text(g, "mailNickname")
        if nick is not None:
            problem = rules.mail_nickname_problem(nick)
            if problem:
                out.append(((*base, "mailNickname"), problem))
            if nick.casefold() in nicknames:
                j = nicknames[nick.casefold()]
                out.append(
                    (
                        (*base, "mailNickname"),
                        f"{rules.quote(nick)} is already the mailNickname of groups[{j}] "
                        "(case does not matter); give each group its own",
                    )
                )
            else:
                nicknames[nick.casefold()] = i
        if g.get("visibility") == "HiddenMembership" and g.get("kind") == "security":
            out.append(
                (
                    (*base, "visibility"),
                    "HiddenMembership is only for Microsoft 365 groups; "
                    "use Private, or make the group kind microsoft365",
                )
            )
        _people(g, base, "owners", out, refs)
        _people(g, base, "members", out, refs)
        seen_aus: dict[str, int] = {}
        for j, ref in _strings(g, "administrativeUnits"):
            problem = _resolve(ref, au_keys, "administrativeUnits", "administrative unit")
            if problem and isinstance(data.get("administrativeUnits"), list):
                out.append(((*base, "administrativeUnits", j), problem))
            if ref in seen_aus:
                out.append(
                    (
                        (*base, "administrativeUnits", j),
                        f"{rules.quote(ref)} is already listed at "
                        f"administrativeUnits[{seen_aus[ref]}]; list each administrative unit once",
                    )
                )
            else:
                seen_aus[ref] = j

    team_of_group: dict[str, int] = {}
    for i, t in _objects(data, "teams"):
        base = ("teams", i)
        team_group = _text(t, "group")
        if team_group is None:
            continue
        ref = team_group
        if not isinstance(data.get("groups"), list):
            continue
        problem = _resolve(ref, group_keys, "groups", "group")
        if problem:
            out.append(((*base, "group"), problem))
            continue
        if ref in team_of_group:
            out.append(
                (
                    (*base, "group"),
                    f"teams[{team_of_group[ref]}] is already made from group {rules.quote(ref)}; "
                    "a group can have only one Team",
                )
            )
            continue
        team_of_group[ref] = i
        key = _text(t, "key")
        if key is not None and str(key) != str(team_key(ref)):
            out.append(
                (
                    (*base, "key"),
                    f"{rules.quote(key)} must be {rules.quote(team_key(ref))}: a Team is found in Entra "
                    'through its group, so its key is "team:" followed by the group\'s key',
                )
            )
        j, group = groups_by_key[ref]
        if group.get("kind", "microsoft365") != "microsoft365":
            out.append(
                (
                    (*base, "group"),
                    f"group {rules.quote(ref)} (groups[{j}]) is a {group.get('kind')} group; "
                    "only a Microsoft 365 group can become a Team, so make its kind microsoft365",
                )
            )
        owners = group.get("owners", [])
        if owners == []:
            out.append(
                (
                    ("groups", j, "owners"),
                    f"is empty, but teams[{i}] is made from this group and a Team needs "
                    "at least one owner; add one (for a class, its teacher)",
                )
            )
    return out


def count_objects(data: Any) -> dict[str, int]:
    """How many administrative units, groups, teams and distinct people ``data`` names.

    Defensive: counts only well-shaped parts, so it works on an invalid document too.
    """
    if not isinstance(data, Mapping):
        return {"administrativeUnits": 0, "groups": 0, "teams": 0, "people": 0}
    people: set[str] = set()
    for _, au in _objects(data, "administrativeUnits"):
        people.update(user_ref(r) for _, r in _strings(au, "members"))
    for _, g in _objects(data, "groups"):
        people.update(user_ref(r) for _, r in _strings(g, "owners"))
        people.update(user_ref(r) for _, r in _strings(g, "members"))
    return {
        "administrativeUnits": sum(1 for _ in _objects(data, "administrativeUnits")),
        "groups": sum(1 for _ in _objects(data, "groups")),
        "teams": sum(1 for _ in _objects(data, "teams")),
        "people": len(people),
    }
