"""The scheduler: times, DST, the run lock and the loop (on a virtual clock: no real waiting)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from entra_sync.schedule import (
    DEFAULT_TIMES,
    LockHeldError,
    RunLock,
    Scheduler,
    next_run,
    parse_times,
    parse_timezone,
)
from reconciler.clock import SystemClock, VirtualClock
from reconciler.errors import ConfigError, DirectoryError

LONDON = ZoneInfo("Europe/London")
DEFAULT = parse_times(DEFAULT_TIMES)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local(dt: datetime) -> str:
    return dt.astimezone(LONDON).strftime("%Y-%m-%d %H:%M %Z")


# -- parsing ----------------------------------------------------------------------------------

def test_parse_times() -> None:
    assert (time(4), time(8), time(12)) == DEFAULT
    assert parse_times("12:00, 4:00 08:00,12:00") == (time(4), time(8), time(12))
    assert parse_times(["23:59", "00:00"]) == (time(0), time(23, 59))


@pytest.mark.parametrize("bad", ["24:00", "12", "7:5", "ab:cd", "12:60"])
def test_parse_times_rejects_nonsense(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"schedule\.times: .* is not a time of day; write it as HH:MM"):
        parse_times([bad])


def test_parse_times_needs_one() -> None:
    with pytest.raises(ConfigError, match="no times given"):
        parse_times("  ")


def test_parse_timezone() -> None:
    assert parse_timezone() == LONDON
    assert parse_timezone("America/New_York").key == "America/New_York"
    for bad in ("Mars/Olympus", "../etc/passwd", ""):
        with pytest.raises(ConfigError, match="not a known IANA time zone"):
            parse_timezone(bad)


# -- next_run ---------------------------------------------------------------------------------

def test_next_run_same_day_next_day_and_strictly_after() -> None:
    assert local(next_run(utc(2026, 1, 14, 5, 0), DEFAULT, LONDON)) == "2026-01-14 08:00 GMT"
    assert local(next_run(utc(2026, 1, 14, 8, 0), DEFAULT, LONDON)) == "2026-01-14 12:00 GMT"
    assert local(next_run(utc(2026, 1, 14, 12, 0, 1), DEFAULT, LONDON)) == "2026-01-15 04:00 GMT"
    assert local(next_run(utc(2026, 12, 31, 23, 0), DEFAULT, LONDON)) == "2027-01-01 04:00 GMT"
    summer = next_run(utc(2026, 7, 1, 2, 0), DEFAULT, LONDON)
    assert local(summer) == "2026-07-01 04:00 BST"
    assert summer == utc(2026, 7, 1, 3, 0)
    assert summer.tzinfo is LONDON


def test_next_run_accepts_any_zone_for_after() -> None:
    after = datetime(2026, 1, 14, 7, 30, tzinfo=ZoneInfo("Asia/Tokyo"))  # 2026-01-13 22:30 UTC
    assert local(next_run(after, DEFAULT, LONDON)) == "2026-01-14 04:00 GMT"
    with pytest.raises(ValueError, match="aware"):
        next_run(datetime(2026, 1, 1), DEFAULT, LONDON)


def test_march_transition_keeps_local_times() -> None:
    # 2026-03-29 01:00 GMT the clocks go forward to 02:00 BST
    runs = []
    at = utc(2026, 3, 28, 9, 0)
    for _ in range(6):
        at = next_run(at, DEFAULT, LONDON)
        runs.append(at)
    assert [local(r) for r in runs] == [
        "2026-03-28 12:00 GMT", "2026-03-29 04:00 BST", "2026-03-29 08:00 BST", "2026-03-29 12:00 BST",
        "2026-03-30 04:00 BST", "2026-03-30 08:00 BST",
    ]
    assert runs[1] == utc(2026, 3, 29, 3, 0)
    assert runs[1].timestamp() - runs[0].timestamp() == timedelta(hours=15).total_seconds()  # not 16


def test_october_transition_keeps_local_times() -> None:
    # 2026-10-25 02:00 BST the clocks go back to 01:00 GMT
    runs = []
    at = utc(2026, 10, 24, 9, 0)
    for _ in range(4):
        at = next_run(at, DEFAULT, LONDON)
        runs.append(at)
    assert [local(r) for r in runs] == [
        "2026-10-24 12:00 BST", "2026-10-25 04:00 GMT", "2026-10-25 08:00 GMT", "2026-10-25 12:00 GMT",
    ]
    assert runs[1] == utc(2026, 10, 25, 4, 0)


def test_times_inside_the_transitions() -> None:
    t = (time(1, 30),)
    # spring: 01:30 does not exist on 29 March; it runs an hour later, at 02:30 BST, once
    spring = next_run(utc(2026, 3, 28, 12, 0), t, LONDON)
    assert local(spring) == "2026-03-29 02:30 BST"
    assert local(next_run(spring, t, LONDON)) == "2026-03-30 01:30 BST"
    # autumn: 01:30 happens twice on 25 October; it runs at the first (BST) and not again that day
    autumn = next_run(utc(2026, 10, 24, 12, 0), t, LONDON)
    # (an ambiguous wall time never compares equal across zones, PEP 495: compare instants)
    assert autumn.timestamp() == utc(2026, 10, 25, 0, 30).timestamp()
    assert local(autumn) == "2026-10-25 01:30 BST"
    assert local(next_run(autumn, t, LONDON)) == "2026-10-26 01:30 GMT"
    # starting between the two 01:30s: the repeated one is skipped
    assert local(next_run(utc(2026, 10, 25, 0, 45), t, LONDON)) == "2026-10-26 01:30 GMT"


# -- RunLock ----------------------------------------------------------------------------------

def test_second_lock_refuses_naming_file_and_pid(tmp_path: Path) -> None:
    path = tmp_path / "run" / "entra-sync.lock"
    first = RunLock(path)
    with first:
        assert first.held
        assert path.read_text() == f"{os.getpid()}\n"
        with pytest.raises(LockHeldError) as info:
            RunLock(path).acquire()
        assert info.value.pid == os.getpid()
        assert str(path) in str(info.value)
        assert f"process {os.getpid()} holds the lock file {path}" in str(info.value)
        with pytest.raises(RuntimeError, match="already held"):
            first.acquire()
    assert not first.held
    with RunLock(path):  # released: free again
        pass


_HOLDER = """
import sys
from entra_sync.runs.lock import RunLock
lock = RunLock(sys.argv[1])
lock.acquire()
print("locked", flush=True)
sys.stdin.readline()
"""


def test_lock_across_processes_and_stale_takeover(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "entra-sync.lock"
    with subprocess.Popen([sys.executable, "-c", _HOLDER, str(path)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            with pytest.raises(LockHeldError) as info:
                RunLock(path).acquire()
            assert info.value.pid == holder.pid
        finally:
            holder.kill()  # dies holding the lock: its pid stays in the file
            holder.wait(timeout=30)
    assert path.read_text().strip() == str(holder.pid)
    with caplog.at_level(logging.WARNING, logger="entra_sync.runs.lock"), RunLock(path):
        assert path.read_text() == f"{os.getpid()}\n"
    assert f"left by process {holder.pid}, which is no longer running" in caplog.text


def test_lock_file_with_garbage_is_taken(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    path.write_text("not a pid")
    with RunLock(path):
        assert path.read_text() == f"{os.getpid()}\n"
    assert path.read_text() == ""


# -- Scheduler --------------------------------------------------------------------------------

def _scheduler(clock: VirtualClock, stop: threading.Event, run_once: object, **kw: object) -> Scheduler:
    return Scheduler(run_once, DEFAULT, LONDON, clock, stop, poll_interval=3600, **kw)  # type: ignore[arg-type]


def test_scheduler_runs_at_local_times_across_dst_without_waiting() -> None:
    clock = VirtualClock(utc(2026, 3, 28, 9, 0).timestamp())
    stop = threading.Event()
    seen: list[str] = []

    def run_once() -> None:
        seen.append(local(datetime.fromtimestamp(clock.now(), UTC)))
        clock.advance(600)  # a run takes ten minutes
        if len(seen) == 5:
            stop.set()

    scheduler = _scheduler(clock, stop, run_once)
    assert local(scheduler.next_time()) == "2026-03-28 12:00 GMT"
    assert scheduler.run() == 5
    assert seen == ["2026-03-28 12:00 GMT", "2026-03-29 04:00 BST", "2026-03-29 08:00 BST",
                    "2026-03-29 12:00 BST", "2026-03-30 04:00 BST"]
    assert [r.outcome for r in scheduler.completed] == ["ok"] * 5


def test_scheduler_survives_failed_runs_and_skips_missed_slots(caplog: pytest.LogCaptureFixture) -> None:
    clock = VirtualClock(utc(2026, 1, 14, 3, 0).timestamp())
    stop = threading.Event()
    calls: list[int] = []

    def run_once() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise DirectoryError("Graph answered 503 three times")
        if len(calls) == 2:
            raise KeyError("boom")
        if len(calls) == 3:
            clock.advance(5 * 3600)  # overruns the 12:00 slot: it is not run late
            return
        stop.set()

    scheduler = _scheduler(clock, stop, run_once)
    with caplog.at_level(logging.INFO, logger="entra_sync.schedule"):
        assert scheduler.run() == 4
    assert [(local(r.due), r.outcome) for r in scheduler.completed] == [
        ("2026-01-14 04:00 GMT", "failed"), ("2026-01-14 08:00 GMT", "failed"),
        ("2026-01-14 12:00 GMT", "ok"), ("2026-01-15 04:00 GMT", "ok"),
    ]
    assert scheduler.completed[0].error == "Graph answered 503 three times"
    assert scheduler.completed[1].error == "unexpected KeyError: 'boom'"
    assert "the run due at 2026-01-14T04:00:00+00:00 failed: Graph answered 503 three times" in caplog.text
    assert "scheduler stopped" in caplog.text


def test_scheduler_skips_a_slot_while_another_run_holds_the_lock(tmp_path: Path) -> None:
    clock = VirtualClock(utc(2026, 1, 14, 3, 0).timestamp())
    stop = threading.Event()
    path = tmp_path / "entra-sync.lock"
    manual = RunLock(path)
    manual.acquire()  # a manual `entra-sync sync` is running
    calls: list[bool] = []

    def run_once() -> None:
        calls.append(RunLock(path).held or path.read_text() == f"{os.getpid()}\n")
        stop.set()

    scheduler = _scheduler(clock, stop, run_once, lock=RunLock(path))
    original_sleep = clock.sleep

    def sleep(seconds: float) -> None:  # the manual run finishes before 08:00
        original_sleep(seconds)
        if clock.now() >= utc(2026, 1, 14, 6, 0).timestamp() and manual.held:
            manual.release()

    clock.sleep = sleep  # type: ignore[method-assign]
    assert scheduler.run() == 2
    assert [(local(r.due), r.outcome) for r in scheduler.completed] == [
        ("2026-01-14 04:00 GMT", "locked"), ("2026-01-14 08:00 GMT", "ok")]
    assert "holds the lock file" in (scheduler.completed[0].error or "")
    assert calls == [True]
    assert path.read_text() == ""  # released after the run


def test_scheduler_stops_while_sleeping_and_when_already_stopped() -> None:
    clock = VirtualClock(utc(2026, 1, 14, 3, 0).timestamp())
    stop = threading.Event()
    stop.set()
    assert _scheduler(clock, stop, lambda: None).run() == 0

    class StoppingClock(VirtualClock):
        def sleep(self, seconds: float) -> None:
            super().sleep(seconds)
            if self.slept >= 1800:
                stop.set()  # SIGTERM half an hour into the wait

    stop.clear()
    clock2 = StoppingClock(utc(2026, 1, 14, 3, 0).timestamp())
    ran: list[int] = []
    scheduler = Scheduler(lambda: ran.append(1), DEFAULT, LONDON, clock2, stop, poll_interval=60)
    assert scheduler.run() == 0
    assert ran == []
    assert clock2.slept == 1800


def test_scheduler_on_the_real_clock_stops_promptly() -> None:
    stop = threading.Event()
    scheduler = Scheduler(lambda: None, (time(0),), ZoneInfo("Pacific/Kiritimati"), SystemClock(), stop,
                          poll_interval=0.01)
    thread = threading.Thread(target=scheduler.run, daemon=True)
    thread.start()
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_a_clock_stepped_back_during_a_run_does_not_run_the_slot_again() -> None:
    """NTP steps the wall clock back an hour during the 04:00 run: 04:00 comes round again on the
    clock, but the slot has run; the next run is 08:00."""
    clock = VirtualClock(utc(2026, 1, 14, 3, 0).timestamp())
    stop = threading.Event()
    seen: list[str] = []

    def run_once() -> None:
        seen.append(local(datetime.fromtimestamp(clock.now(), UTC)))
        if len(seen) == 1:
            clock.advance(600)
            clock.advance(-3600)  # the step back: it is 03:10 again
        if len(seen) == 2:
            stop.set()

    scheduler = _scheduler(clock, stop, run_once)
    assert scheduler.run() == 2
    assert seen == ["2026-01-14 04:00 GMT", "2026-01-14 08:00 GMT"]
    assert [local(r.due) for r in scheduler.completed] == ["2026-01-14 04:00 GMT", "2026-01-14 08:00 GMT"]


def test_a_clock_stepped_back_across_several_slots_runs_none_of_them_twice() -> None:
    clock = VirtualClock(utc(2026, 1, 14, 11, 0).timestamp())
    stop = threading.Event()
    dues: list[str] = []

    def run_once() -> None:
        dues.append(local(datetime.fromtimestamp(clock.now(), UTC)))
        if len(dues) == 1:
            clock.advance(-10 * 3600)  # back to 02:00: 04:00 and 08:00 come round again
        else:
            stop.set()

    scheduler = _scheduler(clock, stop, run_once)
    scheduler.run()
    assert dues == ["2026-01-14 12:00 GMT", "2026-01-15 04:00 GMT"]


def test_a_run_that_deferred_teams_gets_one_catch_up_run_later() -> None:
    clock = VirtualClock(utc(2026, 1, 14, 3, 0).timestamp())
    stop = threading.Event()
    runs: list[tuple[str, str]] = []

    def run_once() -> int:
        runs.append(("slot", local(datetime.fromtimestamp(clock.now(), UTC))))
        clock.advance(300)  # five minutes
        if len(runs) >= 4:
            stop.set()
        return 12 if len(runs) == 1 else 0  # the first run created groups: their Teams wait

    def catch_up() -> int:
        runs.append(("catch-up", datetime.fromtimestamp(clock.now(), LONDON).strftime("%H:%M")))
        clock.advance(60)
        return 3  # still some deferred: a catch-up run schedules no other

    scheduler = _scheduler(clock, stop, run_once, catch_up_minutes=20, run_catch_up=catch_up)
    scheduler.run()
    assert runs == [("slot", "2026-01-14 04:00 GMT"), ("catch-up", "04:25"), ("slot", "2026-01-14 08:00 GMT"),
                    ("slot", "2026-01-14 12:00 GMT")]  # fmt: skip
    assert [(r.catch_up, r.deferred) for r in scheduler.completed] == [
        (False, 12), (True, 3), (False, 0), (False, 0)]  # fmt: skip


def test_no_catch_up_run_when_disabled_or_when_the_next_slot_comes_first() -> None:
    for minutes, times in ((0, DEFAULT), (20, (time(4), time(4, 10)))):
        clock = VirtualClock(utc(2026, 1, 14, 3, 0).timestamp())
        stop = threading.Event()
        kinds: list[str] = []

        def run_once(kinds: list[str] = kinds, stop: threading.Event = stop) -> int:
            kinds.append("slot")
            if len(kinds) >= 3:
                stop.set()
            return 5 if len(kinds) == 1 else 0  # only the first run deferred Teams

        def catch_up(kinds: list[str] = kinds) -> int:
            kinds.append("catch-up")
            return 0

        scheduler = Scheduler(run_once, times, LONDON, clock, stop, poll_interval=3600,
                              catch_up_minutes=minutes, run_catch_up=catch_up)  # fmt: skip
        scheduler.run()
        assert kinds == ["slot", "slot", "slot"], (minutes, times)
        assert not any(r.catch_up for r in scheduler.completed)


def test_catch_up_minutes_is_read_and_checked() -> None:
    from entra_sync.config.load import loads_config

    base = '[history]\npath = "h.sqlite"\n'
    assert loads_config(base).schedule.catch_up_minutes == 20
    assert loads_config(base + "[schedule]\ncatch_up_minutes = 0\n").schedule.catch_up_minutes == 0
    for bad, message in (
        ("-1", "must be at least 0"),
        ("2000", "must be at most 1440"),
        ('"soon"', "integer"),
    ):
        with pytest.raises(ConfigError, match=message) as info:
            loads_config(base + f"[schedule]\ncatch_up_minutes = {bad}\n")
        assert "schedule.catch_up_minutes" in str(info.value)
