"""The apply engine: run a :class:`~reconciler.plan.model.Plan` through a
:class:`~reconciler.ports.Directory`, one :class:`~reconciler.apply.result.ChangeResult` per change.

Order and dependencies: changes run phase by phase in plan order (AUs, groups, memberships, Teams,
then removals in reverse). Within a phase, changes whose dependencies are all settled run
concurrently (``max_workers`` threads); results are reported in plan order whatever order the
threads finish in. A change whose dependency failed, was skipped or was deferred is *skipped* with
the reason; everything else carries on past a failure. A dependency that is not in the plan is
taken as already satisfied.

Resolution: user references are resolved to object ids through ``actual.users`` (a reference of
the form ``id:<objectId>`` names the object directly); a reference that does not resolve becomes an
:class:`~reconciler.ports.ItemFailure` ("user not found") and the change goes ahead with the rest.
Object keys resolve through ``change.object_id``, ``actual.ids`` and the ids of objects created
earlier in this run.

Must: never raise because of one change: any exception from the directory fails only that change.
Must not: retry (the directory retries what Graph says to retry), or touch anything not in the plan.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar

from reconciler.apply.result import ApplyResult, ChangeResult, ChangeStatus
from reconciler.errors import EntraSyncError
from reconciler.identity import Key, group_of, user_ref
from reconciler.model import ActualState
from reconciler.plan.model import AnyChange, Plan
from reconciler.plan.operations import (
    Change,
    CreateAdministrativeUnit,
    CreateGroup,
    CreateTeam,
    UpdateAdministrativeUnit,
    UpdateGroup,
)
from reconciler.plan.payloads import Payload
from reconciler.ports import Directory, ItemFailure, Progress

__all__ = ["DEFERRED_MESSAGE", "apply"]

log = logging.getLogger(__name__)

DEFERRED_MESSAGE = "the group is too new for a Team yet; it will be created on the next run"
_BLOCKING: frozenset[str] = frozenset({"failed", "skipped", "deferred"})
_LOG_LEVELS = {"done": logging.DEBUG, "partial": logging.WARNING, "failed": logging.WARNING,
               "skipped": logging.INFO, "deferred": logging.INFO}


def apply(
    plan: Plan,
    directory: Directory,
    actual: ActualState,
    *,
    progress: Progress | None = None,
    max_workers: int = 4,
    on_settle: Callable[[ChangeResult], None] | None = None,
) -> ApplyResult:
    """Apply every change of ``plan`` to ``directory``; return one result per change, in plan order.

    ``actual`` is the state the plan was made against (its users index and key -> id map).
    ``progress`` is called as ``progress("apply", done, total)`` once before the first change and
    once after each change settles (from the calling thread). ``on_settle`` is called with each
    result as it settles, from the calling thread (the run store records it there; an exception from
    it stops the apply).
    """
    engine = _Engine(directory, actual)
    changes = plan.changes
    position = {c.id: i for i, c in enumerate(changes)}
    results: dict[str, ChangeResult] = {}
    total = len(changes)
    if progress is not None:
        progress("apply", 0, total)

    def settle(result: ChangeResult) -> None:
        results[result.change_id] = result
        if on_settle is not None:
            on_settle(result)
        level = _LOG_LEVELS[result.status]
        if log.isEnabledFor(level):
            log.log(level, "%s: %s %s", result.change_id, result.status, result.message)
        if progress is not None:
            progress("apply", len(results), total)

    with _executor(max_workers) as run_many:
        start = 0
        while start < total:
            phase = changes[start].phase
            end = start
            while end < total and changes[end].phase == phase:
                end += 1
            pending = list(changes[start:end])
            in_phase = {c.id for c in pending}
            while pending:
                ready: list[AnyChange] = []
                waiting: list[AnyChange] = []
                for change in pending:
                    state, reason = _dependency_state(change, results, position, in_phase)
                    if state == "skip":
                        settle(_result(change, "skipped", reason))
                    elif state == "wait":
                        waiting.append(change)
                    else:
                        ready.append(change)
                if not ready and waiting and len(waiting) == len(pending):
                    for change in waiting:  # a dependency cycle inside one phase: nothing can start
                        settle(_result(change, "skipped", "skipped: its dependencies form a cycle"))
                    waiting = []
                for result in run_many(engine.run, ready):
                    settle(result)
                in_phase -= {c.id for c in ready}
                pending = waiting
            start = end

    outcome = ApplyResult(results=tuple(results[c.id] for c in changes))
    log.info("%s", outcome.summary_text())
    return outcome


def _dependency_state(
    change: AnyChange, results: Mapping[str, ChangeResult], position: Mapping[str, int], in_phase: set[str]
) -> tuple[str, str]:
    """``("run", "")``, ``("wait", "")`` (a dependency in this phase is not settled yet) or
    ``("skip", reason)``."""
    wait = False
    for dep in change.depends_on:
        if dep not in position:
            continue  # not in the plan: already satisfied in the directory
        settled = results.get(dep)
        if settled is not None:
            if settled.status in _BLOCKING:
                return "skip", f"skipped: depends on {dep}, which {_verb(settled.status)}"
        elif dep in in_phase:
            wait = True
        else:
            return "skip", f"skipped: depends on {dep}, which the plan orders after it"
    return ("wait", "") if wait else ("run", "")


def _verb(status: str) -> str:
    return {"failed": "failed", "skipped": "was skipped", "deferred": "was deferred"}.get(status, status)


@contextmanager
def _executor(
    max_workers: int,
) -> Iterator[Callable[[Callable[[AnyChange], ChangeResult], Sequence[AnyChange]], Iterable[ChangeResult]]]:
    """Yield a ``map``-like function: sequential for one worker, a thread pool otherwise. Both
    yield results lazily, in the order of the input (each settles as soon as it is made)."""
    if max_workers <= 1:
        yield lambda fn, items: (fn(i) for i in items)
        return
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="apply") as pool:
        # pool.map yields lazily in input order, so progress advances while a wide phase runs
        yield lambda fn, items: pool.map(fn, items) if len(items) > 1 else [fn(i) for i in items]


def _result(
    change: AnyChange,
    status: ChangeStatus,
    message: str = "",
    failures: Sequence[ItemFailure] = (),
    object_id: str | None = None,
) -> ChangeResult:
    return ChangeResult(
        change_id=change.id,
        action=change.action,
        kind=change.kind,
        key=change.key,
        status=status,
        message=message,
        failures=tuple(failures),
        object_id=object_id,
    )


class _NotFound(Exception):
    """An object the change needs has no id (not in Entra, not created in this run)."""


class _Engine:
    def __init__(self, directory: Directory, actual: ActualState) -> None:
        self._dir = directory
        self._actual = actual
        self._created: dict[str, str] = {}
        self._ids_by_identity: dict[str, str] | None = None
        self._lock = threading.Lock()

    def run(self, change: AnyChange) -> ChangeResult:
        """Make one change; never raises."""
        # each operation names its handler (reconciler.plan.operations): found by the change's class
        handler: Callable[[AnyChange], ChangeResult] | None = getattr(self, "_" + change.handler, None)
        if handler is None:
            return _result(change, "failed", f"apply does not know how to {change.action} a {change.kind}")
        try:
            with self._scope():
                return handler(change)
        except _NotFound as exc:
            return _result(change, "failed", str(exc))
        except Exception as exc:  # the engine must carry on whatever the directory does
            if not isinstance(exc, EntraSyncError):
                log.error("%s: unexpected %s", change.id, type(exc).__name__, exc_info=True)
            return _result(change, "failed", _describe(exc))

    def _scope(self) -> AbstractContextManager[Any]:
        """The directory's ``change_scope`` (see the port), or nothing."""
        scope = getattr(self._dir, "change_scope", None)
        return scope() if callable(scope) else nullcontext()

    # -- resolution ---------------------------------------------------------------------------

    def _id_for(self, key: str) -> str | None:
        key = Key(key)
        with self._lock:
            created = self._created.get(key)
        if created is not None:
            return created
        found = self._actual.ids.get(key)
        if found is None:  # the plan may spell a key differently from Entra: pair by identity
            if self._ids_by_identity is None:
                self._ids_by_identity = {Key(k).folded: v for k, v in self._actual.ids.items()}
            found = self._ids_by_identity.get(key.folded)
        return found

    def _own_id(self, change: AnyChange) -> str:
        object_id = change.object_id or self._id_for(change.key)
        if object_id is None:
            raise _NotFound(
                f"{change.key} has no object id: it is not in Entra and was not created in this run"
            )
        return object_id

    def _remember(self, key: str, object_id: str) -> None:
        with self._lock:
            self._created[key] = object_id

    def _users(self, refs: Iterable[str]) -> tuple[list[str], list[ItemFailure], dict[str, str]]:
        """Object ids for ``refs`` (deduplicated, in order), failures for those not found, and
        id -> reference for naming directory failures."""
        ids: list[str] = []
        failures: list[ItemFailure] = []
        names: dict[str, str] = {}
        users = self._actual.users
        for ref in refs:
            if ref.startswith("id:"):
                object_id: str | None = ref[3:]
            else:  # plans hold normalised references; normalise only what does not match as is
                object_id = users.get(ref)
                if object_id is None:
                    object_id = users.get(user_ref(ref))
            if object_id is None:
                failures.append(ItemFailure(ref, "user not found"))
            elif object_id not in names:
                names[object_id] = ref
                ids.append(object_id)
        return ids, failures, names

    @staticmethod
    def _named(failures: Iterable[ItemFailure], names: Mapping[str, str]) -> list[ItemFailure]:
        out = []
        for f in failures:
            ref = names.get(f.object_id)
            named = ref is not None and ref != f.object_id and not ref.startswith("id:")
            out.append(ItemFailure(f.object_id, f"{ref}: {f.message}" if named else f.message))
        return out

    # -- handlers -----------------------------------------------------------------------------

    def _create_au(self, change: CreateAdministrativeUnit) -> ChangeResult:
        au = _after(change).unit(change.key)
        ids, failures, names = self._users(sorted(au.members))
        created = self._dir.create_administrative_unit(au, ids)
        self._remember(change.key, created.object_id)
        failures += self._named(created.failures, names)
        return _created(change, created.object_id, failures, len(au.members))

    def _create_group(self, change: CreateGroup) -> ChangeResult:
        group = _after(change).group(change.key)
        owner_ids, owner_failures, owner_names = self._users(sorted(group.owners))
        member_ids, member_failures, member_names = self._users(sorted(group.members))
        created = self._dir.create_group(group, owner_ids, member_ids)
        self._remember(change.key, created.object_id)
        failures = owner_failures + member_failures
        failures += self._named(created.failures, owner_names | member_names)
        return _created(change, created.object_id, failures, len(group.owners) + len(group.members))

    def _update(self, change: UpdateAdministrativeUnit | UpdateGroup) -> ChangeResult:
        object_id = self._own_id(change)
        if isinstance(change, UpdateAdministrativeUnit):
            self._dir.update_administrative_unit(object_id, _after(change))
        else:
            self._dir.update_group(object_id, _after(change))
        return _result(change, "done", object_id=object_id)

    def _delete(self, change: AnyChange) -> ChangeResult:
        object_id = self._own_id(change)
        if change.kind == "administrativeUnit":
            self._dir.delete_administrative_unit(object_id)
        else:
            self._dir.delete_group(object_id)
        return _result(change, "done", object_id=object_id)

    def _members(self, change: AnyChange) -> ChangeResult:
        object_id = self._own_id(change)
        ids, failures, names = self._users(change.members)
        if ids:
            method = self._member_method(change)
            failures += self._named(method(object_id, ids), names)
        return _moved(change, object_id, failures)

    def _member_method(self, change: AnyChange) -> Callable[[str, Sequence[str]], Sequence[ItemFailure]]:
        d = self._dir
        add = change.action == "add"
        if change.kind == "administrativeUnitMembers":
            return d.add_administrative_unit_members if add else d.remove_administrative_unit_members
        if change.kind == "groupMembers":
            return d.add_group_members if add else d.remove_group_members
        return d.add_group_owners if add else d.remove_group_owners

    def _placements(self, change: AnyChange) -> ChangeResult:
        """Place a group in (or take it out of) administrative units, one AU at a time; one AU
        failing does not stop the others."""
        group_id = self._own_id(change)
        add = change.action == "add"
        failures: list[ItemFailure] = []
        for au_key in change.members:
            au_id = self._id_for(au_key)
            if au_id is None:
                failures.append(ItemFailure(au_key, "administrative unit not found"))
                continue
            try:
                if add:
                    got = self._dir.add_administrative_unit_members(au_id, [group_id])
                else:
                    got = self._dir.remove_administrative_unit_members(au_id, [group_id])
            except Exception as exc:
                failures.append(ItemFailure(au_key, _describe(exc)))
                continue
            failures += [ItemFailure(au_key, f.message) for f in got]
        return _moved(change, group_id, failures)

    def _create_team(self, change: CreateTeam) -> ChangeResult:
        team = _after(change)
        group_id = self._id_for(team.group)
        if group_id is None:
            raise _NotFound(
                f"the group {team.group} of {change.key} is not in Entra and was not created in this run"
            )
        outcome = self._dir.create_team(group_id, team.template)
        if outcome.status == "deferred":
            return _result(change, "deferred", outcome.message or DEFERRED_MESSAGE)
        self._remember(change.key, group_id)
        return _result(change, "done", outcome.message, object_id=group_id)

    def _archive_team(self, change: AnyChange) -> ChangeResult:
        team_id = change.object_id or self._id_for(change.key)
        if team_id is None:  # a team's id is its group's id
            team_id = self._id_for(group_of(change.key))
        if team_id is None:
            raise _NotFound(f"{change.key} has no object id: it is not in Entra")
        if change.action == "archive":
            self._dir.archive_team(team_id)
        else:
            self._dir.unarchive_team(team_id)
        return _result(change, "done", object_id=team_id)

    def _delete_team(self, change: AnyChange) -> ChangeResult:
        return _result(
            change,
            "failed",
            "a Team cannot be deleted on its own: archive it (policy removal.teams = archive) "
            "or delete its group",
            object_id=change.object_id,
        )


