"""Progress on long reads and applies, on stderr.

On a terminal one line is rewritten in place. When stderr is not a terminal (a log file, a
scheduler, CI) it prints plain lines that read on their own: when a stage starts, at most every
ten seconds while it runs (its running total: ``users: 2,997 so far``, ``apply: 1,203 of 4,634``),
and when it ends (``users: 4,300 in all``, ``apply: 4,634 of 4,634, done``), so the last line of a
stage is never a partial count.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressPrinter", "progress_text"]


def progress_text(stage: str, done: int, total: int | None, *, ended: bool = False) -> str:
    """One progress line: ``apply: 203 of 207``; a stage whose size is unknown until it ends (a
    paged read) says ``so far`` while it runs and ``in all`` when it has ended."""
    if total is not None:
        return f"{stage}: {done:,} of {total:,}" + (", done" if done >= total else "")
    return f"{stage}: {done:,} {'in all' if ended else 'so far'}"


class ProgressPrinter:
    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True, interval: float = 10.0) -> None:
        self._stream = stream or sys.stderr
        self._enabled = enabled
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._interval = interval
        self._stage: str | None = None
        self._done = 0
        self._total: int | None = None
        #: the current stage's latest numbers have been written
        self._shown = False
        self._last = 0.0
        self._width = 0

    def __call__(self, stage: str, done: int, total: int | None = None) -> None:
        if not self._enabled:
            return
        fresh = stage != self._stage
        if fresh:
            self._end_stage()
        self._stage, self._done, self._total = stage, done, total
        text = progress_text(stage, done, total)
        finished = total is not None and done >= total
        if self._tty:
            self._rewrite(text)
            if finished:
                self._newline()
            return
        now = time.monotonic()
        if fresh or finished or now - self._last >= self._interval:
            self._line(text)
            self._last = now
        else:
            self._shown = False

    def _end_stage(self) -> None:
        """The stage is over: a paged read says its total; a stage whose latest numbers were not
        written yet says them."""
        if self._stage is None:
            return
        if not self._shown or self._total is None:
            text = progress_text(self._stage, self._done, self._total, ended=True)
            if self._tty:
                self._rewrite(text)
            else:
                self._line(text)
        if self._tty:
            self._newline()
        self._stage = None

    def _line(self, text: str) -> None:
        self._stream.write(text + "\n")
        self._stream.flush()
        self._shown = True

    def _rewrite(self, text: str) -> None:
        pad = max(0, self._width - len(text))
        self._stream.write("\r" + text + " " * pad)
        self._stream.flush()
        self._width = len(text)
        self._shown = True

    def _newline(self) -> None:
        if self._width:
            self._stream.write("\n")
            self._stream.flush()
            self._width = 0

    def close(self) -> None:
        """End the current stage (a later call starts a new one)."""
        if self._enabled:
            self._end_stage()
