"""Shared fixtures, and the one rule that puts every test in its tier.

Every test gets its own key prefix, data directory and shared database.
Backends are parametrised: "fake" runs on fakeredis and a SQLite shared
database; "real" runs the same test body on the real Redis and a fresh
Postgres database. In CI (CI=true) a missing real service fails the run
instead of skipping it.

Tiers (pytest markers, registered in pyproject.toml) are assigned here from
what a test needs, never by hand: see `tier_of` and `pytest_collection_modifyitems`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from solo.objects.settings import Settings
from solo.objects.state.migrate import upgrade
from solo.objects.state.schema import make_engine, normalize_url

REDIS_URL = os.environ.get("SOLO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("SOLO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


# -- tiers --------------------------------------------------------------------------
#
# A test's tier is what it needs, read from the fixtures it uses (their whole closure):
#   e2e          starts real processes: a fixture of PROCESS_FIXTURES
#   integration  needs the real Redis and Postgres: SERVICE_FIXTURES, or backend "real"
#                (redis_client and friends reach the real services through getfixturevalue,
#                so the backend parameter is what shows it)
#   unit         needs no service: fakeredis, SQLite files, pure code
# Its folder must say the same (FOLDER_TIERS): a test in the wrong place stops the run at
# collection, so that `pytest -m unit` and the directory names can be trusted alike.

TIERS = ("unit", "integration", "e2e")
PROCESS_FIXTURES = {
    "cluster_env",  # tests/e2e/conftest.py: API and worker processes (cluster uses it)
    "redis_server",  # tests/e2e/conftest.py: redis-server processes of a test's own (own_redis uses it)
    "postgres_server",  # tests/e2e/conftest.py: PostgreSQL servers of a test's own (bench/private_postgres.py)
    "solo",  # tests/examples/conftest.py: the examples served by real processes (api uses it)
    "built_wheel",  # tests/e2e/conftest.py: `python -m build`, then the wheel installed and run
    "solo_dev",  # tests/e2e/conftest.py: `solo dev` (what `make run` runs) in a directory of its own
    "auth_cluster",  # tests/e2e/test_auth.py: API processes with SOLO_AUTH=keys (and one with off) and a worker
    "fuzzed_solo",  # tests/e2e/test_fuzz.py: the examples served with SOLO_AUTH=keys, for schemathesis
    "socket_cluster",  # tests/e2e/test_websockets.py: API processes (one with keys) and workers, for the module
    "console_solo",  # tests/examples/test_console_browser.py: the examples with SOLO_AUTH=keys, for the console
    "workers_cluster",  # tests/e2e/test_workers.py: two workers and an API, for `solo workers ls`
    "traced_cluster",  # tests/e2e/test_traces.py: an API and a worker exporting spans to their logs
}
SERVICE_FIXTURES = {"real_redis_url", "postgres_url"}
TESTS = Path(__file__).parent
# tests/examples: the examples' objects in-process (solo.testing.LocalSystem), and served by real processes.
FOLDER_TIERS = {"unit": {"unit"}, "integration": {"integration"}, "e2e": {"e2e"}, "examples": {"unit", "e2e"}}
CONTRACT_TIERS = {"fake": {"unit"}, "real": {"integration"}}  # tests/contract: one body, both backends


def tier_of(item: pytest.Item) -> str:
    used = set(getattr(item, "fixturenames", ()))
    if used & PROCESS_FIXTURES:
        return "e2e"
    if used & SERVICE_FIXTURES or _backend(item) == "real":
        return "integration"
    return "unit"


def _backend(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("backend") if callspec is not None else None


def _folder(item: pytest.Item) -> str | None:
    """The folder of tests/ the test is in; None for a test from elsewhere (its place promises nothing)."""
    try:
        return item.path.relative_to(TESTS).parts[0]
    except ValueError:
        return None


def _promised(folder: str, item: pytest.Item) -> set[str]:
    """The tiers the folder holds for this test; none if the test has no place there."""
    if folder == "contract":
        return CONTRACT_TIERS.get(_backend(item), set())  # a body that is not on both backends has none
    return FOLDER_TIERS.get(folder, set())


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by these markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    misplaced = []
    for item in items:
        tier = tier_of(item)
        folder = _folder(item)
        if any(mark.name in TIERS for mark in item.iter_markers()):
            misplaced.append(f"{item.nodeid}: a tier marker set by hand (tests/conftest.py sets them)")
        elif folder == "contract" and _backend(item) is None:
            misplaced.append(f"{item.nodeid}: not on both backends, which is what tests/contract/ is for")
        elif folder is not None and tier not in _promised(folder, item):
            misplaced.append(f"{item.nodeid}: needs {tier}, which tests/{folder}/ is not for")
        item.add_marker(tier)
    if misplaced:
        raise pytest.UsageError(
            "tests out of place (unit: no services; integration: the real Redis and Postgres; e2e: real"
            " processes; contract: one body on both backends):\n  " + "\n  ".join(misplaced)
        )


# -- services -----------------------------------------------------------------------


def _service_missing(what: str, exc: Exception) -> None:
    message = f"{what} is not reachable ({exc}); run `make services` or see README"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def real_redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        _service_missing("Redis", exc)
    return REDIS_URL


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh Postgres database for this test session, migrated, dropped at the end."""
    admin = sa.create_engine(normalize_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    name = f"solo_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        _service_missing("Postgres", exc)
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url, ["solo.examples"])  # the examples' own shared tables too (tests/examples)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def key_prefix() -> str:
    return f"solo-test-{uuid.uuid4().hex[:10]}"


