"""Delta reads: after one full read, later runs read only what changed in Entra.

A full read (:func:`providers.entra.read.read_raw`) is preceded by three ``$deltatoken=latest``
requests (users, groups with ``members``, administrative units with ``members``), so every change
after that instant comes back in the next round; the raw answers and the three deltaLinks are the
:class:`DeltaSnapshot` kept in the run store (through the :class:`DeltaStore` port; the application
wires the store in). A later read follows the deltaLinks and applies what they report to the
snapshot: changed properties, members added and removed (``members@delta``), removed objects. A
change reported twice is applied twice with the same result, so replays are harmless.

What delta does not track, and how it is read instead (graph-facts §6):

- **owners**: Graph v1.0 delta tracks ``members`` only. Owners are read (one request each) for a
  managed group that is new to the snapshot or newly managed; owner changes this tool makes are
  written down as it makes them (:class:`Note`) and folded in at the next read. An owner changed
  by hand in Entra is seen at the next full read (every ``full_every_runs`` runs or
  ``full_every_seconds``).
- **Teams** (archived or not): a group that gains a Team (``resourceProvisioningOptions``) is read
  by ``/teams/{id}``; archive and unarchive by this tool are noted; a Team archived by hand is seen
  at the next full read, like owners.

Falls back to a full read when there is no snapshot, when it was taken for another marker or
user-match attribute, when a deltaLink expired (``410 Gone`` / ``syncStateNotFound`` /
``resyncRequired``; Graph keeps them about 7 days), and every ``full_every_runs`` runs or
``full_every_seconds``, as a safety net.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from providers.entra.client import GraphClient
from providers.entra.errors import GraphError, MalformedResponseError
from providers.entra.read import (
    AU_SELECT,
    GROUP_SELECT,
    RawRead,
    au_members_path,
    has_team,
    read_raw,
    read_relations,
    read_teams,
    with_recent,
)
from reconciler.clock import Clock
from reconciler.model import UserMatch
from reconciler.ports import Progress

__all__ = [
    "DeltaPolicy",
    "DeltaSnapshot",
    "DeltaStore",
    "Note",
    "ReadMode",
    "delta_paths",
    "read_with_delta",
]

log = logging.getLogger(__name__)

_USER_TYPE = "#microsoft.graph.user"
#: error codes that mean "start again with a full sync" (graph-facts §6)
_RESYNC_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})

NoteKind = Literal["created", "owner+", "owner-", "team"]


@dataclass(frozen=True, slots=True)
class Note:
    """A change this tool made that delta does not report: a group it created (its owners are the
    ones noted, ``value`` empty), an owner added or removed (``value`` is the user id), or a Team's
    state (``value`` is ``archived`` or ``active``)."""

    kind: NoteKind
    object_id: str
    value: str


@dataclass(frozen=True)
class DeltaSnapshot:
    """The last-known state (raw, as read) and the deltaLinks that continue from it."""

    links: Mapping[str, str]
    raw: RawRead
    marker: str
    match: str
    #: when the last full read was (clock seconds), and delta reads since
    full_at: float
    runs_since_full: int = 0

    def to_json(self) -> dict[str, Any]:
        rel = {path: [_ref_code(i) for i in items] for path, items in self.raw.relations.items()}
        return {
            "v": 1, "links": dict(self.links), "marker": self.marker, "match": self.match,
            "full_at": self.full_at, "runs_since_full": self.runs_since_full,
            "users": self.raw.users, "aus": self.raw.aus, "groups": self.raw.groups,
            "relations": rel, "teams": self.raw.teams,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeltaSnapshot | None:
        """The snapshot, or None when it is of another format (then a full read starts again)."""
        if not isinstance(data, Mapping) or data.get("v") != 1:
            return None
        rel = {path: [_ref_item(code) for code in codes] for path, codes in data["relations"].items()}
        raw = RawRead(dict(data["users"]), dict(data["aus"]), dict(data["groups"]), rel, dict(data["teams"]))
        return cls(dict(data["links"]), raw, str(data["marker"]), str(data["match"]),
                   float(data["full_at"]), int(data["runs_since_full"]))  # fmt: skip


def _ref_code(item: Mapping[str, Any]) -> str:
    t = item.get("@odata.type")
    prefix = "u" if t == _USER_TYPE else "g" if t == "#microsoft.graph.group" else "o" if t else "-"
    return prefix + str(item["id"])


_TYPES = {"u": _USER_TYPE, "g": "#microsoft.graph.group", "o": "#microsoft.graph.directoryObject"}


def _ref_item(code: str) -> dict[str, Any]:
    t = _TYPES.get(code[0])
    return {"@odata.type": t, "id": code[1:]} if t else {"id": code[1:]}


class DeltaStore(Protocol):
    """Where the snapshot and notes live (the application's run store). ``scope`` names the Graph
    root, tenant and marker: one snapshot per scope."""

    def load(self, scope: str) -> DeltaSnapshot | None: ...

    def notes(self, scope: str) -> tuple[int, list[Note]]:
        """The notes not folded in yet, and the last note's sequence number (0: none)."""
        ...

    def save(self, scope: str, snapshot: DeltaSnapshot, notes_upto: int) -> None:
        """Replace the snapshot and drop the notes up to ``notes_upto`` (folded into it), at once."""
        ...

    def add_notes(self, scope: str, notes: Sequence[Note]) -> None: ...


@dataclass(frozen=True)
class DeltaPolicy:
    """How a directory reads with delta: the store and scope, and the safety-net full reads."""

    store: DeltaStore
    scope: str
    clock: Clock
    full_every_runs: int = 50
    full_every_seconds: float = 86400.0


ReadMode = Literal["full", "delta"]


@dataclass(slots=True)
class DeltaOutcome:
    raw: RawRead
    mode: ReadMode
    reason: str = ""
    requests: dict[str, int] = field(default_factory=dict)


def delta_paths(marker: str, match: UserMatch) -> dict[str, str]:
    """The three delta queries (their ``$select`` is carried in every link Graph hands back)."""
    return {
        "users": f"/users/delta?$select=id,{match}",
        "groups": f"/groups/delta?$select={GROUP_SELECT},{marker},members",
        "administrativeUnits": f"/directory/administrativeUnits/delta?$select={AU_SELECT},{marker},members",
    }


def _latest_links(client: GraphClient, marker: str, match: UserMatch) -> dict[str, str]:
    links = {}
    for name, path in delta_paths(marker, match).items():
        result = client.collect_delta(path + "&$deltatoken=latest")
        if result.delta_link is None:
            raise MalformedResponseError("GET", path, f"a {name} delta round without a deltaLink")
        links[name] = result.delta_link
    return links


def _why_full(snap: DeltaSnapshot | None, policy: DeltaPolicy, marker: str, match: str) -> str | None:
    if snap is None:
        return "no snapshot in the run store"
    if snap.marker != marker or snap.match != match:
        return "the snapshot was taken for another marker or user match"
    if snap.runs_since_full + 1 >= policy.full_every_runs:
        return f"every {policy.full_every_runs} runs"
    if policy.clock.now() - snap.full_at >= policy.full_every_seconds:
        return f"every {policy.full_every_seconds:.0f} s"
    if set(snap.links) != {"users", "groups", "administrativeUnits"}:
        return "the snapshot lacks a deltaLink"
    return None


def _expired(exc: GraphError) -> bool:
    return exc.status == 410 or (exc.code or "").lower() in _RESYNC_CODES


def read_with_delta(
    client: GraphClient,
    marker: str,
    policy: DeltaPolicy,
    *,
    user_match: UserMatch = "userPrincipalName",
    progress: Progress | None = None,
    recent: Mapping[str, str] | None = None,
) -> DeltaOutcome:
    """A read through the snapshot: delta when it can, else full; the new snapshot is saved."""
    snap = policy.store.load(policy.scope)
    upto, notes = policy.store.notes(policy.scope)
    reason = _why_full(snap, policy, marker, user_match)
    if reason is None:
        assert snap is not None
        try:
            raw, links = _delta_round(client, snap, marker, user_match, notes, progress, recent)
        except GraphError as exc:
            if not _expired(exc):
                raise
            reason = f"a deltaLink expired ({exc.status} {exc.code or ''})".strip()
        else:
            new = DeltaSnapshot(links, raw, marker, user_match, snap.full_at, snap.runs_since_full + 1)
            policy.store.save(policy.scope, new, upto)
            return DeltaOutcome(raw, "delta")
    log.info("full read: %s", reason)
    links = _latest_links(client, marker, user_match)
    raw = read_raw(client, marker, user_match=user_match, progress=progress, recent=recent)
    policy.store.save(policy.scope, DeltaSnapshot(links, raw, marker, user_match, policy.clock.now()), upto)
    return DeltaOutcome(raw, "full", reason or "")


def _props(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if not k.startswith("@") and not k.endswith("@delta")}


def _apply_refs(items: list[dict[str, Any]], refs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    by_id = {str(i["id"]): i for i in items}
    for ref in refs:
        rid = str(ref.get("id"))
        if "@removed" in ref:
            by_id.pop(rid, None)
        else:
            by_id[rid] = {k: v for k, v in ref.items() if k in ("@odata.type", "id")}
    return list(by_id.values())


def _delta_round(
    client: GraphClient,
    snap: DeltaSnapshot,
    marker: str,
    match: UserMatch,
    notes: Sequence[Note],
    progress: Progress | None,
    recent: Mapping[str, str] | None,
) -> tuple[RawRead, dict[str, str]]:
    """Follow the three deltaLinks and apply them to a copy of the snapshot."""
    old = snap.raw
    users = dict(old.users)
    client.pacer.tenant_users(len(users))  # the tenant's size sets its resource-unit quota
    aus = {k: dict(v) for k, v in old.aus.items()}
    groups = {k: dict(v) for k, v in old.groups.items()}
    relations = {k: list(v) for k, v in old.relations.items()}
    teams = dict(old.teams)
    links: dict[str, str] = {}

    answer = _collect(client, snap.links["users"], "users")
    links["users"] = answer[1]
    gone_users: set[str] = set()
    for item in answer[0]:
        uid = str(item["id"])
        if "@removed" in item:
            users.pop(uid, None)
            gone_users.add(uid)
        elif match in item:
            value = item.get(match)
            users[uid] = value if isinstance(value, str) else None
        else:
            users.setdefault(uid, None)

    created = {n.object_id for n in notes if n.kind == "created"}
    for name, store in (("administrativeUnits", aus), ("groups", groups)):
        items, links[name] = _collect(client, snap.links[name], name)
        for item in items:
            oid = str(item["id"])
            paths = [au_members_path(oid)] if name == "administrativeUnits" else [
                f"/groups/{oid}/members", f"/groups/{oid}/owners"]  # fmt: skip
            if "@removed" in item:
                store.pop(oid, None)
                teams.pop(oid, None)
                for p in paths:
                    relations.pop(p, None)
                continue
            known = oid in store
            store[oid] = {**store.get(oid, {}), **_props(item)}
            member_path = paths[0]
            if not known:  # new since the link: its whole membership is in members@delta
                relations.setdefault(member_path, [])
                if oid in created:  # created by this tool: its owners are the noted ones
                    relations.setdefault(f"/groups/{oid}/owners", [])
            if member_path in relations and "members@delta" in item:
                relations[member_path] = _apply_refs(relations[member_path], item["members@delta"])

    if recent:
        listed_aus, listed_groups = with_recent(
            client, marker, recent, list(aus.values()), list(groups.values()))
        aus = {str(a["id"]): a for a in listed_aus}
        groups = {str(g["id"]): g for g in listed_groups}
    managed_aus = {oid for oid, a in aus.items() if a.get(marker)}
    managed_groups = {oid for oid, g in groups.items() if g.get(marker)}
    _fold_notes(notes, relations, teams, managed_groups)
    if gone_users:  # a deleted user is in no member or owner list any more
        for path, items in relations.items():
            relations[path] = [i for i in items if str(i["id"]) not in gone_users]
    # lists of objects no longer managed are forgotten; those of newly managed ones are read
    keep = {au_members_path(a) for a in managed_aus}
    keep |= {f"/groups/{g}/{r}" for g in managed_groups for r in ("members", "owners")}
    relations = {p: v for p, v in relations.items() if p in keep}
    missing = sorted(keep - set(relations))
    if missing:
        log.info("delta read: reading %d member/owner list(s) delta does not give", len(missing))
        relations.update(read_relations(client, missing, progress or _noop, "members"))
    teams = {g: v for g, v in teams.items() if g in managed_groups and has_team(groups[g])}
    unread = sorted(g for g in managed_groups if has_team(groups[g]) and g not in teams
                    and all(f"/groups/{g}/{r}" in relations for r in ("members", "owners")))  # fmt: skip
    if unread:
        teams.update(read_teams(client, unread, progress or _noop))
    return RawRead(users, aus, groups, relations, teams), links


def _fold_notes(
    notes: Sequence[Note],
    relations: dict[str, list[dict[str, Any]]],
    teams: dict[str, bool],
    managed_groups: set[str],
) -> None:
    for note in notes:
        if note.object_id not in managed_groups or note.kind == "created":
            continue
        if note.kind == "team":
            teams[note.object_id] = note.value == "archived"
            continue
        path = f"/groups/{note.object_id}/owners"
        if path not in relations:
            continue  # read whole below
        ref: dict[str, Any] = {"@odata.type": _USER_TYPE, "id": note.value}
        if note.kind == "owner-":
            ref["@removed"] = {"reason": "deleted"}
        relations[path] = _apply_refs(relations[path], [ref])


def _collect(client: GraphClient, link: str, name: str) -> tuple[list[dict[str, Any]], str]:
    result = client.collect_delta(link)
    if result.delta_link is None:
        raise MalformedResponseError("GET", f"/{name}/delta", "a delta round without a deltaLink")
    return list(result.items), result.delta_link


def _noop(stage: str, done: int, total: int | None = None) -> None:
    return None
