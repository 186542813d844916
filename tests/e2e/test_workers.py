"""`solo workers ls` over real worker processes: both appear with their pid, and one killed with
SIGKILL (no chance to remove its record) disappears once its heartbeat record expires."""

from __future__ import annotations

import json
import signal
import uuid

import httpx
import pytest

from solo.cli.main import main as solo
from tests import REPO
from tests.e2e.conftest import module_cluster, wait_until

BOUND_S = 30.0  # a bound on waiting, not a timing (records live WORKER_TTL_MS after the last beat)


@pytest.fixture(scope="module")
def workers_cluster(real_redis_url, postgres_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("workers")
    with module_cluster(real_redis_url, postgres_url, tmp, pythonpath=REPO, SOLO_OBJECTS="tests.objects") as (
        cluster,
        _engine,
    ):
        cluster.start_worker()
        cluster.start_worker()
        cluster.start_api()
        yield cluster


def listed(url: str, capsys) -> dict[str, dict]:
    assert solo(["workers", "ls", "--url", url, "--json"]) == 0
    return {w["id"]: w for w in json.loads(capsys.readouterr().out)}


def test_two_workers_appear_and_a_killed_one_disappears(workers_cluster, capsys):
    cluster = workers_cluster
    url = cluster.url
    first, second = cluster.worker_ids
    workers = wait_until(lambda: (found := listed(url, capsys)) and len(found) == 2 and found, BOUND_S, "two workers")
    assert set(workers) == {first, second}
    by_id = dict(zip(cluster.worker_ids, cluster.workers, strict=True))
    for worker_id, record in workers.items():
        assert record["pid"] == by_id[worker_id].pid and "Tally" in record["classes"]
    assert workers[first]["classes_digest"] == workers[second]["classes_digest"]  # the same code

    name = uuid.uuid4().hex
    reply = httpx.post(f"{url}/v1/objects/Tally/{name}/add", json={}, timeout=30)
    assert reply.status_code == 200, reply.text
    wait_until(lambda: sum(w["objects"] for w in listed(url, capsys).values()) == 1, BOUND_S, "the object held")

    victim = cluster.worker_by_id(first)
    assert victim is not None
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=BOUND_S)
    survivors = wait_until(lambda: (found := listed(url, capsys)) and first not in found and found, BOUND_S, "expiry")
    assert set(survivors) == {second}

    assert solo(["workers", "ls", "--url", url]) == 0
    table = capsys.readouterr().out
    assert second in table and first not in table
