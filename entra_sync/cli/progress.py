"""Progress on long reads and applies, on stderr.

On a terminal one line is rewritten in place; when stderr is not a terminal (a log file, a
scheduler, CI) it prints a plain line when a stage starts and when it ends, and otherwise at most
every ten seconds, so logs stay readable and nothing breaks.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressPrinter"]


class ProgressPrinter:
    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True, interval: float = 10.0) -> None:
        self._stream = stream or sys.stderr
        self._enabled = enabled
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._interval = interval
        self._stage: str | None = None
        self._last = 0.0
        self._width = 0

    def __call__(self, stage: str, done: int, total: int | None = None) -> None:
        if not self._enabled:
            return
        text = f"{stage}: {done}/{total}" if total is not None else f"{stage}: {done}"
        now = time.monotonic()
        if self._tty:
            pad = max(0, self._width - len(text))
            self._stream.write("\r" + text + " " * pad)
            self._width = len(text)
            if total is not None and done >= total:
                self._stream.write("\n")
                self._width = 0
            self._stream.flush()
            return
        new_stage = stage != self._stage
        finished = total is not None and done >= total
        if new_stage or finished or now - self._last >= self._interval:
            self._stream.write(text + "\n")
            self._stream.flush()
            self._last = now
        self._stage = stage

    def close(self) -> None:
        if self._tty and self._width:
            self._stream.write("\n")
            self._stream.flush()
            self._width = 0
