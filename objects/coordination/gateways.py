"""WebSocket gateways in Redis: where objects' messages go, and who notices a gateway that died.

A gateway is an API process holding WebSockets (api/sockets.py). It keeps

- an inbox (a list) that workers push the messages of objects to, after their batch
  is durable; it pops them and writes each to its socket;
- a hash of the sockets it holds, socket id -> the object's address, written before
  the socket's connect event is queued and deleted after its close event is;
- its deadline in the ``gateways`` index, moved on by a heartbeat every
  ``HEARTBEAT_MS`` (``GatewayBeat``, on a thread of the API process: api/gateway_heartbeat.py).
  A heartbeat that finds the gateway gone from the index (Redis restarted empty) has the
  hash written again and each of its objects sent a resume event: the inbox was lost with
  Redis, and the objects route what they sent lately again.

A gateway past its deadline by ``GATEWAY_TTL_MS`` has died (kill -9, a lost host):
every worker's maintainer runs the reaper, which queues a close event with code 1006
for each socket it held, at its object, and forgets the gateway.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

import redis
import redis.asyncio

from solo.objects.calls import Call
from solo.objects.coordination import scripts
from solo.objects.coordination.keys import Keys
from solo.objects.naming import Address
from solo.objects.websockets import ROUTED_RETAIN_MS, address_of, event_call, is_socket_id, lost_event_id

HEARTBEAT_MS = 1000
GATEWAY_TTL_MS = 5000  # a gateway silent this long is dead: its sockets are closed at their objects
REAP_RETRY_MS = 30_000  # a reaper that died half way leaves the gateway to another after this
INBOX_TTL_MS = ROUTED_RETAIN_MS  # messages for a gateway that never reads them again expire
REAP_AT_ONCE = 16


def split_by_gateway(messages: Sequence[str]) -> list[tuple[str, str]]:
    """Each outgoing message (objects/websockets.py) as one message per gateway, in order.

    A gateway's copy names only its own sockets (``s``), not their gateways.
    """
    routed = []
    for raw in messages:
        message = json.loads(raw)
        targets = message.pop("t", None)
        if not isinstance(targets, dict):
            continue
        for gateway, sockets in targets.items():
            wellformed = [s for s in sockets if is_socket_id(s)] if isinstance(sockets, list) else []
            if is_socket_id(gateway) and wellformed:
                routed.append((gateway, json.dumps({**message, "s": wellformed}, separators=(",", ":"))))
    return routed


class GatewayRouter:
    """The workers' side: route messages to gateways, and reap the gateways that died."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys
        self._reap = client.register_script(scripts.source("reap"))

    def route(self, messages: Sequence[str]) -> None:
        """Push each message to its gateways' inboxes, in order (one round trip)."""
        routed = split_by_gateway(messages)
        if not routed:
            return
        pipe = self._redis.pipeline(transaction=False)
        for gateway, message in routed:
            inbox = self._keys.gateway_inbox(gateway)
            pipe.rpush(inbox, message)
            pipe.pexpire(inbox, INBOX_TTL_MS)
        pipe.execute()

    def dead_gateways(self) -> list[str]:
        """Gateways past their deadline, each taken for a while by this reaper."""
        taken = self._reap(keys=[self._keys.gateways], args=[REAP_AT_ONCE, REAP_RETRY_MS])
        return [g.decode() if isinstance(g, bytes) else str(g) for g in taken]

    def lost_sockets(self, gateway: str) -> list[Call]:
        """Close events (code 1006) for every socket a dead gateway held."""
        held = cast(dict[bytes, bytes], self._redis.hgetall(self._keys.gateway_sockets(gateway)))
        events = []
        for raw_socket, raw_address in held.items():
            socket_id = raw_socket.decode()
            address = _address(raw_address)
            if address is None or not is_socket_id(socket_id):
                continue
            call_id = lost_event_id(gateway, socket_id)
            reason = "the API process holding the socket stopped"
            events.append(event_call(address, socket_id, gateway, "close", call_id, code=1006, reason=reason))
        return events

    def forget(self, gateway: str) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.delete(self._keys.gateway_sockets(gateway), self._keys.gateway_inbox(gateway))
        pipe.zrem(self._keys.gateways, gateway)
        pipe.execute()


