"""A real solo: uvicorn and worker processes started with the Procfile's commands.

Runs on the real Redis and a fresh Postgres database; each test gets its own
key prefix and data directory, and every process is stopped afterwards.
"""

from __future__ import annotations

import pytest
import redis

from bench.cluster import Cluster, process_env
from tests.conftest import delete_prefix


@pytest.fixture
def cluster_env(real_redis_url, postgres_url, key_prefix, tmp_path) -> dict[str, str]:
    return process_env(
        redis_url=real_redis_url,
        database_url=postgres_url,
        key_prefix=key_prefix,
        data_dir=tmp_path / "objects",
        SOLO_OBJECTS="examples,tests.objects",
    )


@pytest.fixture
def cluster(cluster_env, tmp_path, key_prefix, real_redis_url):
    c = Cluster(cluster_env, tmp_path)
    yield c
    c.stop()
    client = redis.Redis.from_url(real_redis_url)
    delete_prefix(client, key_prefix)
    client.close()
