"""A real solo: uvicorn and worker processes started with the Procfile's commands.

Runs on the real Redis and a fresh Postgres database; each test gets its own
key prefix and data directory, and every process is stopped afterwards.
"""

from __future__ import annotations

import os

import pytest
import redis

from bench.cluster import ROOT, Cluster
from tests.conftest import delete_prefix


@pytest.fixture
def cluster_env(real_redis_url, postgres_url, key_prefix, tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLO_")}
    env.update(
        REDIS_URL=real_redis_url,
        DATABASE_URL=postgres_url,
        SOLO_KEY_PREFIX=key_prefix,
        SOLO_DATA_DIR=str(tmp_path / "objects"),
        SOLO_OBJECTS="examples,tests.objects",
        SOLO_LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    return env


@pytest.fixture
def cluster(cluster_env, tmp_path, key_prefix, real_redis_url):
    c = Cluster(cluster_env, tmp_path)
    yield c
    c.stop()
    client = redis.Redis.from_url(real_redis_url)
    delete_prefix(client, key_prefix)
    client.close()