def delete_prefix(client: redis.Redis, prefix: str) -> None:
    for pattern in (f"{prefix}:*", f"{prefix}-dramatiq*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])


@pytest.fixture(params=["fake", "real"])
def backend(request) -> str:
    """Which services a test body runs on: fakeredis + SQLite, or real Redis + Postgres."""
    return request.param


@pytest.fixture
def fake_server():
    import fakeredis

    return fakeredis.FakeServer()


@pytest.fixture
def redis_client(backend, request, key_prefix, fake_server) -> Iterator[redis.Redis]:
    if backend == "fake":
        import fakeredis

        client = fakeredis.FakeRedis(server=fake_server)
        yield client
        return
    url = request.getfixturevalue("real_redis_url")
    client = redis.Redis.from_url(url, socket_timeout=10)
    yield client
    delete_prefix(client, key_prefix)
    client.close()


@pytest.fixture
def async_redis_client(backend, request, fake_server):
    """An asyncio client on the same Redis as redis_client."""
    if backend == "fake":
        import fakeredis

        return fakeredis.FakeAsyncRedis(server=fake_server)
    import redis.asyncio

    return redis.asyncio.Redis.from_url(request.getfixturevalue("real_redis_url"), socket_timeout=10)


@pytest.fixture
def database_url(backend, request, tmp_path) -> str:
    if backend == "fake":
        url = f"sqlite:///{tmp_path / 'shared.db'}"
        upgrade(url)
        return url
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def settings(key_prefix, database_url, tmp_path, backend, request) -> Settings:
    redis_url = REDIS_URL if backend == "real" else "redis://fake"
    return Settings.from_mapping(
        {
            "redis_url": redis_url,
            "database_url": database_url,
            "data_dir": str(tmp_path / "objects"),
            "key_prefix": key_prefix,
            "namespace": key_prefix,  # tests share one Postgres database: each sees only its own alarms
            "object_modules": ("solo.examples", "tests.objects"),
            "lease_ttl_ms": 1000,
            "idle_evict_s": 60.0,
            "call_timeout_s": 10.0,
            "worker_threads": 4,
            # Most tests are about objects, not keys: they run as SOLO_AUTH=off (the operator of tenant
            # "default"). The tests of keys (test_auth.py in contract/ and e2e/) turn keys on.
            "auth": "off",
        }
    )


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()
