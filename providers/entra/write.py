"""Write changes to Entra through Graph: AUs, groups, memberships, owners and Teams.

Request shapes follow graph-facts.md: at most 20 relationships in a group-create body (owners
first), 20 ``members@odata.bind`` per PATCH, AU members and owners one per ``$ref`` request packed
20 per ``$batch``, removals always through ``.../{id}/$ref`` (without it Graph deletes the user).
"Already a member" and "not a member" are success. Replication lag on objects created in this run
(400 "referenced objects don't exist", 404) is retried with back-off on the injected clock.

Creates are idempotent (:mod:`providers.entra.create`): a create whose answer was refused, lost or
a 5xx is never resent before a lookup that waits out the lag says the object does not exist.

Microsoft 365 groups are created quiet: ``resourceBehaviorOptions`` (creation-only; from
``[sync]``: no welcome email, members not subscribed, hidden from Outlook by default). A group
with ``education`` set is created as an education class instead (:mod:`providers.entra.classes`),
then stamped with the marker. Teams are in :mod:`providers.entra.teams` (deferred while the group
is young, never slept on).

This module does not enforce the ownership rule; :class:`providers.entra.directory.EntraDirectory`
does, before it calls in here.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from providers.entra.classes import CLASSES, class_body, external_id_filter, teacher_ref
from providers.entra.client import BatchRequest, BatchResult, GraphClient
from providers.entra.create import Creator
from providers.entra.errors import (
    BadRequestError,
    ForbiddenError,
    GraphError,
    NotFoundError,
)
from providers.entra.marker import marker_value
from providers.entra.recent import CreateJournal
from providers.entra.teams import TeamPolicy, TeamWriter
from reconciler.clock import Clock
from reconciler.errors import DirectoryError
from reconciler.model import AdministrativeUnit, Group, TeamTemplate
from reconciler.plan.payloads import AdministrativeUnitFields, Fields, GroupFields
from reconciler.ports import CreateResult, ItemFailure, TeamOutcome

__all__ = ["DEFAULT_BEHAVIOR_OPTIONS", "MAX_BINDS", "EntraWriter", "WritePolicy", "patch_body"]

log = logging.getLogger(__name__)

#: Graph's limit on relationships bound in one create or PATCH body
MAX_BINDS = 20
_JSON = {"Content-Type": "application/json"}

#: ``[sync]``'s defaults (reconciler.settings.SyncConfig.resource_behavior_options)
DEFAULT_BEHAVIOR_OPTIONS = (
    "HideGroupInOutlook", "SubscribeMembersToCalendarEventsDisabled", "WelcomeEmailDisabled"
)


@dataclass(frozen=True, slots=True)
class WritePolicy:
    """Waits for Graph's eventual consistency (seconds, on the injected clock)."""

    #: members and owners are bound to a group this run created only once it is this old: Graph
    #: refuses them for a few seconds (400 "referenced objects don't exist", graph-facts.md §1)
    bind_after: float = 3.0
    #: back-off between retries of a relationship change on an object created in this run
    lag_delays: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0, 30.0)
    #: waits before each marker lookup after a create whose response was lost
    lookup_delays: tuple[float, ...] = (0.0, 5.0, 10.0, 20.0, 30.0)
    #: how many times a create is sent at most when responses keep getting lost
    create_attempts: int = 3
    #: Teams: deferred while the group is young, one lag retry, paced (providers.entra.teams)
    teams: TeamPolicy = field(default_factory=TeamPolicy)


def _text(err: GraphError | None) -> str:
    return ((err.message or "") if err is not None else "").lower()


def _class_params(external_id: str) -> Mapping[str, str]:
    """How a created class is found again: by its externalId (it carries no marker until stamped)."""
    return {"$filter": external_id_filter(external_id), "$select": "id,externalId"}


def _missing_refs(err: GraphError | None) -> bool:
    t = _text(err)
    return "don't exist" in t or "do not exist" in t or "does not exist" in t


