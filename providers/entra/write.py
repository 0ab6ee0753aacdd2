"""Write changes to Entra through Graph: AUs, groups, memberships, owners and Teams.

Request shapes follow graph-facts.md: at most 20 relationships in a group-create body (owners
first), 20 ``members@odata.bind`` per PATCH, AU members and owners one per ``$ref`` request packed
20 per ``$batch``, removals always through ``.../{id}/$ref`` (without it Graph deletes the user).
"Already a member" and "not a member" are success. Replication lag on objects created in this run
(400 "referenced objects don't exist", 404) is retried with back-off on the injected clock.

Creates are idempotent (:mod:`providers.entra.create`): a create whose answer was refused, lost or
a 5xx is never resent before a lookup that waits out the lag says the object does not exist.

This module does not enforce the ownership rule; :class:`providers.entra.directory.EntraDirectory`
does, before it calls in here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from providers.entra.client import BatchRequest, BatchResult, GraphClient
from providers.entra.create import Creator
from providers.entra.errors import (
    BadRequestError,
    ConflictError,
    GraphError,
    NotFoundError,
    RefusedWriteError,
    ResponseLostError,
)
from providers.entra.recent import CreateJournal
from reconciler.clock import Clock
from reconciler.errors import DirectoryError
from reconciler.model import AdministrativeUnit, Group, TeamTemplate
from reconciler.ports import CreateResult, ItemFailure, TeamOutcome

__all__ = ["MAX_BINDS", "EntraWriter", "WritePolicy", "au_fields", "group_fields"]

log = logging.getLogger(__name__)

#: Graph's limit on relationships bound in one create or PATCH body
MAX_BINDS = 20
_JSON = {"Content-Type": "application/json"}

_GROUP_FIELDS = {
    "display_name": "displayName", "displayName": "displayName",
    "description": "description",
    "visibility": "visibility",
    "mail_nickname": "mailNickname", "mailNickname": "mailNickname",
}
_AU_FIELDS = {"display_name": "displayName", "displayName": "displayName", "description": "description"}


@dataclass(frozen=True, slots=True)
class WritePolicy:
    """Waits for Graph's eventual consistency (seconds, on the injected clock)."""

    #: back-off between retries of a relationship change on an object created in this run
    lag_delays: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0, 30.0)
    #: waits before each marker lookup after a create whose response was lost
    lookup_delays: tuple[float, ...] = (0.0, 5.0, 10.0, 20.0, 30.0)
    #: how many times a create is sent at most when responses keep getting lost
    create_attempts: int = 3
    #: documented Team-from-group policy: retry 404 three times, 10 s apart, then defer
    team_retries: int = 3
    team_retry_seconds: float = 10.0
    #: waits for a Team created in this run to finish provisioning before archiving it (404 until then)
    team_ready_delays: tuple[float, ...] = (10.0, 20.0, 30.0, 60.0, 120.0)


def _text(err: GraphError | None) -> str:
    return ((err.message or "") if err is not None else "").lower()


def _missing_refs(err: GraphError | None) -> bool:
    t = _text(err)
    return "don't exist" in t or "do not exist" in t or "does not exist" in t


def _last_owner(err: GraphError | None) -> bool:
    t = _text(err)
    return "at least one owner" in t or "last owner" in t


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _fields(fields: Mapping[str, Any], allowed: Mapping[str, str], what: str) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in allowed:
            raise DirectoryError(
                f"cannot update {what} field {name!r}: only {', '.join(sorted(set(allowed.values())))} "
                "are managed"
            )
        body[allowed[name]] = value
    return dict(sorted(body.items()))


