"""Live workers in Redis: each worker process's heartbeat record, for operators and the scheduler.

A worker's maintainer writes its record every ``HEARTBEAT_S`` in one round trip: the record
itself (``{p}:worker:{id}``, JSON, expiring after ``WORKER_TTL_MS``) and the worker's deadline
in the ``{p}:workers`` index, which lets readers find the records without a SCAN. A worker that
dies stops writing: its record expires, and readers skip it within the TTL. Index members past
their deadline are pruned by every write. A worker that stops cleanly removes its record at once.

The record says what an operator asks of a worker (`solo workers ls`: version, classes, objects
held, threads busy, host and pid, since when) and what the scheduler needs to know which
classes some live worker serves (alarms of the others are orphaned: workers/scheduler.py).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import json
import socket
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import redis
import redis.asyncio

from solo.objects.coordination.keys import Keys

HEARTBEAT_S = 1.0
WORKER_TTL_MS = 5000  # a worker silent this long is gone from every listing


def package_version() -> str:
    try:
        return importlib.metadata.version("solo")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def classes_digest(classes: Iterable[type]) -> str | None:
    """A short SHA-256 of the served classes' names and source files: workers running the same code
    show the same digest. None when no class's source file can be read (nothing to tell apart)."""
    h = hashlib.sha256()
    files: dict[str, bytes] = {}
    names = []
    for cls in sorted(classes, key=lambda c: c.__name__):
        names.append(cls.__name__)
        try:
            path = inspect.getsourcefile(cls)
        except TypeError:  # defined where there is no file (an interactive session)
            continue
        if path and path not in files:
            try:
                files[path] = Path(path).read_bytes()
            except OSError:
                continue
    if not files:
        return None
    h.update("\0".join(names).encode())
    for path in sorted(files, key=lambda p: Path(p).name):
        h.update(b"\0" + files[path])
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class WorkerRecord:
    """One worker process as its last heartbeat described it."""

    id: str
    host: str
    pid: int
    version: str  # solo's package version
    classes: tuple[str, ...]  # the classes it serves
    classes_digest: str | None  # of their source (classes_digest)
    objects: int  # objects it holds the lease of
    open_databases: int
    threads_busy: int
    threads: int  # SOLO_WORKER_THREADS
    started_ms: int
    beat_ms: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> WorkerRecord:
        data = json.loads(raw)
        data["classes"] = tuple(data["classes"])
        return cls(**data)

    def describe(self) -> dict[str, Any]:
        """The JSON shape of GET /v1/workers."""
        data = asdict(self)
        data["classes"] = list(self.classes)
        return data


def this_host() -> str:
    return socket.gethostname()


def _parse(values: Sequence[bytes | str | None]) -> list[WorkerRecord]:
    records = []
    for raw in values:
        if raw is None:  # expired since the index was read
            continue
        try:
            records.append(WorkerRecord.from_json(raw))
        except (ValueError, TypeError, KeyError):  # a record of another version: not ours to read
            continue
    return sorted(records, key=lambda r: r.id)


def served_classes(records: Iterable[WorkerRecord]) -> set[str]:
    """Every class some live worker serves."""
    return {name for record in records for name in record.classes}


class WorkerBeats:
    """The workers' side (write the heartbeat) and the scheduler's (read who is alive)."""

    def __init__(self, client: redis.Redis, keys: Keys, ttl_ms: int = WORKER_TTL_MS) -> None:
        self._redis = client
        self._keys = keys
        self.ttl_ms = ttl_ms

    def beat(self, record: WorkerRecord) -> None:
        """One round trip: the record with its TTL, the deadline in the index, dead members pruned."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(self._keys.worker(record.id), record.to_json(), px=self.ttl_ms)
        pipe.zadd(self._keys.workers, {record.id: record.beat_ms + self.ttl_ms})
        pipe.zremrangebyscore(self._keys.workers, "-inf", record.beat_ms)
        pipe.execute()

    def forget(self, worker_id: str) -> None:
        """A worker that stops: gone from listings at once, not after the TTL."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.delete(self._keys.worker(worker_id))
        pipe.zrem(self._keys.workers, worker_id)
        pipe.execute()

    def live(self, now_ms: int) -> list[WorkerRecord]:
        ids = cast(list[bytes | str], self._redis.zrangebyscore(self._keys.workers, now_ms, "+inf"))
        if not ids:
            return []
        return _parse(self._redis.mget([self._keys.worker(_text(i)) for i in ids]))


class AsyncWorkerBeats:
    """The HTTP API's side: who is alive."""

    def __init__(self, client: redis.asyncio.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys

    async def live(self, now_ms: int) -> list[WorkerRecord]:
        ids = cast(list[bytes | str], await self._redis.zrangebyscore(self._keys.workers, now_ms, "+inf"))
        if not ids:
            return []
        return _parse(await self._redis.mget([self._keys.worker(_text(i)) for i in ids]))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