def _last_owner(err: GraphError | None) -> bool:
    t = _text(err)
    return "at least one owner" in t or "last owner" in t


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def patch_body(fields: Fields) -> dict[str, Any]:
    """An update's PATCH body: the fields it changes, by their names (Graph's), sorted."""
    return dict(sorted(fields.to_dict().items()))


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
        behavior_options: Sequence[str] = DEFAULT_BEHAVIOR_OPTIONS,
    ) -> None:
        self.client = client
        #: what this machine created recently (providers.entra.recent); None: nothing is remembered
        self.journal = journal
        self.marker = marker
        self.clock = clock
        self.graph_base = graph_base.rstrip("/")
        self.policy = policy or WritePolicy()
        #: ``resourceBehaviorOptions`` every new Microsoft 365 group (not a class) is created with
        self.behavior_options = tuple(sorted(set(behavior_options)))
        #: ids of objects this writer created (replication lag is expected on them)
        self.created: set[str] = set()
        self._creator = Creator(client, marker, clock, self.policy.lookup_delays, self.policy.create_attempts,
                                journal)
        self.teams = TeamWriter(client, clock, self.graph_base, self.policy.teams)
        self._settle_lock = threading.Lock()

    @property
    def created_teams(self) -> set[str]:
        """Ids of Teams this writer created (they provision asynchronously)."""
        return self.teams.created_teams

    # -- helpers -------------------------------------------------------------------------------

    def _ref(self, object_id: str) -> str:
        """A member reference: any directory object (users, or groups placed in an AU)."""
        return f"{self.graph_base}/directoryObjects/{object_id}"

    def _user_ref(self, object_id: str) -> str:
        """An owner reference: owners are users, spelled as Graph's owner examples do."""
        return f"{self.graph_base}/users/{object_id}"

    def _lookup(self, path: str, key: str) -> dict[str, Any] | None:
        return self._creator.lookup(path, key, _class_params if path == CLASSES else None)

    def _create(self, path: str, body: Mapping[str, Any], key: str) -> str:
        """POST a create, idempotently (see :class:`providers.entra.create.Creator`); a class is
        found by its ``externalId`` (the marker is written after, by :meth:`_stamp`)."""
        oid = self._creator.create(path, body, key, params=_class_params if path == CLASSES else None)
        self.created.add(oid)
        self.teams.group_created[oid] = self.clock.now()
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

    @contextlib.contextmanager
    def _settled(self, group_id: str) -> Iterator[None]:
        """Members and owners bound inside the block reach a group this run created only once it
        is ``bind_after`` old (any other group: at once). Packed with other changes, the requests
        wait in the queue while other changes' requests go out; alone, the writer sleeps."""
        created = self.teams.group_created.get(group_id)
        if created is None:
            yield
            return
        when = created + self.policy.bind_after
        coalescer = self.client.coalescer
        if coalescer.active():
            with coalescer.not_before(when):
                yield
            return
        with self._settle_lock:  # one sleeper at a time: the others find the time already passed
            self.clock.sleep(when - self.clock.now())
        yield

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

    def update_administrative_unit(self, object_id: str, fields: AdministrativeUnitFields) -> None:
        if fields:
            self.client.patch(f"/directory/administrativeUnits/{object_id}", json=patch_body(fields))

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
        if unified and self.behavior_options:
            body["resourceBehaviorOptions"] = list(self.behavior_options)
        return body

    def create_group(self, group: Group, owner_ids: Sequence[str], member_ids: Sequence[str]) -> CreateResult:
        """POST /groups with up to 20 binds (owners first), then the rest; see the Directory port.
        A group with ``education`` set is created as an education class (:meth:`_create_class`)."""
        if group.education is not None:
            return self._create_class(group, owner_ids, member_ids)
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

    def _create_class(
        self, group: Group, owner_ids: Sequence[str], member_ids: Sequence[str]
    ) -> CreateResult:
        """POST /education/classes, stamp the marker (PATCH /groups/{id}, waiting out lag on the new
        group), then the teachers (class teachers are its owners) and the members."""
        assert group.education is not None
        try:
            gid = self._create(CLASSES, class_body(group), group.education.external_id)
        except ForbiddenError as exc:
            raise DirectoryError(
                f"cannot create class {group.key}: Graph refused POST /education/classes ({exc.status}). "
                "The app needs the application permission EduRoster.ReadWrite.All (admin consent) and "
                "the tenant must be an education tenant; or set [sync] education_classes = false "
                'with class_team_template = "standard"'
            ) from exc
        self._stamp(gid, group.key)
        teachers = sorted(set(owner_ids))
        path = f"{CLASSES}/{gid}/teachers/$ref"
        base = self.graph_base
        reqs = [(oid, BatchRequest("POST", path, teacher_ref(base, oid), _JSON)) for oid in teachers]
        with self._settled(gid) if reqs else contextlib.nullcontext():
            failures = self._ref_batch(reqs, True, _classify_add)
        failures += self.add_group_members(gid, member_ids)
        return CreateResult(gid, tuple(sorted(failures, key=lambda f: f.object_id)))

    def _stamp(self, group_id: str, key: str) -> None:
        """Write the ownership marker on a group this run created (404 while it replicates)."""
        delays = self.policy.lag_delays
        for attempt in range(len(delays) + 1):
            try:
                self.client.patch(f"/groups/{group_id}", json={self.marker: marker_value(key)})
                return
            except NotFoundError:
                if attempt >= len(delays):
                    raise DirectoryError(
                        f"class {key} was created ({group_id}) but the ownership marker could not be "
                        "written: Graph still did not find the group; a later run reports it as an "
                        f"unmanaged collision: adopt it with `entra-sync adopt group {group_id} {key}`"
                    ) from None
                self.clock.sleep(delays[attempt])

    def update_group(self, object_id: str, fields: GroupFields) -> None:
        if fields:
            self.client.patch(f"/groups/{object_id}", json=patch_body(fields))

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
        if not member_ids:
            return failures
        with self._settled(group_id):
            for chunk in _chunks(sorted(set(member_ids)), MAX_BINDS):
                failures += self._patch_members(group_id, chunk)
        return failures

    def remove_group_members(self, group_id: str, member_ids: Sequence[str]) -> list[ItemFailure]:
        return self._remove_refs(f"/groups/{group_id}/members", sorted(set(member_ids)))

    def add_group_owners(self, group_id: str, owner_ids: Sequence[str]) -> list[ItemFailure]:
        if not owner_ids:
            return []
        with self._settled(group_id):
            owners = sorted(set(owner_ids))
            return self._add_refs(f"/groups/{group_id}/owners", owners, group_id in self.created)

    def remove_group_owners(self, group_id: str, owner_ids: Sequence[str]) -> list[ItemFailure]:
        return self._remove_refs(f"/groups/{group_id}/owners", sorted(set(owner_ids)))

    # -- teams -----------------------------------------------------------------------------------

    def create_team(self, group_id: str, template: TeamTemplate) -> TeamOutcome:
        """POST /teams from the group: deferred at once while the group is young, one lag retry,
        paced (:class:`providers.entra.teams.TeamWriter`)."""
        return self.teams.create(group_id, template)

    def archive_team(self, team_id: str) -> None:
        """POST /teams/{id}/archive (202, completes asynchronously). The optional
        shouldSetSpoSiteReadOnlyForMembers is not supported app-only, so it is never sent."""
        self.teams.action(team_id, "archive", {})

    def unarchive_team(self, team_id: str) -> None:
        self.teams.action(team_id, "unarchive", None)
