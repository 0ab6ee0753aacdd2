"""The run store's side of delta reads: :class:`SqlDeltaStore` implements the provider's
:class:`providers.entra.delta.DeltaStore` port over the ``delta_snapshots`` and ``delta_notes``
tables (schema 5).

Must: replace a scope's snapshot and drop the notes folded into it in one transaction (a run that
dies half-way leaves the old snapshot and its notes, which the next read folds in again); keep the
snapshot compressed (a 30-school trust's is 15 MB of base64). Must not: hold a secret (ids,
names and links only; a deltaLink carries no credential).
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine, delete, func, insert, select

from entra_sync.store.engine import migrate, open_engine, writer
from entra_sync.store.tables import delta_notes, delta_snapshots
from providers.entra.delta import DeltaSnapshot, Note
from reconciler.clock import Clock, SystemClock

__all__ = ["SqlDeltaStore", "decode_snapshot", "encode_snapshot"]


def encode_snapshot(snapshot: DeltaSnapshot) -> str:
    data = json.dumps(snapshot.to_json(), separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.b64encode(zlib.compress(data, 6)).decode("ascii")


def decode_snapshot(text: str) -> DeltaSnapshot | None:
    """The snapshot, or None when it cannot be read (then the provider reads in full)."""
    try:
        data = json.loads(zlib.decompress(base64.b64decode(text)))
        return DeltaSnapshot.from_json(data)
    except (ValueError, KeyError, TypeError, zlib.error):
        return None


class SqlDeltaStore:
    """Delta state in the run store at ``target`` (a path or URL, as for the run history)."""

    def __init__(self, target: str | Path | Engine, clock: Clock | None = None) -> None:
        if isinstance(target, Engine):
            self._engine = target
        else:
            self._engine = open_engine(target)
            migrate(self._engine, str(target))
        self._clock: Clock = clock or SystemClock()

    def close(self) -> None:
        self._engine.dispose()

    def load(self, scope: str) -> DeltaSnapshot | None:
        with self._engine.connect() as conn:
            text = conn.execute(
                select(delta_snapshots.c.snapshot).where(delta_snapshots.c.scope == scope)
            ).scalar()
        return None if text is None else decode_snapshot(str(text))

    def notes(self, scope: str) -> tuple[int, list[Note]]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(delta_notes.c.id, delta_notes.c.kind, delta_notes.c.object_id, delta_notes.c.value)
                .where(delta_notes.c.scope == scope)
                .order_by(delta_notes.c.id)
            ).all()
        notes = [Note(kind, oid, value) for _id, kind, oid, value in rows]
        return (int(rows[-1][0]) if rows else 0), notes

    def save(self, scope: str, snapshot: DeltaSnapshot, notes_upto: int) -> None:
        text = encode_snapshot(snapshot)
        with writer(self._engine).begin() as conn:
            conn.execute(delete(delta_snapshots).where(delta_snapshots.c.scope == scope))
            now = self._clock.now()
            conn.execute(insert(delta_snapshots).values(scope=scope, snapshot=text, saved_at=now))
            done = delete(delta_notes).where(delta_notes.c.scope == scope, delta_notes.c.id <= notes_upto)
            conn.execute(done)

    def add_notes(self, scope: str, notes: Sequence[Note]) -> None:
        if not notes:
            return
        rows = [{"scope": scope, "kind": n.kind, "object_id": n.object_id, "value": n.value} for n in notes]
        with writer(self._engine).begin() as conn:
            conn.execute(insert(delta_notes), rows)

    def forget(self, scope: str) -> None:
        """Drop a scope's snapshot and notes: the next read is a full one."""
        with writer(self._engine).begin() as conn:
            conn.execute(delete(delta_snapshots).where(delta_snapshots.c.scope == scope))
            conn.execute(delete(delta_notes).where(delta_notes.c.scope == scope))

    def count_notes(self, scope: str) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(
                select(func.count()).select_from(delta_notes).where(delta_notes.c.scope == scope)
            ).scalar() or 0)
