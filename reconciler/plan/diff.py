"""The diff: desired state vs actual state -> :class:`~reconciler.plan.model.Plan`. Pure, no I/O.

Objects are paired by key (Teams by the key of their group), by identity: keys that differ only in
case or Unicode composition are one key (:func:`~reconciler.plan.align.align`); creates, deletes
and membership changes are set differences, updates compare the managed fields only. Rules, in short:

- A new AU or group is one ``create`` whose ``after`` is the whole desired object (owners and
  members bound at creation); its AU placements are a ``groupAdministrativeUnits`` add.
- An existing object gets at most one ``update`` (only changed managed fields, camelCase names)
  and one add/remove per relation; a group whose ``kind`` differs is not converted (a warning).
- A removal follows ``desired.policy``: groups/AUs deleted (``before`` = the whole object) or
  kept; Teams archived or kept. A Team whose group is deleted goes with it.
- A reference missing from ``actual.users`` is never planned: one ``unresolvedUser`` warning per
  reference. An unmanaged object colliding with a new one is a Conflict: no create, no dependants.

Must: be deterministic and fast (set arithmetic; ~400k memberships in about a second).
Must-not: normalise references (the loader and the provider store them normalised).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TypeVar

from reconciler.identity import Key
from reconciler.model import ActualState, AdministrativeUnit, DesiredState, Group, Team
from reconciler.plan.align import align
from reconciler.plan.diff_support import Collector, find_conflicts, format_keys
from reconciler.plan.fingerprint import fingerprint, managed_counts
from reconciler.plan.model import Plan
from reconciler.plan.operations import (
    AddAdministrativeUnitMembers,
    AddGroupAdministrativeUnits,
    AddGroupMembers,
    AddGroupOwners,
    ArchiveTeam,
    CreateAdministrativeUnit,
    CreateGroup,
    CreateTeam,
    DeleteAdministrativeUnit,
    DeleteGroup,
    MembershipChange,
    RemoveAdministrativeUnitMembers,
    RemoveGroupAdministrativeUnits,
    RemoveGroupMembers,
    RemoveGroupOwners,
    UnarchiveTeam,
    UpdateAdministrativeUnit,
    UpdateGroup,
)
from reconciler.plan.payloads import (
    UNSET,
    AdministrativeUnitDocument,
    AdministrativeUnitFields,
    Fields,
    GroupDocument,
    GroupFields,
    TeamDocument,
    TeamStatus,
)

__all__ = ["diff"]

#: the add and remove operations of each relation
_AU_MEMBERS = (AddAdministrativeUnitMembers, RemoveAdministrativeUnitMembers)
_GROUP_MEMBERS = (AddGroupMembers, RemoveGroupMembers)
_GROUP_OWNERS = (AddGroupOwners, RemoveGroupOwners)


def diff(desired: DesiredState, actual: ActualState) -> Plan:
    """Compute the plan that makes ``actual`` match ``desired``."""
    read, actual = actual, align(desired, actual)  # keys paired by identity from here on
    out = Collector(actual.users)
    blocked_aus, blocked_groups = find_conflicts(desired, actual, out)
    _diff_aus(desired, actual, blocked_aus, out)
    _diff_groups(desired, actual, blocked_aus, blocked_groups, out)
    _diff_teams(desired, actual, blocked_groups, out)
    return Plan(
        changes=tuple(out.changes),
        warnings=tuple(out.finish_warnings()),
        conflicts=tuple(out.conflicts),
        actual_fingerprint=fingerprint(read),
        managed_counts=managed_counts(read),
        user_match=desired.user_match,
    )


_F = TypeVar("_F", bound=Fields)


def _field_changes(fields: type[_F], want: object, have: object) -> tuple[_F, _F] | None:
    """The managed fields that differ, before and after; None when none does (most objects: the
    payloads are made only for an update)."""
    before: dict[str, object] = {}
    after: dict[str, object] = {}
    for attr, _ in fields.names:
        w, h = getattr(want, attr), getattr(have, attr)
        if attr == "description":
            w, h = w or None, h or None  # Graph has no empty description
        if w != h:
            before[attr], after[attr] = h, w
    return (fields(**before), fields(**after)) if after else None


def _relation(
    out: Collector,
    ops: tuple[type[MembershipChange], type[MembershipChange]],
    key: Key,
    object_id: str | None,
    want: frozenset[str],
    have: frozenset[str],
    *,
    owners: bool = False,
) -> None:
    """Add/remove changes for one relation of an existing object."""
    if want == have:
        return
    add = out.resolved(want - have, key)
    remove = have - want
    adding, removing = ops
    add_id = adding.id_for(key)
    if add:
        out.changes.append(adding(key, object_id, members=tuple(sorted(add))))
    if not remove:
        return
    deps: tuple[str, ...] = ()
    if owners:
        if not (have - remove) | add:
            out.warn("lastOwner", f"group {key}: no desired owner can be resolved, so its current "
                     f"owners ({format_keys(remove)}) are kept; a group must keep at least one owner",
                     key=key)
            return
        deps = (add_id,) if add else ()
    out.changes.append(removing(key, object_id, members=tuple(sorted(remove)), depends_on=deps))


def _kept(out: Collector, what: str, setting: str, keys: Sequence[str]) -> None:
    if keys:
        out.warn("kept", f"{len(keys)} {what} no longer desired kept as they are (policy {setting}=keep): "
                 f"{format_keys(keys)}")


def _diff_aus(desired: DesiredState, actual: ActualState, blocked: set[Key], out: Collector) -> None:
    have_all = actual.administrative_units
    wanted = {au.key for au in desired.administrative_units}
    for au in desired.administrative_units:
        have = have_all.get(au.key)
        if have is None:
            if au.key not in blocked:
                members = out.resolved(au.members, au.key)
                new = AdministrativeUnit(au.key, au.display_name, au.description or None, members)
                out.changes.append(CreateAdministrativeUnit(au.key, after=AdministrativeUnitDocument.of(new)))
            continue
        object_id = actual.ids.get(au.key)
        update = _field_changes(AdministrativeUnitFields, au, have)
        if update is not None:
            out.changes.append(UpdateAdministrativeUnit(au.key, object_id, *update))
        _relation(out, _AU_MEMBERS, au.key, object_id, au.members, have.members)
    gone = sorted(k for k in have_all if k not in wanted)
    if desired.policy.administrative_units == "keep":
        _kept(out, "administrative units", "administrativeUnits", gone)
        return
    placed: dict[str, list[str]] = {k: [] for k in gone}
    for g in actual.groups.values():
        for au_key in g.administrative_units:
            if au_key in placed:
                placed[au_key].append(g.key)
    for key in gone:
        gone_au = AdministrativeUnitDocument.of(have_all[key], groups=placed[key])
        out.changes.append(DeleteAdministrativeUnit(key, actual.ids.get(key), before=gone_au))


def _diff_groups(
    desired: DesiredState, actual: ActualState, blocked_aus: set[Key], blocked: set[Key], out: Collector
) -> None:
    have_all = actual.groups
    new_aus = {au.key for au in desired.administrative_units if au.key not in actual.administrative_units}
    desired_aus = {au.key for au in desired.administrative_units}
    nicknames: dict[str, str] = {}
    for key in sorted(have_all):
        nicknames.setdefault(have_all[key].mail_nickname.casefold(), key)
    kept_nicknames: list[str] = []
    for g in desired.groups:
        have = have_all.get(g.key)
        if have is None:
            if g.key not in blocked:
                _create_group(g, new_aus, desired_aus, blocked_aus, out)
                _nickname_in_use(g, nicknames.get(g.mail_nickname.casefold()), out)
            continue
        if g.mail_nickname.casefold() != have.mail_nickname.casefold():
            kept_nicknames.append(f"{g.key} keeps {have.mail_nickname!r} (desired {g.mail_nickname!r})")
        object_id = actual.ids.get(g.key)
        if g.kind != have.kind:
            out.warn("kindMismatch", f"group {g.key} is a {have.kind} group in Entra but desired as "
                     f"{g.kind}; a group cannot be converted: delete it by hand (or give the desired "
                     "group a new key) to have it recreated", key=g.key)
        update = _field_changes(GroupFields, g, have)
        if update is not None:
            _update_group(g.key, object_id, *update, out)
        _relation(out, _GROUP_OWNERS, g.key, object_id, g.owners, have.owners, owners=True)
        _relation(out, _GROUP_MEMBERS, g.key, object_id, g.members, have.members)
        # placements: only in desired AUs (an AU being deleted takes them along; a kept one is left)
        want = _placeable(g, desired_aus, blocked_aus, out)
        have_placed = frozenset(a for a in have.administrative_units if a in desired_aus)
        add = sorted(want - have_placed)
        if add:
            deps = tuple(CreateAdministrativeUnit.id_for(a) for a in add if a in new_aus)
            out.changes.append(AddGroupAdministrativeUnits(g.key, object_id,
                                      members=tuple(add), depends_on=deps))
        remove = sorted(have_placed - g.administrative_units)
        if remove:
            out.changes.append(RemoveGroupAdministrativeUnits(g.key, object_id,
                                      members=tuple(remove)))
    if kept_nicknames:
        out.warn("mailNicknameKept", f"{len(kept_nicknames)} existing group(s) keep their mailNickname, "
                 "which is set only at creation (it is the group's mail address): "
                 + format_keys(kept_nicknames, limit=10))
    wanted = {g.key for g in desired.groups}
    gone = sorted(k for k in have_all if k not in wanted)
    if desired.policy.groups == "keep":
        _kept(out, "groups", "groups", gone)
        return
    # said once, in the run that retires them (an archived Team's group stays quietly after that)
    with_team = [k for k in gone if k in actual.teams and not actual.teams[k].archived]
    if with_team:
        # deleting the group would delete its Team with the class's files, chats and assignments:
        # the Team is retired by the Teams removal policy (archived by default) and the group kept
        n = len(with_team)
        out.warn("groupKeptForTeam", f"{n} group{'s' if n != 1 else ''} no longer desired kept because "
                 "each has a Team (deleting a group deletes its Team with its files and chats); the Teams "
                 f"follow the Teams removal policy ({desired.policy.teams}): {format_keys(with_team)}")
    for key in gone:
        if key not in actual.teams:
            out.changes.append(DeleteGroup(key, actual.ids.get(key),
                                      before=GroupDocument.of(have_all[key])))


def _update_group(key: Key, object_id: str | None, before: GroupFields, after: GroupFields,
                  out: Collector) -> None:
    if after.visibility is not UNSET and "HiddenMembership" in (before.visibility, after.visibility):
        out.warn("visibilityImmutable", f"group {key}: visibility {before.visibility} cannot be "
                 f"changed to {after.visibility} (HiddenMembership is set only at creation)", key=key)
        before, after = replace(before, visibility=UNSET), replace(after, visibility=UNSET)
    if after:
        out.changes.append(UpdateGroup(key, object_id, before, after))


def _nickname_in_use(g: Group, other: str | None, out: Collector) -> None:
    if other is not None:
        out.warn("nicknameInUse", f"group {g.key}: mailNickname {g.mail_nickname!r} is still used by the "
                 f"managed group {other}; creating it may fail until that group is renamed or deleted "
                 "(a later run retries)", key=g.key)


def _placeable(g: Group, desired_aus: set[Key], blocked_aus: set[Key], out: Collector) -> frozenset[str]:
    """The AUs the group can be placed in: desired ones that are not blocked by a conflict."""
    skipped = sorted(g.administrative_units & blocked_aus)
    if skipped:
        out.warn("blockedByConflict", f"group {g.key} is not placed in {format_keys(skipped)}: "
                 "not created because of a conflict", key=g.key)
    unknown = sorted(g.administrative_units - desired_aus)
    if unknown:
        out.warn("unknownAdministrativeUnit", f"group {g.key} is not placed in {format_keys(unknown)}: "
                 "not a desired administrative unit", key=g.key)
    return (g.administrative_units & desired_aus) - blocked_aus


def _create_group(
    g: Group, new_aus: set[Key], desired_aus: set[Key], blocked_aus: set[Key], out: Collector
) -> None:
    owners = out.resolved(g.owners, g.key)
    if g.owners and not owners:
        # a group made app-only without an owner is "anonymous": hard to manage, and for a Microsoft
        # 365 group SharePoint may never be provisioned. Wait for one of its owners' accounts.
        out.warn("waitingForOwner", f"group {g.key} is not created yet: none of its owners has an Entra "
                 "account; it is created by the first run after one of them has", key=g.key)
        return
    members = out.resolved(g.members, g.key)
    doc = GroupDocument.of(Group(g.key, g.display_name, g.mail_nickname, g.kind, g.description or None,
                                 g.visibility, owners, members, education=g.education), placements=False)
    create_id = CreateGroup.id_for(g.key)
    out.changes.append(CreateGroup(g.key, after=doc))
    place = sorted(_placeable(g, desired_aus, blocked_aus, out))
    if place:
        deps = (create_id, *(CreateAdministrativeUnit.id_for(a) for a in place if a in new_aus))
        out.changes.append(AddGroupAdministrativeUnits(g.key, members=tuple(place),
                                  depends_on=deps))


def _team_id(actual: ActualState, team: Team) -> str | None:
    return actual.ids.get(team.key) or actual.ids.get(team.group)


def _will_have_owner(group_key: Key, desired_groups: dict[Key, Group], actual: ActualState) -> bool:
    """Whether the group has an owner once the plan is applied (a last owner is never removed)."""
    have = actual.groups.get(group_key)
    if have is not None and have.owners:
        return True
    want = desired_groups.get(group_key)
    return want is not None and any(r in actual.users for r in want.owners)


def _diff_teams(desired: DesiredState, actual: ActualState, blocked: set[Key], out: Collector) -> None:
    desired_groups = {g.key: g for g in desired.groups}
    wanted_groups = set(desired_groups)
    for t in desired.teams:
        have = actual.teams.get(t.group)
        if have is not None:
            if have.archived != t.archived:
                archive = ArchiveTeam if t.archived else UnarchiveTeam
                out.changes.append(archive(t.key, _team_id(actual, have),
                                          before=TeamStatus(t.group, have.archived),
                                          after=TeamStatus(t.group, t.archived)))
            continue
        if t.group in blocked:
            out.warn("blockedByConflict", f"team {t.key} is not created: its group {t.group} is not "
                     "created because of a conflict", key=t.key)
            continue
        deps: tuple[str, ...] = ()
        if t.group not in actual.groups:
            if t.group not in wanted_groups:
                out.warn("teamWithoutGroup", f"team {t.key}: its group {t.group} is neither desired nor "
                         "in Entra; the team is not created", key=t.key)
                continue
            deps = (CreateGroup.id_for(t.group),)
        if not _will_have_owner(t.group, desired_groups, actual):
            # Graph refuses a Team for a group without an owner: the create would fail every run
            out.warn("teamWithoutOwner", f"team {t.key} is not created yet: its group {t.group} has no "
                     "owner in Entra and none of its desired owners can be resolved (a Team needs an "
                     "owner); it is created on a later run once one can", key=t.key)
            continue
        out.changes.append(CreateTeam(t.key, after=TeamDocument(t.group, t.template),
                                  depends_on=deps))
        if t.archived:
            out.changes.append(ArchiveTeam(t.key, before=TeamStatus(t.group, False),
                                      after=TeamStatus(t.group, True),
                                      depends_on=(CreateTeam.id_for(t.key),)))
    desired_by_group = {t.group for t in desired.teams}
    # a desired group with no owner cannot be desired with a Team (a Team needs an owner): its
    # Team is not retired for that (a class between teachers must stay usable), it is left as is
    ownerless = {g.key for g in desired.groups if not g.owners}
    kept: list[str] = []
    left: list[str] = []
    for group_key in sorted(actual.teams):
        if group_key in desired_by_group:
            continue
        have = actual.teams[group_key]
        if desired.policy.teams == "keep":
            kept.append(have.key)
        elif group_key in ownerless:
            if not have.archived:
                left.append(have.key)
        elif not have.archived:
            out.changes.append(ArchiveTeam(have.key, _team_id(actual, have),
                                      before=TeamStatus(group_key, False),
                                      after=TeamStatus(group_key, True)))
    _kept(out, "Teams", "teams", kept)
    if left:
        out.warn("teamKeptWithoutOwner", f"{len(left)} Team(s) not archived although not desired: each one's "
                 "group is still desired but has no owner in the school data (so it cannot be desired "
                 f"with a Team); the Team is left as it is until the group has an owner: {format_keys(left)}")