def group_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A group PATCH body from managed fields (model names like ``display_name`` or Graph names)."""
    return _fields(fields, _GROUP_FIELDS, "group")


def au_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    return _fields(fields, _AU_FIELDS, "administrative unit")


# An item outcome: None = success, "retry" = replication lag, any other str = failure message.
_Classify = Callable[[BatchResult, bool], str | None]


def _classify_add(result: BatchResult, new: bool) -> str | None:
    err = result.error
    if err is None:
        return None
    if err.status == 400:
        # "already a member" is a 400 Request_BadRequest like many others: Graph's code cannot tell,
        # and its message text must not decide (graph-facts.md §1); the writer re-reads the list
        return "check"
    return _classify_add_error(err, new)


def _classify_add_error(err: GraphError, new: bool) -> str | None:
    # on an object created in this run, a 400 (the list re-read did not hold the member) or a 404
    # is replication lag until the lag delays run out, whatever the message says
    if new and err.status in (400, 404):
        return "retry"
    if err.status == 404:
        return "Graph answered 404: the object (or its group / administrative unit) does not exist"
    return str(err)


def _classify_remove(result: BatchResult, new: bool) -> str | None:
    err = result.error
    if err is None or err.status == 404 or (err.status == 400 and _missing_refs(err)):
        return None
    if _last_owner(err):
        return "it is the group's last owner; Graph refuses to remove it (add another owner first)"
    return str(err)


class EntraWriter:
    """Every write the plan can hold. ``marker`` is the full extension property name."""

    def __init__(
        self,
        client: GraphClient,
        marker: str,
        *,
        clock: Clock,
        graph_base: str = "https://graph.microsoft.com/v1.0",
        policy: WritePolicy | None = None,
        journal: CreateJournal | None = None,
    ) -> None:
        self.client = client
        #: what this machine created recently (providers.entra.recent); None: nothing is remembered
        self.journal = journal
        self.marker = marker
        self.clock = clock
        self.graph_base = graph_base.rstrip("/")
        self.policy = policy or WritePolicy()
        #: ids of objects this writer created (replication lag is expected on them)
        self.created: set[str] = set()
        #: ids of Teams this writer created (they provision asynchronously)
        self.created_teams: set[str] = set()
        self._creator = Creator(client, marker, clock, self.policy.lookup_delays, self.policy.create_attempts,
                                journal)

    # -- helpers -------------------------------------------------------------------------------

    def _ref(self, object_id: str) -> str:
        """A member reference: any directory object (users, or groups placed in an AU)."""
        return f"{self.graph_base}/directoryObjects/{object_id}"

    def _user_ref(self, object_id: str) -> str:
        """An owner reference: owners are users, spelled as Graph's owner examples do."""
        return f"{self.graph_base}/users/{object_id}"

    def _lookup(self, path: str, key: str) -> dict[str, Any] | None:
        return self._creator.lookup(path, key)

    def _create(self, path: str, body: Mapping[str, Any], key: str) -> str:
        """POST a create, idempotently (see :class:`providers.entra.create.Creator`)."""
        oid = self._creator.create(path, body, key)
        self.created.add(oid)
        return oid

    def _ref_batch(self, requests: Sequence[tuple[str, BatchRequest]], new: bool,
                   classify: _Classify) -> list[ItemFailure]:
        """Run one-object requests in ``$batch``es; retry lag failures; return the lasting failures."""
        pending = list(requests)
        failures: list[ItemFailure] = []
        delays = self.policy.lag_delays if new else ()
        for attempt in range(len(delays) + 1):
            results = self.client.batch([r for _, r in pending])
            retry: list[tuple[str, BatchRequest]] = []
            checked = self._settle_checks(pending, results, classify, new)
            for (oid, req), result in zip(pending, results, strict=True):
                outcome = checked.get(oid, "") if oid in checked else classify(result, new)
                if outcome == "retry":
                    retry.append((oid, req))
                elif outcome is not None:
                    failures.append(ItemFailure(oid, outcome))
            pending = retry
            if not pending:
                break
            if attempt < len(delays):
                self.clock.sleep(delays[attempt])
        failures.extend(ItemFailure(oid, "the object does not exist in the directory") for oid, _ in pending)
        return sorted(failures, key=lambda f: f.object_id)

    def _settle_checks(self, pending: Sequence[tuple[str, BatchRequest]], results: Sequence[BatchResult],
                       classify: _Classify, new: bool) -> dict[str, str | None]:
        """Outcomes of adds answered 400: the object is in the list now (re-read once per list) means
        success, whatever the message says; otherwise the error decides as for any other status."""
        checks = [(oid, req, res) for (oid, req), res in zip(pending, results, strict=True)
                  if classify(res, new) == "check"]
        outcomes: dict[str, str | None] = {}
        listed: dict[str, set[str]] = {}
        for oid, req, res in checks:
            collection = req.url.split("?", 1)[0].removesuffix("/$ref")
            if collection not in listed:
                try:
                    items = self.client.get_all(collection, params={"$select": "id", "$top": "999"})
                except NotFoundError:  # a container still replicating: nobody is in it yet
                    items = []
                listed[collection] = {str(i["id"]) for i in items}
            err = res.error
            assert err is not None
            outcomes[oid] = None if oid in listed[collection] else _classify_add_error(err, new)
        return outcomes

    def _add_refs(self, collection: str, ids: Sequence[str], new: bool) -> list[ItemFailure]:
        ref = self._user_ref if collection.endswith("/owners") else self._ref
        reqs = [
            (oid, BatchRequest("POST", f"{collection}/$ref", {"@odata.id": ref(oid)}, _JSON))
            for oid in ids
        ]
        return self._ref_batch(reqs, new, _classify_add)

    def _remove_refs(self, collection: str, ids: Sequence[str]) -> list[ItemFailure]:
        # ALWAYS .../{id}/$ref: without /$ref Graph deletes the object itself
        reqs = [(oid, BatchRequest("DELETE", f"{collection}/{oid}/$ref")) for oid in ids]
        return self._ref_batch(reqs, False, _classify_remove)

    def _new(self, container: str, ids: Iterable[str]) -> bool:
        """Whether replication lag is expected: the container or a referenced object (e.g. a group
        placed in an AU, or nested) was created in this run."""
        return container in self.created or not self.created.isdisjoint(ids)

    def _delete(self, path: str) -> None:
        try:
            self.client.delete(path)
        except NotFoundError:
            log.info("DELETE %s: already gone", path)

    # -- administrative units --------------------------------------------------------------------

    def create_administrative_unit(self, au: AdministrativeUnit, member_ids: Sequence[str]) -> CreateResult:
        body: dict[str, Any] = {"displayName": au.display_name, self.marker: au.key}
        if au.description:
            body["description"] = au.description
        oid = self._create("/directory/administrativeUnits", body, au.key)
        return CreateResult(oid, tuple(self.add_administrative_unit_members(oid, member_ids)))

    def update_administrative_unit(self, object_id: str, fields: Mapping[str, Any]) -> None:
        self.client.patch(f"/directory/administrativeUnits/{object_id}", json=au_fields(fields))

    def delete_administrative_unit(self, object_id: str) -> None:
        self._delete(f"/directory/administrativeUnits/{object_id}")

    def add_administrative_unit_members(self, au_id: str, member_ids: Sequence[str]) -> list[ItemFailure]:
        """Users or groups (placement) into the AU: one ``$ref`` POST each, 20 per ``$batch``."""
        ids = sorted(set(member_ids))
        return self._add_refs(f"/directory/administrativeUnits/{au_id}/members", ids, self._new(au_id, ids))

    def remove_administrative_unit_members(self, au_id: str, member_ids: Sequence[str]) -> list[ItemFailure]:
        return self._remove_refs(f"/directory/administrativeUnits/{au_id}/members", sorted(set(member_ids)))

    # -- groups ----------------------------------------------------------------------------------

    def _group_body(self, group: Group) -> dict[str, Any]:
        unified = group.kind == "microsoft365"
        body: dict[str, Any] = {
            "displayName": group.display_name,
            "mailNickname": group.mail_nickname,
            "groupTypes": ["Unified"] if unified else [],
            "mailEnabled": unified,
            "securityEnabled": not unified,
            "visibility": group.visibility,
            self.marker: group.key,
        }
        if group.description:
            body["description"] = group.description
        return body

    def create_group(self, group: Group, owner_ids: Sequence[str], member_ids: Sequence[str]) -> CreateResult:
        """POST /groups with up to 20 binds (owners first), then the rest; see the Directory port."""
        owners = sorted(set(owner_ids))
        members = sorted(set(member_ids))
        if not owners:
            log.warning("group %r is created without an owner (app-only groups should have one)", group.key)
        bound_owners = owners[:MAX_BINDS]
        bound_members = members[: MAX_BINDS - len(bound_owners)]
        body = self._group_body(group)
        if bound_owners:
            body["owners@odata.bind"] = [self._user_ref(o) for o in bound_owners]
        if bound_members:
            body["members@odata.bind"] = [self._ref(m) for m in bound_members]
        try:
            gid = self._create("/groups", body, group.key)
        except (BadRequestError, NotFoundError) as exc:
            if not (bound_owners or bound_members) or not (exc.status == 404 or _missing_refs(exc)):
                raise
            # a bound user does not exist: nothing was created; create it bare and bind one by one
            log.warning("create of group %r refused a bound object (%s); binding afterwards", group.key, exc)
            gid = self._create("/groups", self._group_body(group), group.key)
            bound_owners, bound_members = [], []
        failures = self.add_group_owners(gid, owners[len(bound_owners):])
        failures += self.add_group_members(gid, members[len(bound_members):])
        return CreateResult(gid, tuple(sorted(failures, key=lambda f: f.object_id)))

    def update_group(self, object_id: str, fields: Mapping[str, Any]) -> None:
        self.client.patch(f"/groups/{object_id}", json=group_fields(fields))

    def delete_group(self, object_id: str) -> None:
        self._delete(f"/groups/{object_id}")

    def _patch_members(self, group_id: str, chunk: Sequence[str]) -> list[ItemFailure]:
        new = self._new(group_id, chunk)
        delays = self.policy.lag_delays if new else ()
        body = {"members@odata.bind": [self._ref(m) for m in chunk]}
        for attempt in range(len(delays) + 1):
            try:
                self.client.patch(f"/groups/{group_id}", json=body)
                return []
            except (BadRequestError, NotFoundError) as exc:
                lag = exc.status == 404 or _missing_refs(exc)
                if lag and attempt < len(delays):
                    self.clock.sleep(delays[attempt])
                    continue
                # the whole PATCH was rejected (a member already in, or one missing): one by one
                log.info("PATCH members of %s rejected (%s); adding %d one by one", group_id, exc.status,
                         len(chunk))
                break
        return self._add_refs(f"/groups/{group_id}/members", chunk, new)

    def add_group_members(self, group_id: str, member_ids: Sequence[str]) -> list[ItemFailure]:
        """20 binds per PATCH; a rejected PATCH falls back to one ``$ref`` add per member."""
        failures: list[ItemFailure] = []
        for chunk in _chunks(sorted(set(member_ids)), MAX_BINDS):
            failures += self._patch_members(group_id, chunk)
        return failures

    def remove_group_members(self, group_id: str, member_ids: Sequence[str]) -> list[ItemFailure]:
        return self._remove_refs(f"/groups/{group_id}/members", sorted(set(member_ids)))

    def add_group_owners(self, group_id: str, owner_ids: Sequence[str]) -> list[ItemFailure]:
        return self._add_refs(f"/groups/{group_id}/owners", sorted(set(owner_ids)), group_id in self.created)

    def remove_group_owners(self, group_id: str, owner_ids: Sequence[str]) -> list[ItemFailure]:
        return self._remove_refs(f"/groups/{group_id}/owners", sorted(set(owner_ids)))

    # -- teams -----------------------------------------------------------------------------------

    def _team_exists(self, group_id: str) -> bool:
        try:
            self.client.get(f"/teams/{group_id}")
        except NotFoundError:
            return False
        return True

    def create_team(self, group_id: str, template: TeamTemplate) -> TeamOutcome:
        """POST /teams from the group; 404 (group too young) is retried 3 times 10 s apart, then
        deferred; 409 "already exists" and a lost response whose team exists count as created."""
        body = {
            "template@odata.bind": f"{self.graph_base}/teamsTemplates('{template}')",
            "group@odata.bind": f"{self.graph_base}/groups('{group_id}')",
        }
        outcome = self._post_team(group_id, body)
        if outcome.status == "created":
            self.created_teams.add(group_id)
        return outcome

    def _post_team(self, group_id: str, body: Mapping[str, Any]) -> TeamOutcome:
        p = self.policy
        not_found = 0
        lost = refused = 0
        while True:
            try:
                self.client.post("/teams", json=body)
                return TeamOutcome("created", "provisioning")
            except NotFoundError:
                lost = 0  # only consecutive lost responses count against the transport
                not_found += 1
                if not_found > p.team_retries:
                    return TeamOutcome(
                        "deferred",
                        f"group {group_id} is too young for a Team (Graph answered 404 {not_found} times, "
                        f"{p.team_retry_seconds:g} s apart); a later run will create it",
                    )
                self.clock.sleep(p.team_retry_seconds)
            except ConflictError:
                exists = self._team_exists(group_id)
                return TeamOutcome("created", "team already exists" if exists else "team is provisioning")
            except ResponseLostError as exc:
                # a team's id is its group's id, so a second POST can never make a duplicate
                if self._team_exists(group_id):
                    return TeamOutcome("created", "team exists (the create response was lost)")
                if isinstance(exc, RefusedWriteError):
                    refused += 1  # throttled: the client has waited; bounded like its own retries
                    if refused >= self.client.retry.max_throttled_attempts:
                        raise
                    continue
                lost += 1
                if lost >= p.create_attempts:
                    raise

    def _team_action(self, team_id: str, action: str, body: Any) -> None:
        """POST an archive/unarchive. Lost responses are resent (it is idempotent), throttling is
        waited out, and a Team created in this run that is still provisioning (404) is waited for."""
        lost = refused = not_ready = 0
        waits = self.policy.team_ready_delays
        while True:
            try:
                self.client.post(f"/teams/{team_id}/{action}", json=body)
                return
            except RefusedWriteError:
                # throttled (the client has waited); archive/unarchive is idempotent: send it again
                refused += 1
                if refused >= self.client.retry.max_throttled_attempts:
                    raise
            except ResponseLostError:
                lost += 1
                if lost >= self.policy.create_attempts:
                    raise
                log.warning("%s of team %s: response lost; sending it again (it is idempotent)",
                            action, team_id)
            except NotFoundError:
                if team_id not in self.created_teams:
                    raise
                if not_ready >= len(waits):
                    raise DirectoryError(
                        f"cannot {action} team {team_id}: it was created in this run and is still "
                        f"provisioning after {sum(waits):g} s; a later run will {action} it"
                    ) from None
                log.info("team %s is still provisioning; waiting %g s to %s it", team_id,
                         waits[not_ready], action)
                self.clock.sleep(waits[not_ready])
                not_ready += 1

    def archive_team(self, team_id: str) -> None:
        """POST /teams/{id}/archive (202, completes asynchronously). The optional
        shouldSetSpoSiteReadOnlyForMembers is not supported app-only, so it is never sent."""
        self._team_action(team_id, "archive", {})

    def unarchive_team(self, team_id: str) -> None:
        self._team_action(team_id, "unarchive", None)
