"""The managed actual state as a desired state (the ``export`` command).

``diff(snapshot(actual, ...), actual)`` is an empty plan: every managed AU, group (with owners,
members and placements) and Team is desired exactly as it is. Teams get the key
``"team:" + group key`` and the template ``standard`` (Graph cannot tell which template made a
team); an archived Team is exported with ``archived`` set so that it stays archived.

Members that the users index could not name are exported as ``"id:<objectId>"`` references, as
the provider reads them: keep or replace them when editing the document.
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

__all__ = ["snapshot"]


def snapshot(
    actual: ActualState,
    *,
    user_match: UserMatch = "userPrincipalName",
    policy: RemovalPolicy | None = None,
    source: SourceInfo | None = None,
) -> DesiredState:
    """Turn the managed part of ``actual`` into a desired state, sorted by key.

    Must-not: include unmanaged objects or the users index.
    """
    aus = tuple(
        AdministrativeUnit(au.key, au.display_name, au.description, au.members)
        for _, au in sorted(actual.administrative_units.items())
    )
    groups = tuple(
        Group(g.key, g.display_name, g.mail_nickname, g.kind, g.description, g.visibility, g.owners,
              g.members, g.administrative_units)
        for _, g in sorted(actual.groups.items())
    )
    teams = tuple(
        Team("team:" + group_key, group_key, "standard", t.archived)
        for group_key, t in sorted(actual.teams.items())
    )
    return DesiredState(
        administrative_units=aus,
        groups=groups,
        teams=teams,
        policy=policy if policy is not None else RemovalPolicy(),
        source=source if source is not None else SourceInfo(system="entra-sync export"),
        user_match=user_match,
    )
