"""Read the actual state of a tenant: the users index and every managed AU, group and Team.

Only objects that carry our marker are *managed*; every other object is never touched. Unmanaged
groups and AUs whose mailNickname (case-insensitive) or displayName equals a desired object's are
returned as :class:`~reconciler.model.UnmanagedObject` so the plan can report the collision.

Reads are paged (``$top=999``, ``$select``), never ``$expand=members`` (capped at 20). The first
page of members/owners of many objects is fetched through ``$batch``; longer lists continue with
their nextLinks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from providers.entra.client import BatchRequest, GraphClient, page_items
from providers.entra.errors import BadRequestError, NotFoundError
from providers.entra.marker import marker_value, unstamp
from providers.entra.teams import parse_graph_time
from reconciler.errors import DirectoryError
from reconciler.identity import Key, user_ref
from reconciler.model import (
    ActualState,
    AdministrativeUnit,
    DesiredState,
    Group,
    Team,
    UnmanagedObject,
    UserMatch,
)
from reconciler.ports import Progress

__all__ = [
    "AU_SELECT",
    "GROUP_SELECT",
    "ManagedIds",
    "RawRead",
    "assemble",
    "read_actual",
    "read_raw",
    "read_relations",
    "read_teams",
    "with_recent",
]

log = logging.getLogger(__name__)

PAGE = "999"
#: requests handed to one ``client.batch`` call (progress is reported after each)
CHUNK = 400
GROUP_SELECT = (
    "id,displayName,description,mailNickname,groupTypes,securityEnabled,mailEnabled,visibility,"
    "resourceProvisioningOptions,createdDateTime"
)
AU_SELECT = "id,displayName,description"
_USER_TYPE = "#microsoft.graph.user"
_GROUP_TYPE = "#microsoft.graph.group"


@dataclass(frozen=True, slots=True)
class ManagedIds:
    """The object ids a read found managed (what the write layer may change)."""

    administrative_units: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    #: managed group id -> its createdDateTime (epoch seconds), where Graph gave one
    group_created: Mapping[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class _Users:
    by_ref: dict[str, str] = field(default_factory=dict)
    ref_by_id: dict[str, str] = field(default_factory=dict)
    all_ids: set[str] = field(default_factory=set)


def _noop(stage: str, done: int, total: int | None = None) -> None:
    return None


def _read_raw_users(client: GraphClient, match: UserMatch, progress: Progress) -> dict[str, str | None]:
    """user id -> the value of the match attribute (None when it has none)."""
    out: dict[str, str | None] = {}
    params = {"$select": f"id,{match}", "$top": PAGE}
    for page in client.iter_pages("/users", params=params):
        for u in page:
            value = u.get(match)
            out[str(u["id"])] = value if isinstance(value, str) else None
        progress("users", len(out), None)
    return out


def _users_index(raw: Mapping[str, str | None], match: UserMatch) -> _Users:
    users = _Users()
    seen: dict[str, list[str]] = {}
    for uid, value in raw.items():
        users.all_ids.add(uid)
        if isinstance(value, str) and value.strip():
            seen.setdefault(user_ref(value), []).append(uid)
    for ref, ids in seen.items():
        if len(ids) > 1:
            # two users share the match attribute: naming either would be a guess
            log.warning("%d users share %s %r; none of them is matched by it", len(ids), match, ref)
            continue
        users.by_ref[ref] = ids[0]
        users.ref_by_id[ids[0]] = ref
    return users


def _list(client: GraphClient, path: str, select: str, marker: str) -> list[dict[str, Any]]:
    try:
        return client.get_all(path, params={"$select": f"{select},{marker}", "$top": PAGE})
    except BadRequestError as exc:
        if exc.message and marker.lower() in exc.message.lower():
            raise DirectoryError(
                f"the ownership marker {marker} is not registered on the sync app (Graph refused to "
                f"select it on {path}); run `entra-sync setup` first"
            ) from exc
        raise


def with_recent(
    client: GraphClient,
    marker: str,
    recent: Mapping[str, str],
    raw_aus: list[dict[str, Any]],
    raw_groups: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The listed objects plus recently created ones the lists do not show yet, read by id."""
    listed = {str(o["id"]) for o in (*raw_aus, *raw_groups)}
    missing = sorted(oid for oid in recent if oid not in listed)
    if not missing:
        return raw_aus, raw_groups
    paths = {
        "group": ("/groups/{}", GROUP_SELECT),
        "administrativeUnit": ("/directory/administrativeUnits/{}", AU_SELECT),
    }
    wanted = [oid for oid in missing if recent[oid] in paths]
    requests = [
        BatchRequest("GET", f"{paths[recent[oid]][0].format(oid)}?$select={paths[recent[oid]][1]},{marker}")
        for oid in wanted
    ]
    aus, groups = list(raw_aus), list(raw_groups)
    for oid, result in zip(wanted, client.batch(requests), strict=True):
        body = result.body
        if result.error is not None or not isinstance(body, Mapping) or not _marker_value(body, marker):
            continue  # deleted since, or no longer ours: nothing to add
        log.info("%s %s is not listed yet (replication lag); read by id", recent[oid], oid)
        (groups if recent[oid] == "group" else aus).append(dict(body))
    return aus, groups


