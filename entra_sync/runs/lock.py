"""The run lock: one run at a time per configuration, across processes and platforms.

An exclusive, non-blocking lock from :mod:`filelock` (``fcntl.flock`` on Unix, ``msvcrt.locking``
on Windows: the operating system drops the lock with the process; where neither exists, a marker
file whose dead owner is detected and broken). The lock itself is held on ``<path>.flock``; the
file ``path`` holds the holder's pid, so a second run can say who holds it, and a pid left there by
a process that died says the lock was taken over.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

with warnings.catch_warnings():  # "only soft file lock is available": the soft lock is the plan there
    warnings.simplefilter("ignore", UserWarning)
    import filelock

from reconciler.errors import EntraSyncError

__all__ = ["LockHeldError", "RunLock", "lock_kind"]

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


def lock_kind() -> str:
    """Which lock this platform gets: ``UnixFileLock``, ``WindowsFileLock`` or ``SoftFileLock``."""
    return filelock.FileLock.__name__


class RunLock:
    """An exclusive, non-blocking, inter-process lock on ``path`` (created when missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock: filelock.BaseFileLock | None = None

    @property
    def held(self) -> bool:
        return self._lock is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`LockHeldError` at once (never waits)."""
        if self._lock is not None:
            raise RuntimeError(f"{self.path}: this RunLock is already held")
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(self.path + ".flock", thread_local=False)
        try:
            lock.acquire(blocking=False)
        except filelock.Timeout:
            raise LockHeldError(self.path, _read_pid(self.path)) from None
        try:
            previous = _read_pid(self.path)
            if previous is not None and previous != os.getpid():
                log.warning("taking over the lock file %s left by process %d, which is no longer running",
                            self.path, previous)
            Path(self.path).write_text(f"{os.getpid()}\n", encoding="ascii")
        except BaseException:
            lock.release()
            raise
        self._lock = lock

    def release(self) -> None:
        if self._lock is None:
            return
        lock, self._lock = self._lock, None
        try:
            Path(self.path).write_text("", encoding="ascii")
        finally:
            lock.release()

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(path: str) -> int | None:
    try:
        text = Path(path).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
