"""Redis clients built from settings, with the timeouts and retries solo relies on.

Retries: a command that fails on a dead connection (Redis restarted, idle
connection dropped) is retried on a fresh one, a few times with backoff. Every
script solo runs is safe to repeat: an enqueue repeated after a lost reply
carries the same call id, which the object's exactly-once record absorbs.
"""

from __future__ import annotations

import redis
import redis.asyncio
from redis.backoff import ExponentialBackoff

# Blocking pops wait at most 1 s; the socket timeout must stay well above that.
SOCKET_TIMEOUT_S = 10
_RETRIES = 3


def _backoff() -> ExponentialBackoff:
    return ExponentialBackoff(cap=1.0, base=0.05)


def sync_client(url: str) -> redis.Redis:
    from redis.retry import Retry

    return redis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=5,
        health_check_interval=30,
        retry=Retry(_backoff(), _RETRIES),
    )


def async_client(url: str, max_connections: int = 512) -> redis.asyncio.Redis:
    """A blocking pool: under a burst, requests wait for a connection instead of failing."""
    from redis.asyncio.retry import Retry

    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=10,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=5,
        health_check_interval=30,
        retry=Retry(_backoff(), _RETRIES),
    )
    return redis.asyncio.Redis(connection_pool=pool)
