"""End to end: the API and two workers as real processes, under concurrent load and kill -9."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter as Tally

import httpx
import redis

from solo.objects.coordination.keys import Keys
from solo.objects.coordination.leases import owner_of
from solo.objects.naming import object_id
from solo.testing.cluster import Cluster
from tests.e2e.conftest import history


async def _post_all(url: str, requests: list[tuple[str, dict]], concurrency: int, timeout_s: float = 60):
    """POST every (path, body) with at most `concurrency` in flight; returns responses in input order."""
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits) as http:
        gate = asyncio.Semaphore(concurrency)

        async def one(path: str, body: dict) -> httpx.Response | Exception:
            async with gate:
                try:
                    return await http.post(path, json=body)
                except httpx.HTTPError as exc:  # reported by the test, never swallowed
                    return exc

        return await asyncio.gather(*(one(p, b) for p, b in requests))


def status_of(response: httpx.Response | Exception) -> int | str:
    return response.status_code if isinstance(response, httpx.Response) else repr(response)


def calls_held(cluster: Cluster, worker_index: int, names: list[str]) -> dict[str, int]:
    """How many calls are in the mailboxes (queued, or claimed and running) of the counters a worker holds."""
    keys = Keys(cluster.env["SOLO_KEY_PREFIX"])
    ids = [object_id(cluster.env["SOLO_NAMESPACE"], "Counter", name) for name in names]
    client = redis.Redis.from_url(cluster.env["REDIS_URL"])
    try:
        with client.pipeline() as pipe:  # one transaction: leases and mailboxes as of one moment
            for oid in ids:
                pipe.get(keys.lease(oid))
                pipe.lrange(keys.mailbox(oid), 0, -1)
            replies = pipe.execute()
    finally:
        client.close()
    held = {}
    for name, lease, entries in zip(names, replies[::2], replies[1::2], strict=True):
        if entries and owner_of(lease) == cluster.worker_ids[worker_index]:
            held[name] = len(entries)
    return held


async def when_holding_calls(
    cluster: Cluster, worker_index: int, names: list[str], load: asyncio.Task, *, freeze: bool
) -> dict[str, int]:
    """Wait until the worker holds calls, and return them; with `freeze`, leave it stopped (SIGSTOP) then.

    Frozen, it can finish none of them, so they are surely in flight when the test then kills it.
    """
    worker = cluster.workers[worker_index]
    while True:
        if freeze:
            worker.send_signal(signal.SIGSTOP)
        held = calls_held(cluster, worker_index, names)
        if held:
            return held
        if freeze:
            worker.send_signal(signal.SIGCONT)
        assert not load.done(), "the load ended before the worker held any call"
        await asyncio.sleep(0.01)


def activate_on_first_worker(cluster: Cluster, names: list[str]) -> None:
    """Activate the counters (a `get`, which counts nothing) while only the first worker runs: it owns them."""
    assert len(cluster.live_workers()) == 1
    with httpx.Client(base_url=cluster.url, timeout=30) as http:
        for name in names:
            assert http.post(f"/v1/objects/Counter/{name}/get").status_code == 200


def test_concurrent_calls_run_one_at_a_time_per_object_and_in_order(cluster):
    # Given an API and two workers
    cluster.start_worker()
    cluster.start_worker()
    cluster.start_api()
    names = [f"ledger-{uuid.uuid4().hex[:8]}" for _ in range(20)]

    # When 500 calls over 20 objects arrive, up to 100 at once
    requests = [(f"/v1/objects/Ledger/{names[i % 20]}/append", {"tag": f"t{i}"}) for i in range(500)]
    responses = asyncio.run(_post_all(cluster.url, requests, concurrency=100))

    # Then every call succeeded and each object's calls never overlapped
    assert [status_of(r) for r in responses] == [200] * 500
    with httpx.Client(base_url=cluster.url, timeout=30) as http:
        for name in names:
            entries = http.post(f"/v1/objects/Ledger/{name}/entries").json()["result"]
            assert [e["seq"] for e in entries] == list(range(1, 26))
            for before, after in zip(entries, entries[1:], strict=False):
                assert before["ended_ns"] <= after["started_ns"], f"{name}: calls overlapped"
    # and each call's returned sequence number is its row: results are a permutation of 1..25 per object
    per_object: dict[str, list[int]] = {}
    for (path, _), response in zip(requests, responses, strict=True):
        per_object.setdefault(path, []).append(response.json()["result"])
    assert all(sorted(v) == list(range(1, 26)) for v in per_object.values())

    # When each of 20 clients sends its own calls one after another
    async def sequential(name: str) -> None:
        async with httpx.AsyncClient(base_url=cluster.url, timeout=30) as http:
            for i in range(10):
                r = await http.post(f"/v1/objects/Ledger/{name}/append", json={"tag": f"s{i}"})
                assert r.status_code == 200

    async def all_sequential() -> None:
        await asyncio.gather(*(sequential(n) for n in names))

    asyncio.run(all_sequential())
    # Then each object saw that client's calls in the order they were sent
    with httpx.Client(base_url=cluster.url, timeout=30) as http:
        for name in names:
            entries = http.post(f"/v1/objects/Ledger/{name}/entries").json()["result"]
            tags = [e["tag"] for e in entries if e["tag"].startswith("s")]
            assert tags == [f"s{i}" for i in range(10)]


def test_kill_9_of_a_worker_under_load_loses_no_acknowledged_call(cluster):
    # Given two workers serving 20 counters, the victim owning half of them from the start
    victim = cluster.start_worker()
    cluster.start_api()
    names = [f"c-{uuid.uuid4().hex[:8]}" for _ in range(20)]
    activate_on_first_worker(cluster, names[:10])
    cluster.start_worker()
    requests = [(f"/v1/objects/Counter/{names[i % 20]}/increment", {"by": 1}) for i in range(600)]

    async def load_with_kill() -> tuple[list[httpx.Response], dict[str, int]]:
        task = asyncio.create_task(_post_all(cluster.url, requests, concurrency=50))
        held = await when_holding_calls(cluster, 0, names, task, freeze=True)
        victim.send_signal(signal.SIGKILL)
        return await task, held

    # When one worker is killed with SIGKILL in the middle of the load, while it holds calls
    responses, held = asyncio.run(load_with_kill())
    assert victim.wait(timeout=5) == -signal.SIGKILL
    assert held  # calls in flight on counters it owned: only the other worker can have answered them

    # Then every call was answered (its objects moved to the other worker)
    acknowledged = Tally(path for (path, _), r in zip(requests, responses, strict=True) if status_of(r) == 200)
    failures = [getattr(r, "text", r) for r in responses if status_of(r) != 200]
    assert not failures, failures[:3]
    # and each counter equals the number of increments acknowledged on it: none lost, none applied twice
    with httpx.Client(base_url=cluster.url, timeout=30) as http:
        for name in names:
            path = f"/v1/objects/Counter/{name}/increment"
            value = http.post(f"/v1/objects/Counter/{name}/get").json()["result"]
            assert value == acknowledged[path], name
    # and the counters the victim held calls for were served after its death by the other worker
    last_owners = {name: history(cluster.env, "Counter", name)[-1].worker_id for name in held}
    assert last_owners == dict.fromkeys(held, cluster.worker_ids[1])


def test_sigterm_drains_a_worker_without_failing_calls(cluster):
    # Given two workers and a steady stream of calls, the leaving worker owning half the counters from the start
    leaving = cluster.start_worker()
    cluster.start_api()
    names = [f"d-{uuid.uuid4().hex[:8]}" for _ in range(10)]
    activate_on_first_worker(cluster, names[:5])
    cluster.start_worker()
    requests = [(f"/v1/objects/Counter/{names[i % 10]}/increment", {"by": 1}) for i in range(300)]

    async def load_with_drain() -> tuple[list[httpx.Response], dict[str, int]]:
        task = asyncio.create_task(_post_all(cluster.url, requests, concurrency=20))
        # Not frozen first: a SIGTERM that arrives as a stopped worker resumes may be taken by a thread
        # other than the main one, which waits for it, and the worker then never drains.
        held = await when_holding_calls(cluster, 0, names, task, freeze=False)
        leaving.send_signal(signal.SIGTERM)
        return await task, held

    # When one worker is asked to stop mid-load, while it holds calls
    responses, held = asyncio.run(load_with_drain())

    # Then it exits cleanly and no call failed, those it held at the signal included
    assert leaving.wait(timeout=30) == 0
    assert held  # calls on its counters, read just before the signal
    assert [status_of(r) for r in responses] == [200] * 300
    with httpx.Client(base_url=cluster.url, timeout=30) as http:
        total = sum(http.post(f"/v1/objects/Counter/{n}/get").json()["result"] for n in names)
    assert total == 300


def test_an_idle_object_is_evicted_and_comes_back_with_its_state(cluster):
    # Given a worker that evicts objects after one idle second
    cluster.start_worker(SOLO_IDLE_EVICT_S="1")
    cluster.start_api()
    name = f"e-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=cluster.url, timeout=30) as http:
        assert http.post(f"/v1/objects/Counter/{name}/increment", json={"by": 5}).json()["result"] == 5
        first = http.get(f"/v1/objects/Counter/{name}").json()
        assert first["active"] is True

        # When it stays idle
        deadline = time.monotonic() + 15
        while http.get(f"/v1/objects/Counter/{name}").json()["active"] and time.monotonic() < deadline:
            time.sleep(0.2)

        # Then it is no longer active, and the next call finds its state
        info = http.get(f"/v1/objects/Counter/{name}").json()
        assert info["active"] is False
        assert info["state_bytes"] > 0
        assert http.post(f"/v1/objects/Counter/{name}/increment").json()["result"] == 6
        # (a new object's first epoch is above the epoch floor, which other tests' tombstones may have raised)
        assert http.get(f"/v1/objects/Counter/{name}").json()["epoch"] == first["epoch"] + 1
