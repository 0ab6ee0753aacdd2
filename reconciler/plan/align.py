"""Pair keys by identity: the actual state respelled as the desired state spells its keys.

Entra compares the marker values that hold our keys ignoring case, and a school's system may
change the case of an id from one export to the next (``9A-Maths`` → ``9a-maths``). Such a key
still names the same object: :func:`align` renames, in the actual state, every AU and group key
(and with it its Team's key, the ids and the AU placements) that differs from a desired key only
by :attr:`~reconciler.identity.Key.folded`, to the desired spelling. After it the diff pairs keys
exactly, with plain set arithmetic, and plans nothing for such a change; its output spells keys
as the source wrote them.

Must: be cheap when no key needs respelling (one exact lookup per actual object).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from reconciler.identity import Key, team_key
from reconciler.model import ActualState, DesiredState

__all__ = ["align", "respellings"]


def respellings(wanted: Iterable[Key], have: Iterable[Key]) -> dict[Key, Key]:
    """``have`` key -> ``wanted`` key, for the keys of ``have`` that equal a wanted one only by identity."""
    wanted = set(wanted)
    strangers = [k for k in have if k not in wanted]
    if not strangers:
        return {}
    by_identity = {k.folded: k for k in wanted}
    out: dict[Key, Key] = {}
    for k in strangers:
        w = by_identity.get(k.folded)
        if w is not None:
            out[k] = w
    return out


def align(desired: DesiredState, actual: ActualState) -> ActualState:
    """``actual`` with its keys that name a desired object spelled as ``desired`` spells them."""
    renamed = {
        **respellings((a.key for a in desired.administrative_units), actual.administrative_units),
        **respellings((g.key for g in desired.groups), actual.groups),
    }
    if not renamed:
        return actual

    def key(k: Key) -> Key:
        return renamed.get(k, k)

    aus = {key(k): replace(a, key=key(k)) for k, a in actual.administrative_units.items()}
    groups = {
        key(k): replace(g, key=key(k), administrative_units=frozenset(key(a) for a in g.administrative_units))
        for k, g in actual.groups.items()
    }
    teams = {key(k): replace(t, key=team_key(key(k)), group=key(k)) for k, t in actual.teams.items()}
    team_of: dict[Key, Key] = {t.key: teams[key(k)].key for k, t in actual.teams.items()}
    ids: Mapping[Key, str] = {team_of.get(k) or key(k): v for k, v in actual.ids.items()}
    return replace(actual, administrative_units=aus, groups=groups, teams=teams, ids=ids)
