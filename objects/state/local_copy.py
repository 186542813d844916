"""A worker's local copy of an object's database: reused only when provably current.

A `<file>.clean` marker holding the sequence is written when an object is closed
with everything shipped; only then may the same worker reuse the file at hydrate.
Otherwise the file is rebuilt from the shared database (newest snapshot plus the
log after it).
"""

from __future__ import annotations

from pathlib import Path

from solo.objects.state.store import StateStore


def _clean_marker(path: Path) -> Path:
    return Path(f"{path}.clean")


def mark_clean(path: Path, seq: int) -> None:
    """After the connection is closed with everything shipped: the file may be reused at `seq`."""
    _clean_marker(path).write_text(str(seq))


def prepare_local_file(store: StateStore, object_id: str, path: Path, seq: int) -> None:
    """Make `path` hold the object's durable state at `seq`, reusing it only if provably current."""
    marker = _clean_marker(path)
    try:
        reusable = path.exists() and int(marker.read_text()) == seq
    except (FileNotFoundError, ValueError):
        reusable = False
    marker.unlink(missing_ok=True)  # from here on the file may change: it is no longer known clean
    if reusable:
        return
    for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    if seq > 0:
        path.write_bytes(store.image_at(object_id, seq))