def _address(raw: bytes) -> Address | None:
    try:
        return address_of(json.loads(raw))
    except ValueError:
        return None


def address_json(address: Address) -> str:
    return json.dumps([address.object_id, address.class_name, address.name, address.tenant])


class GatewayBeat:
    """One API process's heartbeat on a synchronous client, for a thread of its own
    (api/gateway_heartbeat.py): the event loop is no clock to beat by."""

    def __init__(self, client: redis.Redis, keys: Keys, gateway_id: str) -> None:
        self._keys = [keys.gateways, keys.gateway_sockets(gateway_id)]
        self.gateway_id = gateway_id
        self._beat = client.register_script(scripts.source("gateway_beat"))

    def beat(self) -> tuple[bool, int]:
        """Move this gateway's deadline on (one round trip).

        Returns (whether the gateway was not in the index, how many sockets its hash holds). Not
        in the index: new, or forgotten by Redis (a restart, which also emptied its inbox and its
        hash) or by a reaper (which deleted both).
        """
        added, stored = self._beat(keys=self._keys, args=[self.gateway_id, GATEWAY_TTL_MS])
        return bool(added), int(stored)


class AsyncGateway:
    """One API process's side (api/sockets.py): its sockets and its inbox."""

    def __init__(self, client: redis.asyncio.Redis, keys: Keys, gateway_id: str) -> None:
        self._redis = client
        self._keys = keys
        self.gateway_id = gateway_id
        self.inbox = keys.gateway_inbox(gateway_id)

    async def restore(self, held: dict[str, Address]) -> None:
        """Write the hash of `held` sockets again, after Redis or a reaper lost it."""
        if not held:
            return
        pipe = self._redis.pipeline(transaction=False)
        for socket_id, address in held.items():
            pipe.hset(self._keys.gateway_sockets(self.gateway_id), socket_id, address_json(address))
        await pipe.execute()

    async def hold(self, socket_id: str, address: Address) -> None:
        await self._redis.hset(self._keys.gateway_sockets(self.gateway_id), socket_id, address_json(address))

    async def let_go(self, socket_id: str) -> None:
        await self._redis.hdel(self._keys.gateway_sockets(self.gateway_id), socket_id)

    async def pop(self, timeout_s: float = 1.0, at_most: int = 256) -> list[dict[str, Any]]:
        """The next messages for this gateway's sockets (waits up to `timeout_s` for the first)."""
        item = await self._redis.blpop([self.inbox], timeout=timeout_s)
        if item is None:
            return []
        batch = [item[1]]
        more = cast(list[bytes] | None, await self._redis.lpop(self.inbox, at_most))
        if more:
            batch.extend(more)
        messages = []
        for raw in batch:
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            if isinstance(message, dict):
                messages.append(message)
        return messages

    async def leave(self) -> None:
        """A clean stop: the sockets' close events are queued already; nothing is left to reap."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.delete(self._keys.gateway_sockets(self.gateway_id), self.inbox)
        pipe.zrem(self._keys.gateways, self.gateway_id)
        await pipe.execute()


async def open_sockets(client: redis.asyncio.Redis, keys: Keys, object_id: str) -> int:
    """How many WebSockets of the object the live gateways hold (for an operator's page).

    Reads every live gateway's socket hash: as many entries as sockets are open in the
    deployment, so it is for one object's page, never for a listing.
    """
    count = 0
    for gateway in await client.zrange(keys.gateways, 0, -1):
        gateway_id = gateway.decode() if isinstance(gateway, bytes) else str(gateway)
        for raw in await client.hvals(keys.gateway_sockets(gateway_id)):
            address = _address(raw if isinstance(raw, bytes) else str(raw).encode())
            count += address is not None and address.object_id == object_id
    return count
