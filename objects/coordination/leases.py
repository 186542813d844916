"""Ownership leases in Redis: who may run an object right now.

Redis decides routing and liveness only. The fencing epoch that makes a
former owner's writes impossible comes from the shared database (catalog.py)
and is checked inside every object transaction (instance.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Literal, cast

import redis
import redis.asyncio

from solo.objects.coordination import scripts
from solo.objects.coordination.keys import Keys

ReleaseMode = Literal["idle", "drain", "backoff"]
LOST, KEPT, RELEASED, RELEASED_WITH_CALLS = -1, 0, 1, 2


def lease_value(worker_id: str) -> str:
    """Names the owner (enqueue.lua wakes it by this name) plus a token unique to this takeover."""
    return f"{worker_id}|{secrets.token_hex(8)}"


# A wake list (keys.wake) holds object ids that got calls (enqueue.lua), and requests to
# evict an object: this prefix and its id (AsyncLeases.ask_to_evict, read by workers/host.py).
EVICT_REQUEST_PREFIX = "evict:"


def eviction_request(object_id: str) -> str:
    return EVICT_REQUEST_PREFIX + object_id


def owner_of(value: str | bytes | None) -> str | None:
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else value
    return text.split("|", 1)[0]


class Leases:
    def __init__(self, client: redis.Redis, keys: Keys, ttl_ms: int, activation_grace_ms: int) -> None:
        self._redis = client
        self._keys = keys
        self.ttl_ms = ttl_ms
        self.activation_grace_ms = activation_grace_ms
        self._acquire = client.register_script(scripts.source("acquire"))
        self._renew = client.register_script(scripts.source("renew"))
        self._release = client.register_script(scripts.source("release"))
        self._redispatch = client.register_script(scripts.source("redispatch"))

    def acquire(self, object_id: str, value: str) -> bool:
        k = self._keys
        return bool(self._acquire(keys=[k.lease(object_id), k.live], args=[value, self.ttl_ms, object_id]))

    def renew(self, held: Sequence[tuple[str, str]]) -> list[str]:
        """Extend (object id, lease value) pairs; returns the object ids whose lease was lost."""
        if not held:
            return []
        k = self._keys
        keys = [k.live] + [k.lease(oid) for oid, _ in held]
        args: list[str | int] = [self.ttl_ms]
        for oid, value in held:
            args += [value, oid]
        lost = self._renew(keys=keys, args=args)
        return [held[int(i) - 1][0] for i in lost]

    def release(self, object_id: str, value: str, mode: ReleaseMode) -> int:
        k = self._keys
        return int(
            self._release(
                keys=[k.lease(object_id), k.mailbox(object_id), k.live],
                args=[value, object_id, mode, self.activation_grace_ms],
            )
        )

    def owner(self, object_id: str) -> str | None:
        return owner_of(self._redis.get(self._keys.lease(object_id)))

    def overdue(self, limit: int = 200) -> list[str]:
        """Objects in the live index whose deadline has passed (by Redis's clock)."""
        seconds, micros = self._redis.time()
        now_ms = seconds * 1000 + micros // 1000
        # Without scores, ZRANGEBYSCORE answers members only (redis-py types every shape at once).
        members = cast(
            list[bytes | str], self._redis.zrangebyscore(self._keys.live, "-inf", now_ms, start=0, num=limit)
        )
        return [m.decode() if isinstance(m, bytes) else m for m in members]

    def claim_redispatch(self, object_id: str) -> bool:
        """True if this caller won the right to send an activation for an overdue object."""
        k = self._keys
        return bool(
            self._redispatch(
                keys=[k.live, k.lease(object_id), k.mailbox(object_id)],
                args=[object_id, self.activation_grace_ms],
            )
        )


class AsyncLeases:
    """Reads of leases for asyncio callers (the HTTP API)."""

    def __init__(self, client: redis.asyncio.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys

    async def owner(self, object_id: str) -> str | None:
        """The worker that holds the object's lease, or None if no worker runs it."""
        return owner_of(await self._redis.get(self._keys.lease(object_id)))

    async def owners(self, object_ids: Sequence[str]) -> list[str | None]:
        """The owner of each object, in one round trip."""
        if not object_ids:
            return []
        values = await self._redis.mget([self._keys.lease(oid) for oid in object_ids])
        return [owner_of(v) for v in values]

    async def live_count(self) -> int:
        """Objects with a lease or queued calls now (the `live` index)."""
        return int(await self._redis.zcard(self._keys.live))

    async def ask_to_evict(self, object_id: str, wake_ttl_ms: int) -> bool:
        """Ask the object's owner, through its wake list, to end the activation after its batch.

        False if no worker holds the object. Should the lease move meanwhile, the former
        owner finds it does not hold the object and ignores the request.
        """
        owner = await self.owner(object_id)
        if owner is None:
            return False
        wake = self._keys.wake(owner)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(wake, eviction_request(object_id))
            pipe.pexpire(wake, wake_ttl_ms)
            await pipe.execute()
        return True
