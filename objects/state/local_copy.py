"""A worker's local copy of an object's database: reused only when provably current.

A `<file>.clean` marker holding the sequence and the epoch that shipped it is
written when an object is closed with everything shipped; only then may the same
worker reuse the file at hydrate, and only if the durable head is still that
sequence, made durable by that epoch. (The epoch tells incarnations apart: once
a deleted object's tombstone is pruned, the object made anew counts its
sequences from 0 again, but its epochs start above every former one.)
Otherwise the file is rebuilt from the shared database (newest snapshot plus the
log after it).

A new object (nothing durable yet) starts from an empty database already in WAL
mode, written as a plain file: SQLite would make the file itself when the
connection turns WAL mode on, through a rollback journal and about seven
fdatasyncs, which the local copy does not need (the durable state is in the
shared database, and its first shipment holds every page of the file). Its WAL
is written beside it, holding one commit that made solo's tables: the claim's
CREATE TABLE IF NOT EXISTS then find them, and the first shipment, which reads
the WAL from its start, still holds every page. Both files are made once per
process by SQLite itself.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import tempfile
from pathlib import Path

from solo.objects.state.store import StateStore
from solo.objects.tables import SOLO_TABLES_DDL


def _clean_marker(path: Path) -> Path:
    return Path(f"{path}.clean")


def mark_clean(path: Path, seq: int, epoch: int) -> None:
    """After the connection is closed with everything shipped by `epoch`: the file may be reused at `seq`."""
    _clean_marker(path).write_text(f"{seq} {epoch}")


def _marked(marker: Path) -> tuple[int, int] | None:
    try:
        seq, epoch = (int(part) for part in marker.read_text().split())
    except (FileNotFoundError, ValueError):  # none, or one an older version wrote (the sequence alone)
        return None
    return seq, epoch


def discard_local_file(path: Path) -> None:
    """Remove a worker's copy of an object (file, WAL, shared memory, marker): the durable state is elsewhere."""
    for part in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), _clean_marker(path)):
        part.unlink(missing_ok=True)


def prepare_local_file(store: StateStore, object_id: str, path: Path, seq: int) -> bool:
    """Make `path` hold the object's durable state at `seq`, reusing it only if provably current.

    Returns whether it is a new object's file, written from `new_database`: solo's tables and nothing else."""
    marker = _clean_marker(path)
    if seq > 0:  # nothing durable yet (or a deleted object's state): no file to reuse
        marked = _marked(marker) if path.exists() else None
        if marked is not None and marked[0] == seq and store.written_by(object_id, seq) == marked[1]:
            marker.unlink(missing_ok=True)  # from here on the file may change: it is no longer known clean
            return False
    for stale in (marker, path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = store.image_at(object_id, seq) if seq > 0 else b""
    if image:
        path.write_bytes(image)
        return False
    database, wal = new_database()  # nothing yet, or a deleted object's state
    _write_new(path, database)
    _write_new(Path(f"{path}-wal"), wal)
    return True


def _write_new(path: Path, data: bytes) -> None:
    """A file just unlinked, written whole: os calls, without pathlib's and io's layers."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


@functools.cache
def new_database() -> tuple[bytes, bytes]:
    """A new object's file and WAL: an empty database in WAL mode, and a log of one commit that
    made solo's tables in it, as this SQLite makes them (once per process)."""
    with tempfile.TemporaryDirectory(prefix="solo-empty-") as directory:
        path = Path(directory) / "empty.sqlite"
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA wal_autocheckpoint=0")
            database = path.read_bytes()  # before the commit: the file the log applies to
            conn.execute("BEGIN IMMEDIATE")
            for ddl in SOLO_TABLES_DDL:
                conn.execute(ddl)
            conn.execute("COMMIT")
            wal = Path(f"{path}-wal").read_bytes()  # read while open: closing would checkpoint it
        finally:
            conn.close()
        return database, wal
