"""A virtual clock shared by processes (the fault campaign's served emulator and its
``entra-sync`` subprocesses). Standard library only: a child imports it before anything that
binds ``reconciler.clock.SystemClock``."""

from __future__ import annotations

import fcntl
import os
import struct
import threading
from pathlib import Path

__all__ = ["START", "SharedClock"]

START = 1_790_000_000.0


class SharedClock:
    """A virtual clock (:class:`reconciler.clock.Clock`) kept as 8 bytes in a file, so processes
    share it: ``sleep`` advances it at once, for every process."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            self.path.write_bytes(struct.pack("<d", START))
        self._lock = threading.Lock()

    def _op(self, delta: float) -> float:
        with self._lock, open(self.path, "r+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            now = float(struct.unpack("<d", f.read(8))[0]) + delta
            if delta:
                f.seek(0)
                f.write(struct.pack("<d", now))
            return now

    def now(self) -> float:
        return self._op(0.0)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._op(seconds)

    def advance(self, seconds: float) -> None:
        self._op(seconds)
