"""One worker process holds 10,000 active objects at once."""

from __future__ import annotations

import asyncio
import json
import uuid

import redis

from bench.loadgen import post_each
from solo.objects.coordination.keys import Keys


def test_one_worker_keeps_ten_thousand_objects_active(cluster, key_prefix, real_redis_url):
    # Given one worker that may keep only 1,000 database files open at a time (and evicts nothing)
    cluster.start_worker(SOLO_MAX_OPEN_DATABASES="1000", SOLO_WORKER_THREADS="8", SOLO_IDLE_EVICT_S="3600")
    cluster.start_api()
    run = uuid.uuid4().hex[:6]
    paths = [f"/v1/objects/Counter/{run}-{i}/increment" for i in range(10_000)]

    # When 10,000 different objects are called
    first = asyncio.run(post_each(cluster.url, [(p, b"{}") for p in paths], connections=64))
    failed = [reply for reply in first if reply[0] != 200]
    assert not failed, (len(failed), failed[:3])

    # Then all of them are active in that one process at once
    client = redis.Redis.from_url(real_redis_url)
    leases = sum(1 for _ in client.scan_iter(match=Keys(key_prefix).lease("*"), count=5000))
    client.close()
    assert leases == 10_000

    # and they still serve calls with their state (most reopen their file)
    sample = paths[::10]
    second = asyncio.run(post_each(cluster.url, [(p, b"{}") for p in sample], connections=64))
    assert [json.loads(body)["result"] for _, body in second] == [2] * len(sample)
    assert cluster.workers[0].poll() is None
