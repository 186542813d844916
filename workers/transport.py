"""Calls from this worker's objects to other objects: delivery and the reply path.

`MailboxTransport` enqueues a call exactly as the API does (enqueue.lua, then an
activation when the decision is "dispatch", or the recorded outcome when it is
"done"). A waiting call names this worker's reply list; one `ReplyWaiter`
thread per worker pops that list (BLPOP, 1 s) and resolves the waiting
futures by call id.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from typing import cast

import redis

from solo.objects.calls import Call, Outcome
from solo.objects.coordination.mailbox import Mailbox
from solo.objects.coordination.wait_graph import WaitGraph
from solo.objects.errors import RemoteCallTimeout, RemoteCallUnavailable
from solo.objects.naming import is_call_id, is_object_id, object_id
from solo.objects.remote import crossing_cycle_error

# An edge of the wait graph outlives its wait's timeout by this much if its worker dies waiting.
WAIT_EDGE_SLACK_MS = 5_000

log = logging.getLogger(__name__)


class ReplyWaiter:
    """Futures by call id, resolved from one reply list."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self._redis = client
        self.key = key
        self._waiting: dict[str, list[Future[Outcome]]] = defaultdict(list)
        self._lock = threading.Lock()

    def expect(self, call_id: str) -> Future[Outcome]:
        """Register before enqueueing, so that a fast reply cannot be missed."""
        future: Future[Outcome] = Future()
        with self._lock:
            self._waiting[call_id].append(future)
        return future

    def forget(self, call_id: str, future: Future[Outcome]) -> None:
        with self._lock:
            futures = self._waiting.get(call_id)
            if futures and future in futures:
                futures.remove(future)
                if not futures:
                    del self._waiting[call_id]

    def run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            try:
                item = self._redis.blpop([self.key], timeout=1)
                if item is None:
                    continue
                batch = [item[1]]
                # What else is there, without blocking. With a count, LPOP answers a list or nil
                # (redis-py types every shape at once).
                more = cast(list[bytes | str] | None, self._redis.lpop(self.key, 256))
                if more:
                    batch.extend(more)
            except redis.RedisError:
                log.warning("reply listener: Redis unavailable; retrying")
                stopping.wait(0.5)
                continue
            for raw in batch:
                if raw:  # "" only wakes the loop up (stop)
                    self._resolve(Outcome.from_payload(raw))
        with self._lock:
            waiting, self._waiting = self._waiting, defaultdict(list)
        for futures in waiting.values():
            for future in futures:
                future.cancel()

    def wake(self) -> None:
        with contextlib.suppress(redis.RedisError):
            self._redis.rpush(self.key, "")

    def _resolve(self, outcome: Outcome) -> None:
        with self._lock:
            futures = self._waiting.pop(outcome.call_id, [])
        for future in futures:
            if not future.done():
                future.set_result(outcome)


class MailboxTransport:
    """objects.remote.Transport over the mailboxes: what `self.objects` uses on a worker."""

    def __init__(
        self,
        mailbox: Mailbox,
        dispatch: Callable[[str], None],
        replies: ReplyWaiter,
        waiting: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
        *,
        wait_graph: WaitGraph | None = None,
        namespace: str = "",
    ) -> None:
        self._mailbox = mailbox
        self._dispatch = dispatch
        self._replies = replies
        self._waiting = waiting  # the host lends the caller's thread slot out while it waits
        self._graph = wait_graph  # cycles across chains (objects/coordination/wait_graph.py)
        self._namespace = namespace

    @property
    def reply_to(self) -> str:
        return self._replies.key

    def send(self, call: Call) -> None:
        """Enqueue; raises on Redis trouble (the caller keeps the entry and sends it again).

        A sent call's keys come only from ids solo makes, and nobody waits for its reply: one
        that names anything else (it came from a file, not from solo) is logged and dropped.
        """
        if not (is_object_id(call.object_id) and is_call_id(call.call_id)) or call.reply_to:
            log.error(
                "dropped a sent call to %s/%s instead of enqueueing it: ids not solo's, or a reply list named",
                call.class_name,
                call.object_name,
            )
            return
        enqueued = self._mailbox.enqueue(call)
        if enqueued.decision == "dispatch":
            self._dispatch(call.object_id)

    def call(self, call: Call, timeout_s: float) -> Outcome:
        target = f"{call.class_name}/{call.object_name}"
        caller_id = self._start_waiting(call, target, timeout_s)
        future = self._replies.expect(call.call_id)
        try:
            try:
                enqueued = self._mailbox.enqueue(call)
                if enqueued.outcome is not None:  # this call id already ran (a re-run caller)
                    return enqueued.outcome
                if enqueued.decision == "dispatch":
                    self._dispatch(call.object_id)
            except redis.RedisError as exc:
                raise RemoteCallUnavailable(
                    f"{target}.{call.method}: could not enqueue: {type(exc).__name__}: {exc}",
                    target=target,
                    method=call.method,
                    call_id=call.call_id,
                ) from exc
            with self._waiting():
                try:
                    return future.result(timeout_s)
                except TimeoutError:
                    raise RemoteCallTimeout(
                        f"{target}.{call.method}: no result within {timeout_s:g} s (call {call.call_id} stays queued)",
                        target=target,
                        method=call.method,
                        call_id=call.call_id,
                    ) from None
                except CancelledError:
                    raise RemoteCallUnavailable(
                        f"{target}.{call.method}: this worker is stopping", call_id=call.call_id
                    ) from None
        finally:
            self._replies.forget(call.call_id, future)
            if caller_id is not None and self._graph is not None:
                with contextlib.suppress(redis.RedisError):  # else it lapses with its TTL
                    self._graph.done(caller_id)

    def _start_waiting(self, call: Call, target: str, timeout_s: float) -> str | None:
        """Record the caller's wait on the target; raises CycleError if that closes a cycle.

        Returns the caller's object id (to end the wait), or None when nothing was recorded."""
        if self._graph is None or not call.chain:
            return None
        caller = call.chain[-1]  # the calling object: every waiting call's chain ends with it
        class_name, name = caller.split("/", 1)
        caller_id = object_id(self._namespace, class_name, name, call.tenant)
        ttl_ms = int(timeout_s * 1000) + WAIT_EDGE_SLACK_MS
        try:
            cycle = self._graph.wait(caller_id, caller, call.object_id, target, ttl_ms)
        except redis.RedisError as exc:
            raise RemoteCallUnavailable(
                f"{target}.{call.method}: could not record the wait: {type(exc).__name__}: {exc}",
                target=target,
                method=call.method,
                call_id=call.call_id,
            ) from exc
        if cycle is not None:
            raise crossing_cycle_error(cycle, call.method)
        return caller_id
