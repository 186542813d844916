"""The examples, tested two ways.

`local`: the examples on `solo.testing.LocalSystem`, in the test's own process on a clock
moved by hand, as a user tests their objects (unit tier). Tests of what the objects do use it.

`solo` and `api`: a real solo, the API and two workers, on the real Redis and Postgres (e2e
tier). One system per test module (starting processes is the slow part); every test uses
object names of its own. `solo.restart_workers()` kill -9s every worker and starts as many
new ones, so a test can show its objects survive it.
"""

from __future__ import annotations

import shutil
import uuid
from typing import Any

import httpx
import pytest
import redis

from solo.testing import LocalSystem
from solo.testing.cluster import Cluster, process_env
from tests.conftest import _service_missing, delete_prefix


class ExampleSystem(Cluster):
    def restart_workers(self) -> None:
        """kill -9 every worker, then start as many fresh ones (new ids, empty memory)."""
        live = self.live_workers()
        for worker in live:
            worker.kill()
            worker.wait()
        for _ in live:
            self.start_worker()


class CallFailed(AssertionError):
    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(f"{status} {error}")
        self.status = status
        self.error = error


class Api:
    """Calls over HTTP: `api.call("Counter/a", "increment", by=2)` returns the result or raises CallFailed."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def call(self, address: str, method: str, *, idempotency_key: str | None = None, **args: Any) -> Any:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        response = self.http.post(f"/v1/objects/{address}/{method}", json=args, headers=headers)
        body = response.json()
        if response.status_code != 200:
            raise CallFailed(response.status_code, body.get("error", body))
        return body["result"]


@pytest.fixture
def local():
    """The examples (`make run`'s SOLO_OBJECTS) on a LocalSystem of this test's own."""
    with LocalSystem(objects="solo.examples") as system:
        yield system


@pytest.fixture(scope="module")
def solo(real_redis_url, postgres_url, tmp_path_factory):
    prefix = f"solo-test-{uuid.uuid4().hex[:10]}"
    tmp = tmp_path_factory.mktemp("examples")
    env = process_env(
        redis_url=real_redis_url,
        database_url=postgres_url,
        key_prefix=prefix,
        data_dir=tmp / "objects",
        SOLO_OBJECTS="solo.examples",  # what `make run` serves
        SOLO_NAMESPACE=prefix,
    )
    system = ExampleSystem(env, tmp)
    try:
        system.start_worker()
        system.start_worker()
        system.start_api()
        yield system
    finally:
        system.stop()
        client = redis.Redis.from_url(real_redis_url)
        delete_prefix(client, prefix)
        client.close()


@pytest.fixture
def api(solo):
    with httpx.Client(base_url=solo.url, timeout=60) as http:
        yield Api(http)


@pytest.fixture
def run_id() -> str:
    """A suffix that keeps this test's object names apart from every other test's."""
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def chromium() -> str:
    """The system's chromium (scripts/services.sh installs Debian's); Playwright downloads no browser."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        _service_missing("chromium", FileNotFoundError("no chromium on PATH"))
    return binary
