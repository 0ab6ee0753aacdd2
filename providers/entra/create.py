"""Idempotent creates: the write-safety policy for every object the provider creates (AUs, groups).

A create's answer can be refused (429/503: Graph may have applied the write anyway,
graph-facts.md §4), lost (a dropped connection or a timeout) or a 5xx. In each case the object may
exist, and a resend would make a second object with the same key. So a create is never resent
until a lookup that waits out replication lag (``lookup_delays``, bounded) says it does not exist:

- by id, when this machine's journal (:mod:`providers.entra.recent`) knows the key's object id from
  a recent run (read by id lags far less than lists and filters);
- by marker otherwise (``$filter`` on the key's stamp, :func:`providers.entra.marker.marker_value`,
  so every valid key can be filtered, long ones too).

The journal is told before the POST is sent (an *intent*) and the id once Graph answered, fsynced
before the next write; a run killed in between leaves an intent, and the next create of that key
looks by marker first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from providers.entra.client import GraphClient
from providers.entra.errors import NotFoundError, RefusedWriteError, ResponseLostError, ServerError
from providers.entra.marker import marker_filter, marker_value
from providers.entra.recent import CreateJournal
from reconciler.clock import Clock
from reconciler.errors import DirectoryError

__all__ = ["Creator", "LookupParams"]

#: the query that finds a created object by its key (default: ``$filter`` on the marker's stamp);
#: e.g. an education class is found by its ``externalId``
LookupParams = Callable[[str], Mapping[str, str]]

log = logging.getLogger(__name__)


class Creator:
    """Creates under one marker. ``attempts`` bounds the sends of one create (refusals: twice that)."""

    def __init__(
        self,
        client: GraphClient,
        marker: str,
        clock: Clock,
        lookup_delays: Sequence[float],
        attempts: int,
        journal: CreateJournal | None = None,
    ) -> None:
        self.client = client
        self.marker = marker
        self.clock = clock
        self.lookup_delays = tuple(lookup_delays)
        self.attempts = attempts
        self.journal = journal

    def marker_params(self, key: str) -> Mapping[str, str]:
        return {"$filter": marker_filter(self.marker, marker_value(key)), "$select": f"id,{self.marker}"}

    def lookup(self, path: str, key: str, params: LookupParams | None = None) -> dict[str, Any] | None:
        """The object under ``path`` whose marker is ``key``'s stamp (or that ``params`` finds),
        waiting out list lag (every wait of ``lookup_delays``); None only when none found it."""
        query = (params or self.marker_params)(key)
        for delay in self.lookup_delays:
            self.clock.sleep(delay)
            found = self.client.get_all(path, params=query)
            if found:
                if len(found) > 1:
                    log.warning("%d objects carry key %r under %s", len(found), key, path)
                return dict(sorted(found, key=lambda o: str(o["id"]))[0])
        return None

    def exists_by_id(self, path: str, object_id: str, key: str) -> bool:
        """Whether ``object_id`` exists and carries ``key``, read by id, waiting out the lag."""
        for delay in self.lookup_delays:
            self.clock.sleep(delay)
            try:
                body = self.client.get(f"{path}/{object_id}", params={"$select": f"id,{self.marker}"})
            except NotFoundError:
                continue
            return isinstance(body, Mapping) and body.get(self.marker) in (marker_value(key), key)
        return False

    def existing(self, path: str, key: str, params: LookupParams | None = None) -> str | None:
        """Before a create: the object this machine created for ``key`` recently (known id, read by
        id; marker-stamped creates only), or the one whose create was sent but never answered."""
        journal = self.journal
        if journal is None:
            return None
        known = journal.known_id(key)
        if known is not None and params is None and self.exists_by_id(path, known, key):
            log.info("%r was created recently as %s (not listed yet); not creating it again", key, known)
            return known
        if journal.pending(key) or (known is not None and params is not None):
            found = self.lookup(path, key, params)
            if found is not None:
                log.info("an unanswered create of %r had taken effect: %s", key, found["id"])
                return str(found["id"])
        return None

    def create(
        self, path: str, body: Mapping[str, Any], key: str, *, params: LookupParams | None = None
    ) -> str:
        """POST ``body`` under ``path``; return the object id. Without ``params`` the key's stamp is
        set as the marker and lookups filter on it; with ``params`` (an object found another way,
        e.g. a class by its externalId) the body is sent as it is and ``params`` finds it."""
        kind = "administrativeUnit" if path.endswith("/administrativeUnits") else "group"
        oid = self.existing(path, key, params)
        sent = 0
        while oid is None:
            sent += 1
            if self.journal is not None:
                self.journal.intend(key, kind)  # on disk before the POST is sent
            try:
                sent_body = dict(body) if params is not None else {**body, self.marker: marker_value(key)}
                resp = self.client.post(path, json=sent_body)
            except (ResponseLostError, ServerError) as exc:
                # refused (RefusedWriteError), lost or failed: it may have been applied all the same
                refused = isinstance(exc, RefusedWriteError)
                log.warning("create of %r under %s: %s (attempt %d); looking for it before any resend",
                            key, path, type(exc).__name__, sent)
                found = self.lookup(path, key, params)
                if found is not None:
                    log.info("create of %r under %s had taken effect: %s", key, path, found["id"])
                    oid = str(found["id"])
                    break
                if sent >= (2 * self.attempts if refused else self.attempts):
                    raise DirectoryError(
                        f"could not create {key!r} under {path}: {sent} attempts were refused, lost or "
                        "failed and the object was not found by its marker; run again later"
                    ) from None
                continue
            if not isinstance(resp.body, Mapping) or not isinstance(resp.body.get("id"), str):
                raise DirectoryError(f"POST {path} for {key!r}: Graph answered {resp.status} without an id")
            oid = str(resp.body["id"])
        if self.journal is not None:
            self.journal.record(key, kind, oid)  # on disk before the next write is sent
        return oid
