"""Alarms with real processes: crashes of the owner and the scheduler, a Redis restart, real time.

Workers here run no scheduler of their own (SOLO_SCHEDULER_IN_WORKERS=0); the
scheduler is a separate `solo scheduler` process, as in the Procfile, so that
the test can kill it on its own.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid

import httpx
import pytest
import redis

from solo.testing.cluster import SOLO, Cluster
from tests import REPO
from tests.conftest import delete_prefix
from tests.e2e.conftest import wait_until

NO_SCHEDULER = {"SOLO_SCHEDULER_IN_WORKERS": "0"}


class Schedulers:
    """`solo scheduler` processes of one test, all stopped at the end."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.processes: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        index = len(self.processes)
        log = open(self.cluster.log_dir / f"scheduler{index}.log", "ab")
        env = {**self.cluster.env, "SOLO_WORKER_ID": f"scheduler{index}-{uuid.uuid4().hex[:6]}"}
        process = subprocess.Popen([*SOLO, "scheduler"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def call(http: httpx.Client, object_name: str, method: str, **args):
    response = http.post(f"/v1/objects/Alarmed/{object_name}/{method}", json=args, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def call_until_answered(http: httpx.Client, object_name: str, method: str, timeout_s: float = 60, **args):
    """Retry through a Redis restart or a failover until the object answers."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            response = http.post(f"/v1/objects/Alarmed/{object_name}/{method}", json=args, timeout=10)
            if response.status_code == 200:
                return response.json()["result"]
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"Alarmed/{object_name}.{method} did not answer within {timeout_s}s")
        time.sleep(0.2)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_an_alarm_survives_kill_9_of_owner_and_scheduler_and_a_redis_restart(cluster_env, tmp_path, own_redis):
    env = {**cluster_env, "REDIS_URL": own_redis.url, **NO_SCHEDULER}
    cluster = Cluster(env, tmp_path)
    schedulers = Schedulers(cluster)
    try:
        cluster.start_api()
        cluster.start_worker()
        cluster.start_worker()
        scheduler = schedulers.start()
        http = httpx.Client(base_url=cluster.url)
        name = uuid.uuid4().hex
        # Due in 20 s (the faults take seconds on a loaded machine); its handler fails once, so the
        # success is a retry 2 s later.
        due = now_ms() + 20_000
        assert call(http, name, "set_alarm", at_ms=due, fail_times=1) == due
        owner = http.get(f"/v1/objects/Alarmed/{name}").json()["owner"]
        owner_process = cluster.workers[int(owner[1:].split("-")[0])]  # worker ids are w<index>-<random>

        owner_process.send_signal(signal.SIGKILL)  # the owner
        scheduler.send_signal(signal.SIGKILL)  # the scheduler
        own_redis.kill()  # and Redis, which keeps nothing
        own_redis.start()
        assert now_ms() < due, "the faults must come before the alarm is due"
        schedulers.start()  # a new scheduler: the old one's lease died with Redis anyway

        fires = []

        def fired() -> bool:
            fires[:] = call_until_answered(http, name, "fires")
            return len(fires) >= 1

        wait_until(fired, 60, "the alarm to fire")
        time.sleep(3)  # longer than a retry would take: a second success would show by now
        fires = call_until_answered(http, name, "fires")
        assert len(fires) == 1, fires  # once per success
        (fire,) = fires
        assert fire["scheduled_ms"] == due and fire["retry_count"] == 1 and fire["fired_ms"] >= due
        assert call(http, name, "get_alarm") is None
        listed = http.get("/v1/alarms", params={"class": "Alarmed"}).json()["alarms"]
        assert [a for a in listed if a["object"]["name"] == name] == []
    finally:
        schedulers.stop()
        cluster.stop()


@pytest.fixture
def scheduled_cluster(cluster):
    """API, one worker and one separate scheduler on the shared Redis."""
    schedulers = Schedulers(cluster)
    cluster.env.update(NO_SCHEDULER)
    cluster.start_api()
    cluster.start_worker()
    schedulers.start()
    yield cluster
    schedulers.stop()


def test_interval_and_cron_schedules_fire_repeatedly(scheduled_cluster):
    http = httpx.Client(base_url=scheduled_cluster.url)
    name = uuid.uuid4().hex
    call(http, name, "every", name="interval", seconds=1)
    call(http, name, "cron", name="cron", expression="* * * * * *")  # every second (seconds field last)

    def counts() -> dict[str, int]:
        found: dict[str, int] = {}
        for fire in call(http, name, "fires"):
            found[fire["name"]] = found.get(fire["name"], 0) + 1
        return found

    wait_until(lambda: min(counts().get("interval", 0), counts().get("cron", 0)) >= 3, 30, "three fires of each")
    fires = call(http, name, "fires")
    for schedule in ("interval", "cron"):
        times = [f["fired_ms"] for f in fires if f["name"] == schedule]
        assert times == sorted(times) and len(set(times)) == len(times)
    listing = {s["name"]: s for s in call(http, name, "listing")}
    assert listing["interval"]["spec"] == "every 1s" and listing["cron"]["spec"] == "cron * * * * * *"


def test_a_near_alarm_fires_on_time_among_100000_far_future_ones(scheduled_cluster, real_redis_url, key_prefix):
    http = httpx.Client(base_url=scheduled_cluster.url)
    crowd = uuid.uuid4().hex
    far = now_ms() + 7 * 24 * 3600 * 1000
    for chunk in range(10):
        assert call(http, crowd, "many", prefix=f"f{chunk}-", count=10_000, at_ms=far + chunk * 10_000) == 10_000
    pending = http.get("/v1/alarms", params={"class": "Alarmed", "limit": "10000", "state": "pending"})
    assert len(pending.json()["alarms"]) == 10_000  # (the listing's limit; all 100,000 are indexed)

    name = uuid.uuid4().hex
    due = now_ms() + 1000
    call(http, name, "set_alarm", at_ms=due)
    fires: list[dict] = []

    def fired() -> bool:
        fires[:] = call(http, name, "fires")
        return bool(fires)

    wait_until(fired, 30, "the near alarm to fire")
    lateness_ms = fires[0]["fired_ms"] - due
    print(f"near alarm lateness among 100,000 far-future alarms: {lateness_ms} ms")
    assert lateness_ms >= 0
    # A sanity bound far above the 50 ms goal (measured by bench/alarms.py): what it guards
    # against is the failure mode of a FIFO delay queue, where a near alarm waits behind far ones.
    assert lateness_ms < 3000
    client = redis.Redis.from_url(real_redis_url)
    try:  # far-future alarms stay in the shared index only, not in Redis's time index
        assert client.zcard(f"{key_prefix}:alarms:due") <= 1
    finally:
        delete_prefix(client, key_prefix)
        client.close()
