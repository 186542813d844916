"""An in-process solo: the object host, the scheduler and the API in one process.

Activations call the host directly instead of going through Dramatiq; the
mailbox, leases, replies, catalog, alarms and scheduler are the real ones, on
whichever Redis and shared database the caller gives (fakeredis and SQLite for
`LocalSystem`; the real services too in solo's own contract tests). Objects
and the scheduler may run on a `ManualClock`.
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis
import redis.asyncio
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning

from solo.api.app import create_app
from solo.objects.context import wall_clock_ms
from solo.objects.registry import ClassRegistry, load_object_modules
from solo.objects.settings import Settings
from solo.objects.state.alarm_index import AlarmIndex
from solo.objects.state.catalog import Catalog
from solo.objects.state.compactor import Compactor
from solo.objects.state.schema import make_engine
from solo.objects.tracing import OFF, Tracing
from solo.workers.host import ObjectHost
from solo.workers.scheduler import Scheduler

with warnings.catch_warnings():
    # Starlette 1.x asks for `httpx2` here; its TestClient works with httpx, which solo's own Client uses.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

# Scheduler ticks one clock move may take: each tick fires what is due, and a fire may set
# another alarm due at once (a schedule catching up runs one occurrence per tick).
MAX_TICKS_PER_MOVE = 100_000


class InProcessSystem:
    def __init__(
        self,
        settings: Settings,
        redis_client: redis.Redis,
        async_redis_client: redis.asyncio.Redis,
        clock_ms: Callable[[], int] = wall_clock_ms,
        tracing: Tracing = OFF,
    ) -> None:
        self.settings = settings
        self.clock_ms = clock_ms
        self.tracing = tracing
        self._redis = redis_client
        self.engine = make_engine(settings.database_url)
        self.catalog = Catalog(self.engine)
        self.registry: ClassRegistry = load_object_modules(settings.object_modules)
        self.host = self._new_host(settings)
        self.compactor = Compactor(self.engine, settings.namespace, settings.retention_s)
        # Not started: it is stepped (lead, refill, tick) on the caller's clock, by fire_due or by hand.
        self.scheduler = Scheduler(
            settings,
            redis_client,
            AlarmIndex(self.engine, settings.namespace),
            self._activate,
            compactor=self.compactor,
            clock_ms=clock_ms,
        )
        self.app: Starlette = create_app(
            settings, dispatch=self._activate, client=async_redis_client, tracing=tracing, beat_client=redis_client
        )

    def _new_host(self, settings: Settings) -> ObjectHost:
        return ObjectHost(
            settings,
            self._redis,
            self.catalog,
            self.registry,
            self._activate,
            clock_ms=self.clock_ms,
            tracing=self.tracing,
        )

    def _activate(self, *object_ids: str) -> None:
        self.host.activate(*object_ids)

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        self.host.start()

    def stop(self) -> None:
        self.host.stop()
        self.engine.dispose()

    @contextmanager
    def running(self) -> Iterator[TestClient]:
        """The host started, and the API served through Starlette's TestClient (its lifespan runs)."""
        self.start()
        try:
            with TestClient(self.app, raise_server_exceptions=False) as http:
                yield http
        finally:
            self.stop()

    def restart_host(self) -> None:
        """A worker restart: every object is let go (state durable, memory dropped), and a new host,
        with a worker id and data directory of its own, serves from here on."""
        self.settle()
        self.host.stop()
        self.settings = self.settings.with_changes(worker_id=f"local-{uuid.uuid4().hex[:12]}")
        self.host = self._new_host(self.settings)
        self.host.start()

    # -- waiting on the host -------------------------------------------------

    def settle(self, timeout_s: float | None = None) -> None:
        """Wait until the host has nothing left to run (the calls and fires queued so far are done)."""
        deadline = time.monotonic() + (self.settings.call_timeout_s if timeout_s is None else timeout_s)
        while not (self.host.quiet() and not self._calls_queued()):
            if time.monotonic() > deadline:
                raise TimeoutError("objects were still running or had calls queued when the wait ended")
            time.sleep(0.002)

    def _calls_queued(self) -> bool:
        """Calls in any object's mailbox, held here or not: an object let go (evicted, its lease lost)
        just as a fire or call reached it keeps its calls until the sweeper sends it again."""
        pattern = f"{self.settings.key_prefix}:obj:*:mailbox"
        return any(self._redis.llen(key) for key in self._redis.scan_iter(match=pattern, count=1000))

    def pass_time(self, target_ms: int, move_to: Callable[[int], None]) -> int:
        """Let time pass up to `target_ms`, as it would on a running system: the clock stops at each
        moment an alarm or schedule is due, which fires then (and sees that time), until the target.

        `move_to` sets the clock (the objects' and the scheduler's) without side effects. The due
        times come from the shared alarm index, so alarms beyond the scheduler's horizon are not
        skipped. Returns how many fires were sent."""
        fired = 0
        for _ in range(MAX_TICKS_PER_MOVE):
            self.settle()
            now = self.clock_ms()
            due = [row.next_ms for row in self.scheduler.index.due_before(target_ms, limit=1000)]
            sent = 0
            if any(ms <= now for ms in due if ms is not None):
                self.scheduler.lead()
                self.scheduler.refill()  # what is due now may have been beyond the horizon until now
                sent = self.scheduler.tick()
                fired += sent
            if sent:
                continue  # what the fires set may be due at this same moment
            later = [ms for ms in due if ms is not None and ms > now]
            if not later:
                break
            move_to(min(later))
        else:
            raise RuntimeError(f"alarms kept coming due after {MAX_TICKS_PER_MOVE} scheduler ticks")
        if self.clock_ms() < target_ms:
            move_to(target_ms)
        return fired + self.fire_due()

    def fire_due(self) -> int:
        """Fire every alarm due by the clock, and wait until they and what they caused have run.

        Returns how many fires were sent."""
        fired = 0
        for _ in range(MAX_TICKS_PER_MOVE):
            self.settle()
            self.scheduler.lead()
            sent = self.scheduler.tick()
            if sent == 0:
                return fired
            fired += sent
        raise RuntimeError(f"alarms kept coming due after {MAX_TICKS_PER_MOVE} scheduler ticks")
