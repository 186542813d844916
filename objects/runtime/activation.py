"""One object's activation on one worker: the whole sequence, in one place.

An activation begins when a worker takes the object's lease and ends when it
lets go. Each `step` runs one batch through the sequence that guarantee 3
(durable before visible) depends on, in this order:

  claim     take the next batch from the mailbox, only while the lease is ours
  hydrate   the first time: mint an epoch, rebuild the file, migrate, on_start()
  run       run the batch in one SQLite transaction, commit, and ship the commit
            to the shared database, fenced by the epoch (the output gate)
  send      enqueue the calls the batch sent to other objects
  announce  tell the scheduler's time index about the alarms it changed
  route     push the messages it sent on WebSockets to their gateways
  complete  publish the outcomes and pop the batch, if the lease is still ours; if calls
            are still queued, claim the next batch in the same round trip (the next step's)

so a caller who gets a reply finds the calls it sent already queued and its
alarms already known to the scheduler. `close` is the last step (evict); before a
graceful one, `stop` runs on_stop() and releases its commit like a batch's.

Nothing here starts a thread or decides when to run: the host (workers/host.py)
calls `step` on its pool until the mailbox is empty, and evicts on its own
timing. A `Stop` tells it to drop the object, and how to release the lease.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import redis

from solo.objects.calls import BatchResult, Call, Outcome
from solo.objects.context import wall_clock_ms
from solo.objects.coordination.alarm_queue import AlarmQueue
from solo.objects.coordination.gateways import GatewayRouter
from solo.objects.coordination.leases import LOST, ReleaseMode
from solo.objects.coordination.mailbox import Mailbox
from solo.objects.errors import InvalidName, OwnershipLost, SchemaTooNew, SoloError, StartFailed, UnknownClass
from solo.objects.metrics import RuntimeMetrics
from solo.objects.naming import is_object_id
from solo.objects.registry import ClassRegistry
from solo.objects.remote import Transport
from solo.objects.runtime import log_fields
from solo.objects.runtime.instance import ObjectInstance
from solo.objects.runtime.time_limit import CallTimer
from solo.objects.settings import Settings
from solo.objects.state.catalog import Catalog
from solo.objects.state.store import StateStore
from solo.objects.tracing import OFF, Tracing

log = logging.getLogger(__name__)


def object_path(data_dir: Path, object_id: str) -> Path:
    """Files are named by object id (a hash), never by the user's name, nor by any other text."""
    if not is_object_id(object_id):  # a path, or anything else that came from outside: never a file
        raise ValueError(f"{object_id!r} is not an object id")
    return data_dir / object_id[:2] / f"{object_id}.sqlite"


@dataclass(frozen=True)
class Services:
    """What every activation on a worker uses; built once by the host."""

    settings: Settings
    mailbox: Mailbox
    catalog: Catalog
    store: StateStore
    registry: ClassRegistry
    alarm_queue: AlarmQueue
    transport: Transport  # sends, and calls that wait on other objects
    data_dir: Path  # this worker's own directory
    clock_ms: Callable[[], int]  # the objects' clock: alarms and call records
    timer: CallTimer  # the call time limit, watched by the host's thread
    metrics: RuntimeMetrics = field(default_factory=RuntimeMetrics)
    gateways: GatewayRouter | None = None  # where WebSocket messages go (None: kept in the outbox)
    tracing: Tracing = OFF  # spans of calls (objects/tracing.py)

    def in_dir(self, data_dir: Path) -> Services:
        return replace(self, data_dir=data_dir)


@dataclass(frozen=True)
class Stop:
    """The activation is over: drop the object, releasing its lease as `release` says.

    `release` None means the lease is no longer ours (taken over, or lapsed): leave it.
    """

    reason: str
    release: ReleaseMode | None = None


