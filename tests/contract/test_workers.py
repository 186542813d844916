"""Live workers over HTTP and the CLI, from their heartbeat records in Redis, on both backends.

Real worker processes appearing and disappearing (kill -9): tests/e2e/test_operating.py.
"""

from __future__ import annotations

import json
import os
import socket
import uuid

import pytest

from solo.cli.main import main as solo
from solo.objects.context import wall_clock_ms
from solo.objects.coordination.keys import Keys
from solo.objects.coordination.workers import WorkerBeats, WorkerRecord, package_version
from solo.objects.state.keys import KeyStore
from solo.testing.inprocess import InProcessSystem
from tests.contract.test_client import serving


@pytest.fixture
def system(settings, redis_client, async_redis_client):
    return InProcessSystem(settings, redis_client, async_redis_client)


@pytest.fixture
def http(system):
    with system.running() as client:
        yield client


def record(worker_id: str, beat_ms: int) -> WorkerRecord:
    return WorkerRecord(
        id=worker_id,
        host="elsewhere",
        pid=1,
        version="0.0.0",
        classes=("Retired",),
        classes_digest=None,
        objects=0,
        open_databases=0,
        threads_busy=0,
        threads=4,
        started_ms=beat_ms,
        beat_ms=beat_ms,
    )


def test_a_running_worker_lists_its_version_code_objects_and_threads(system, http):
    name = uuid.uuid4().hex
    assert http.post(f"/v1/objects/Counter/{name}/increment", json={}).status_code == 200
    system.host.beat()  # the maintainer does this every second; now, so the test need not wait

    response = http.get("/v1/workers")
    assert response.status_code == 200, response.text
    (worker,) = response.json()["workers"]
    assert worker["id"] == system.settings.worker_id
    assert (worker["host"], worker["pid"]) == (socket.gethostname(), os.getpid())
    assert worker["version"] == package_version()
    assert "Counter" in worker["classes"] and len(worker["classes_digest"]) == 16
    assert worker["objects"] == 1 and worker["threads"] == system.settings.worker_threads
    assert 0 <= worker["threads_busy"] <= worker["threads"]
    assert worker["started_ms"] <= worker["beat_ms"] <= wall_clock_ms()


def test_a_worker_that_stops_beating_is_gone_after_its_ttl_and_one_that_stops_cleanly_at_once(
    system, http, redis_client
):
    beats = WorkerBeats(redis_client, Keys(system.settings.key_prefix), ttl_ms=60_000)
    now = wall_clock_ms()
    beats.beat(record("silent", now - 61_000))  # its last beat is older than its TTL: it died
    beats.beat(record("alive", now))
    listed = [w["id"] for w in http.get("/v1/workers").json()["workers"]]
    assert sorted(listed) == sorted(["alive", system.settings.worker_id])

    beats.forget("alive")
    assert [w["id"] for w in http.get("/v1/workers").json()["workers"]] == [system.settings.worker_id]
    assert not redis_client.exists(Keys(system.settings.key_prefix).worker("alive"))


def test_workers_are_for_the_deployments_operators(settings, redis_client, async_redis_client):
    system = InProcessSystem(settings.with_changes(auth="keys"), redis_client, async_redis_client)
    keys = KeyStore(system.engine)
    with system.running() as http:
        for scope, status in (("call", 403), ("admin", 403), ("operator", 200)):
            token = keys.create("acme", scope).token
            response = http.get("/v1/workers", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == status, (scope, response.text)


def test_solo_workers_ls_on_the_command_line(system, capsys):
    with serving(system) as url:
        assert solo(["workers", "ls", "--url", url, "--json"]) == 0
        (worker,) = json.loads(capsys.readouterr().out)
        assert worker["id"] == system.settings.worker_id
        assert solo(["workers", "ls", "--url", url]) == 0
        table = capsys.readouterr().out
        assert system.settings.worker_id in table and str(os.getpid()) in table
