"""The WebSocket gateway's heartbeat, on a thread of its own.

A gateway whose deadline passes ``GATEWAY_TTL_MS`` is taken for dead, and a worker's reaper
closes every socket it holds at their objects (objects/coordination/gateways.py). The event
loop is no clock to beat by: while 10,000 sockets opened on a loaded machine, one Redis round
trip of the heartbeat waited 2.5 s for its turn on the loop and full collections took up to
1.5 s each (bench.sockets --trace, 2026-12-07), so a live gateway went 5 s without a beat and
lost its sockets. A thread beats while the loop is busy; only a collection, which holds every
thread, still delays it.

A loop stuck for good would then keep its sockets registered but unserved, so the thread
beats only while the loop has turned within ``LOOP_STALL_S``; past that the gateway goes
quiet and is reaped as if it had died.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

import redis

from solo.objects.coordination.gateways import HEARTBEAT_MS

log = logging.getLogger(__name__)

LOOP_STALL_S = 30.0  # a loop that has not turned for this long serves no socket: stop beating for it


class GatewayHeartbeat:
    """Beats every ``HEARTBEAT_MS`` once `active()`; hands the loop `on_lost` when Redis lost the gateway.

    `beat()` returns (whether the gateway was missing from the index, how many sockets its hash
    holds); `held()` is how many sockets this process has registered there. When the gateway
    was missing or its hash holds fewer, `on_lost(missing)` runs on the event loop.
    """

    def __init__(
        self,
        beat: Callable[[], tuple[bool, int]],
        *,
        active: Callable[[], bool],
        held: Callable[[], int],
        on_lost: Callable[[bool], None],
        interval_s: float = HEARTBEAT_MS / 1000,
        loop_stall_s: float = LOOP_STALL_S,
    ) -> None:
        self._beat = beat
        self._active = active
        self._held = held
        self._on_lost = on_lost
        self.interval_s = interval_s
        self.loop_stall_s = loop_stall_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_turned = time.monotonic()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._stalled = False

    def start(self) -> None:
        """On the event loop: start the thread, and a task that tells it the loop still turns."""
        self._loop = asyncio.get_running_loop()
        self._loop_turned = time.monotonic()
        self._ticker = asyncio.create_task(self._tick(), name="solo-gateway-loop-tick")
        self._thread = threading.Thread(target=self._run, name="solo-gateway-heartbeat", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self._stopping.set()
        if self._ticker is not None:
            self._ticker.cancel()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    async def _tick(self) -> None:
        while True:
            self._loop_turned = time.monotonic()
            await asyncio.sleep(self.interval_s)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval_s):
            self.step()

    def step(self) -> bool:
        """One turn of the thread: beat if the gateway is active and its loop turns. True if it beat."""
        if not self._active():
            return False
        if time.monotonic() - self._loop_turned > self.loop_stall_s:
            if not self._stalled:
                log.error("the event loop stood still for %.0f s: the gateway's heartbeat stops", self.loop_stall_s)
            self._stalled = True
            return False
        if self._stalled:
            log.warning("the event loop turns again: the gateway's heartbeat goes on")
            self._stalled = False
        try:
            missing, stored = self._beat()
        except redis.RedisError as exc:
            log.warning("gateway heartbeat: %s; retrying", exc)
            return False
        if (missing or stored < self._held()) and self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._on_lost, missing)
            except RuntimeError:  # the loop closed: the process is stopping
                pass
        return True
