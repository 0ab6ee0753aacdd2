"""The managed actual state as a desired state (the ``export`` command).

Every managed AU, group (with owners, members and placements) and Team is desired as it is, so
``diff(snapshot(actual, ...), actual)`` is an empty plan, with two exceptions a document cannot
express, each left out so that the result stays a valid desired-state document:

- members and owners the users index could not name (``"id:<objectId>"`` references, people
  without the match attribute): a plan made from the snapshot would remove them.
  :func:`unnamed_members` lists them so that the caller can say so; ``keep_unnamed=True`` keeps
  them (the round trip is then exact, but the document does not validate);
- archived Teams (``archived`` is a fact about Entra, not something a document can desire): they
  stay archived whatever the Team removal policy, as a plan neither archives nor unarchives them;
- Teams whose group has no named owner left (a document cannot desire a Team without an owner):
  a plan leaves such a Team as it is while its group is desired without an owner.

Teams get the key ``"team:" + group key`` and the template ``standard`` (Graph cannot tell
which template made a team).
"""

from __future__ import annotations

from reconciler.model import (
    ActualState,
    AdministrativeUnit,
    DesiredState,
    Group,
    RemovalPolicy,
    SourceInfo,
    Team,
    UserMatch,
)

__all__ = ["UNNAMED_PREFIX", "snapshot", "unnamed_members"]

#: prefix of a member reference the users index could not name
UNNAMED_PREFIX = "id:"


def _named(refs: frozenset[str], keep: bool) -> frozenset[str]:
    if keep:
        return refs
    return frozenset(r for r in refs if not r.startswith(UNNAMED_PREFIX))


def snapshot(
    actual: ActualState,
    *,
    user_match: UserMatch = "userPrincipalName",
    policy: RemovalPolicy | None = None,
    source: SourceInfo | None = None,
    keep_unnamed: bool = False,
) -> DesiredState:
    """Turn the managed part of ``actual`` into a desired state, sorted by key.

    Must-not: include unmanaged objects, the users index, or (unless ``keep_unnamed``) unnamed
    members and owners.
    """
    aus = tuple(
        AdministrativeUnit(au.key, au.display_name, au.description, _named(au.members, keep_unnamed))
        for _, au in sorted(actual.administrative_units.items())
    )
    groups = tuple(
        Group(g.key, g.display_name, g.mail_nickname, g.kind, g.description, g.visibility,
              _named(g.owners, keep_unnamed), _named(g.members, keep_unnamed), g.administrative_units)
        for _, g in sorted(actual.groups.items())
    )
    owned = {g.key for g in groups if g.owners}
    teams = tuple(
        Team.of(group_key)
        for group_key, t in sorted(actual.teams.items())
        if not t.archived and (group_key in owned or group_key not in actual.groups)
    )
    return DesiredState(
        administrative_units=aus,
        groups=groups,
        teams=teams,
        policy=policy if policy is not None else RemovalPolicy(),
        source=source if source is not None else SourceInfo(system="entra-sync export"),
        user_match=user_match,
    )


def unnamed_members(actual: ActualState) -> dict[str, tuple[str, ...]]:
    """Object key -> the sorted ``"id:..."`` members and owners a snapshot leaves out."""
    out: dict[str, tuple[str, ...]] = {}
    objects: list[tuple[str, frozenset[str]]] = [
        *((a.key, a.members) for a in actual.administrative_units.values()),
        *((g.key, g.members | g.owners) for g in actual.groups.values()),
    ]
    for key, refs in objects:
        unnamed = sorted(r for r in refs if r.startswith(UNNAMED_PREFIX))
        if unnamed:
            out[key] = tuple(unnamed)
    return dict(sorted(out.items()))
