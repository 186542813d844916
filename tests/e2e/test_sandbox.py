"""Methods that spin, block or kill their worker, against real worker processes.

A spinning method is interrupted and the worker goes on serving; code that no
interrupt reaches makes the worker report it and exit for its supervisor to
restart; SIGTERM ends a worker within its drain timeout even then; and a call
that keeps killing workers is failed as poisoned instead of crash-looping them.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import uuid

import httpx
import redis

from solo.objects.coordination.keys import Keys
from solo.objects.naming import object_id
from tests.e2e.conftest import wait_until

EXIT_STUCK = 70  # workers/process.py


def name() -> str:
    return f"h-{uuid.uuid4().hex[:8]}"


def submit(http: httpx.Client, path: str, **args) -> str:
    """Queue a call without waiting for it; returns its id."""
    response = http.post(path, json=args, headers={"Prefer": "respond-async"})
    assert response.status_code == 202, response.text
    return response.json()["call_id"]


def call_status(http: httpx.Client, call_id: str) -> dict:
    return http.get(f"/v1/calls/{call_id}").json()


def exit_code(process: subprocess.Popen, timeout_s: float) -> int | None:
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None


def test_a_spinning_method_is_interrupted_and_the_same_worker_serves_the_next_call(cluster):
    worker = cluster.start_worker(SOLO_CALL_TIME_LIMIT_S="1")
    cluster.start_api()
    http = httpx.Client(base_url=cluster.url, timeout=60)
    path = f"/v1/objects/Hazard/{name()}"

    for method in ("spin", "endless_sql"):
        response = http.post(f"{path}/{method}")
        assert response.status_code == 504, response.text
        assert response.json()["error"]["code"] == "time_limit_exceeded"

    assert http.post(f"{path}/mark", json={"note": "after"}).json()["result"] == 1  # nothing of theirs was kept
    assert worker.poll() is None and len(cluster.live_workers()) == 1


def test_code_no_interrupt_reaches_makes_the_worker_exit_and_others_serve(cluster):
    # Given: two workers; one takes an object whose call blocks inside C for an hour
    cluster.start_worker(SOLO_CALL_TIME_LIMIT_S="1", SOLO_DRAIN_TIMEOUT_S="2")
    cluster.start_worker(SOLO_CALL_TIME_LIMIT_S="1", SOLO_DRAIN_TIMEOUT_S="2")
    cluster.start_api()
    http = httpx.Client(base_url=cluster.url, timeout=60)
    path = f"/v1/objects/Hazard/{name()}"
    blocked = submit(http, f"{path}/block_in_c", seconds=3600)
    wait_until(lambda: call_status(http, blocked)["status"] == "running", 30, "the blocking call to start")
    wait_until(lambda: http.get(path).json().get("owner") is not None, 30, "the object's owner to be known")
    owner = cluster.worker_by_id(http.get(path).json()["owner"])
    assert owner is not None

    # When: its limit passes and the interrupt cannot land
    code = exit_code(owner, 60)

    # Then: that worker reported it and exited for its supervisor, and the other one serves
    assert code == EXIT_STUCK, code
    index = cluster.workers.index(owner)
    assert "long after its time limit" in cluster.log(f"worker{index}")
    assert http.post(f"/v1/objects/Hazard/{name()}/mark", json={"note": "x"}).json()["result"] == 1


def test_sigterm_ends_a_worker_within_its_drain_timeout_even_with_a_stuck_call(cluster):
    worker = cluster.start_worker(SOLO_DRAIN_TIMEOUT_S="2")  # the 30 s time limit never comes into it
    cluster.start_api()
    http = httpx.Client(base_url=cluster.url, timeout=60)
    blocked = submit(http, f"/v1/objects/Hazard/{name()}/block_in_c", seconds=3600)
    wait_until(lambda: call_status(http, blocked)["status"] == "running", 30, "the blocking call to start")

    worker.send_signal(signal.SIGTERM)

    assert exit_code(worker, 30) == EXIT_STUCK
    assert "still running" in cluster.log("worker0")


def test_a_call_that_keeps_killing_its_worker_is_poisoned_and_the_object_serves_again(cluster):
    # Given: a call that kills the worker running it, and a call queued behind it
    env = {"SOLO_LEASE_TTL_MS": "500", "SOLO_POISON_AFTER": "3"}
    cluster.start_worker(**env)
    cluster.start_api()
    http = httpx.Client(base_url=cluster.url, timeout=60)
    path = f"/v1/objects/Hazard/{name()}"
    killer = submit(http, f"{path}/kill_worker")
    behind = submit(http, f"{path}/mark", note="behind")

    # When: a supervisor restarts each worker it kills
    deaths = 0
    while call_status(http, killer)["status"] not in ("done", "failed"):
        worker = cluster.workers[-1]
        if worker.poll() is not None:
            assert worker.returncode == -signal.SIGKILL
            deaths += 1
            assert deaths <= 3, "the call ran again after SOLO_POISON_AFTER deaths"
            cluster.start_worker(**env)
        wait_until(
            lambda w=cluster.workers[-1]: w.poll() is not None or _finished(http, killer), 60, "a death or an answer"
        )

    # Then: it killed exactly three workers, was failed as poisoned, and the call behind it ran
    assert deaths == 3
    assert call_status(http, killer)["error"]["code"] == "poisoned"
    (listed,) = http.get(path).json()["poisoned_calls"]  # operators see it
    assert (listed["call_id"], listed["method"], listed["crashes"]) == (killer, "kill_worker", 3)
    wait_until(lambda: _finished(http, behind), 30, "the call queued behind it")
    assert call_status(http, behind)["result"] == 1
    assert http.post(f"{path}/mark", json={"note": "later"}).json()["result"] == 2


def _finished(http: httpx.Client, call_id: str) -> bool:
    return call_status(http, call_id)["status"] in ("done", "failed")


def test_an_operator_purges_a_mailbox_and_waiting_callers_are_told(cluster, cluster_env):
    # Given: calls queued to an object while no worker runs, one caller waiting on its answer
    cluster.start_api()
    http = httpx.Client(base_url=cluster.url, timeout=60)
    hazard = name()
    path = f"/v1/objects/Hazard/{hazard}"
    mailbox = Keys(cluster_env["SOLO_KEY_PREFIX"]).mailbox(object_id(cluster_env["SOLO_NAMESPACE"], "Hazard", hazard))
    redis_client = redis.Redis.from_url(cluster_env["REDIS_URL"])
    queued = [submit(http, f"{path}/kill_worker") for _ in range(2)]
    waiting: dict = {}
    caller = threading.Thread(target=lambda: waiting.update(r=http.post(f"{path}/mark", json={"note": "w"})))
    caller.start()
    wait_until(lambda: redis_client.llen(mailbox) == 3, 30, "three queued calls")

    # When: an operator purges the mailbox
    response = http.delete(f"{path}/mailbox")

    # Then: every queued call failed unrun, the waiting caller got 410 purged, and the object serves
    assert response.status_code == 200, response.text
    assert response.json() == {"purged": 3}
    caller.join(timeout=30)
    assert waiting["r"].status_code == 410 and waiting["r"].json()["error"]["code"] == "purged"
    assert all(call_status(http, c)["error"]["code"] == "purged" for c in queued)
    cluster.start_worker()
    assert http.post(f"{path}/mark", json={"note": "after"}).json()["result"] == 1  # the purged ones never ran
