"""A real solo: uvicorn and worker processes started with the Procfile's commands.

Runs on the real Redis and a fresh Postgres database; each test gets its own
key prefix and data directory, and every process is stopped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from bench.private_postgres import PrivatePostgres, postgres_binaries
from solo.objects.naming import object_id
from solo.objects.state.catalog import Activation, Catalog
from solo.objects.state.migrate import upgrade
from solo.objects.state.schema import make_engine
from solo.testing.cluster import Cluster, free_port, process_env, wait_until_ready
from tests import REPO
from tests.conftest import delete_prefix


@pytest.fixture
def cluster_env(real_redis_url, postgres_url, key_prefix, tmp_path) -> dict[str, str]:
    return process_env(
        redis_url=real_redis_url,
        database_url=postgres_url,
        key_prefix=key_prefix,
        data_dir=tmp_path / "objects",
        pythonpath=REPO,  # tests.objects
        SOLO_OBJECTS="solo.examples,tests.objects",
        SOLO_NAMESPACE=key_prefix,  # the tests share one Postgres database; each keeps to its own objects
    )


@pytest.fixture
def cluster(cluster_env, tmp_path, key_prefix, real_redis_url):
    c = Cluster(cluster_env, tmp_path)
    yield c
    c.stop()
    client = redis.Redis.from_url(real_redis_url)
    delete_prefix(client, key_prefix)
    client.close()


@contextlib.contextmanager
def module_cluster(redis_url: str, database_url: str, tmp: Path, **env):
    """(cluster, engine) for one test module's processes, under a key prefix and namespace of their
    own; stopped, and their Redis keys deleted, at the end. `env`: more of process_env's arguments."""
    prefix = f"solo-test-{uuid.uuid4().hex[:10]}"
    settings = dict(redis_url=redis_url, database_url=database_url, key_prefix=prefix, data_dir=tmp / "objects")
    cluster = Cluster(process_env(**settings, SOLO_NAMESPACE=prefix, **env), tmp)
    engine = make_engine(database_url)
    try:
        yield cluster, engine
    finally:
        cluster.stop()
        engine.dispose()
        client = redis.Redis.from_url(redis_url)
        delete_prefix(client, prefix)
        client.close()


def wait_until(predicate, timeout_s: float, what: str):
    """The first true value `predicate()` returns, polled until `timeout_s` have passed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def history(env: dict[str, str], class_name: str, name: str) -> list[Activation]:
    """An object's activations (epoch, worker, start, stop), from the shared database of `env`."""
    engine = make_engine(env["DATABASE_URL"])
    try:
        return Catalog(engine).history(object_id(env["SOLO_NAMESPACE"], class_name, name))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def redis_server() -> str:
    """The redis-server program, for tests that start Redis servers of their own (a process: e2e)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/services.sh installs it)")
    return binary


@pytest.fixture(scope="session")
def postgres_server() -> Path:
    """PostgreSQL's server programs, for tests that start and stop a server of their own (a process: e2e)."""
    try:
        return postgres_binaries()
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def own_postgres(postgres_server):
    """A PostgreSQL server of this test's own with a migrated database (its `.url`), that the test
    may stop (a fast shutdown) and start again; removed at the end (bench/private_postgres.py)."""
    server = PrivatePostgres()
    try:
        server.start()
        upgrade(server.url, ["solo.examples"])
        yield server
    finally:
        server.remove()


@pytest.fixture
def own_redis(redis_server, tmp_path):
    """A Redis server of this test's own, without persistence, that the test may kill and restart."""
    port = free_port()
    args = [
        redis_server,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(tmp_path),
    ]

    class Server:
        url = f"redis://127.0.0.1:{port}/0"
        process: subprocess.Popen

        def start(self) -> None:
            self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            client = redis.Redis.from_url(self.url)
            wait_until(lambda: _pings(client), 10, "redis-server to start")
            client.close()

        def kill(self) -> None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    server = Server()
    server.start()
    yield server
    server.kill()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory) -> Path:
    """solo's wheel, built from this checkout by `python -m build` (a process of its own)."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("solo-*.whl")
    return built


class DevServer:
    """`solo dev` run by the solo_dev fixture: its URL, working directory and output."""

    def __init__(self, process: subprocess.Popen, url: str, cwd: Path, log: Path, env: dict[str, str]) -> None:
        self.process, self.url, self.cwd, self.log_path, self.env = process, url, cwd, log, env

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def solo(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess:
        """Run another `solo` command in the same directory and environment, as a user of `make run` would."""
        return subprocess.run(
            [sys.executable, "-m", "solo", *args],
            cwd=self.cwd,
            env={**self.env, **extra_env},
            capture_output=True,
            text=True,
            timeout=120,
        )


def dev_env(**extra_env: str) -> dict[str, str]:
    """This process's environment with no SOLO_, REDIS_URL, DATABASE_URL or PYTHONPATH but those given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLO_")}
    for name in ("REDIS_URL", "DATABASE_URL", "PYTHONPATH"):
        env.pop(name, None)
    return {**env, **extra_env}


@pytest.fixture
def solo_dev(tmp_path):
    """start(*args, files={name: text}, **env) -> DevServer: `solo dev` (what `make run` runs) in a directory of
    its own holding `files`, with no SOLO_, REDIS_URL or DATABASE_URL settings but those given: embedded Redis,
    SQLite in ./var."""
    started: list[subprocess.Popen] = []

    def start(*args: str, files: dict[str, str] | None = None, **extra_env: str) -> DevServer:
        env = dev_env(**extra_env)
        cwd = tmp_path / f"dev{len(started)}"
        cwd.mkdir()
        for name, text in (files or {}).items():
            (cwd / name).parent.mkdir(parents=True, exist_ok=True)  # "myapp/objects.py": a package's file
            (cwd / name).write_text(text)
        port = free_port()
        log_path = cwd / "dev.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "solo", "dev", "--port", str(port), *args],
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        assert wait_until_ready(url, 120, process), log_path.read_text(errors="replace")  # a bound, not a timing
        # Then its banner, which `solo dev` prints once it has seen the API ready too
        wait_until(lambda: "solo is running" in log_path.read_text(errors="replace"), 60, "the banner of solo dev")
        return DevServer(process, url, cwd, log_path, env)

    yield start
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
