"""`honcho start -f Procfile.dev`, as its first line documents, runs the stack: the API answers a call
and every process is still up after it (with the Procfile's `release`, honcho stopped them all
when the migration exited)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import redis

from solo.testing.cluster import free_port, wait_until_ready
from tests import REPO
from tests.conftest import delete_prefix


def test_honcho_runs_procfile_dev_after_a_migration(cluster_env, tmp_path, key_prefix, real_redis_url):
    # Given the environment a user's .env would give, and `solo` on the PATH
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = {**cluster_env, "PORT": str(port), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    migrated = subprocess.run(["solo", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert migrated.returncode == 0, migrated.stderr

    # When honcho starts Procfile.dev
    log = (tmp_path / "honcho.log").open("wb")
    honcho = subprocess.Popen(
        [str(Path(bin_dir) / "honcho"), "start", "-f", str(REPO / "Procfile.dev")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_until_ready(url, 120, honcho), (tmp_path / "honcho.log").read_text()

        # Then a call runs, and honcho (with every process) is still up afterwards
        response = httpx.post(f"{url}/v1/objects/Counter/honcho/increment", json={"by": 2}, timeout=60)
        assert response.status_code == 200, response.text
        assert response.json()["result"] == 2
        assert honcho.poll() is None, (tmp_path / "honcho.log").read_text()
        started = (tmp_path / "honcho.log").read_text()
        assert all(f"{name}.1" in started for name in ("web", "worker", "scheduler")), started
    finally:
        os.killpg(honcho.pid, signal.SIGTERM)
        try:
            honcho.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(honcho.pid, signal.SIGKILL)
            honcho.wait()
        log.close()
        client = redis.Redis.from_url(real_redis_url)
        delete_prefix(client, key_prefix)
        client.close()
