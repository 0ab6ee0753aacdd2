"""The built-in scheduler: run a sync at fixed local times (default 04:00, 08:00 and 12:00,
Europe/London), one run at a time, until told to stop.

- :func:`next_run` works in the school's time zone and is correct across daylight-saving changes:
  04:00 stays 04:00 local when the UTC offset changes. A time that does not exist on a day (clocks
  go forward) runs as much later as the clocks jumped (01:30 becomes 02:30 BST); a time that occurs
  twice (clocks go back) runs once, at its first occurrence.
- :class:`RunLock` is a lock file (``fcntl.flock``) holding the holder's pid: a second concurrent
  run refuses with a message naming the file and the pid. The kernel drops the lock when its holder
  dies, so a lock left by a dead process is simply taken over (and said so in the log). The file is
  never deleted (deleting a locked file lets two processes lock two different files).
- :class:`Scheduler` sleeps on the injected clock (in slices of ``poll_interval`` so that a stop is
  noticed quickly), runs under the lock, logs and survives a failed run, skips a slot whose lock is
  held, and returns when its stop event is set (the CLI sets it on SIGTERM/SIGINT). A stop that
  arrives during a run takes effect when that run returns: the scheduler never cuts a run short
  (the CLI may, e.g. by raising KeyboardInterrupt on a second signal). A run that overruns later
  slots does not make them up: the next run is the next slot after it finished.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from entra_sync.runs.lock import LockHeldError, RunLock
from reconciler.clock import Clock
from reconciler.errors import ConfigError, EntraSyncError

__all__ = [
    "DEFAULT_TIMES",
    "DEFAULT_TIMEZONE",
    "RunOnce",
    "ScheduledRun",
    "Scheduler",
    "next_run",
    "parse_times",
    "parse_timezone",
]

log = logging.getLogger(__name__)

DEFAULT_TIMES: tuple[str, ...] = ("04:00", "08:00", "12:00")
DEFAULT_TIMEZONE = "Europe/London"

_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_times(spec: str | Iterable[str], *, key: str = "schedule.times") -> tuple[time, ...]:
    """``"04:00, 08:00"`` or ``["04:00", "08:00"]`` -> sorted, distinct times of day."""
    items = spec.replace(",", " ").split() if isinstance(spec, str) else [str(s).strip() for s in spec]
    out: set[time] = set()
    for item in items:
        m = _TIME.match(item)
        if m is None:
            raise ConfigError(f"{item!r} is not a time of day; write it as HH:MM, e.g. 04:00", key=key)
        out.add(time(int(m.group(1)), int(m.group(2))))
    if not out:
        raise ConfigError("no times given; set at least one, e.g. 04:00", key=key)
    return tuple(sorted(out))


def parse_timezone(name: str = DEFAULT_TIMEZONE, *, key: str = "schedule.timezone") -> ZoneInfo:
    """An IANA time zone (``Europe/London``)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"{name!r} is not a known IANA time zone (e.g. Europe/London)", key=key) from exc


def next_run(after: datetime, times: Sequence[time], tz: tzinfo) -> datetime:
    """The first scheduled instant strictly after ``after`` (an aware datetime), in ``tz``.

    Compare results by ``timestamp()``: Python compares aware datetimes that share a tzinfo by wall
    time, and never finds an ambiguous wall time equal to one in another zone (PEP 495).
    """
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError("next_run needs an aware datetime")
    if not times:
        raise ValueError("next_run needs at least one time")
    after_ts = after.timestamp()
    start = after.astimezone(tz).date()
    # Compare instants, never wall times: aware datetimes sharing a tzinfo compare by wall time.
    instants = [
        datetime.combine(start + timedelta(days=day), t, tzinfo=tz).timestamp()  # fold=0: first occurrence
        for day in range(-1, 3)
        for t in times
    ]
    return datetime.fromtimestamp(min(ts for ts in instants if ts > after_ts), tz)


#: one run; returns the number of changes it deferred (None: none)
RunOnce = Callable[[], "int | None"]


@dataclass(frozen=True, slots=True)
class ScheduledRun:
    due: datetime
    outcome: Literal["ok", "failed", "locked"]
    error: str | None = None
    #: changes the run deferred (a catch-up run follows when there are some)
    deferred: int = 0
    #: a catch-up run for deferred Teams, not a slot
    catch_up: bool = False


