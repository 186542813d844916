"""Crash safety with real processes: a paused former owner, a Redis restart, an old deploy."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections import Counter as Tally
from dataclasses import dataclass

import httpx
import redis
import sqlalchemy as sa

from solo.objects.coordination.keys import Keys
from solo.objects.naming import idempotent_call_id, object_id
from solo.objects.state.installation import installation_secret
from solo.objects.state.schema import make_engine
from tests.e2e.conftest import history, wait_until


def test_a_paused_former_owner_can_never_commit(cluster, cluster_env):
    # Given worker A owns a ledger, with short leases
    a = cluster.start_worker(SOLO_LEASE_TTL_MS="1000", SOLO_LOG_LEVEL="INFO")
    cluster.start_api()
    name = f"z-{uuid.uuid4().hex[:8]}"
    url = f"/v1/objects/Ledger/{name}"
    http = httpx.Client(base_url=cluster.url, timeout=60)
    assert http.post(f"{url}/append", json={"tag": "before"}).status_code == 200
    b = cluster.start_worker(SOLO_LEASE_TTL_MS="1000")

    # When A is stopped (SIGSTOP) in the middle of a slow call, past its lease
    slow: dict = {}
    caller = threading.Thread(
        target=lambda: slow.update(r=http.post(f"{url}/append", json={"tag": "slow", "sleep_ms": 1500}))
    )
    caller.start()
    time.sleep(0.5)
    a.send_signal(signal.SIGSTOP)
    try:
        # then B takes the object over and serves the queued call and new ones
        caller.join(timeout=30)
        assert slow["r"].status_code == 200, slow["r"].text
        assert http.post(f"{url}/append", json={"tag": "after"}).status_code == 200
    finally:
        a.send_signal(signal.SIGCONT)

    # When A resumes, it finishes its call but its shipment is refused: it drops the object
    wait_until(lambda: "refused" in cluster.log("worker0"), 20, "the former owner's refused shipment")
    # Then the state holds each call once, and no trace of A's late commit
    entries = http.post(f"{url}/entries").json()["result"]
    assert [e["tag"] for e in entries] == ["before", "slow", "after"]
    epochs = [(h.epoch, h.worker_id) for h in history(cluster_env, "Ledger", name)]
    assert len(epochs) == 2 and epochs[0][0] < epochs[1][0]
    assert b.poll() is None and a.poll() is None


@dataclass
class Increment:
    name: str
    key: str  # its Idempotency-Key: every attempt is the same call
    acknowledged: bool = False
    acknowledged_after_kill: bool = False  # the attempt that got the acknowledgement was sent after Redis died


def calls_in_flight(redis_url: str, key_prefix: str) -> set[str]:
    """Ids of the calls Redis holds unfinished: accepted by the API, queued or running on a worker."""
    client = redis.Redis.from_url(redis_url)
    try:
        records = list(client.scan_iter(match=Keys(key_prefix).call("*"), count=1000))
        with client.pipeline(transaction=False) as pipe:
            for record in records:
                pipe.hget(record, "status")
            statuses = pipe.execute()
    finally:
        client.close()
    return {r.decode().rsplit(":", 1)[1] for r, s in zip(records, statuses) if s in (b"queued", b"running")}


def test_a_redis_restart_without_persistence_loses_no_acknowledged_call(cluster, own_redis, key_prefix):
    # Given two workers and the API on a Redis that keeps nothing on disk
    cluster.env["REDIS_URL"] = own_redis.url
    cluster.env["SOLO_CALL_TIMEOUT_S"] = "5"
    cluster.start_worker()
    cluster.start_worker()
    cluster.start_api()
    names = [f"r-{uuid.uuid4().hex[:8]}" for _ in range(5)]
    increments: list[Increment] = []
    killed, stop = threading.Event(), threading.Event()

    def client(index: int) -> None:
        # Increments until told to stop, each with its own Idempotency-Key, retried with it until acknowledged.
        with httpx.Client(base_url=cluster.url, timeout=10) as http:
            i = 0
            while not stop.is_set():
                increment = Increment(names[(index + i) % len(names)], f"{index}-{i}")
                increments.append(increment)
                i += 1
                for _attempt in range(60):
                    # Read before sending: an attempt sent once `killed` is set can only reach the new Redis.
                    after_kill = killed.is_set()
                    try:
                        r = http.post(
                            f"/v1/objects/Counter/{increment.name}/increment",
                            headers={"Idempotency-Key": increment.key},
                        )
                    except httpx.HTTPError:
                        time.sleep(0.2)
                        continue
                    if r.status_code == 200:
                        increment.acknowledged, increment.acknowledged_after_kill = True, after_kill
                        break
                    time.sleep(0.2)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    try:
        # When Redis is killed while it holds calls in flight (the load runs across the restart)
        wait_until(lambda: sum(i.acknowledged for i in increments) >= 40, 60, "the load to get going")
        # The workers are held still from here to the kill, so the calls read as in flight
        # cannot finish before Redis goes: the restart is sure to hit them.
        workers = cluster.live_workers()
        for worker in workers:
            worker.send_signal(signal.SIGSTOP)
        try:
            in_flight = wait_until(lambda: calls_in_flight(own_redis.url, key_prefix), 30, "calls in flight")
            own_redis.kill()
            killed.set()
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGCONT)
        # and restarted empty
        time.sleep(0.5)
        own_redis.start()
        wait_until(lambda: sum(i.acknowledged_after_kill for i in increments) >= 40, 120, "calls after the restart")
    finally:
        stop.set()  # each client still sees its current increment acknowledged, then stops
        for t in threads:
            t.join(timeout=240)

    # Then every increment was acknowledged, and each counter holds each exactly once
    assert [i.key for i in increments if not i.acknowledged] == []
    per_counter = Tally(i.name for i in increments)
    with httpx.Client(base_url=cluster.url, timeout=30) as http:
        for name in names:
            reply = http.post(f"/v1/objects/Counter/{name}/get").json()
            assert reply.get("result") == per_counter[name], reply
    # and the restart hit calls in flight: calls Redis held when it was killed were acknowledged after it
    namespace = cluster.env["SOLO_NAMESPACE"]
    engine = make_engine(cluster.env["DATABASE_URL"])
    try:
        secret = installation_secret(engine)
    finally:
        engine.dispose()
    by_call = {idempotent_call_id(secret, object_id(namespace, "Counter", i.name), i.key): i for i in increments}
    carried = [by_call[c] for c in in_flight if c in by_call and by_call[c].acknowledged_after_kill]
    assert carried, (len(in_flight), sum(i.acknowledged_after_kill for i in increments))


def test_an_old_deploy_refuses_an_object_migrated_by_newer_code(cluster, cluster_env):
    # Given an object migrated by the new code (two migrations)
    cluster.env["SOLO_OBJECTS"] = "tests.versioned_v2"
    new = cluster.start_worker()
    cluster.start_api()
    name = f"v-{uuid.uuid4().hex[:8]}"
    http = httpx.Client(base_url=cluster.url, timeout=60)
    assert http.post(f"/v1/objects/Versioned/{name}/code").json()["result"] == "v2"
    new.send_signal(signal.SIGTERM)
    assert new.wait(timeout=30) == 0

    # When only a worker with the old code (one migration) is running
    cluster.start_worker(SOLO_OBJECTS="tests.versioned_v1")
    result: dict = {}
    caller = threading.Thread(target=lambda: result.update(r=http.post(f"/v1/objects/Versioned/{name}/code")))
    caller.start()
    wait_until(lambda: "refusing" in cluster.log("worker1"), 20, "the old worker to refuse the object")

    # Then it refuses without taking the object, and a new-code worker serves the waiting call
    cluster.start_worker(SOLO_OBJECTS="tests.versioned_v2")
    caller.join(timeout=60)
    assert result["r"].status_code == 200 and result["r"].json()["result"] == "v2"
    workers = {h.worker_id for h in history(cluster_env, "Versioned", name)}
    assert not any(w.startswith("w1-") for w in workers), workers


def test_schema_versions_are_recorded_in_the_catalog(cluster, cluster_env):
    cluster.start_worker()
    cluster.start_api()
    name = f"s-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=cluster.url, timeout=30) as http:
        http.post(f"/v1/objects/Counter/{name}/increment")
    engine = sa.create_engine(cluster_env["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        version = conn.execute(
            sa.text("SELECT schema_version FROM objects WHERE id = :id"),
            {"id": object_id(cluster_env["SOLO_NAMESPACE"], "Counter", name)},
        ).scalar()
    engine.dispose()
    assert version == 2
