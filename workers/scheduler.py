"""The scheduler: turns due alarms into fire calls in their objects' mailboxes.

One scheduler dispatches at a time, system-wide, through a singleton lease;
it runs as `solo scheduler` (the Procfile's `scheduler:`) and, unless
SOLO_SCHEDULER_IN_WORKERS is off, inside every worker as a standby.

The time index is a Redis sorted set of alarms due within the horizon
(objects/coordination/alarm_queue.py). The scheduler sleeps until the earliest entry is due,
at most SOLO_SCHEDULER_MAX_SLEEP_MS; each pass records that next look in Redis, and an
announcement of an alarm due before it wakes the scheduler at once through a pub/sub
channel (docs/adr/0018-scheduler-woken-by-announcements.md), so an idle deployment's
scheduler looks once per longest sleep instead of polling. A lost wake-up costs at most
that sleep. Then for each due entry it postpones it by SOLO_ALARM_REDELIVER_S and
enqueues a fire call, exactly as the API enqueues a call. The owner
announces the alarm's next state once the fire has run, which replaces that
score; if the fire is lost, the entry comes due again and is sent again. Extra
fires are harmless: the object runs a fire only while its occurrence is due.

An alarm of a class no live worker serves (objects/coordination/workers.py: the classes in the
workers' heartbeat records) is orphaned: nothing could run its fire, so the scheduler takes it
out of the time index instead of sending it, and the refill leaves it out, until a worker
serving its class appears. It stays in the shared index, listed as orphaned, until an
operator purges or cancels it. With no live worker at all, nothing is judged orphaned.

Every SOLO_ALARM_REFILL_S, and whenever it (re)takes the lease, the scheduler
adds to Redis the alarms of the shared index due within the horizon that Redis
lacks: after a Redis restart, or an owner killed between shipping and
announcing, nothing is lost, only delayed by at most one refill.

The scheduler also starts the compactor (objects/state/compactor.py) every
SOLO_COMPACT_INTERVAL_S, on a thread of its own so that alarms never wait for
it. A Redis key set for the interval when a pass starts spaces passes out
across schedulers and restarts; a pass stops between batches once its
scheduler no longer holds the lease.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

from solo.objects.alarms import FIRE_METHOD
from solo.objects.calls import Call
from solo.objects.context import wall_clock_ms
from solo.objects.coordination.alarm_queue import AlarmQueue, DueAlarm, Wakeups
from solo.objects.coordination.keys import Keys
from solo.objects.coordination.mailbox import Mailbox, MailboxConfig
from solo.objects.coordination.singleton import Holding, SingletonLease
from solo.objects.coordination.workers import HEARTBEAT_S, WorkerBeats, served_classes
from solo.objects.metrics import SchedulerMetrics
from solo.objects.naming import new_call_id
from solo.objects.settings import Settings
from solo.objects.state.alarm_index import AlarmIndex
from solo.objects.state.compactor import Compactor

log = logging.getLogger(__name__)

Dispatch = Callable[..., None]  # dispatch(*object_ids): send activations for these objects (workers/broker.py)
DISPATCH_BATCH = 500
COMPACTION_LOOK_MS = 5000  # how often a leading scheduler asks whether a compaction pass is due
# A wake-up starts a pass no sooner than this after the last one began (the former poll interval): a
# stream of alarms set due at once is dispatched in batches, not one pass per announcement (ADR 0018).
WOKEN_PASS_GAP_MS = 10


def fire_call(alarm: DueAlarm, now_ms: int) -> Call:
    """A fire for one dispatch. Its id is new each time: what makes a fire run at most once per
    occurrence is the alarm's own row (a fire runs only while its occurrence is still due), not
    the call id, so a fire that arrived early and did nothing never hides a later one."""
    return Call(
        call_id=new_call_id(),
        object_id=alarm.object_id,
        class_name=alarm.class_name,
        object_name=alarm.object_name,
        method=FIRE_METHOD,
        args={"name": alarm.name, "due_ms": alarm.due_ms},
        enqueued_ms=now_ms,
    )


class Scheduler:
    def __init__(
        self,
        settings: Settings,
        client: redis.Redis,
        index: AlarmIndex,
        dispatch: Dispatch,
        *,
        compactor: Compactor | None = None,
        clock_ms: Callable[[], int] = wall_clock_ms,
        metrics: SchedulerMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.metrics = metrics or SchedulerMetrics()
        keys = Keys(settings.key_prefix)
        self.keys = keys
        self.queue = AlarmQueue(client, keys, int(settings.alarm_horizon_s * 1000))
        self.mailbox = Mailbox(client, MailboxConfig(keys, settings.call_record_ttl_s, settings.lease_ttl_ms))
        self.index = index
        self.lease = SingletonLease(client, keys.scheduler, settings.worker_id, settings.lease_ttl_ms)
        self._dispatch = dispatch
        self.clock_ms = clock_ms
        self.leading = False
        self._next_refill_ms = 0
        self._next_lead_ms = 0  # when to renew (or try to take) the lease next
        # When to look at the time index next, as the last tick saw it (0: at once): the first entry
        # not yet due, or the longest sleep. An announcement of an alarm due sooner wakes us.
        self._next_look_ms = 0
        self._last_pass_ms = 0  # when the last pass began
        self.woken_pass_gap_ms = WOKEN_PASS_GAP_MS
        self.wakeups = Wakeups(client, keys)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.compactor = compactor
        self._compaction: threading.Thread | None = None
        self._next_compaction_look_ms = 0
        self.beats = WorkerBeats(client, keys)
        self._served: set[str] | None = None
        self._served_until = 0.0

    # -- one step at a time (tests drive these directly on a fake clock) ------

    def lead(self) -> bool:
        """Take or keep the lease; a scheduler that has just taken it refills at once."""
        holding = self.lease.hold()
        if holding == Holding.TAKEN:
            log.info("scheduler %s is now the scheduler", self.settings.worker_id)
            self._next_refill_ms = 0
            self._next_look_ms = 0
        elif holding == Holding.NO and self.leading:
            log.info("scheduler %s lost the lease", self.settings.worker_id)
        self.leading = holding != Holding.NO
        self.metrics.leading.set(1 if self.leading else 0)
        return self.leading

    def refill(self) -> int:
        """Add alarms due within the horizon that Redis lacks; returns how many were missing."""
        now = self.clock_ms()
        self._next_refill_ms = now + int(self.settings.alarm_refill_s * 1000)
        rows = self.index.due_before(now + self.queue.horizon_ms)
        served = self.served()
        added = self.queue.add_missing(
            DueAlarm(r.object_id, r.class_name, r.object_name, r.name, r.next_ms)
            for r in rows
            if r.next_ms is not None and (served is None or r.class_name in served)
        )
        if added:
            self.metrics.missing.inc(added)
            log.info("scheduler: %d alarms were missing from Redis's time index", added)
        return added

    def tick(self) -> int:
        """Dispatch every alarm due now; returns how many fires were sent."""
        now = self.clock_ms()
        self._last_pass_ms = now
        if now >= self._next_refill_ms:
            self.refill()
        self.metrics.passes.inc()
        max_sleep_ms = self.settings.scheduler_max_sleep_ms
        look_by = now + max_sleep_ms
        sent = 0
        while True:
            # One round trip gives what is due and when the next one is (for wait_s), and nothing else:
            # reading every entry near the front cost each pass O(entries within the horizon). It also
            # records our next look, from which on announcements of alarms due sooner wake us.
            due, next_due = self.queue.due_and_next(now, DISPATCH_BATCH, look_by, 3 * max_sleep_ms)
            self._next_look_ms = look_by if next_due is None else min(look_by, next_due)
            servable = self._drop_orphaned(due)
            if servable:
                # The postponement and every fire in one more round trip, postponement first: a pass
                # costs the same few round trips whether one alarm is due or five hundred.
                pipe = self.client.pipeline(transaction=False)
                self.queue.postpone(servable, now + int(self.settings.alarm_redeliver_s * 1000), pipe)
                fires = [fire_call(alarm, now) for alarm in servable]
                enqueues = self.mailbox.enqueue_many(fires, pipe)
                wanted = [fire.object_id for fire, e in zip(fires, enqueues, strict=True) if e.decision == "dispatch"]
                if wanted:  # their activations in as few messages as they fit in
                    self._dispatch(*dict.fromkeys(wanted))
            if servable:  # what was postponed comes due again then, unless announced meanwhile
                redeliver_ms = now + int(self.settings.alarm_redeliver_s * 1000)
                self._next_look_ms = min(self._next_look_ms, redeliver_ms)
            sent += len(servable)
            self.metrics.dispatched.inc(len(servable))
            if len(due) < DISPATCH_BATCH:
                return sent

    def served(self) -> set[str] | None:
        """The classes some live worker serves (read at most once per heartbeat); None if no worker lives."""
        now = time.monotonic()
        if now >= self._served_until:
            self._served = served_classes(self.beats.live(wall_clock_ms())) or None
            self._served_until = now + HEARTBEAT_S
        return self._served

    def _drop_orphaned(self, due: list[DueAlarm]) -> list[DueAlarm]:
        """Take the alarms of classes no live worker serves out of the time index; the others go on."""
        if not due:
            return due
        served = self.served()
        if served is None:
            return due
        orphaned = [a for a in due if a.class_name not in served]
        if not orphaned:
            return due
        self.queue.forget(orphaned)
        self.metrics.orphaned.inc(len(orphaned))
        log.warning(
            "scheduler: %d alarms of classes no worker serves are orphaned, no longer sent (%s); see `solo alarms ls"
            " --state orphaned`",
            len(orphaned),
            ", ".join(sorted({a.class_name for a in orphaned})),
        )
        return [a for a in due if a.class_name in served]

    def compaction_due(self) -> bool:
        """Whether to start a compaction pass now: none runs here and none started within the interval.

        Redis is asked at most every COMPACTION_LOOK_MS, not on every tick."""
        interval_ms = int(self.settings.compact_interval_s * 1000)
        now = self.clock_ms()
        if self.compactor is None or interval_ms <= 0 or now < self._next_compaction_look_ms:
            return False
        self._next_compaction_look_ms = now + min(interval_ms, COMPACTION_LOOK_MS)
        if self._compaction is not None and self._compaction.is_alive():
            return False
        return bool(self.client.set(self.keys.compaction, self.settings.worker_id, nx=True, px=interval_ms))

    def start_compaction(self) -> None:
        compactor = self.compactor
        assert compactor is not None

        def compact() -> None:
            started, started_cpu = time.monotonic(), time.thread_time()
            try:
                report = compactor.run(keep_going=lambda: self.leading and not self._stopping.is_set())
            except Exception:  # the next interval tries again; nothing was lost
                log.exception("compaction failed")
                return
            self.metrics.compacted(report.deleted_rows, time.monotonic() - started, time.thread_time() - started_cpu)

        self._compaction = threading.Thread(target=compact, name="solo-compactor", daemon=True)
        self._compaction.start()

    def wait_s(self) -> float:
        """How long to sleep after a tick: until the next entry is due, at most the longest sleep. An
        alarm announced meanwhile due sooner cuts it short (`Wakeups`)."""
        return max(0.0, (self._next_look_ms - self.clock_ms()) / 1000)

    # -- the thread --------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="solo-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self.leading:
            try:
                self.wakeups.wake()  # cut its sleep short
            except redis.RedisError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._compaction is not None:
            self._compaction.join(timeout=5)  # it stops after its current batch
        if self.leading:
            try:
                self.lease.release()  # a standby takes over at once instead of after the ttl
            except redis.RedisError:
                pass
            self.leading = False
            self.metrics.leading.set(0)

    def step(self) -> None:
        """One turn of the thread's loop: keep the lease (every third of its ttl); as the leader, look at
        the time index when the last look said to, or at once when woken; then sleep until the next
        look, a wake-up, or the lease's renewal, whichever comes first."""
        now = self.clock_ms()
        renew_every_ms = self.settings.lease_ttl_ms // 3
        if now >= self._next_lead_ms:
            self._next_lead_ms = now + renew_every_ms
            self.lead()
        if not self.leading:
            self.wakeups.close()
            self._stopping.wait(renew_every_ms / 1000)
            return
        # Listening before the pass that records our next look: no wake-up sent after it is missed.
        self.wakeups.listen()
        if self.compaction_due():
            self.start_compaction()
        if self.clock_ms() >= self._next_look_ms:
            self.tick()
        sleep_s = min(self.wait_s(), max(0.0, (self._next_lead_ms - self.clock_ms()) / 1000))
        if self.wakeups.wait(sleep_s):
            self.metrics.wakeups.inc()
            # An alarm is due sooner than we meant to look: look at once, or once the gap has passed.
            self._next_look_ms = min(self._next_look_ms, self._last_pass_ms + self.woken_pass_gap_ms)

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self.step()
                except redis.RedisError as exc:
                    log.warning("scheduler: Redis unavailable (%s); retrying", exc)
                    self.leading = False
                    self.metrics.leading.set(0)
                    self.wakeups.close()
                    self._next_lead_ms = 0
                    self._stopping.wait(0.5)
                except Exception:
                    log.exception("scheduler step failed")
                    self._stopping.wait(0.5)
        finally:
            self.wakeups.close()
