"""Progress off a terminal: lines that read on their own (phase and running totals at intervals),
and never a partial count as the last word on a stage; on a terminal, one line rewritten."""

from __future__ import annotations

import io

import pytest

from entra_sync.cli import progress as progress_module
from entra_sync.cli.progress import ProgressPrinter, progress_text


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(progress_module.time, "monotonic", fake.monotonic)
    return fake


def read_users(p: ProgressPrinter, clock: FakeTime, total: int, page: int = 999) -> None:
    """A paged read: the count grows by a page at a time, and nobody knows the total until the end."""
    done = 0
    while done < total:
        done = min(total, done + page)
        p("users", done, None)
        clock.now += 3


def test_a_paged_read_ends_with_its_real_total_not_its_first_page(clock: FakeTime) -> None:
    out = io.StringIO()
    p = ProgressPrinter(out)
    read_users(p, clock, 4300)
    p("groups", 0, 2)
    p("groups", 2, 2)
    p.close()
    assert out.getvalue().splitlines() == [
        "users: 999 so far",
        "users: 4,300 so far",  # the first page read ten seconds after the first line
        "users: 4,300 in all",  # when the next stage starts: the read has ended
        "groups: 0 of 2",
        "groups: 2 of 2, done",
    ]


def test_an_apply_reports_its_running_total_at_intervals_and_its_end(clock: FakeTime) -> None:
    out = io.StringIO()
    p = ProgressPrinter(out, interval=10)
    for done in range(0, 4635, 100):
        p("apply", done, 4634)
        clock.now += 1
    p.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "apply: 0 of 4,634"
    assert lines[1] == "apply: 1,000 of 4,634"
    assert lines[-1] == "apply: 4,600 of 4,634"  # it stopped there: the last line says so
    assert all(line.startswith("apply: ") and " of 4,634" in line for line in lines)
    assert len(lines) == 6  # start, then one every ten seconds


def test_the_last_numbers_of_a_stage_are_written_when_it_ends(clock: FakeTime) -> None:
    out = io.StringIO()
    p = ProgressPrinter(out)
    p("teams", 20, 150)
    p("teams", 40, 150)  # within the interval: not written yet
    p.close()
    p.close()  # a second close adds nothing
    assert out.getvalue().splitlines() == ["teams: 20 of 150", "teams: 40 of 150"]


def test_on_a_terminal_one_line_is_rewritten_and_ends_with_the_total(clock: FakeTime) -> None:
    out = Tty()
    p = ProgressPrinter(out)
    read_users(p, clock, 2500)
    p("apply", 0, 3)
    p("apply", 3, 3)
    p.close()
    text = out.getvalue()
    assert text.count("\n") == 2  # one finished line per stage
    first, second = text.split("\n")[:2]
    assert first.split("\r")[-1].strip() == "users: 2,500 in all"
    assert second.split("\r")[-1].strip() == "apply: 3 of 3, done"


def test_quiet_writes_nothing(clock: FakeTime) -> None:
    out = io.StringIO()
    p = ProgressPrinter(out, enabled=False)
    read_users(p, clock, 3000)
    p.close()
    assert out.getvalue() == ""


def test_progress_text() -> None:
    assert progress_text("users", 4300, None, ended=True) == "users: 4,300 in all"
    assert progress_text("apply", 999, 4300) == "apply: 999 of 4,300"
