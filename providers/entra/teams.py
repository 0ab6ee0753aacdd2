"""Teams writes: a Team from a group, archive, unarchive (for :class:`~providers.entra.write.EntraWriter`).

Graph's window (graph-facts.md §3): a Team on a group less than about 15 minutes old can be refused
with 404. Waiting it out inside a run holds up every later phase and the run lock, so:

- a Team whose group is younger than ``TeamPolicy.min_group_age`` (its ``createdDateTime``, or the
  time this run created it) is **deferred at once, without a request**; a later run (the
  scheduler's catch-up run) creates it;
- a Team refused for lag (404) is retried **once**, straight away, then deferred: never slept on;
- ``POST /teams`` is paced at most one per ``TeamPolicy.interval`` seconds for the whole writer
  (Graph allows 10 per second per app per tenant; pacing leaves room for other apps' traffic).

409 "already exists" and a lost response whose team exists count as created (a team's id is its
group's id, so a second POST never makes a duplicate).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from providers.entra.client import GraphClient
from providers.entra.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    RefusedWriteError,
    ResponseLostError,
)
from reconciler.clock import Clock
from reconciler.errors import DirectoryError
from reconciler.model import TeamTemplate
from reconciler.ports import TeamOutcome

__all__ = ["TeamPolicy", "TeamWriter", "parse_graph_time"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TeamPolicy:
    #: a group younger than this (seconds) gets no Team request in this run (Graph: ~15 minutes)
    min_group_age: float = 15 * 60.0
    #: retries of a Team refused for lag (404), sent straight away; then the Team is deferred
    lag_retries: int = 1
    #: at most one ``POST /teams`` per this many seconds (Graph allows 10 per second per app per tenant)
    interval: float = 0.2
    #: lost responses tolerated for one Team request
    lost_attempts: int = 3
    #: waits for a Team created in this run to finish provisioning before archiving it (404 until then)
    ready_delays: tuple[float, ...] = (10.0, 20.0, 30.0, 60.0, 120.0)


def parse_graph_time(value: Any) -> float | None:
    """Seconds since the epoch of a Graph ``DateTimeOffset`` (``2026-09-01T07:00:00Z``); None if unusable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _not_a_class(exc: BadRequestError) -> bool:
    return "does not belong to a class" in (exc.message or "").lower()


class TeamWriter:
    def __init__(self, client: GraphClient, clock: Clock, graph_base: str, policy: TeamPolicy) -> None:
        self.client = client
        self.clock = clock
        self.graph_base = graph_base
        self.policy = policy
        #: group id -> when it was created (epoch seconds): from reads and from this run's creates
        self.group_created: dict[str, float] = {}
        #: ids of Teams created in this run (they provision asynchronously)
        self.created_teams: set[str] = set()
        self._lock = threading.Lock()
        self._next_post = 0.0

    def _pace(self) -> None:
        if self.client.coalescer.active():  # packed: the client's pacer spaces Teams requests
            return
        with self._lock:
            now = self.clock.now()
            wait = self._next_post - now
            self._next_post = max(now, self._next_post) + self.policy.interval
        if wait > 0:
            self.clock.sleep(wait)

    def _exists(self, group_id: str) -> bool:
        try:
            self.client.get(f"/teams/{group_id}")
        except NotFoundError:
            return False
        return True

    def _too_young(self, group_id: str) -> TeamOutcome | None:
        created = self.group_created.get(group_id)
        if created is None:
            return None
        age = self.clock.now() - created
        if age >= self.policy.min_group_age:
            return None
        left = (self.policy.min_group_age - age) / 60
        return TeamOutcome(
            "deferred",
            f"group {group_id} was created {max(age, 0) / 60:.0f} min ago; Graph makes a Team only on a "
            f"group about {self.policy.min_group_age / 60:.0f} min old, so a later run (in {left:.0f} min "
            "or more) creates it; no request sent",
        )

    def create(self, group_id: str, template: TeamTemplate) -> TeamOutcome:
        young = self._too_young(group_id)
        if young is not None:
            return young
        body = {
            "template@odata.bind": f"{self.graph_base}/teamsTemplates('{template}')",
            "group@odata.bind": f"{self.graph_base}/groups('{group_id}')",
        }
        outcome = self._post(group_id, body, template)
        if outcome.status == "created":
            self.created_teams.add(group_id)
        return outcome

    def _post(self, group_id: str, body: Mapping[str, Any], template: TeamTemplate) -> TeamOutcome:
        not_found = lost = refused = 0
        while True:
            self._pace()
            try:
                self.client.post("/teams", json=body)
                return TeamOutcome("created", "provisioning")
            except NotFoundError:
                lost = 0  # only consecutive lost responses count against the transport
                not_found += 1
                if not_found > self.policy.lag_retries:
                    return TeamOutcome(
                        "deferred",
                        f"group {group_id} is too young for a Team (Graph answered 404 {not_found} times); "
                        "a later run will create it",
                    )
            except BadRequestError as exc:
                if template == "educationClass" and _not_a_class(exc):
                    raise DirectoryError(
                        f"Graph refuses the educationClass Team template on group {group_id}: it was not "
                        "created as an education class (POST /education/classes). A group made before "
                        "education classes were on cannot be converted: use class_team_template = "
                        '"standard" for it, or delete the group so that it is created again as a class'
                    ) from exc
                raise
            except ConflictError:
                exists = self._exists(group_id)
                return TeamOutcome("created", "team already exists" if exists else "team is provisioning")
            except ResponseLostError as exc:
                if self._exists(group_id):
                    return TeamOutcome("created", "team exists (the create response was lost)")
                if isinstance(exc, RefusedWriteError):
                    refused += 1  # throttled: the client has waited; bounded like its own retries
                    if refused >= self.client.retry.max_throttled_attempts:
                        raise
                    continue
                lost += 1
                if lost >= self.policy.lost_attempts:
                    raise

    def action(self, team_id: str, action: str, body: Any) -> None:
        """POST an archive/unarchive. Lost responses are resent (it is idempotent), throttling is
        waited out, and a Team created in this run that is still provisioning (404) is waited for."""
        lost = refused = not_ready = 0
        waits = self.policy.ready_delays
        while True:
            try:
                self.client.post(f"/teams/{team_id}/{action}", json=body)
                return
            except RefusedWriteError:
                refused += 1
                if refused >= self.client.retry.max_throttled_attempts:
                    raise
            except ResponseLostError:
                lost += 1
                if lost >= self.policy.lost_attempts:
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
