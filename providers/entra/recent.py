"""What this machine created recently in a tenant: an append-only, fsynced journal per tenant + app.

Graph shows a new object late in its lists and ``$filter`` queries (replication lag, graph-facts.md
§6), so a run shortly after another (or after a run that was killed) cannot trust a list to say
what exists. The provider itself remembers what it created, whatever command runs and with or
without a configuration:

- before a create is sent, an *intent* line (key, kind, time): a run killed between the POST and
  its answer leaves it, and the next create of that key first looks for the object by its marker,
  waiting out the lag;
- once Graph answered, a *created* line (key, object id, kind, time) is on disk (fsynced) before
  the next write is sent; reads add the journal's recent objects by id when the lists miss them,
  and a create of a key with a known id reads that id first;
- every long key (over Graph's 120-character filter limit) that was stamped as its hash, so a read
  without a desired state can still name the object by its full key.

The file lives in the state directory (``$ENTRA_SYNC_STATE_DIR``, else ``$XDG_STATE_HOME/entra-sync``,
else ``~/.local/state/entra-sync``), is created 0600 (its directory 0700) and is named after a hash of
the Graph root, the tenant and the marker. A torn last line (a process killed mid-write) is ignored.
Entries older than ``window_seconds`` are dropped when the file is compacted on open.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from providers.entra.marker import marker_value

__all__ = ["DEFAULT_WINDOW_SECONDS", "CreateJournal", "RecentCreate", "default_state_dir"]

log = logging.getLogger(__name__)

#: how long a create is remembered (replication lag is minutes at worst; a day is generous)
DEFAULT_WINDOW_SECONDS = 24 * 3600.0
_COMPACT_LINES = 2000


def default_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$ENTRA_SYNC_STATE_DIR``, else ``$XDG_STATE_HOME/entra-sync``, else ``~/.local/state/entra-sync``."""
    env = os.environ if env is None else env
    if env.get("ENTRA_SYNC_STATE_DIR"):
        return Path(env["ENTRA_SYNC_STATE_DIR"]).expanduser()
    base = env.get("XDG_STATE_HOME") or str(Path("~/.local/state").expanduser())
    return Path(base).expanduser() / "entra-sync"


@dataclass(frozen=True, slots=True)
class RecentCreate:
    """One remembered create. ``object_id`` is None for an intent whose answer never came."""

    key: str
    kind: str
    at: float
    object_id: str | None = None


class CreateJournal:
    """The journal of one tenant + app. Thread-safe; every append is fsynced before it returns."""

    def __init__(
        self,
        path: Path,
        *,
        now: Callable[[], float] = time.time,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
    ) -> None:
        self.path = path
        self.now = now
        self.window = window_seconds
        self._lock = threading.Lock()
        self._latest: dict[str, RecentCreate] = {}
        self._long_keys: dict[str, str] = {}
        self._load()

    @classmethod
    def for_scope(
        cls, graph_root: str, tenant: str, marker: str, *, state_dir: Path | None = None, **kwargs: Any
    ) -> CreateJournal:
        """The journal for a Graph root + tenant + marker (the marker names the app)."""
        scope = "\n".join((graph_root.rstrip("/").lower(), tenant.lower(), marker.lower()))
        name = "creates-" + hashlib.sha256(scope.encode("utf-8")).hexdigest()[:24] + ".jsonl"
        return cls((state_dir or default_state_dir()) / name, **kwargs)

    # -- reading ----------------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cannot read the recent-creates journal %s (%s); starting without it",
                        self.path, type(exc).__name__)
            return
        cutoff = self.now() - self.window
        lines = raw.split(b"\n")
        for line in lines:
            try:
                entry = json.loads(line)
                if entry.get("longKey"):
                    self._long_keys[str(entry["stamp"])] = str(entry["longKey"])
                    continue
                rec = RecentCreate(str(entry["key"]), str(entry["kind"]), float(entry["at"]),
                                   str(entry["id"]) if entry.get("id") else None)
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # an empty or torn line (killed mid-write): nothing to learn from it
            if rec.at >= cutoff:
                self._latest[rec.key] = rec
            else:
                self._latest.pop(rec.key, None)
        if len(lines) > _COMPACT_LINES:
            self._compact()

    def _compact(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        lines = [_line_long(s, k) for s, k in sorted(self._long_keys.items())]
        lines += [_line(r) for r in sorted(self._latest.values(), key=lambda r: r.at)]
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(b"".join(lines))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def entries(self) -> list[RecentCreate]:
        cutoff = self.now() - self.window
        with self._lock:
            return sorted((r for r in self._latest.values() if r.at >= cutoff), key=lambda r: r.key)

    def recent_ids(self) -> dict[str, str]:
        """object id -> kind of the objects created inside the window."""
        return {r.object_id: r.kind for r in self.entries() if r.object_id is not None}

    def known_id(self, key: str) -> str | None:
        """The id this machine recently created ``key`` as, if any."""
        for r in self.entries():
            if r.key == key:
                return r.object_id
        return None

    def pending(self, key: str) -> bool:
        """Whether a create of ``key`` was sent recently and its answer never recorded."""
        return any(r.key == key and r.object_id is None for r in self.entries())

    def long_keys(self) -> dict[str, str]:
        """stamp -> full key of every long key stamped from this machine."""
        with self._lock:
            return dict(self._long_keys)

    # -- writing ----------------------------------------------------------------------------------

    def intend(self, key: str, kind: str) -> None:
        """Before a create is sent: remember that it may exist from now on."""
        self._append(RecentCreate(key, kind, self.now()))

    def record(self, key: str, kind: str, object_id: str) -> None:
        """Once Graph answered (or a lookup found it): the object exists under ``object_id``."""
        self._append(RecentCreate(key, kind, self.now(), object_id))

    def _append(self, rec: RecentCreate) -> None:
        data = _line(rec)
        stamp = marker_value(rec.key)
        with self._lock:
            if stamp != rec.key and self._long_keys.get(stamp) != rec.key:
                data = _line_long(stamp, rec.key) + data
                self._long_keys[stamp] = rec.key
            self._write(data)
            self._latest[rec.key] = rec

    def _write(self, data: bytes) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


def _line(rec: RecentCreate) -> bytes:
    entry: dict[str, Any] = {"key": rec.key, "kind": rec.kind, "at": rec.at}
    if rec.object_id is not None:
        entry["id"] = rec.object_id
    return (json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")


def _line_long(stamp: str, key: str) -> bytes:
    return (json.dumps({"longKey": key, "stamp": stamp}, ensure_ascii=False) + "\n").encode("utf-8")
