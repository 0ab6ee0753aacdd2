"""Helpers of :mod:`reconciler.plan.diff`: the change collector and conflicts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from reconciler.identity import Key
from reconciler.model import ActualState, DesiredState, UnmanagedObject
from reconciler.plan.model import AnyChange, Conflict, Warning

__all__ = [
    "Collector",
    "find_conflicts",
    "format_keys",
]

def format_keys(keys: Iterable[str], limit: int = 20) -> str:
    """``a, b, c`` sorted, cut after ``limit`` with ``and N more``."""
    items = sorted(keys)
    shown = ", ".join(items[:limit])
    return f"{shown} and {len(items) - limit} more" if len(items) > limit else shown


class Collector:
    """Collects changes, warnings and conflicts while the diff runs; tracks unresolved people."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = users
        self.changes: list[AnyChange] = []
        self.warnings: list[Warning] = []
        self.conflicts: list[Conflict] = []
        self._unresolved: dict[str, set[Key]] = {}

    def warn(self, code: str, message: str, *, key: str | None = None, ref: str | None = None) -> None:
        self.warnings.append(Warning(code, message, key, ref))

    def resolved(self, refs: frozenset[str], key: Key) -> frozenset[str]:
        """The references the users index knows; the others are remembered for one warning each."""
        users = self.users
        missing = [r for r in refs if r not in users]
        if not missing:
            return refs
        for ref in missing:
            self._unresolved.setdefault(ref, set()).add(key)
        return refs.difference(missing)

    def finish_warnings(self) -> list[Warning]:
        out = list(self.warnings)
        for ref in sorted(self._unresolved):
            keys = self._unresolved[ref]
            out.append(Warning(
                "unresolvedUser",
                f"user {ref!r} is not in Entra (or lacks the match attribute); not added to "
                f"{len(keys)} object{'s' if len(keys) != 1 else ''}: {format_keys(keys, 10)}",
                None,
                ref,
            ))
        return out


def _index(unmanaged: Iterable[UnmanagedObject], kind: str) -> tuple[dict[str, list[UnmanagedObject]], ...]:
    by_nick: dict[str, list[UnmanagedObject]] = {}
    by_name: dict[str, list[UnmanagedObject]] = {}
    for u in sorted(unmanaged, key=lambda u: u.id):
        if u.kind != kind:
            continue
        if u.mail_nickname:
            by_nick.setdefault(u.mail_nickname.casefold(), []).append(u)
        by_name.setdefault(u.display_name.casefold(), []).append(u)
    return by_nick, by_name


def _collide(
    out: Collector, kind: str, key: str, nick: str | None, name: str,
    index: tuple[dict[str, list[UnmanagedObject]], ...],
) -> bool:
    by_nick, by_name = index
    found: dict[str, tuple[str, str]] = {}
    for u in by_name.get(name.casefold(), ()):
        found[u.id] = ("displayName", name)
    if nick is not None:
        for u in by_nick.get(nick.casefold(), ()):
            found[u.id] = ("mailNickname", nick)
    for object_id in sorted(found):
        field, value = found[object_id]
        out.conflicts.append(Conflict(kind, key, object_id, field, value))
        out.warn("conflict", f"{kind} {key} is not created: an unmanaged {kind} ({object_id}) in Entra has "
                 f"the same {field} {value!r}; rename it in the school data, or take the existing object "
                 "over explicitly (adopt)", key=key)
    return bool(found)


def find_conflicts(desired: DesiredState, actual: ActualState, out: Collector) -> tuple[set[Key], set[Key]]:
    """Conflicts for desired objects that do not exist yet; returns the blocked AU and group keys."""
    blocked_aus: set[Key] = set()
    blocked_groups: set[Key] = set()
    if not actual.unmanaged:
        return blocked_aus, blocked_groups
    au_index = _index(actual.unmanaged, "administrativeUnit")
    for au in desired.administrative_units:
        if au.key not in actual.administrative_units and _collide(
            out, "administrativeUnit", au.key, None, au.display_name, au_index
        ):
            blocked_aus.add(au.key)
    group_index = _index(actual.unmanaged, "group")
    for g in desired.groups:
        if g.key not in actual.groups and _collide(
            out, "group", g.key, g.mail_nickname, g.display_name, group_index
        ):
            blocked_groups.add(g.key)
    return blocked_aus, blocked_groups
