"""The output gate's durable half: ship every commit of an object to the shared database.

`LogShipper.after_commit` runs right after each COMMIT on the object's
connection and before any reply is published: it reads the commit's new WAL
frames, appends them to the object's log for this epoch, writes a snapshot
when the log has outgrown the database, and checkpoints the WAL from time to
time (frames are checkpointed only after they have been shipped).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy.engine import Connection

from solo.objects.errors import OwnershipLost, ShippingFailed
from solo.objects.state.local_copy import mark_clean
from solo.objects.state.store import SharedWrite, StateStore
from solo.objects.state.wal import FRAME_HEADER_BYTES, WalReader

log = logging.getLogger(__name__)

CHECKPOINT_AFTER_FRAMES = 1000
# No snapshot until the log since the last one holds at least this much (docs/adr/0001):
# a small object would otherwise write its whole image every few commits.
SNAPSHOT_FLOOR_BYTES = 1 << 20


class LogShipper:
    def __init__(
        self,
        store: StateStore,
        object_id: str,
        epoch: int,
        path: Path,
        seq: int,
        log_bytes: int,
        *,
        on_shipped: Callable[[float, int], None] | None = None,
    ) -> None:
        self.store = store
        self.object_id = object_id
        self.epoch = epoch
        self.path = path
        self.seq = seq  # the last durable record; the local file matches it whenever `in_sync`
        self.log_bytes = log_bytes  # shipped since the last snapshot
        self.in_sync = True
        self.deferred = False  # while hydrating: commits are shipped together at the end
        self.shipped_bytes = 0  # this activation's total, for metrics
        self._on_shipped = on_shipped  # (seconds, bytes) of each shipment
        self._reader = WalReader(path)
        self._frames_since_checkpoint = 0
        self.snapshot_floor_bytes = SNAPSHOT_FLOOR_BYTES
        self._shipped_by: int | None = None  # the epoch that made `seq` durable, once known

    def after_commit(
        self,
        conn: sqlite3.Connection,
        writes: Sequence[SharedWrite] = (),
        shared: Connection | None = None,
        *,
        schema_version: int | None = None,
    ) -> None:
        """Ship the commit's frames, with the alarm rows it changed and its writes to shared
        tables (`shared`, an open transaction), all in one shared-database transaction; and
        the file's schema version, if given (StateStore.ship)."""
        self.in_sync = False
        if self.deferred:
            assert shared is None, "a deferred shipment carries the shared writes of the last commit"
            return  # nothing is visible yet; the next shipment carries these frames too
        began = time.perf_counter()
        frames = self._reader.read_committed()
        if frames is None:
            self.in_sync = True
            if shared is not None:
                self._commit_shared(shared)
            return
        try:
            accepted = self.store.ship(
                self.object_id, self.epoch, self.seq + 1, frames, writes, shared, schema_version=schema_version
            )
        except Exception as exc:
            raise ShippingFailed(f"could not ship {self.object_id} seq {self.seq + 1}: {exc}") from exc
        if not accepted:
            raise OwnershipLost(f"object {self.object_id}: shipment for epoch {self.epoch} refused; taken over")
        self.seq += 1
        self.in_sync = True
        self._shipped_by = self.epoch
        if self._on_shipped is not None:
            self._on_shipped(time.perf_counter() - began, len(frames.data))
        self.shipped_bytes += len(frames.data)
        self.log_bytes += len(frames.data)
        self._frames_since_checkpoint += frames.count
        # A restore reads the last snapshot plus the log after it: keep that under about twice
        # the database, or the database plus the floor. (A new object's first record is its
        # whole file: no snapshot yet.)
        database_bytes = frames.db_pages * (frames.page_size + FRAME_HEADER_BYTES)
        if self.log_bytes > max(database_bytes, self.snapshot_floor_bytes):
            self._snapshot(conn)
        if self._frames_since_checkpoint >= CHECKPOINT_AFTER_FRAMES:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._reader.forget_position()
            self._frames_since_checkpoint = 0

    def _commit_shared(self, shared: Connection) -> None:
        try:
            accepted = self.store.commit_shared(self.object_id, self.epoch, shared)
        except Exception as exc:
            raise ShippingFailed(f"could not commit shared writes of {self.object_id}: {exc}") from exc
        if not accepted:
            raise OwnershipLost(f"object {self.object_id}: shared writes for epoch {self.epoch} refused; taken over")

    def _snapshot(self, conn: sqlite3.Connection) -> None:
        try:
            if self.store.snapshot(self.object_id, self.epoch, self.seq, conn.serialize()):
                self.log_bytes = 0
        except Exception:  # the log alone still restores the object; try again after the next commit
            log.exception("snapshot of %s at seq %d failed", self.object_id, self.seq)

    def connection_closed(self) -> None:
        """Closing the last connection checkpoints and deletes the WAL: the next frames start a new log."""
        self._reader.forget_position()
        self._frames_since_checkpoint = 0

    def mark_clean(self) -> None:
        """After the connection is closed: the local file may be reused at this sequence.

        Only after this epoch shipped something (hydrate always does): the marker names the
        epoch that made the sequence durable."""
        if self.in_sync and self._shipped_by is not None:
            mark_clean(self.path, self.seq, self._shipped_by)