def _marker_value(obj: Mapping[str, Any], marker: str) -> str | None:
    value = obj.get(marker)
    return value if isinstance(value, str) and value else None


def _key(obj: Mapping[str, Any], marker: str) -> Key:
    found = _marker_value(obj, marker)
    assert found is not None
    return Key(found)


def _page_items(body: Any, path: str) -> tuple[list[dict[str, Any]], str | None]:
    """A batched page's items and nextLink; a malformed page raises (never read as empty)."""
    items = list(page_items(body, "GET", path))
    link = body.get("@odata.nextLink")
    return items, (link if isinstance(link, str) and link else None)


def read_relations(
    client: GraphClient, paths: Sequence[str], progress: Progress, stage: str
) -> dict[str, list[dict[str, Any]]]:
    """Every item of each relation list: first pages through ``$batch``, the rest by nextLink.

    A list whose object is gone (404: deleted while the read ran) is left out of the result: the
    caller skips that object, and the plan treats it as absent."""
    out: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(paths), CHUNK):
        chunk = paths[start : start + CHUNK]
        results = client.batch([BatchRequest("GET", f"{p}?$select=id&$top={PAGE}") for p in chunk])
        for path, result in zip(chunk, results, strict=True):
            body = result.body
            unusable = not (isinstance(body, Mapping) and isinstance(body.get("value"), list))
            if result.error is not None or unusable:
                # the item failed inside the batch (after the client's own retries), or it answered
                # without a member list (null or undecodable body; never read as "no members"):
                # read it directly, which retries transient failures and raises a typed error
                log.info("batched read of %s failed (%s); reading it directly", path, result.status)
                try:
                    out[path] = client.get_all(path, params={"$select": "id", "$top": PAGE})
                except NotFoundError:
                    log.warning("%s is gone (404): deleted during the read; skipped in this run", path)
            else:
                items, link = _page_items(result.body, path)
                if link:
                    for page in client.iter_pages(link):
                        items.extend(page)
                out[path] = items
        progress(stage, len(out), len(paths))
    return out


def read_teams(
    client: GraphClient, group_ids: Sequence[str], progress: Progress
) -> dict[str, bool]:
    """group id -> isArchived, for groups that say they have a team."""
    archived: dict[str, bool] = {}
    for start in range(0, len(group_ids), CHUNK):
        chunk = group_ids[start : start + CHUNK]
        results = client.batch([BatchRequest("GET", f"/teams/{gid}") for gid in chunk])
        for gid, result in zip(chunk, results, strict=True):
            body: Any = result.body
            if result.error is not None or not isinstance(body, Mapping):
                try:
                    body = client.get(f"/teams/{gid}")
                except NotFoundError:
                    # listed with a Team but not readable yet: the team is still provisioning
                    log.info("team of group %s is not readable yet; treating it as provisioning", gid)
                    body = {"isArchived": False}
            archived[gid] = bool(body.get("isArchived", False)) if isinstance(body, Mapping) else False
        progress("teams", len(archived), len(group_ids))
    return archived


