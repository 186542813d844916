"""Waiting for call outcomes: one blocking pop per API process, not one per request.

Workers push each outcome to the reply list named in the call (this process's
list); a single task pops them and resolves the waiting requests' futures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from typing import cast

import redis
import redis.asyncio

from solo.objects.calls import Outcome
from solo.objects.coordination.keys import Keys

log = logging.getLogger(__name__)

REPLY_BATCH = 256  # replies taken per round trip at most


class ReplyListener:
    def __init__(self, client: redis.asyncio.Redis, keys: Keys) -> None:
        self._redis = client
        self.listener_id = uuid.uuid4().hex
        self.key = keys.replies(self.listener_id)
        self._waiting: dict[str, list[asyncio.Future[Outcome]]] = defaultdict(list)
        self._task: asyncio.Task | None = None
        self._stopping = False

    def expect(self, call_id: str) -> asyncio.Future[Outcome]:
        """Register interest before enqueueing, so a fast reply cannot be missed."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting[call_id].append(future)
        return future

    @property
    def waiting(self) -> int:
        """Calls some request is waiting on now."""
        return len(self._waiting)

    def forget(self, call_id: str, future: asyncio.Future[Outcome]) -> None:
        futures = self._waiting.get(call_id)
        if futures and future in futures:
            futures.remove(future)
            if not futures:
                del self._waiting[call_id]

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="solo-replies")

    async def stop(self) -> None:
        # The flag as well as the cancellation: redis-py may turn a cancellation that lands in its
        # read timeout into a TimeoutError, which the loop survives; the flag still ends it.
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for futures in self._waiting.values():
            for future in futures:
                if not future.done():
                    future.cancel()
        self._waiting.clear()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                # One round trip for every reply already there, up to REPLY_BATCH (BLMPOP, Redis 7):
                # a BLPOP for the first and an LPOP for the rest cost two per wake-up.
                popped = await self._redis.blmpop(1, 1, self.key, direction="LEFT", count=REPLY_BATCH)
            except redis.RedisError as exc:
                log.warning("reply listener: %s; retrying", exc)
                await asyncio.sleep(0.2)
                continue
            if popped is None:
                continue
            batch = cast(list[bytes], popped[1])  # [key, [values]]
            for raw in batch:
                outcome = Outcome.from_payload(raw)
                for future in self._waiting.pop(outcome.call_id, []):
                    if not future.done():
                        future.set_result(outcome)
