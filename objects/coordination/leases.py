"""Ownership leases in Redis: who may run an object right now.

Redis decides routing and liveness only. The fencing epoch that makes a
former owner's writes impossible comes from the shared database (catalog.py)
and is checked inside every object transaction (instance.py).

A lease does not expire by itself (ADR 0004). It names its holder, a worker process and
the generation of that process's heartbeat (``{p}:alive:{worker id}``, with a TTL of one
lease TTL, renewed every third of it); the lease is live while that heartbeat holds that
generation. So a worker keeps all its leases alive with one command per interval, whatever
it holds, and an idle object costs Redis nothing. When a worker dies its heartbeat expires
and every lease it held is free at once (``lease_alive.lua``: acquire, enqueue, redispatch).
A worker whose heartbeat lapsed while it lived (paused, or Redis restarted) learns it from
its next renewal and checks its leases once (`Leases.lost`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from typing import Literal, cast

import redis
import redis.asyncio

from solo.objects.coordination import scripts
from solo.objects.coordination.keys import Keys

ReleaseMode = Literal["idle", "drain", "backoff"]
LOST, KEPT, RELEASED, RELEASED_WITH_CALLS = -1, 0, 1, 2


# A held lease has no TTL of its own but this backstop, renewed by every claim of a batch
# (claim.lua): it only collects the leases of workers that died holding idle objects, long
# after their heartbeat expired. An object idle this long was evicted long before (SOLO_IDLE_EVICT_S).
BACKSTOP_MS = 24 * 3600 * 1000
# Leases checked in one MGET when a worker's heartbeat lapsed.
CHECK_CHUNK = 1000


def new_generation() -> str:
    """A worker process's heartbeat generation: leases of an earlier process with the same id are not its."""
    return secrets.token_hex(4)


def lease_value(worker_id: str, generation: str) -> str:
    """Names the owner (enqueue.lua wakes it by this name), its heartbeat's generation, and a token
    unique to this takeover."""
    return f"{worker_id}|{generation}|{secrets.token_hex(8)}"


# A wake list (keys.wake) holds object ids that got calls (enqueue.lua), and requests to
# evict an object: this prefix and its id (AsyncLeases.ask_to_evict, read by workers/host.py).
EVICT_REQUEST_PREFIX = "evict:"


def eviction_request(object_id: str) -> str:
    return EVICT_REQUEST_PREFIX + object_id


def owner_of(value: str | bytes | None) -> str | None:
    """The worker a lease value names, whether or not its heartbeat is alive."""
    if value is None:
        return None
    return _text(value).split("|", 1)[0]


def _holder(value: str | bytes | None) -> tuple[str, str] | None:
    """(worker id, generation) of a lease value."""
    if value is None:
        return None
    parts = _text(value).split("|", 2)
    return (parts[0], parts[1]) if len(parts) == 3 else None


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _live_owners(
    values: Sequence[bytes | str | None], alive_of: Callable[[list[str]], Sequence[bytes | str | None]]
) -> list[str | None]:
    """The owner named by each lease value if its heartbeat holds the lease's generation, else None.

    `alive_of` reads the heartbeats of the given worker ids (one MGET)."""
    holders = [_holder(v) for v in values]
    workers = sorted({h[0] for h in holders if h is not None})
    if not workers:
        return [None] * len(values)
    beating = {w: _text(g) for w, g in zip(workers, alive_of(workers), strict=True) if g is not None}
    return [h[0] if h is not None and beating.get(h[0]) == h[1] else None for h in holders]


class Leases:
    def __init__(self, client: redis.Redis, keys: Keys, ttl_ms: int, activation_grace_ms: int) -> None:
        self._redis = client
        self._keys = keys
        self.ttl_ms = ttl_ms
        self.activation_grace_ms = activation_grace_ms
        self._acquire = client.register_script(scripts.source("acquire"))
        self._release = client.register_script(scripts.source("release"))
        self._redispatch = client.register_script(scripts.source("redispatch"))
        self._let_go = client.register_script(scripts.source("let_go"))

    def acquire(self, object_id: str, value: str) -> bool:
        """Take the object's lease if nobody holds it or its holder's heartbeat stopped.

        If a live holder keeps it while calls are queued, that holder is woken instead."""
        k = self._keys
        return bool(
            self._acquire(
                keys=[k.lease(object_id), k.live, k.mailbox(object_id)],
                args=[value, self.ttl_ms, object_id, k.alive(""), BACKSTOP_MS, k.wake(""), self.ttl_ms * 10],
            )
        )

    def beat(self, worker_id: str, generation: str) -> bool:
        """Keep every lease of this worker process alive for one TTL (one command).

        Returns False if the heartbeat had lapsed (or is new): leases may have been taken
        meanwhile, and the caller checks them (`lost`)."""
        previous = self._redis.set(self._keys.alive(worker_id), generation, px=self.ttl_ms, get=True)
        return previous is not None and _text(cast(bytes | str, previous)) == generation

    def stop_beating(self, worker_id: str, generation: str) -> None:
        """A worker that stops: whatever leases it still holds are free at once."""
        self._let_go(keys=[self._keys.alive(worker_id)], args=[generation])

    def lost(self, held: Sequence[tuple[str, str]]) -> list[str]:
        """Of (object id, lease value) pairs, the object ids whose lease holds another value now."""
        lost = []
        for start in range(0, len(held), CHECK_CHUNK):
            chunk = held[start : start + CHECK_CHUNK]
            values = self._redis.mget([self._keys.lease(oid) for oid, _ in chunk])
            lost += [oid for (oid, mine), now in zip(chunk, values, strict=True) if now is None or _text(now) != mine]
        return lost

    def release(self, object_id: str, value: str, mode: ReleaseMode) -> int:
        k = self._keys
        return int(
            self._release(
                keys=[k.lease(object_id), k.mailbox(object_id), k.live],
                args=[value, object_id, mode, self.activation_grace_ms],
            )
        )

    def owner(self, object_id: str) -> str | None:
        """The worker whose live lease holds the object, or None."""
        value = self._redis.get(self._keys.lease(object_id))
        return _live_owners([value], lambda ws: self._redis.mget([self._keys.alive(w) for w in ws]))[0]

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
                args=[object_id, self.activation_grace_ms, k.alive(""), k.wake(""), self.ttl_ms * 10],
            )
        )


class AsyncLeases:
    """Reads of leases for asyncio callers (the HTTP API)."""

    def __init__(self, client: redis.asyncio.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys

    async def owner(self, object_id: str) -> str | None:
        """The worker that holds the object's lease, or None if no worker runs it."""
        return (await self.owners([object_id]))[0]

    async def owners(self, object_ids: Sequence[str]) -> list[str | None]:
        """The owner of each object (a lease whose holder's heartbeat is alive), in two round trips."""
        if not object_ids:
            return []
        values = await self._redis.mget([self._keys.lease(oid) for oid in object_ids])
        holders = {h[0] for h in map(_holder, values) if h is not None}
        beats = await self._redis.mget([self._keys.alive(w) for w in sorted(holders)]) if holders else []
        return _live_owners(values, lambda _workers: beats)

    async def live_count(self) -> int:
        """Objects with queued calls or an activation on its way now (the `live` index)."""
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
