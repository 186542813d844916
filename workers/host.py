"""The object host: runs the objects a worker process owns.

One host per worker process. It takes objects through leases and drains their
mailboxes on a thread pool, one `Activation.step` (objects/runtime/activation.py:
claim, hydrate, run, ship, send, announce, complete) at a time per object, so an
object's calls never overlap. It keeps all its leases alive with one heartbeat
command per interval, whatever it holds (leases.py, ADR 0004), evicts
idle objects, bounds open files, and drains on shutdown. What happens inside an
activation is not decided here; when and on which thread is.

Threads:
  wake listener  BLMPOP on this worker's wake list: objects it owns that got a call
  reply listener BLPOP on this worker's reply list: outcomes of calls its objects
                 made to other objects (workers/transport.py)
  heartbeat      the lease heartbeat, and this worker's heartbeat record
                 (objects/coordination/workers.py: `solo workers ls`), on a thread of
                 their own so that no maintenance holds them up (ADR 0023)
  maintainer     idle eviction, the sweeper that re-dispatches objects whose owner
                 died or whose activation was lost, the reaper of API processes that
                 died holding WebSockets, and user code stuck past its interrupt
  call timer     interrupts user code past SOLO_CALL_TIME_LIMIT_S (objects/runtime/time_limit.py)
  drain threads  drains, `worker_threads` at a time (workers/drain_threads.py); a drain that waits on a call
                 to another object does not count, so waiting callers cannot starve
                 the objects they wait on of threads; a thread whose drain ends runs
                 the next ready one itself
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import redis
import sqlalchemy as sa

from solo.objects.calls import Call
from solo.objects.context import wall_clock_ms
from solo.objects.coordination.alarm_queue import AlarmQueue
from solo.objects.coordination.gateways import GatewayRouter
from solo.objects.coordination.keys import Keys
from solo.objects.coordination.leases import (
    EVICT_REQUEST_PREFIX,
    RELEASED_WITH_CALLS,
    Leases,
    ReleaseMode,
    lease_value,
    new_generation,
)
from solo.objects.coordination.mailbox import Mailbox, MailboxConfig
from solo.objects.coordination.wait_graph import WaitGraph
from solo.objects.coordination.workers import (
    HEARTBEAT_S,
    WorkerBeats,
    WorkerRecord,
    classes_digest,
    package_version,
    this_host,
)
from solo.objects.errors import DiskFull
from solo.objects.metrics import RuntimeMetrics
from solo.objects.registry import ClassRegistry
from solo.objects.runtime import log_fields
from solo.objects.runtime.activation import Activation, Services, Stop, object_path
from solo.objects.runtime.connection import out_of_space
from solo.objects.runtime.time_limit import CallTimer
from solo.objects.settings import Settings
from solo.objects.state.catalog import Catalog
from solo.objects.state.local_copy import discard_local_file
from solo.objects.state.store import StateStore
from solo.objects.tracing import Tracing, process_tracing
from solo.workers.datadir import WorkerDir, claim_worker_dir
from solo.workers.drain_threads import DrainThreads
from solo.workers.transport import MailboxTransport, ReplyWaiter

log = logging.getLogger(__name__)

Dispatch = Callable[..., None]  # dispatch(*object_ids): send activations for these objects (workers/broker.py)

# Threads beyond worker_threads for drains blocked in a call to another object. Past this many
# waiting callers, new drains queue behind them (and a wait can end only by its timeout).
MAX_WAITING_DRAINS = 1024
# How long a worker leaves an object whose file outgrew its data directory to other workers
# before it would take it again (space may have been freed meanwhile).
NO_ROOM_S = 60.0

# Wake-ups the wake listener reads per round trip.
WAKE_BATCH = 128

# Close events the reaper of a dead gateway enqueues per round trip (one at a time, 10,000 sockets
# took the maintainer 20 s on a loaded machine).
REAP_ENQUEUES_AT_ONCE = 500

# After a drain found the shared database unreachable, the host takes no new object for this many
# lease TTLs: objects it drops go to workers that can serve them, not back to it (a partition).
UNREACHABLE_PAUSE_TTLS = 1


@dataclass(eq=False)
class _Owned:
    """An object this worker holds the lease of, and when its drains may run."""

    object_id: str
    activation: Activation
    running: bool = False  # a drain is scheduled or in progress
    again: bool = False  # a wake-up arrived during the drain
    gone: bool = False  # lease lost or released: never touch again
    lost: bool = False  # the heartbeat's check found the lease taken while a drain was running
    evict: bool = False  # an operator asked for the activation to end after its batch
    closing: bool = False  # an idle eviction is queued on the evictor thread
    wanted: bool = False  # gone, and asked for again while its file still closed: taken again after
    last_active: float = field(default_factory=time.monotonic)

    @property
    def lease(self) -> str:
        return self.activation.lease


class ObjectHost:
    def __init__(
        self,
        settings: Settings,
        client: redis.Redis,
        catalog: Catalog,
        registry: ClassRegistry,
        dispatch: Dispatch,
        store: StateStore | None = None,
        *,
        clock_ms: Callable[[], int] = wall_clock_ms,
        on_stuck: Callable[[list[str]], None] | None = None,
        metrics: RuntimeMetrics | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.worker_id = settings.worker_id
        self._redis = client
        self.catalog = catalog
        self.store = store or StateStore(catalog.engine)
        self.registry = registry
        self._dispatch = dispatch
        grace_ms = settings.lease_ttl_ms
        self.mailbox = Mailbox(client, MailboxConfig(self.keys, settings.call_record_ttl_s, grace_ms))
        self.leases = Leases(client, self.keys, settings.lease_ttl_ms, grace_ms)
        self.generation = new_generation()  # of this process's lease heartbeat: its leases name it
        self.alarm_queue = AlarmQueue(client, self.keys, int(settings.alarm_horizon_s * 1000))
        self.clock_ms = clock_ms  # objects' clock: alarms and call records (tests inject a fake one)
        self._worker_dir: WorkerDir | None = None
        self.data_dir = Path(settings.data_dir)  # this worker's own directory once started
        self._owned: dict[str, _Owned] = {}
        self._no_room: dict[str, float] = {}  # object id -> until when (monotonic) it is left to other workers
        self._open: OrderedDict[str, None] = OrderedDict()  # objects with an open database, LRU first
        self._lock = threading.Lock()
        # Drains are submitted only while fewer than worker_threads run (_pump_locked); the pool
        # itself is larger so that drains waiting on other objects leave room for those objects.
        self._pool: DrainThreads[_Owned] = DrainThreads(
            self._drain, settings.worker_threads + MAX_WAITING_DRAINS, name_prefix="solo-object"
        )
        # Idle evictions and the closing of objects whose lease was lost run on a thread of their own:
        # on_stop() and the stop's record in the shared database may take seconds, and the maintainer
        # must never wait on them (it keeps the leases alive; a stall of a TTL loses them all).
        self._evictor = ThreadPoolExecutor(1, thread_name_prefix="solo-evict")
        self._ready: deque[_Owned] = deque()  # scheduled drains not yet submitted
        self._active = 0  # drains submitted and not waiting on another object
        # Still running a whole limit after its interrupt: stuck where no interrupt reaches.
        self.timer = CallTimer(settings.call_time_limit_s, stuck_after_s=settings.call_time_limit_s)
        self._on_stuck = on_stuck  # user code that could not be interrupted: the process must exit
        self.replies = ReplyWaiter(client, self.keys.replies(self.worker_id))
        self.transport = MailboxTransport(
            self.mailbox,
            dispatch,
            self.replies,
            self._waiting_on_call,
            wait_graph=WaitGraph(client, self.keys),
            namespace=settings.namespace,
        )
        self.metrics = metrics or RuntimeMetrics()
        self.metrics.watch_host(lambda: len(self._owned), lambda: len(self._open), lambda: self._active)
        self.gateways = GatewayRouter(client, self.keys)
        self.services = Services(
            settings=settings,
            mailbox=self.mailbox,
            catalog=catalog,
            store=self.store,
            registry=registry,
            alarm_queue=self.alarm_queue,
            transport=self.transport,
            data_dir=self.data_dir,
            clock_ms=clock_ms,
            timer=self.timer,
            metrics=self.metrics,
            gateways=self.gateways,
            tracing=tracing or process_tracing(),
        )
        self._stopping = threading.Event()
        self._accepting = True
        self._threads: list[threading.Thread] = []
        self.beats = WorkerBeats(client, self.keys)
        self._started_ms = wall_clock_ms()
        self._version = package_version()
        self._classes: tuple[str, ...] = ()
        self._classes_digest: str | None = None
        self._database_unreachable_until = 0.0  # time.monotonic(): take no new object before then

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        try:  # beating before the first lease is taken, so that none is born dead
            self._keep_leases_alive()
        except redis.RedisError:
            log.warning("could not start this worker's lease heartbeat; the maintainer retries")
        self._worker_dir = claim_worker_dir(Path(self.settings.data_dir), self.worker_id)
        self.data_dir = self._worker_dir.path
        self.services = self.services.in_dir(self.data_dir)
        for target, name in (
            (self._listen_for_wakes, "solo-wake"),
            (self._listen_for_replies, "solo-replies"),
            (self._keep_alive, "solo-heartbeat"),
            (self._maintain, "solo-maintain"),
            (lambda: self.timer.watch(self._stopping), "solo-call-timer"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self._started_ms = wall_clock_ms()
        try:  # listed at once; the maintainer keeps it up
            self.beat()
        except redis.RedisError:
            log.warning("could not write this worker's heartbeat record; the maintainer retries")
        log.info("object host %s started", self.worker_id)

    def stop(self, timeout_s: float | None = None) -> bool:
        """Drain: finish current batches, commit, release every lease, stop threads.

        Returns False if a batch was still running after `timeout_s` (stuck in user code
        that could not be interrupted): its thread is abandoned, and the process should exit.
        """
        with self._lock:
            self._accepting = False
        deadline = time.monotonic() + (self.settings.drain_timeout_s if timeout_s is None else timeout_s)
        while time.monotonic() < deadline:
            with self._lock:
                if not any(o.running for o in self._owned.values()):
                    break
            time.sleep(0.01)
        with self._lock:
            owned = list(self._owned.values())
            stuck = [o.activation.ref for o in owned if o.running]
        if stuck:
            log.error(
                "stopping with %d objects still running (their leases will lapse): %s",
                len(stuck),
                ", ".join(stuck[:10]),
            )
        self._release_all()
        self._stopping.set()
        try:  # unblock the wake listener's BLPOP instead of waiting out its timeout
            self._redis.rpush(self.keys.wake(self.worker_id), "")
        except redis.RedisError:
            pass
        self.replies.wake()
        for thread in self._threads:
            thread.join(timeout=5)
        try:  # gone from `solo workers ls` now, not when the record expires; stuck objects' leases free now
            self.beats.forget(self.worker_id)
            self.leases.stop_beating(self.worker_id, self.generation)
        except redis.RedisError:
            pass
        self._evictor.shutdown(wait=True, cancel_futures=True)
        self._pool.shutdown(wait=not stuck)
        if self._worker_dir is not None:
            self._worker_dir.release()
        log.info("object host %s stopped", self.worker_id)
        return not stuck

    @property
    def owned_count(self) -> int:
        with self._lock:
            return len(self._owned)

    def owns(self, object_id: str) -> bool:
        with self._lock:
            return object_id in self._owned

    def quiet(self) -> bool:
        """Nothing to do for now: no drain running or waiting, no wake-up unread, no call queued
        for an object held here. In-process systems wait for this after moving their clock."""
        with self._lock:
            if self._ready or any(o.running for o in self._owned.values()):
                return False
            owned = list(self._owned)
        if self._redis.llen(self.keys.wake(self.worker_id)):
            return False
        return all(self.mailbox.depth(object_id) == 0 for object_id in owned)

    # -- activation and wake-ups --------------------------------------------

    def activate(self, *object_ids: str) -> None:
        """The activation actor: run these objects' queued calls here, taking the leases nobody holds."""
        self.activate_many(object_ids)

    def activate_many(self, object_ids: Sequence[str]) -> None:
        """Run these objects' queued calls here, taking the leases nobody holds.

        The leases of the objects not held here are taken, and each taken object's first batch
        claimed, in one round trip (acquire_many.lua): its drain starts with the batch in hand."""
        wanted: list[str] = []
        with self._lock:
            now = time.monotonic()
            taking = self._accepting and now >= self._database_unreachable_until
            for object_id in dict.fromkeys(object_ids):
                entry = self._owned.get(object_id)
                if entry is not None and entry.gone:
                    entry.wanted = True  # its file still closes here: taken again once closed (_forget)
                elif entry is not None:
                    self._schedule_locked(entry)
                elif not taking:
                    continue  # another worker takes it: its activation is sent again after the grace period
                elif self._no_room.get(object_id, 0.0) > now:
                    continue  # its file did not fit here lately: sent again, maybe to a worker with room
                else:
                    wanted.append(object_id)
        if not wanted:
            return
        leases = [(object_id, lease_value(self.worker_id, self.generation)) for object_id in wanted]
        # A live holder elsewhere keeps its object (None); it was woken if calls wait (acquire_many.lua).
        batches = self.mailbox.acquire_and_claim(leases, self.settings.batch_size, self.leases.ttl_ms)
        with self._lock:
            for (object_id, value), batch in zip(leases, batches, strict=True):
                if batch is None:
                    continue
                activation = Activation(
                    object_id, value, self.services, make_room=functools.partial(self._make_room_for, object_id)
                )
                activation.claimed = batch  # a claimed batch: a drop hands it back
                entry = _Owned(object_id, activation)
                self._owned[object_id] = entry
                self._schedule_locked(entry)

    def _schedule_locked(self, entry: _Owned) -> None:
        if entry.gone:
            return
        if entry.running:
            entry.again = True
            return
        entry.running = True
        entry.again = False
        self._ready.append(entry)
        self._pump_locked()

    def _pump_locked(self) -> None:
        while self._ready and self._active < self.settings.worker_threads:
            self._active += 1
            self._pool.submit(self._ready.popleft())

    @contextlib.contextmanager
    def _waiting_on_call(self) -> Iterator[None]:
        """Around a drain's wait for another object's reply: its slot serves other drains meanwhile."""
        with self._lock:
            self._active -= 1
            self._pump_locked()
        try:
            with self.timer.paused():  # the wait has its own timeout
                yield
        finally:
            with self._lock:
                self._active += 1

    def evict(self, object_id: str) -> None:
        """End the object's activation after the batch it runs, if any (an operator's request).

        The drain lets go of it (state durable, memory dropped, lease released); its next
        call hydrates it afresh, on whichever worker takes it.
        """
        with self._lock:
            entry = self._owned.get(object_id)
            if entry is None:
                return
            entry.evict = True
            self._schedule_locked(entry)  # a running drain sees the flag after its batch, or runs again

    # -- draining ----------------------------------------------------------

    def _drain(self, entry: _Owned) -> None:
        """A pool thread's work: this drain, then whichever are ready when it ends (no hand-off to
        another thread, no submit, while drains queue up: what a busy worker spends least on)."""
        next_entry: _Owned | None = entry
        while next_entry is not None:
            next_entry = self._drain_one(next_entry)

    def _drain_one(self, entry: _Owned) -> _Owned | None:
        """Run one object's queued calls; the next ready drain, which this thread then runs, if any."""
        try:
            self._run_drain(entry)
        finally:
            with self._lock:
                self._active -= 1
                entry.running = False
                if entry.again and not entry.gone:  # woken meanwhile: to the back of the queue
                    entry.running, entry.again = True, False
                    self._ready.append(entry)
                following = None
                if self._ready and self._active < self.settings.worker_threads:
                    self._active += 1
                    following = self._ready.popleft()
                self._pump_locked()
        return following

    def _run_drain(self, entry: _Owned) -> None:
        activation = entry.activation
        try:
            while not entry.gone:
                if entry.lost:
                    self._forget(entry, "lease lost", why="lease_lost")
                    return
                if entry.evict:
                    break
                step = activation.step()
                if isinstance(step, Stop):
                    self._forget(entry, step.reason, release=step.release, why=_why(step))
                    return
                if step is None:  # nothing was queued
                    break
                entry.last_active = time.monotonic()
                if step == 0:
                    break
            if not entry.gone:
                stop = activation.settle()
                if stop is not None:
                    self._forget(entry, stop.reason, release=stop.release, why=_why(stop))
            if entry.evict and not entry.gone:
                activation.stop()  # on_stop(): a graceful eviction
                self._forget(entry, "evicted by an operator", release="drain", why="operator")
        except Exception as exc:
            if out_of_space(exc):
                self._out_of_room(entry, exc)
            else:
                # Redis, database or disk trouble: keep nothing we are unsure of; the calls stay
                # queued and the sweeper hands the object to a worker once the lease lapses.
                log.exception("drain of %s failed; dropping it", activation.ref)
                unreachable = _database_unreachable(exc)
                if unreachable:
                    pause_s = UNREACHABLE_PAUSE_TTLS * self.settings.lease_ttl_ms / 1000
                    self._database_unreachable_until = time.monotonic() + pause_s
                    log.warning("shared database unreachable: taking no new object for %.1f s", pause_s)
                # Unreachable: this host takes no new object for a while, so another can take this one at once.
                release: ReleaseMode = "drain" if unreachable else "backoff"
                self._forget(entry, "drain failed", release=release, why="failed", record_stop=not unreachable)

    def _out_of_room(self, entry: _Owned, exc: Exception) -> None:
        """The object's file outgrew this worker's data directory: the batch was abandoned uncommitted
        (nothing of it durable or answered). Let the object go, free the space its file took, and leave
        it to other workers for NO_ROOM_S; its calls stay queued (handed back, not counted as crashes)."""
        ref = entry.activation.ref
        with log_fields.bound(object=ref, error=DiskFull.code):
            log.error("dropping %s: no room in this worker's data directory %s (%s)", ref, self.data_dir, exc)
        with self._lock:
            now = time.monotonic()
            self._no_room = {oid: until for oid, until in self._no_room.items() if until > now}
            self._no_room[entry.object_id] = now + NO_ROOM_S
        self._forget(entry, "its data directory is full", release="backoff", why="disk_full", discard=True)
        discard_local_file(object_path(self.data_dir, entry.object_id))  # a file left half rebuilt at hydrate

    def _make_room_for(self, object_id: str) -> None:
        """Before `object_id` opens or uses its file: keep at most max_open_databases files open.

        The least recently used idle objects close theirs; they keep their lease and memory. The
        files are closed outside the host's lock (a close checkpoints the WAL into the file): the
        objects closing are marked running meanwhile, so no drain of theirs starts."""
        closing: list[_Owned] = []
        with self._lock:
            self._open[object_id] = None
            self._open.move_to_end(object_id)
            excess = len(self._open) - self.settings.max_open_databases
            if excess <= 0:
                return
            # Close the least recently used idle files. Busy ones move to the back, so this looks
            # at about `excess` entries, not at every open file (it runs before every batch).
            for _ in range(len(self._open)):
                if excess <= 0:
                    break
                oldest = next(iter(self._open))
                other = self._owned.get(oldest)
                if other is not None and other.activation.instance is not None:
                    if other.running:
                        self._open.move_to_end(oldest)
                        continue
                    other.running = True
                    closing.append(other)
                del self._open[oldest]
                excess -= 1
        try:
            for other in closing:
                other.activation.suspend()
        finally:
            for other in closing:
                self._closed(other)

    def _closed(self, entry: _Owned) -> None:
        """An object's file was closed to make room: its drains may run again."""
        with self._lock:
            entry.running = False
            if entry.gone:
                return
            if entry.lost:  # noticed by the heartbeat's check while it closed
                self._evictor.submit(self._forget, entry, "lease lost", why="lease_lost")
            elif entry.again:
                self._schedule_locked(entry)

    # -- letting go --------------------------------------------------------

    def _forget(
        self,
        entry: _Owned,
        reason: str,
        *,
        why: str,
        release: ReleaseMode | None = None,
        discard: bool = False,
        record_stop: bool = True,
    ) -> None:
        """Drop an object at once: close it (`discard`: and remove its file), and give its lease back
        if `release` says how.

        The object stays held here, gone, until its file is closed: a new activation of it (its lease
        lost and then free again, say) would rebuild the file under the open connection, and the old
        close would then remove the new WAL and mark the new file clean. One asked for meanwhile is
        started once the close ends.

        `why` is one of metrics.EVICTION_REASONS; `reason` says more, for the log; `record_stop`:
        Activation.close's."""
        with self._lock:
            if entry.gone:
                return
            entry.gone = True
            self._open.pop(entry.object_id, None)
        try:
            self.metrics.evictions.labels(why).inc()
            log.info("dropping %s: %s", entry.activation.ref, reason)
            if release:
                entry.activation.hand_back()
            entry.activation.close(discard=discard, record_stop=record_stop)
            if release:
                try:
                    result = self.leases.release(entry.object_id, entry.lease, release)
                    if result == RELEASED_WITH_CALLS and release == "drain":
                        self._dispatch(entry.object_id)
                except redis.RedisError:
                    log.exception("could not release %s; its lease will lapse", entry.activation.ref)
        finally:
            with self._lock:
                if self._owned.get(entry.object_id) is entry:
                    del self._owned[entry.object_id]
        if entry.wanted:
            try:
                self.activate_many([entry.object_id])
            except redis.RedisError:
                log.warning("could not take %s again; the sweeper sends it again", entry.activation.ref)

    def _release_all(self) -> None:
        """At stop: hand off every object held here and not running, worker_threads at a time.

        Each release waits on on_stop(), the file's close and two round trips (Postgres, Redis); one
        after another, a worker holding 3,000 objects took 11.7 s to stop (bench.drain). An object whose file was
        closing for another's room meanwhile (marked running) goes in the next pass; one still
        running (stuck in user code) is left, its lease lapsing once the heartbeat stops."""
        release = functools.partial(self._release, mode="drain")
        with ThreadPoolExecutor(self.settings.worker_threads, thread_name_prefix="solo-release") as pool:
            while True:
                with self._lock:
                    left = [o for o in self._owned.values() if not o.gone and not o.running]
                if not left:
                    return
                list(pool.map(release, left))
                if not any(o.gone for o in left):  # each had a drain start meanwhile: let them end, not spin
                    time.sleep(0.01)

    def _release(self, entry: _Owned, *, mode: ReleaseMode) -> None:
        """Evict (mode idle: only if nothing is queued) or hand off (mode drain)."""
        with self._lock:
            if entry.gone or entry.running:
                return
            entry.running = True  # keep drains out while closing
        try:
            entry.activation.stop()  # on_stop(): a graceful eviction or drain
            entry.activation.close()
            result = self.leases.release(entry.object_id, entry.lease, mode)
        except redis.RedisError:
            log.exception("release of %s failed", entry.activation.ref)
            result = None
        with self._lock:
            entry.running = False
            if result == 0:  # a call arrived while closing: keep the lease and serve it
                self._open.pop(entry.object_id, None)
                self._schedule_locked(entry)
                return
            entry.gone = True
            self._owned.pop(entry.object_id, None)
            self._open.pop(entry.object_id, None)
        self.metrics.evictions.labels("idle" if mode == "idle" else "shutdown").inc()
        if result == RELEASED_WITH_CALLS:
            self._dispatch(entry.object_id)

    # -- background threads ------------------------------------------------

    def _listen_for_wakes(self) -> None:
        key = self.keys.wake(self.worker_id)
        while not self._stopping.is_set():
            try:
                # Every wake-up already there, up to WAKE_BATCH, in one round trip (BLMPOP, Redis 7):
                # under load several arrive while this thread waits its turn for the interpreter.
                popped = self._redis.blmpop(1, 1, key, direction="LEFT", count=WAKE_BATCH)
            except redis.RedisError:
                log.warning("wake listener: Redis unavailable; retrying")
                self._stopping.wait(0.5)
                continue
            if popped is None:
                continue
            woken: list[str] = []
            for raw in cast(list[bytes | str], popped[1]):  # [key, [messages]]
                if not raw:
                    continue  # stop()'s nudge
                message = raw.decode() if isinstance(raw, bytes) else raw
                if message.startswith(EVICT_REQUEST_PREFIX):
                    self.evict(message[len(EVICT_REQUEST_PREFIX) :])
                else:
                    woken.append(message)
            self._wake(woken)

    def _wake(self, object_ids: list[str]) -> None:
        """Drain the woken objects. Those held and idle have their next batch claimed here, all in one
        round trip, so their drains start with it in hand (a claimed batch: a drop hands it back; a
        death counts a crash of its head, as of any batch claimed and not run to its end)."""
        idle: list[_Owned] = []
        others: list[str] = []
        with self._lock:
            for object_id in dict.fromkeys(object_ids):
                entry = self._owned.get(object_id)
                if entry is None or entry.gone or entry.running:
                    others.append(object_id)
                else:
                    entry.running = True  # reserved: no other drain of it starts meanwhile
                    entry.again = False
                    idle.append(entry)
        if others:  # not held here, or held with a drain running: taken or scheduled, in one round trip
            try:
                self.activate_many(others)
            except redis.RedisError:
                log.warning("wake listener: could not take %d woken objects; the sweeper sends them again", len(others))
        if not idle:
            return
        batches: list[list[Call] | None]
        try:
            batches = self.mailbox.claim_many([(e.object_id, e.lease) for e in idle], self.settings.batch_size)
        except redis.RedisError:
            log.warning("wake listener: could not claim %d woken objects' calls; their drains will", len(idle))
            batches = [None] * len(idle)
        with self._lock:
            for entry, batch in zip(idle, batches, strict=True):
                if batch == [] and not entry.again:
                    entry.running = False  # nothing queued after all (a drain took it before the wake-up)
                    continue
                if batch:
                    entry.activation.claimed = batch
                # None (a lost lease, or no answer): the drain's own claim finds out, and stops it if lost.
                self._ready.append(entry)
            self._pump_locked()

    def _listen_for_replies(self) -> None:
        self.replies.run(self._stopping)

    def _keep_alive(self) -> None:
        """The lease heartbeat and the worker's record, on a thread of their own: no maintenance
        task (a reap of a gateway with 10,000 sockets, say) can hold them up past the lease TTL."""
        interval = self.settings.lease_renew_interval_s
        next_renew = next_beat = 0.0
        while not self._stopping.wait(0.05):
            now = time.monotonic()
            try:
                if now >= next_renew:
                    next_renew = now + interval
                    self._keep_leases_alive()
                if now >= next_beat:
                    next_beat = now + HEARTBEAT_S
                    self.beat()
            except redis.RedisError:
                log.warning("lease heartbeat: Redis unavailable; retrying")
            except Exception:
                log.exception("lease heartbeat failed")

    def _maintain(self) -> None:
        interval = self.settings.lease_renew_interval_s
        # The idle scan looks at every object held (under the host's lock, which drains wait on):
        # a tenth of the idle time between scans lets an object go at most 10 % past it.
        evict_every_s = max(interval, self.settings.idle_evict_s / 10)
        next_sweep = next_evict = 0.0
        while not self._stopping.wait(0.05):
            now = time.monotonic()
            try:
                if now >= next_evict:
                    next_evict = now + evict_every_s
                    self._evict_idle()
                if now >= next_sweep:
                    next_sweep = now + interval
                    self.sweep()
                    self.reap_gateways()
                self._check_stuck()
            except redis.RedisError:
                log.warning("maintenance: Redis unavailable; retrying")
            except Exception:
                log.exception("maintenance failed")

    def record(self) -> WorkerRecord:
        """What this worker's heartbeat says about it now."""
        with self._lock:
            held, open_files, busy = len(self._owned), len(self._open), self._active
        names = tuple(self.registry.names())
        if names != self._classes:  # loaded at start; read again only if a class was defined since
            self._classes = names
            self._classes_digest = classes_digest(self.registry.get(n) for n in names)
        return WorkerRecord(
            id=self.worker_id,
            host=this_host(),
            pid=os.getpid(),
            version=self._version,
            classes=self._classes,
            classes_digest=self._classes_digest,
            objects=held,
            open_databases=open_files,
            threads_busy=busy,
            threads=self.settings.worker_threads,
            started_ms=self._started_ms,
            beat_ms=wall_clock_ms(),
        )

    def beat(self) -> None:
        """Write this worker's heartbeat record: one round trip per interval, whatever it holds."""
        self.beats.beat(self.record())

    def _check_stuck(self) -> None:
        """User code that ignored its interrupt: report it; the process decides to exit (on_stuck)."""
        stuck = self.timer.stuck()
        if not stuck:
            return
        log.error("user code still running long after its time limit and interrupt: %s", ", ".join(stuck))
        if self._on_stuck is not None:
            with self._lock:
                self._accepting = False  # take no new objects; the others are handed off at stop
            self._on_stuck(stuck)
            self._on_stuck = None  # once

    def _keep_leases_alive(self) -> None:
        """Renew this worker's heartbeat: every lease it holds stays live for one more TTL.

        If the heartbeat had lapsed (the process was paused, or Redis restarted), other workers may
        have taken some objects meanwhile: check every lease once and close the ones taken. (The
        epoch fence already stops any commit of theirs; this closes them instead of at their next call.)"""
        if self.leases.beat(self.worker_id, self.generation):
            return
        with self._lock:
            held = [(o.object_id, o.lease) for o in self._owned.values()]
        if not held:
            return
        lost = self.leases.lost(held)
        log.warning("lease heartbeat had lapsed: %d of %d leases were taken or lapsed meanwhile", len(lost), len(held))
        for object_id in lost:
            with self._lock:
                entry = self._owned.get(object_id)
            if entry is None:
                continue
            with self._lock:
                entry.lost = True  # a drain running (or starting) notices before its next batch
                idle = not entry.running
            if idle:  # closed on the evictor: the stop's record is a write to the shared database
                self._evictor.submit(self._forget, entry, "lease lost", why="lease_lost")

    def _evict_idle(self) -> None:
        """Queue each object idle for longer than SOLO_IDLE_EVICT_S on the evictor thread (once)."""
        cutoff = time.monotonic() - self.settings.idle_evict_s
        with self._lock:
            idle = [
                o
                for o in self._owned.values()
                if not o.running and not o.closing and not o.lost and not o.gone and o.last_active < cutoff
            ]
            for entry in idle:
                entry.closing = True
        for entry in idle:
            self._evictor.submit(self._release_idle, entry)

    def _release_idle(self, entry: _Owned) -> None:
        try:
            self._release(entry, mode="idle")
        except Exception:
            log.exception("idle eviction of %s failed", entry.activation.ref)
        finally:
            with self._lock:
                entry.closing = False

    def reap_gateways(self) -> int:
        """Close, at their objects, the WebSockets of API processes that died. Returns how many."""
        closed = 0
        for gateway in self.gateways.dead_gateways():
            events = self.gateways.lost_sockets(gateway)
            for start in range(0, len(events), REAP_ENQUEUES_AT_ONCE):
                chunk = events[start : start + REAP_ENQUEUES_AT_ONCE]
                for event, enqueued in zip(chunk, self.mailbox.enqueue_many(chunk), strict=True):
                    if enqueued.decision == "dispatch":
                        self._dispatch(event.object_id)
            self.gateways.forget(gateway)
            closed += len(events)
            log.warning("API process %s stopped holding %d WebSockets: closed at their objects", gateway, len(events))
        return closed

    def sweep(self) -> int:
        """Re-dispatch overdue objects (dead owner, lost activation). Returns how many."""
        sent = 0
        for object_id in self.leases.overdue():
            if self.leases.claim_redispatch(object_id):
                self._dispatch(object_id)
                sent += 1
        return sent


def _database_unreachable(exc: BaseException) -> bool:
    """The shared database did not answer (connection refused, timed out or lost), somewhere in the chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sa.exc.OperationalError | sa.exc.InterfaceError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _why(stop: Stop) -> str:
    """An activation's Stop as an eviction reason: the lease was taken or lapsed, or the activation gave up."""
    return "lease_lost" if stop.release is None else "stopped"