def _kind_of(item: Mapping[str, Any], users: _Users, group_ids: set[str]) -> str:
    t = item.get("@odata.type")
    if isinstance(t, str):
        return "user" if t == _USER_TYPE else "group" if t == _GROUP_TYPE else "other"
    oid = str(item.get("id"))
    if oid in users.all_ids:
        return "user"
    if oid in group_ids:
        return "group"
    return "other"


def _member_refs(items: Iterable[Mapping[str, Any]], users: _Users) -> frozenset[str]:
    refs = set()
    for item in items:
        oid = str(item.get("id"))
        refs.add(users.ref_by_id.get(oid, f"id:{oid}"))
    return frozenset(refs)


def _collisions(
    desired: DesiredState | None,
    groups: Sequence[Mapping[str, Any]],
    aus: Sequence[Mapping[str, Any]],
) -> tuple[UnmanagedObject, ...]:
    if desired is None:
        return ()
    nicknames = {g.mail_nickname.casefold() for g in desired.groups}
    group_names = {g.display_name for g in desired.groups}
    au_names = {a.display_name for a in desired.administrative_units}
    out: list[UnmanagedObject] = []
    for g in groups:
        nick = g.get("mailNickname")
        name = str(g.get("displayName") or "")
        if (isinstance(nick, str) and nick.casefold() in nicknames) or name in group_names:
            out.append(UnmanagedObject("group", str(g["id"]), name, nick if isinstance(nick, str) else None))
    for a in aus:
        name = str(a.get("displayName") or "")
        if name in au_names:
            out.append(UnmanagedObject("administrativeUnit", str(a["id"]), name))
    return tuple(sorted(out, key=lambda u: (u.kind, u.display_name, u.id)))


def read_actual(
    client: GraphClient,
    marker: str,
    *,
    user_match: UserMatch = "userPrincipalName",
    desired: DesiredState | None = None,
    progress: Progress | None = None,
    recent: Mapping[str, str] | None = None,
    long_keys: Mapping[str, str] | None = None,
) -> tuple[ActualState, ManagedIds]:
    """Read the users index and every managed object into an :class:`ActualState`.

    Must: read only ``$select``-ed fields in pages of 999; read members/owners by paging (never
    ``$expand``); report unmanaged collisions with ``desired``; return the managed ids too (the
    write layer's ownership rule). Must not: write anything. Two managed objects with the same key
    are an error (the tenant must be cleaned up by hand; the message names both ids).

    ``recent`` (object id -> ``group`` / ``administrativeUnit``) names objects created by recent
    runs: any of them that the list queries do not show yet (replication lag) is read by id, so a
    run shortly after another never creates them twice. A key longer than Graph can filter is
    stamped as its hash (:func:`~providers.entra.marker.marker_value`); it reads back as the full
    key when ``desired`` or ``long_keys`` (stamp -> key, from the journal) knows it.
    """
    raw = read_raw(client, marker, user_match=user_match, progress=progress, recent=recent)
    return assemble(raw, marker, user_match=user_match, desired=desired, long_keys=long_keys)


@dataclass(slots=True)
class RawRead:
    """What a read fetched, before it is made into an :class:`ActualState`: every user's match
    attribute, every AU's and group's selected properties (managed or not: collisions need them),
    the member and owner lists of the managed ones (by path), and the Team of each managed group
    that has one (archived or not). A full read and a delta read both produce one."""

    users: dict[str, str | None] = field(default_factory=dict)
    aus: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    relations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    teams: dict[str, bool] = field(default_factory=dict)


def au_members_path(au_id: str) -> str:
    return f"/directory/administrativeUnits/{au_id}/members"


