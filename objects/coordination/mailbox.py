"""Each object's FIFO queue of calls, in Redis, and the scripts that move calls through it.

A mailbox entry is ``"<call_id> <call json>"`` so that scripts can find the
call id without decoding JSON. Calls stay in the mailbox until their batch is
committed; only then does complete.lua publish the outcomes and pop them (and,
for a drain that goes on, claim the next batch in the same round trip).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import redis
import redis.asyncio
from redis.client import Pipeline

from solo.objects.calls import Call, Outcome
from solo.objects.coordination import scripts
from solo.objects.coordination.keys import Keys
from solo.objects.coordination.leases import BACKSTOP_MS
from solo.objects.errors import IdempotencyKeyReused, MailboxFull
from solo.objects.naming import DEFAULT_TENANT, is_keyed_call_id
from solo.objects.websockets import SOCKET_METHOD

Decision = Literal["done", "owned", "pending", "dispatch"]

POISONED_KEPT = 100  # poisoned calls listed per object
SOCKET_EVENT_RECORD_TTL_S = 3600  # a socket event's record while queued: enough to count crashes and absorb repeats
# Once done, nothing reads a socket event's record unless someone waits for it (a connect): it only
# absorbs an enqueue retried after a lost answer. A later repeat (a reaper's close) is absorbed by the
# object's own record of the event id (_solo_calls), so dedup by event id does not depend on this one.
SOCKET_EVENT_DONE_TTL_S = 60


@dataclass(frozen=True)
class Enqueued:
    decision: Decision
    outcome: Outcome | None = None  # set when decision == "done"


def encode_entry(call: Call) -> str:
    return f"{call.call_id} {call.to_json()}"


def decode_entry(raw: str | bytes, crashes: int = 0) -> Call:
    text = raw.decode() if isinstance(raw, bytes) else raw
    return Call.from_json(text.split(" ", 1)[1], crashes=crashes)


def _claimed(entries: Sequence[bytes], crashes: Sequence[int]) -> list[Call]:
    """A claimed batch (claim_batch.lua): its calls, each with its crash count (made with it: no copy)."""
    return [decode_entry(e, int(n)) for e, n in zip(entries, crashes, strict=True)]


@dataclass(frozen=True)
class MailboxConfig:
    keys: Keys
    call_record_ttl_s: int
    activation_grace_ms: int
    reply_ttl_ms: int = 60_000
    # The API's side: external callers are bounded (SOLO_MAX_QUEUED_CALLS) and an Idempotency-Key may
    # not be reused for another request. Workers' sends and fires are neither: an alarm is never
    # refused, and a re-run caller's sends are absorbed by their targets' exactly-once records.
    max_queued: int = 0  # 0: no bound
    compare_requests: bool = False

    def record_ttl_s(self, call: Call) -> int:
        """How long a call's record is kept: a socket event's, at most an hour (a chat makes many)."""
        if call.method == SOCKET_METHOD:
            return min(self.call_record_ttl_s, SOCKET_EVENT_RECORD_TTL_S)
        return self.call_record_ttl_s

    def done_ttl_s(self, call: Call) -> int:
        """How long a finished call's record is kept: a socket event's that nobody waits for, a minute."""
        if call.method == SOCKET_METHOD and not call.reply_to:
            return min(self.call_record_ttl_s, SOCKET_EVENT_DONE_TTL_S)
        return self.record_ttl_s(call)

    def enqueue_keys(self, call: Call) -> list[str]:
        k = self.keys
        return [k.mailbox(call.object_id), k.lease(call.object_id), k.call(call.call_id), k.live]

    def enqueue_args(self, call: Call) -> list[str | int]:
        return [
            encode_entry(call),
            call.object_id,
            self.record_ttl_s(call),
            self.keys.wake(""),
            self.activation_grace_ms,
            self.activation_grace_ms * 10,
            self.max_queued,
            # Only an Idempotency-Key's call id can come again; a random one is never reused.
            call.fingerprint() if self.compare_requests and is_keyed_call_id(call.call_id) else "",
            call.tenant,
            self.keys.alive(""),
        ]

    def parse_enqueued(self, reply: list[Any], call: Call) -> Enqueued:
        decision = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
        if decision == "reused":
            raise IdempotencyKeyReused(
                f"call id {call.call_id} (from its Idempotency-Key) was used for another method or other arguments"
            )
        if decision == "full":
            raise MailboxFull(f"{call.class_name}/{call.object_name} has {self.max_queued} calls queued already")
        outcome = Outcome.from_payload(reply[1]) if decision == "done" else None
        return Enqueued(cast(Decision, decision), outcome)  # one of the four left


class Mailbox:
    """Synchronous mailbox operations, used by workers (and by Python callers)."""

    def __init__(self, client: redis.Redis, config: MailboxConfig) -> None:
        self._redis = client
        self.config = config
        self._enqueue = client.register_script(scripts.source("enqueue"))
        self._claim = client.register_script(scripts.source("claim"))
        self._claim_many = client.register_script(scripts.source("claim_many"))
        self._acquire_many = client.register_script(scripts.source("acquire_many"))
        self._hand_back = client.register_script(scripts.source("handback"))
        self._complete = client.register_script(scripts.source("complete"))

    def enqueue(self, call: Call) -> Enqueued:
        reply = self._enqueue(keys=self.config.enqueue_keys(call), args=self.config.enqueue_args(call))
        return self.config.parse_enqueued(reply, call)

    def enqueue_many(self, calls: Sequence[Call], pipe: Pipeline | None = None) -> list[Enqueued]:
        """Enqueue each call, in order, in one round trip (as `enqueue` would one by one).

        Commands already queued on `pipe` run first, in the same round trip."""
        pipe = pipe if pipe is not None else self._redis.pipeline(transaction=False)
        for call in calls:
            self._enqueue(keys=self.config.enqueue_keys(call), args=self.config.enqueue_args(call), client=pipe)
        replies = pipe.execute()
        mine = replies[len(replies) - len(calls) :]
        return [self.config.parse_enqueued(reply, call) for reply, call in zip(mine, calls, strict=True)]

    def claim(self, object_id: str, lease_value: str, batch_size: int) -> list[Call] | None:
        """The next calls in order, or None if the lease is no longer ours."""
        k = self.config.keys
        reply = self._claim(
            keys=[k.mailbox(object_id), k.lease(object_id)], args=[lease_value, batch_size, k.call(""), BACKSTOP_MS]
        )
        if reply is None:
            return None
        entries, crashes = reply
        return _claimed(entries, crashes)

    def claim_many(self, leases: Sequence[tuple[str, str]], batch_size: int) -> list[list[Call] | None]:
        """`claim` for each (object id, lease value), in one round trip: each object's next calls in
        order, or None if its lease is no longer ours."""
        if not leases:
            return []
        k = self.config.keys
        keys = [key for object_id, _ in leases for key in (k.mailbox(object_id), k.lease(object_id))]
        args: list[str | int] = [batch_size, k.call(""), BACKSTOP_MS, *(value for _, value in leases)]
        replies = cast(list[Any], self._claim_many(keys=keys, args=args))
        return [None if reply is None else _claimed(reply[0], reply[1]) for reply in replies]

    def acquire_and_claim(
        self, leases: Sequence[tuple[str, str]], batch_size: int, ttl_ms: int
    ) -> list[list[Call] | None]:
        """Take each (object id, lease value)'s lease, as `Leases.acquire` does, and claim the first
        batch of each object taken, as `claim` does, all in one round trip: per object, its claimed
        calls (maybe none), or None if a live holder keeps it (woken if calls are queued)."""
        if not leases:
            return []
        k = self.config.keys
        keys = [k.live, *(key for object_id, _ in leases for key in (k.lease(object_id), k.mailbox(object_id)))]
        args: list[str | int] = [ttl_ms, k.alive(""), BACKSTOP_MS, k.wake(""), ttl_ms * 10, batch_size, k.call("")]
        for object_id, value in leases:
            args += [object_id, value]
        replies = cast(list[Any], self._acquire_many(keys=keys, args=args))
        return [None if reply is None else _claimed(reply[0], reply[1]) for reply in replies]

    def record_poisoned(self, object_id: str, calls: Sequence[Call], now_ms: int) -> None:
        """Keep the latest poisoned calls where operators see them (object info)."""
        key = self.config.keys.poisoned(object_id)
        pipe = self._redis.pipeline(transaction=False)
        for call in calls:
            entry = {"call_id": call.call_id, "method": call.method, "crashes": call.crashes, "at_ms": now_ms}
            pipe.lpush(key, json.dumps(entry))
        pipe.ltrim(key, 0, POISONED_KEPT - 1)
        pipe.expire(key, self.config.call_record_ttl_s)
        pipe.execute()

    def hand_back(self, calls: Sequence[Call]) -> None:
        """Claimed calls whose batch failed while this worker lived: queued again, not counted as crashes."""
        if calls:
            self._hand_back(keys=[self.config.keys.call(c.call_id) for c in calls])

    def complete(self, object_id: str, lease_value: str, calls: Sequence[Call], outcomes: Sequence[Outcome]) -> int:
        """Publish outcomes and pop the batch; -1 if the lease was lost, else calls still queued."""
        return int(self._run_complete(object_id, lease_value, calls, outcomes, 0)[0])

    def complete_and_claim(
        self, object_id: str, lease_value: str, calls: Sequence[Call], outcomes: Sequence[Outcome], batch_size: int
    ) -> tuple[int, list[Call]]:
        """`complete`, then claim the next batch (as `claim` would) if calls are still queued, in the
        same round trip: (-1 if the lease was lost, else calls still queued; the next batch, claimed)."""
        reply = self._run_complete(object_id, lease_value, calls, outcomes, batch_size)
        left = int(reply[0])
        return left, (_claimed(reply[1], reply[2]) if len(reply) > 1 else [])

    def _run_complete(
        self, object_id: str, lease_value: str, calls: Sequence[Call], outcomes: Sequence[Outcome], claim_next: int
    ) -> list[Any]:
        k = self.config.keys
        args: list[str | int] = [
            lease_value,
            len(calls),
            k.call(""),
            object_id,
            self.config.reply_ttl_ms,
            claim_next,
            BACKSTOP_MS,
        ]
        for call, outcome in zip(calls, outcomes, strict=True):
            status = "done" if outcome.ok else "failed"
            args += [call.call_id, call.reply_to or "", status, outcome.payload(), self.config.done_ttl_s(call)]
        return cast(list[Any], self._complete(keys=[k.mailbox(object_id), k.lease(object_id), k.live], args=args))

    def depth(self, object_id: str) -> int:
        return int(self._redis.llen(self.config.keys.mailbox(object_id)))


@dataclass(frozen=True)
class CallRecord:
    """A call's status ("queued", "running", "done", "failed") and, once finished, its outcome."""

    status: str
    outcome: Outcome | None
    tenant: str = DEFAULT_TENANT  # records from before tenants existed belong to "default"


