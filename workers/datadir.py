"""Each worker process keeps its objects' files in a directory of its own.

Sharing one directory between processes would let a paused former owner
write into the file its successor restored. A directory is held by an
exclusive lock for the life of its process; directories whose lock nobody
holds belong to dead workers and are removed when a worker starts.
"""

from __future__ import annotations

import fcntl
import re
import shutil
from pathlib import Path
from typing import IO

from solo.workers.errors import WorkerIdInUse


class WorkerDir:
    def __init__(self, path: Path, lock: IO[str]) -> None:
        self.path = path
        self._lock = lock

    def release(self) -> None:
        self._lock.close()  # closing the file drops the lock


def _locked(path: Path) -> IO[str] | None:
    handle = open(path / ".lock", "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def claim_worker_dir(base: Path, worker_id: str) -> WorkerDir:
    root = base / "workers"
    mine = root / re.sub(r"[^A-Za-z0-9._-]", "_", worker_id)
    mine.mkdir(parents=True, exist_ok=True)
    lock = _locked(mine)
    if lock is None:
        raise WorkerIdInUse(f"another live worker uses the id {worker_id!r} (its directory {mine} is locked)")
    for other in root.iterdir():
        if other != mine and other.is_dir():
            held = _locked(other)
            if held is not None:  # nobody alive holds it: a dead worker's leftovers
                shutil.rmtree(other, ignore_errors=True)
                held.close()
    return WorkerDir(mine, lock)