class Activation:
    def __init__(
        self, object_id: str, lease: str, services: Services, *, make_room: Callable[[], None] = lambda: None
    ) -> None:
        self.object_id = object_id
        self.lease = lease  # the value our lease holds: every mailbox step checks it
        self.services = services
        self.instance: ObjectInstance | None = None
        self.epoch = 0
        # The batch in hand: claimed, not yet completed. Between steps, the next batch, which the
        # previous batch's complete claimed when calls were still queued: the next step runs it, and a
        # drop hands it back like any claimed batch.
        self.claimed: list[Call] = []
        self.ref = object_id  # Class/name once a call has named it: what log lines call the object
        self._make_room = make_room  # before the object's file is opened or used (the host's open-file bound)

    # -- one batch -------------------------------------------------------------

    def step(self) -> int | Stop | None:
        """Run the next batch through the whole sequence.

        Returns how many calls are still queued, None if the mailbox was empty, or a Stop.
        """
        s = self.services
        # The previous batch's complete claimed this one already when calls were still queued.
        calls: list[Call] | None = self.claimed or s.mailbox.claim(self.object_id, self.lease, s.settings.batch_size)
        if calls is None:
            return Stop("lease lost")
        if not calls:
            return None
        claimed_ms, clock_ms = wall_clock_ms(), s.clock_ms()
        s.tracing.queued(calls, claimed_ms)
        self.claimed = calls
        if self.ref == self.object_id:
            self.ref = f"{calls[0].class_name}/{calls[0].object_name}"
        if self.instance is None:
            stop = self._hydrate(calls)
            if stop is not None:
                return stop
        assert self.instance is not None
        self._make_room()
        try:
            result = self.instance.run_batch(calls)
        except OwnershipLost as exc:
            # Taken over, replaced or deleted: nothing of this batch is durable or published.
            # If the lease is still ours (an operator replaced the state), a fresh activation
            # takes the queued calls.
            s.metrics.fenced.labels(self.instance.cls.__name__).inc()
            return Stop(str(exc), release="drain")
        remaining = self._release(result, calls)  # self.claimed: the next batch, or none
        self._report_poisoned(calls, result.outcomes)
        if remaining == LOST:
            return Stop("lease lost before publishing")
        instance = self.instance
        s.metrics.batch_done(
            instance.cls.__name__,
            instance.tenant,
            calls,
            result.outcomes,
            claimed_ms=claimed_ms,
            done_ms=wall_clock_ms(),
            remaining=remaining,
            clock_ms=clock_ms,
        )
        return remaining

    def _report_poisoned(self, calls: Sequence[Call], outcomes: Sequence[Outcome]) -> None:
        poisoned = [c for c, o in zip(calls, outcomes, strict=True) if (o.error or {}).get("code") == "poisoned"]
        if poisoned:
            try:
                self.services.mailbox.record_poisoned(self.object_id, poisoned, self.services.clock_ms())
            except redis.RedisError:
                log.warning("could not list %d poisoned calls of %s for operators", len(poisoned), self.ref)

    def hand_back(self) -> None:
        """The batch in hand failed and this worker lives on: its calls are not crashes (mailbox.hand_back)."""
        claimed, self.claimed = self.claimed, []
        try:
            self.services.mailbox.hand_back(claimed)
        except redis.RedisError:
            log.warning("could not hand back %d calls of %s; each counts as one crash", len(claimed), self.ref)

    def _release(self, result: BatchResult, calls: Sequence[Call] = ()) -> int:
        """Committed and shipped: send, announce, then publish `calls`' outcomes (in that order).

        Returns the calls still queued; the next batch, claimed with the outcomes' publication, is
        then in hand (`claimed`)."""
        self._send(result.sends)
        self._announce(result.alarms)
        self._route(result.socket_messages, result.socket_seq)
        if not calls:
            return 0
        s = self.services
        remaining, self.claimed = s.mailbox.complete_and_claim(
            self.object_id, self.lease, calls, result.outcomes, s.settings.batch_size
        )
        return remaining

    def _send(self, sends: list[Call]) -> None:
        """Enqueue committed outbox entries; they are deleted in the instance's next transaction.

        If this raises, the entries stay in the object's database and its next owner sends
        them again at hydrate, under the same call ids.
        """
        for call in sends:
            self.services.transport.send(call)
        if sends and self.instance is not None:
            self.instance.ack_outbox([c.call_id for c in sends])

    def _route(self, messages: list[str], up_to_seq: int) -> None:
        """Push committed WebSocket messages to their gateways; deleted in the instance's next transaction.

        If this raises, they stay in the object's outbox and its next owner routes them again at
        hydrate; gateways drop what they already delivered (objects/websockets.py).
        """
        gateways = self.services.gateways
        if not messages or gateways is None:
            return
        gateways.route(messages)
        if self.instance is not None:
            self.instance.ack_routed(up_to_seq)

    def _announce(self, alarms: list[tuple[str, int | None]]) -> None:
        """Tell the scheduler about shipped alarm changes. If this fails, its refill finds them."""
        if not alarms or self.instance is None:
            return
        instance, s = self.instance, self.services
        try:
            s.alarm_queue.announce(instance.object_id, instance.cls.__name__, instance.name, alarms, s.clock_ms())
        except redis.RedisError:
            log.warning("could not announce alarms of %s; the scheduler's refill will find them", instance.ref)

    # -- hydrate ---------------------------------------------------------------

    def _hydrate(self, calls: list[Call]) -> Stop | None:
        with self.services.tracing.hydrate(calls[0]):  # in the trace of the call that brought it up
            return self._hydrate_now(calls)

    def _hydrate_now(self, calls: list[Call]) -> Stop | None:
        s, first = self.services, calls[0]
        began = time.perf_counter()
        try:
            path = object_path(s.data_dir, self.object_id)
        except ValueError as exc:  # nothing solo makes: no file, no epoch, no ledger row for it
            return self._fail_batch(calls, InvalidName(str(exc)))
        try:
            cls = s.registry.get(first.class_name)
        except UnknownClass as exc:
            return self._fail_batch(calls, exc)
        try:
            takeover = s.catalog.take_over(
                self.object_id,
                s.settings.namespace,
                first.class_name,
                first.object_name,
                s.settings.worker_id,
                known_schema=len(cls.migrations),
                tenant=first.tenant,
            )
        except SchemaTooNew as exc:
            log.warning("refusing %s/%s: %s", first.class_name, first.object_name, exc)
            return Stop(str(exc), release="backoff")  # leave it for a worker with newer code
        s.tracing.annotate(epoch=takeover.epoch)
        instance = ObjectInstance(
            cls,
            object_id=self.object_id,
            name=first.object_name,
            path=path,
            epoch=takeover.epoch,
            call_retention_ms=s.settings.call_record_ttl_s * 1000,
            clock_ms=s.clock_ms,
            store=s.store,
            head_seq=takeover.head_seq,
            log_bytes=takeover.log_bytes,
            namespace=s.settings.namespace,
            tenant=takeover.tenant,
            transport=s.transport,
            call_timeout_s=s.settings.call_timeout_s,
            timer=s.timer,
            poison_after=s.settings.poison_after,
            debug=s.settings.debug,
            max_result_bytes=s.settings.max_result_bytes,
            on_shipped=s.metrics.shipped,
            tracing=s.tracing,
        )
        self._make_room()
        try:
            with log_fields.bound(call_id=first.call_id):  # on_start()'s failure is this call's answer
                started = instance.hydrate(ship_with_first_batch=True)  # step runs `calls` next
        except SchemaTooNew as exc:
            log.warning("refusing %s: %s", instance.ref, exc)
            return Stop(str(exc), release="backoff")  # leave it for a worker with newer code
        except StartFailed as exc:
            log.warning("start of %s failed: %s", instance.ref, exc)
            return self._fail_batch(calls, exc)
        except OwnershipLost as exc:
            return Stop(str(exc))
        self.instance, self.epoch = instance, takeover.epoch
        s.metrics.activations.labels(cls.__name__).inc()
        s.metrics.hydrate_duration.labels(cls.__name__).observe(time.perf_counter() - began)
        # Sent by a former owner's committed calls but maybe never enqueued (it died after
        # shipping), and what on_start() sent: same call ids, so the targets run each once.
        # Released with the first batch's outcomes, whose shipment makes hydrate's commits durable
        # (`started` is empty then, unless on_start() wrote to shared tables and shipped at once).
        self._release(started)
        return None

    def _fail_batch(self, calls: list[Call], error: SoloError) -> Stop:
        """Answer a batch that cannot run at all, then let the object go."""
        outcomes = [Outcome.failure(c.call_id, error.code, error.message, type_=type(error).__name__) for c in calls]
        self.services.mailbox.complete(self.object_id, self.lease, calls, outcomes)
        for c in calls:
            self.services.metrics.count_call(c.class_name, c.method, error.code, c.tenant)
        self.claimed = []
        return Stop(error.message, release="drain")

    # -- between batches and at the end ----------------------------------------

    def settle(self) -> Stop | None:
        """The mailbox is empty: delete the sent outbox entries now, as no batch follows to do it."""
        if self.instance is None:
            return None
        try:
            self.instance.flush_outbox()
        except OwnershipLost as exc:
            return Stop(str(exc), release="drain")
        return None

    def suspend(self) -> None:
        """Close the file but keep the object in memory (the open-file bound)."""
        if self.instance is not None:
            self.instance.suspend()

    def stop(self) -> None:
        """Before a graceful eviction: on_stop(), shipped, then what it sent, set or routed released.

        Best effort, never raising: the eviction goes on whatever happens here. What it
        committed and could not release, the object's next owner releases at hydrate.
        """
        instance = self.instance
        if instance is None:
            return
        self._make_room()
        try:
            self._release(instance.stop())
            instance.flush_outbox()
        except OwnershipLost as exc:
            log.warning("on_stop() of %s not kept: %s", self.ref, exc)
        except Exception:
            log.exception("stopping %s failed; evicting it all the same", self.ref)

    def close(self, *, discard: bool = False, record_stop: bool = True) -> None:
        """Evict: close the file (marked clean when fully shipped) and record the stop.

        `discard`: remove the file instead (no room for it on this worker's disk).
        `record_stop=False`: the shared database is unreachable; the activation stays without a
        stop in the ledger, as a killed worker's does, instead of waiting for it again."""
        instance, self.instance = self.instance, None
        if instance is None:
            return
        try:
            state_bytes = instance.state_bytes()
            # Nothing to record if its start never shipped (its first batch failed): as for a failed hydrate.
            version = instance.schema_version() if instance.is_open and instance.start_shipped else 0
            if discard:
                instance.discard()
            else:
                instance.close()
            if version and record_stop:
                self.services.catalog.record_stop(
                    self.object_id, self.epoch, state_bytes=state_bytes, schema_version=version
                )
        except Exception:
            log.exception("closing %s failed", instance.ref)
