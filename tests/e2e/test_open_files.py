"""A worker keeps at most SOLO_MAX_OPEN_DATABASES object files open, however many objects it holds.

Beyond the cap, the least recently used idle object's file is closed; the object stays active
(lease and memory kept) and its file is reopened on its next call. bench/capacity.py measures
this at full size (10,000 objects on one worker); here a few hundred objects and a low cap
show it from the worker process's own open files (/proc/<pid>/fd).
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import redis

from bench.loadgen import post_each
from solo.objects.coordination.keys import Keys
from solo.objects.coordination.leases import owner_of
from solo.objects.naming import object_id
from solo.testing.cluster import open_files

OBJECTS = 300
MAX_OPEN = 20


def test_a_worker_holds_more_objects_than_open_files_and_reopens_them_with_their_state(
    cluster, cluster_env, key_prefix, real_redis_url
):
    # Given one worker that may keep only 20 object files open (and evicts no idle object meanwhile)
    worker = cluster.start_worker(
        SOLO_MAX_OPEN_DATABASES=str(MAX_OPEN), SOLO_WORKER_THREADS="8", SOLO_IDLE_EVICT_S="3600"
    )
    cluster.start_api()
    run = uuid.uuid4().hex[:6]
    names = [f"{run}-{i}" for i in range(OBJECTS)]
    ids = {name: object_id(cluster_env["SOLO_NAMESPACE"], "Counter", name) for name in names}
    paths = [f"/v1/objects/Counter/{name}/increment" for name in names]

    def open_descriptors() -> list[str]:
        """The names of the object files the worker holds open, one per descriptor."""
        return [path.name for path in open_files(worker.pid, ".sqlite")]

    def open_objects() -> set[str]:
        held = set(open_descriptors())
        return {name for name in names if f"{ids[name]}.sqlite" in held}

    # When 300 different objects are called, 32 calls at a time
    first = asyncio.run(post_each(cluster.url, [(p, b"{}") for p in paths], connections=32))
    failed = [reply for reply in first if reply[0] != 200]
    assert not failed, (len(failed), failed[:3])

    # Then all of them are active in that one worker at once
    client = redis.Redis.from_url(real_redis_url)
    keys = Keys(key_prefix)
    owners = [owner_of(value) for value in client.mget([keys.lease(ids[name]) for name in names])]
    client.close()
    assert owners == [cluster.worker_ids[0]] * OBJECTS
    # but it holds at most 20 of their files open
    assert 0 < len(open_descriptors()) <= MAX_OPEN
    open_after_first_round = open_objects()

    # When every object is called again, one after another (so that which was used last is known)
    reopened = 0
    with httpx.Client(base_url=cluster.url, timeout=60) as http:
        for name, path in zip(names, paths, strict=True):
            was_open = name in open_objects()
            reply = http.post(path)
            # Then each answers from its state, with its file open, and never more than 20 files are open
            assert reply.status_code == 200 and reply.json()["result"] == 2, reply.text
            assert name in open_objects()
            assert len(open_descriptors()) <= MAX_OPEN
            reopened += not was_open

    # and every object whose file was closed had it reopened: all but the (at most 20) still open ones
    assert reopened >= OBJECTS - len(open_after_first_round)
    # and the files closed to make room were the least recently used: those still open were called last
    assert names[-1] in open_objects() and open_objects() <= set(names[-MAX_OPEN:])
    assert worker.poll() is None