class AsyncMailbox:
    """The caller's side for asyncio (the HTTP API): enqueue, and read calls' records and queues."""

    def __init__(self, client: redis.asyncio.Redis, config: MailboxConfig) -> None:
        self.config = config
        self._redis = client
        self._enqueue = client.register_script(scripts.source("enqueue"))
        self._purge = client.register_script(scripts.source("purge"))

    async def enqueue(self, call: Call) -> Enqueued:
        reply = await self._enqueue(keys=self.config.enqueue_keys(call), args=self.config.enqueue_args(call))
        return self.config.parse_enqueued(reply, call)

    async def record(self, call_id: str) -> CallRecord | None:
        """The call's record, or None if the id is unknown or its record expired."""
        # solo's clients answer bytes (redis-py types a reply as bytes or str).
        record = cast(dict[bytes, bytes], await self._redis.hgetall(self.config.keys.call(call_id)))
        if not record:
            return None
        outcome = Outcome.from_payload(record[b"outcome"]) if b"outcome" in record else None
        tenant = record.get(b"tenant")
        return CallRecord(record[b"status"].decode(), outcome, tenant.decode() if tenant else DEFAULT_TENANT)

    async def depth(self, object_id: str) -> int:
        return int(await self._redis.llen(self.config.keys.mailbox(object_id)))

    async def depths(self, object_ids: Sequence[str]) -> list[int]:
        """Calls queued for each object, in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for object_id in object_ids:
                pipe.llen(self.config.keys.mailbox(object_id))
            return [int(n) for n in await pipe.execute()]

    async def poisoned(self, object_id: str) -> list[dict[str, Any]]:
        """The object's latest poisoned calls, newest first."""
        return [json.loads(raw) for raw in await self._redis.lrange(self.config.keys.poisoned(object_id), 0, -1)]

    async def purge(self, object_id: str, message: str) -> int:
        """Fail every queued call (but an owner's claimed batch) with `purged`; returns how many."""
        k, c = self.config.keys, self.config
        error = json.dumps({"code": "purged", "message": message})
        return int(
            await self._purge(
                keys=[k.mailbox(object_id), k.lease(object_id)],
                args=[k.call(""), c.call_record_ttl_s, c.reply_ttl_ms, error],
            )
        )