class Scheduler:
    """Run ``run_once`` at each of ``times`` (local to ``tz``) until ``stop_event`` is set."""

    def __init__(
        self,
        run_once: RunOnce,
        times: Sequence[time],
        tz: tzinfo,
        clock: Clock,
        stop_event: threading.Event,
        *,
        lock: RunLock | None = None,
        poll_interval: float = 1.0,
        catch_up_minutes: float = 0,
        run_catch_up: RunOnce | None = None,
    ) -> None:
        if not times:
            raise ValueError("a scheduler needs at least one time")
        self._run_once = run_once
        self.times = tuple(sorted(set(times)))
        self.tz = tz
        self._clock = clock
        self._stop = stop_event
        self._lock = lock
        self._poll = poll_interval
        self._catch_up_seconds = max(0.0, float(catch_up_minutes) * 60.0)
        self._run_catch_up = run_catch_up or run_once
        #: the instant of the last slot run (or skipped): no slot at or before it runs again
        self._last_slot: float | None = None
        #: when the pending catch-up run is due, if any
        self._catch_up_at: float | None = None
        #: what happened at each slot (and catch-up run), oldest first
        self.completed: list[ScheduledRun] = []

    def next_time(self) -> datetime:
        """The next slot: the first after both the clock and the last slot run."""
        after = self._clock.now()
        if self._last_slot is not None:
            after = max(after, self._last_slot)
        return next_run(datetime.fromtimestamp(after, self.tz), self.times, self.tz)

    def run(self) -> int:
        """Loop until stopped; return the number of runs handled (run, failed or skipped)."""
        handled = 0
        while not self._stop.is_set():
            due = self.next_time()
            catch_up = self._catch_up_at is not None and self._catch_up_at < due.timestamp()
            if not catch_up:
                self._catch_up_at = None  # the slot's run picks the deferred Teams up
            wake = self._catch_up_at if self._catch_up_at is not None else due.timestamp()
            when = datetime.fromtimestamp(wake, self.tz)
            log.info("next run at %s%s", when.isoformat(), " (catch-up: deferred Teams)" if catch_up else "")
            if not self._sleep_until(wake):
                break
            if catch_up:
                self._catch_up_at = None
                self.completed.append(self._run_slot(when, self._run_catch_up, catch_up=True))
            else:
                self._last_slot = due.timestamp()
                slot = self._run_slot(due, self._run_once)
                if slot.deferred and self._catch_up_seconds > 0:
                    self._catch_up_at = self._clock.now() + self._catch_up_seconds
                    log.info("%d change(s) deferred: a catch-up run follows in %.0f minutes",
                             slot.deferred, self._catch_up_seconds / 60)
                self.completed.append(slot)
            handled += 1
        log.info("scheduler stopped")
        return handled

    def _sleep_until(self, ts: float) -> bool:
        """Sleep on the clock until ``ts``; False if stopped first."""
        while not self._stop.is_set():
            remaining = ts - self._clock.now()
            if remaining <= 1e-6:
                return True
            self._clock.sleep(min(remaining, self._poll))
        return False

    def _run_slot(self, due: datetime, run: RunOnce, *, catch_up: bool = False) -> ScheduledRun:
        try:
            if self._lock is None:
                deferred = run()
            else:
                with self._lock:
                    deferred = run()
        except LockHeldError as exc:
            log.warning("skipping the run due at %s: %s", due.isoformat(), exc)
            return ScheduledRun(due, "locked", str(exc), catch_up=catch_up)
        except EntraSyncError as exc:
            log.error("the run due at %s failed: %s", due.isoformat(), exc)
            return ScheduledRun(due, "failed", str(exc), catch_up=catch_up)
        except Exception as exc:
            log.exception("the run due at %s failed unexpectedly", due.isoformat())
            return ScheduledRun(due, "failed", f"unexpected {type(exc).__name__}: {exc}", catch_up=catch_up)
        count = deferred if isinstance(deferred, int) else 0
        return ScheduledRun(due, "ok", deferred=count, catch_up=catch_up)
