"""The change log that delta queries read.

Every change bumps ``seq``; events are kept only once some delta query has started (before that
nobody holds a token that could ask for them) and are pruned after the token lifetime, so building a
large tenant costs no log memory.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

__all__ = ["ChangeLog", "Event"]

Event = tuple[int, float, str, str, str, str]  # seq, time, kind, object id, op, member id


@dataclass
class ChangeLog:
    active: bool = False
    seq: int = 0
    events: list[Event] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    keep_seconds: float = 8 * 86400.0
    #: the last delta round's computed changes (key -> items), so that its pages do not each
    #: recompute the whole window; any new change invalidates it (the key holds ``seq``)
    round_cache: dict[tuple[object, ...], list[dict[str, object]]] = field(default_factory=dict, repr=False)

    def record(self, now: float, kind: str, object_id: str, op: str, member_id: str = "") -> None:
        """Note one change: ``op`` is ``new`` (created or restored), ``upd``, ``del`` (soft), ``purge``,
        ``member+`` or ``member-``."""
        self.seq += 1
        if not self.active:
            return
        self.events.append((self.seq, now, kind, object_id, op, member_id))
        self.times.append(now)
        if len(self.events) > 4096 and self.times[0] < now - self.keep_seconds:
            cut = bisect.bisect_left(self.times, now - self.keep_seconds)
            del self.events[:cut]
            del self.times[:cut]

    def activate(self) -> None:
        self.active = True

    def seq_at(self, when: float) -> int:
        """The last seq recorded at or before ``when`` (for replication lag)."""
        if not self.events or self.times[-1] <= when:
            return self.seq
        i = bisect.bisect_right(self.times, when)
        return self.events[i - 1][0] if i else (self.events[0][0] - 1)

    def since(self, kind: str, after: int, upto: int) -> list[Event]:
        lo = bisect.bisect_right(self.events, after, key=lambda e: e[0])
        return [e for e in self.events[lo:] if e[0] <= upto and e[2] == kind]