def _created(
    change: AnyChange, object_id: str, failures: Sequence[ItemFailure], attempted: int
) -> ChangeResult:
    if not failures:
        return _result(change, "done", object_id=object_id)
    return _result(
        change, "partial", f"created; {len(failures)} of {attempted} owners/members could not be added",
        failures, object_id,
    )


def _moved(change: AnyChange, object_id: str, failures: Sequence[ItemFailure]) -> ChangeResult:
    noun = change.noun
    verb = "added" if change.action == "add" else "removed"
    n = len(change.members)
    if not failures:
        return _result(change, "done", f"{n} {noun} {verb}", object_id=object_id)
    if len(failures) >= n:
        return _result(change, "failed", f"none of the {n} {noun} could be {verb}", failures, object_id)
    return _result(
        change, "partial", f"{n - len(failures)} of {n} {noun} {verb}; {len(failures)} failed",
        failures, object_id,
    )


def _describe(exc: Exception) -> str:
    if isinstance(exc, EntraSyncError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"


_P = TypeVar("_P", bound=Payload)


def _after(change: Change[Any, _P]) -> _P:
    """What a create or update makes (a saved plan always has it; a change made by hand may not)."""
    if change.after is None:
        raise _NotFound(f"{change.id}: the change says nothing of what to {change.action} (it has no after)")
    return change.after