def relation_paths(aus: Iterable[str], groups: Iterable[str]) -> list[str]:
    """The member/owner list paths of these managed AUs and groups (AUs first, then groups)."""
    group_paths = [f"/groups/{gid}/{rel}" for gid in sorted(groups) for rel in ("members", "owners")]
    return [*(au_members_path(aid) for aid in sorted(aus)), *group_paths]


def has_team(group: Mapping[str, Any]) -> bool:
    return "Team" in (group.get("resourceProvisioningOptions") or ())


def read_raw(
    client: GraphClient,
    marker: str,
    *,
    user_match: UserMatch = "userPrincipalName",
    progress: Progress | None = None,
    recent: Mapping[str, str] | None = None,
) -> RawRead:
    """The full read: every list, and the member/owner lists and Teams of every managed object."""
    report: Progress = progress or _noop
    users = _read_raw_users(client, user_match, report)
    client.pacer.tenant_users(len(users))  # the tenant's size sets its resource-unit quota
    raw_aus = _list(client, "/directory/administrativeUnits", AU_SELECT, marker)
    report("administrativeUnits", len(raw_aus), len(raw_aus))
    raw_groups = _list(client, "/groups", GROUP_SELECT, marker)
    report("groups", len(raw_groups), len(raw_groups))
    if recent:
        raw_aus, raw_groups = with_recent(client, marker, recent, raw_aus, raw_groups)
    aus = {str(a["id"]): a for a in raw_aus}
    groups = {str(g["id"]): g for g in raw_groups}
    managed_aus = [aid for aid, a in aus.items() if _marker_value(a, marker)]
    managed_groups = [gid for gid, g in groups.items() if _marker_value(g, marker)]
    relations = read_relations(client, relation_paths(managed_aus, managed_groups), report, "members")
    team_groups = sorted(
        gid for gid in managed_groups
        if has_team(groups[gid]) and all(f"/groups/{gid}/{r}" in relations for r in ("members", "owners"))
    )  # fmt: skip
    return RawRead(users, aus, groups, relations, read_teams(client, team_groups, report))


def assemble(
    raw: RawRead,
    marker: str,
    *,
    user_match: UserMatch = "userPrincipalName",
    desired: DesiredState | None = None,
    long_keys: Mapping[str, str] | None = None,
) -> tuple[ActualState, ManagedIds]:
    """Make a read's raw answers into the :class:`ActualState` (the same for a full or delta read)."""
    users = _users_index(raw.users, user_match)
    raw_aus = _unstamped(list(raw.aus.values()), marker, desired, long_keys)
    raw_groups = _unstamped(list(raw.groups.values()), marker, desired, long_keys)
    managed_aus = {str(a["id"]): a for a in raw_aus if _marker_value(a, marker)}
    managed_groups = {str(g["id"]): g for g in raw_groups if _marker_value(g, marker)}
    all_group_ids = {str(g["id"]) for g in raw_groups}
    ids: dict[Key, str] = {}
    seen: dict[str, Key] = {}  # identity -> key: keys differing only in case name one object
    for oid, obj in sorted([*managed_aus.items(), *managed_groups.items()]):
        key = _key(obj, marker)
        other = seen.setdefault(key.folded, key)
        if other is not key:
            same = "" if other == key else f" (and {str(other)!r}: keys are compared ignoring case)"
            raise DirectoryError(
                f"two objects in Entra carry the key {str(key)!r}{same} ({ids[other]} and {oid}); delete "
                "or un-mark one of them by hand, then run again"
            )
        ids[key] = oid

    relations = raw.relations
    _drop_gone(relations, managed_aus, managed_groups, ids, marker)

    placements: dict[str, set[Key]] = {gid: set() for gid in managed_groups}
    aus: dict[Key, AdministrativeUnit] = {}
    for aid, a in managed_aus.items():
        key = _key(a, marker)
        user_items = []
        for item in relations[f"/directory/administrativeUnits/{aid}/members"]:
            kind = _kind_of(item, users, all_group_ids)
            if kind == "user":
                user_items.append(item)
            elif kind == "group" and str(item.get("id")) in managed_groups:
                placements[str(item["id"])].add(key)
            # unmanaged groups and other objects inside an AU are left alone
        aus[key] = AdministrativeUnit(
            key=key,
            display_name=str(a.get("displayName") or ""),
            description=a.get("description") or None,
            members=_member_refs(user_items, users),
        )

    archived = raw.teams

    groups: dict[Key, Group] = {}
    teams: dict[Key, Team] = {}
    for gid, g in managed_groups.items():
        key = _key(g, marker)
        groups[key] = Group(
            key=key,
            display_name=str(g.get("displayName") or ""),
            mail_nickname=str(g.get("mailNickname") or ""),
            kind="microsoft365" if "Unified" in (g.get("groupTypes") or ()) else "security",
            description=g.get("description") or None,
            visibility=_visibility(g.get("visibility")),
            owners=_user_refs(relations[f"/groups/{gid}/owners"], users, all_group_ids),
            members=_user_refs(relations[f"/groups/{gid}/members"], users, all_group_ids),
            administrative_units=frozenset(placements[gid]),
        )
        if gid in archived:
            team = Team.of(key, archived=archived[gid])
            teams[key] = team
            ids[team.key] = gid

    unmanaged = _collisions(
        desired,
        [g for g in raw_groups if str(g["id"]) not in managed_groups],
        [a for a in raw_aus if str(a["id"]) not in managed_aus],
    )
    state = ActualState(
        administrative_units=dict(sorted(aus.items())),
        groups=dict(sorted(groups.items())),
        teams=dict(sorted(teams.items())),
        ids=dict(sorted(ids.items())),
        users=dict(sorted(users.by_ref.items())),
        unmanaged=unmanaged,
    )
    created = {
        gid: t for gid, g in managed_groups.items() if (t := parse_graph_time(g.get("createdDateTime")))
    }
    return state, ManagedIds(frozenset(managed_aus), frozenset(managed_groups), created)


