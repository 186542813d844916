"""A gateway's liveness in Redis: its heartbeat (one round trip, on Redis's clock) and the reaper of dead ones."""

from __future__ import annotations

import uuid

from solo.objects.coordination.gateways import GATEWAY_TTL_MS, GatewayBeat, GatewayRouter, address_json
from solo.objects.coordination.keys import Keys
from solo.objects.naming import Address, object_id
from solo.objects.websockets import lost_event_id
from solo.workers.host import REAP_ENQUEUES_AT_ONCE

GATEWAY = "f" * 32


def redis_now_ms(client) -> int:
    seconds, micros = client.time()
    return seconds * 1000 + micros // 1000


def test_a_beat_moves_the_deadline_on_redis_clock_and_says_when_the_gateway_was_missing(redis_client, key_prefix):
    keys = Keys(key_prefix)
    beat = GatewayBeat(redis_client, keys, GATEWAY)
    assert beat.beat() == (True, 0)  # new
    before = redis_now_ms(redis_client)
    assert beat.beat() == (False, 0)
    deadline = redis_client.zscore(keys.gateways, GATEWAY)
    assert before + GATEWAY_TTL_MS <= deadline <= redis_now_ms(redis_client) + GATEWAY_TTL_MS
    redis_client.hset(keys.gateway_sockets(GATEWAY), "a" * 32, "[]")
    assert beat.beat() == (False, 1)  # what its hash holds, to compare with what the process holds
    # A reaper that took the gateway for dead forgets it: the next beat finds it missing.
    redis_client.zadd(keys.gateways, {GATEWAY: 0})
    router = GatewayRouter(redis_client, keys)
    assert router.dead_gateways() == [GATEWAY]
    router.forget(GATEWAY)
    assert beat.beat() == (True, 0)


def test_the_reaper_queues_a_close_event_at_its_object_for_every_socket_of_a_dead_gateway(system, redis_client):
    # Given a gateway past its deadline holding more sockets than one round trip of the reaper enqueues
    keys = Keys(system.settings.key_prefix)
    names = [f"reaped-{uuid.uuid4().hex[:8]}-{i}" for i in range(3)]
    addresses = [Address("Room", n, object_id(system.settings.namespace, "Room", n)) for n in names]
    held = {uuid.uuid4().hex: addresses[i % 3] for i in range(REAP_ENQUEUES_AT_ONCE * 2 + 1)}
    redis_client.hset(keys.gateway_sockets(GATEWAY), mapping={s: address_json(a) for s, a in held.items()})
    redis_client.zadd(keys.gateways, {GATEWAY: 0})
    # When a worker's reaper runs
    assert system.host.reap_gateways() == len(held)
    # Then each socket's close event is queued at its object, and the gateway is forgotten
    for socket_id in held:
        assert redis_client.exists(keys.call(lost_event_id(GATEWAY, socket_id)))
    assert redis_client.zscore(keys.gateways, GATEWAY) is None
