"""``EntraDirectory``: the :class:`reconciler.ports.Directory` over Microsoft Graph.

It composes :mod:`providers.entra.read` and :mod:`providers.entra.write` and enforces the
ownership rule: it changes or deletes only objects its last :meth:`EntraDirectory.read` returned
as managed (carrying our marker) or that it created itself in this run. Any other id raises
:class:`NotManagedError` before a request is sent.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Literal

from providers.entra.client import GraphClient
from providers.entra.delta import DeltaPolicy, Note, ReadMode, read_with_delta
from providers.entra.marker import marker_name, marker_value
from providers.entra.read import ManagedIds, assemble, read_actual
from providers.entra.recent import CreateJournal
from providers.entra.write import DEFAULT_BEHAVIOR_OPTIONS, EntraWriter, WritePolicy
from reconciler.clock import Clock
from reconciler.errors import DirectoryError
from reconciler.model import ActualState, AdministrativeUnit, DesiredState, Group, TeamTemplate, UserMatch
from reconciler.plan.payloads import AdministrativeUnitFields, GroupFields
from reconciler.ports import CreateResult, Directory, ItemFailure, Progress, TeamOutcome

__all__ = ["EntraDirectory", "NotManagedError"]

log = logging.getLogger(__name__)

_Kind = Literal["administrativeUnit", "group", "team"]


class NotManagedError(DirectoryError):
    """A change was asked for an object this directory does not manage (the ownership rule)."""

    def __init__(self, kind: str, object_id: str, action: str) -> None:
        self.kind = kind
        self.object_id = object_id
        self.action = action
        super().__init__(
            f"refusing to {action} {kind} {object_id}: it does not carry this app's ownership marker "
            "(or was not read in this run); objects without the marker are never changed. To take it "
            "over, adopt it explicitly"
        )


class EntraDirectory:
    """Reads and writes a tenant through ``client``.

    ``marker`` is the full marker property name (:func:`providers.entra.marker.marker_name`); use
    :meth:`for_app` to build it from the sync app's client id. ``user_match`` names users when
    :meth:`read` gets no desired state. ``clock`` drives lag and Team retries (defaults to the
    client's clock); ``graph_base`` is the root used in ``@odata.bind`` URLs (defaults to the
    client's base URL, so national clouds and the emulator just work). ``recent`` (object id ->
    kind, from the run history) names objects that recent runs created: a read looks up by id any
    that the list queries do not show yet, so replication lag never makes a duplicate.
    ``behavior_options`` are the ``resourceBehaviorOptions`` new Microsoft 365 groups are created
    with (``[sync]``: :meth:`reconciler.settings.SyncConfig.resource_behavior_options`).
    """

    def __init__(
        self,
        client: GraphClient,
        marker: str,
        *,
        user_match: UserMatch = "userPrincipalName",
        clock: Clock | None = None,
        graph_base: str | None = None,
        policy: WritePolicy | None = None,
        recent: Mapping[str, str] | None = None,
        journal: CreateJournal | None = None,
        behavior_options: Sequence[str] = DEFAULT_BEHAVIOR_OPTIONS,
        delta: DeltaPolicy | None = None,
    ) -> None:
        self.client = client
        self.marker = marker
        self.user_match: UserMatch = user_match
        base = graph_base or str(client.http.base_url)
        self.writer = EntraWriter(client, marker, clock=clock or client.clock, graph_base=base, policy=policy,
                                  journal=journal, behavior_options=behavior_options)
        #: this machine's recent creates in the tenant (providers.entra.recent), if any
        self.journal = journal
        self._managed = ManagedIds()
        self._created: dict[str, _Kind] = {}
        #: object id -> kind of objects created by recent runs (from the run history)
        self._recent = {**(journal.recent_ids() if journal is not None else {}), **dict(recent or {})}
        #: read through delta links and a last-known snapshot (None: every read is full)
        self.delta = delta
        #: how the last read was made, and why when it was full
        self.last_read: tuple[ReadMode, str] | None = None
        self._notes: list[Note] = []

    @classmethod
    def for_app(cls, client: GraphClient, app_id: str, **kwargs: Any) -> EntraDirectory:
        """The directory whose marker is registered on the sync app ``app_id`` (its client id)."""
        return cls(client, marker_name(app_id), **kwargs)

    def __repr__(self) -> str:
        return f"EntraDirectory(client={self.client!r}, marker={self.marker!r})"

    # -- ownership rule --------------------------------------------------------------------------

    def is_managed(self, kind: _Kind, object_id: str) -> bool:
        if self._created.get(object_id) == kind:
            return True
        if kind == "administrativeUnit":
            return object_id in self._managed.administrative_units
        # a team's id is its group's id
        created_group = kind == "team" and self._created.get(object_id) == "group"
        return object_id in self._managed.groups or created_group

    def _guard(self, kind: _Kind, object_id: str, action: str) -> None:
        if not self.is_managed(kind, object_id):
            raise NotManagedError(kind, object_id, action)

    # -- read ------------------------------------------------------------------------------------

    def read(self, desired: DesiredState | None = None, progress: Progress | None = None) -> ActualState:
        match = desired.user_match if desired is not None else self.user_match
        recent = {**self._recent, **{oid: kind for oid, kind in self._created.items() if kind != "team"}}
        long_keys = self.journal.long_keys() if self.journal is not None else None
        if self.delta is None:
            state, managed = read_actual(self.client, self.marker, user_match=match, desired=desired,
                                         progress=progress, recent=recent, long_keys=long_keys)
            self.last_read = ("full", "no delta state")
        else:
            self.flush_notes()
            outcome = read_with_delta(self.client, self.marker, self.delta, user_match=match,
                                      progress=progress, recent=recent)
            state, managed = assemble(outcome.raw, self.marker, user_match=match, desired=desired,
                                      long_keys=long_keys)
            self.last_read = (outcome.mode, outcome.reason)
        self._managed = managed
        # a Team on a group younger than Graph's window is deferred without a request
        self.writer.teams.group_created.update(managed.group_created)
        return self._without_unstamped_classes(state, desired)

    def _without_unstamped_classes(self, state: ActualState, desired: DesiredState | None) -> ActualState:
        """A class this machine sent the create of (the journal says so) but whose marker was never
        written (the run was killed in between) is not someone else's group: it is left out of the
        collisions, so the plan creates it again and the idempotent create finds it by its
        externalId and stamps it instead of making a second class."""
        journal = self.journal
        if desired is None or journal is None or not state.unmanaged:
            return state
        classes = [g for g in desired.groups if g.education is not None]
        done = {g.education.external_id for g in classes if g.education and g.key in state.groups}
        ours = {
            g.mail_nickname.casefold() for g in classes
            if g.education and g.key not in state.groups and g.education.external_id not in done
            and (journal.pending(g.education.external_id) or journal.known_id(g.education.external_id))
        }  # fmt: skip
        if not ours:
            return state
        kept = tuple(u for u in state.unmanaged
                     if not (u.kind == "group" and (u.mail_nickname or "").casefold() in ours))
        if len(kept) != len(state.unmanaged):
            log.info("%d class(es) created by an interrupted run are completed, not reported as collisions",
                     len(state.unmanaged) - len(kept))
        return dataclasses.replace(state, unmanaged=kept)

    # -- what delta does not report --------------------------------------------------------------

    def _note(self, *notes: Note) -> None:
        if self.delta is None:
            return
        self._notes.extend(notes)
        if len(self._notes) >= 500:
            self.flush_notes()

    def flush_notes(self) -> None:
        """Write down the owner and Team changes made so far (delta does not report them)."""
        if self.delta is not None and self._notes:
            notes, self._notes = self._notes, []
            self.delta.store.add_notes(self.delta.scope, notes)

    def _note_owners(self, kind: str, group_id: str, owner_ids: Sequence[str],
                     failures: Sequence[ItemFailure]) -> None:  # fmt: skip
        failed = {f.object_id for f in failures}
        self._note(*(Note(kind, group_id, o) for o in owner_ids if o not in failed))  # type: ignore[arg-type]

    # -- administrative units --------------------------------------------------------------------

    def change_scope(self) -> AbstractContextManager[None]:
        """Entered around each change apply makes (on the change's thread): the requests of the
        changes in progress are packed together, up to 20 to a ``$batch``."""
        return self.client.packing()

    def create_administrative_unit(self, au: AdministrativeUnit, member_ids: Sequence[str]) -> CreateResult:
        result = self.writer.create_administrative_unit(au, member_ids)
        self._created[result.object_id] = "administrativeUnit"
        return result

    def update_administrative_unit(self, object_id: str, fields: AdministrativeUnitFields) -> None:
        self._guard("administrativeUnit", object_id, "update")
        self.writer.update_administrative_unit(object_id, fields)

    def delete_administrative_unit(self, object_id: str) -> None:
        self._guard("administrativeUnit", object_id, "delete")
        self.writer.delete_administrative_unit(object_id)

    def add_administrative_unit_members(self, au_id: str, member_ids: Sequence[str]) -> Sequence[ItemFailure]:
        self._guard("administrativeUnit", au_id, "add members to")
        return self.writer.add_administrative_unit_members(au_id, member_ids)

    def remove_administrative_unit_members(
        self, au_id: str, member_ids: Sequence[str]
    ) -> Sequence[ItemFailure]:
        self._guard("administrativeUnit", au_id, "remove members from")
        return self.writer.remove_administrative_unit_members(au_id, member_ids)

    # -- groups ----------------------------------------------------------------------------------

    def create_group(self, group: Group, owner_ids: Sequence[str], member_ids: Sequence[str]) -> CreateResult:
        result = self.writer.create_group(group, owner_ids, member_ids)
        self._created[result.object_id] = "group"
        self._note(Note("created", result.object_id, ""))
        self._note_owners("owner+", result.object_id, owner_ids, result.failures)
        return result

    def update_group(self, object_id: str, fields: GroupFields) -> None:
        self._guard("group", object_id, "update")
        self.writer.update_group(object_id, fields)

    def delete_group(self, object_id: str) -> None:
        self._guard("group", object_id, "delete")
        self.writer.delete_group(object_id)

    def add_group_members(self, group_id: str, member_ids: Sequence[str]) -> Sequence[ItemFailure]:
        self._guard("group", group_id, "add members to")
        return self.writer.add_group_members(group_id, member_ids)

    def remove_group_members(self, group_id: str, member_ids: Sequence[str]) -> Sequence[ItemFailure]:
        self._guard("group", group_id, "remove members from")
        return self.writer.remove_group_members(group_id, member_ids)

    def add_group_owners(self, group_id: str, owner_ids: Sequence[str]) -> Sequence[ItemFailure]:
        self._guard("group", group_id, "add owners to")
        failures = self.writer.add_group_owners(group_id, owner_ids)
        self._note_owners("owner+", group_id, owner_ids, failures)
        return failures

    def remove_group_owners(self, group_id: str, owner_ids: Sequence[str]) -> Sequence[ItemFailure]:
        self._guard("group", group_id, "remove owners from")
        failures = self.writer.remove_group_owners(group_id, owner_ids)
        self._note_owners("owner-", group_id, owner_ids, failures)
        return failures

    # -- teams -----------------------------------------------------------------------------------

    def create_team(self, group_id: str, template: TeamTemplate) -> TeamOutcome:
        self._guard("group", group_id, "create a Team from")
        outcome = self.writer.create_team(group_id, template)
        if outcome.status == "created":
            self._note(Note("team", group_id, "active"))
        return outcome

    def archive_team(self, team_id: str) -> None:
        self._guard("team", team_id, "archive")
        self.writer.archive_team(team_id)
        self._note(Note("team", team_id, "archived"))

    def unarchive_team(self, team_id: str) -> None:
        self._guard("team", team_id, "unarchive")
        self.writer.unarchive_team(team_id)
        self._note(Note("team", team_id, "active"))

    # -- adoption ---------------------------------------------------------------------------------

    def adopt(self, kind: Literal["administrativeUnit", "group"], object_id: str, key: str) -> None:
        """Take an existing, unmanaged object over: stamp ``key`` on it as our marker.

        The one deliberate exception to the ownership rule, for the explicit ``entra-sync adopt``.
        Must refuse an object that already carries a marker value (ours under another key, or set
        by hand) and an object that is gone; the next plan then brings the object in line.
        """
        path = f"/groups/{object_id}" if kind == "group" else f"/directory/administrativeUnits/{object_id}"
        body = self.client.get(path, params={"$select": f"id,displayName,{self.marker}"})
        current = body.get(self.marker) if isinstance(body, Mapping) else None
        if current:
            raise DirectoryError(
                f"{kind} {object_id} already carries the key {current!r}; it is managed already, "
                "so there is nothing to adopt"
            )
        self.client.patch(path, json={self.marker: marker_value(key)})
        self._created[object_id] = kind  # ours from now on, for the rest of this run
        log.info("adopted %s %s as %s", kind, object_id, key)


if TYPE_CHECKING:

    def _conforms(d: EntraDirectory) -> Directory:  # mypy checks EntraDirectory against the port
        return d