def _unstamped(
    objs: list[dict[str, Any]], marker: str, desired: DesiredState | None, long_keys: Mapping[str, str] | None
) -> list[dict[str, Any]]:
    """The objects with a long key's stamp in the marker replaced by the full key, where known."""
    known = dict(long_keys or {})
    if desired is not None:
        keys = [*(a.key for a in desired.administrative_units), *(g.key for g in desired.groups)]
        known.update({marker_value(k): k for k in keys if marker_value(k) != k})
    if not known:
        return objs
    out = []
    for obj in objs:
        value = _marker_value(obj, marker)
        out.append({**obj, marker: unstamp(value, known)} if value else obj)
    return out


def _drop_gone(
    relations: Mapping[str, Any],
    aus: dict[str, Any],
    groups: dict[str, Any],
    ids: dict[Key, str],
    marker: str,
) -> None:
    """Forget managed objects whose member or owner list was gone (deleted during the read)."""
    for oid in [a for a in aus if f"/directory/administrativeUnits/{a}/members" not in relations]:
        ids.pop(_key(aus.pop(oid), marker), None)
    for oid in [g for g in groups if any(f"/groups/{g}/{r}" not in relations for r in ("members", "owners"))]:
        ids.pop(_key(groups.pop(oid), marker), None)


def _user_refs(items: Iterable[Mapping[str, Any]], users: _Users, group_ids: set[str]) -> frozenset[str]:
    """The users of a member or owner list: other objects (groups, devices, service principals,
    contacts) are never managed, in groups as in administrative units, so they are left alone."""
    return _member_refs((i for i in items if _kind_of(i, users, group_ids) == "user"), users)


def _visibility(value: Any) -> Any:
    """Graph spells it ``Private``, ``Public``, ``HiddenMembership`` (older: ``Hiddenmembership``);
    a security group may have none (null means Public for M365 and Private for security groups,
    but our creates always set it)."""
    if isinstance(value, str):
        low = value.lower()
        if low == "hiddenmembership":
            return "HiddenMembership"
        if low == "public":
            return "Public"
    return "Private"
