"""The run lock: one run at a time per configuration, across processes.

An exclusive, non-blocking lock on a file; a lock left by a process that died is taken over (the
operating system drops the lock with the process)."""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

from reconciler.errors import EntraSyncError

__all__ = ["LockHeldError", "RunLock"]

log = logging.getLogger(__name__)


class LockHeldError(EntraSyncError):
    def __init__(self, path: str, pid: int | None) -> None:
        self.path = path
        self.pid = pid
        holder = f"process {pid}" if pid is not None else "another process"
        super().__init__(
            f"another entra-sync run is in progress: {holder} holds the lock file {path}; "
            "wait for it to finish (a lock left by a process that has died is taken over automatically)"
        )


class RunLock:
    """An exclusive, non-blocking, inter-process lock on ``path`` (created when missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`LockHeldError` at once (never waits)."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path}: this RunLock is already held")
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise LockHeldError(self.path, pid) from None
        previous = _read_pid(fd)
        if previous is not None and previous != os.getpid():
            log.warning("taking over the lock file %s left by process %d, which is no longer running",
                        self.path, previous)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
