"""``GET /v1/workers``: the live worker processes, from their heartbeat records in Redis; and which
classes are served, for what the API shows as ``orphaned``.

Each worker writes its record every second (objects/coordination/workers.py); one that died
is gone within the record's TTL. Workers serve every tenant, and a record names hosts and
pids: the route is for the deployment's operators (api/auth.py's scope table).
"""

from __future__ import annotations

import builtins
import time

from starlette.requests import Request
from starlette.responses import JSONResponse

from solo.objects.context import wall_clock_ms
from solo.objects.coordination.workers import HEARTBEAT_S, AsyncWorkerBeats, WorkerRecord, served_classes
from solo.objects.registry import ClassRegistry


class WorkerListing:
    def __init__(self, beats: AsyncWorkerBeats) -> None:
        self.beats = beats

    async def list(self, request: Request) -> JSONResponse:
        return JSONResponse({"workers": [r.describe() for r in await self.live()]})

    async def live(self) -> builtins.list[WorkerRecord]:
        """The live workers, from their heartbeats (the console's workers page too)."""
        return await self.beats.live(wall_clock_ms())


class ServedClasses:
    """The classes some live worker serves: an alarm or object of any other class is orphaned.

    With no live worker at all (every one restarting) nothing can be judged by them, and the
    classes this API loads stand in. Read from Redis at most once per heartbeat interval.
    """

    def __init__(self, beats: AsyncWorkerBeats, registry: ClassRegistry) -> None:
        self.beats = beats
        self.registry = registry
        self._cached: set[str] | None = None
        self._until = 0.0

    async def classes(self) -> set[str]:
        now = time.monotonic()
        if self._cached is None or now >= self._until:
            served = served_classes(await self.beats.live(wall_clock_ms()))
            self._cached = served or set(self.registry.names())
            self._until = now + HEARTBEAT_S
        return self._cached
