"""Client CPU per Redis command: solo's clients against redis-py's own, built with the same settings.

    .venv/bin/python -m bench.redis_client [--commands 10000] [--rounds 2] [--url redis://127.0.0.1:6379/0]

One process, one command at a time (GET, and EVALSHA through a registered script), CPU time of
the process (time.process_time) per command after 300 unmeasured: what the client itself costs,
not Redis. Sync (the workers') and asyncio on uvloop (the API's); the two kinds of client
alternate, `rounds` times each, so both see the same load. ADR 0012.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis
import redis.asyncio
import uvloop

from bench.common import write_result
from solo.objects.coordination import redis_clients

SCRIPT = "return redis.call('get', KEYS[1])"
WARMUP = 300


def stock_sync(url: str) -> redis.Redis:
    from redis.retry import Retry

    return redis.Redis.from_url(
        url,
        socket_timeout=redis_clients.SOCKET_TIMEOUT_S,
        socket_connect_timeout=5,
        health_check_interval=30,
        retry=Retry(redis_clients._backoff(), redis_clients._RETRIES),
    )


def stock_async(url: str) -> redis.asyncio.Redis:
    from redis.asyncio.retry import Retry

    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url,
        max_connections=512,
        timeout=10,
        socket_timeout=redis_clients.SOCKET_TIMEOUT_S,
        socket_connect_timeout=5,
        health_check_interval=30,
        retry=Retry(redis_clients._backoff(), redis_clients._RETRIES),
    )
    return redis.asyncio.Redis(connection_pool=pool)


def per_command_us(command: Callable[[], Any], n: int) -> float:
    for _ in range(WARMUP):
        command()
    began = time.process_time()
    for _ in range(n):
        command()
    return (time.process_time() - began) / n * 1e6


async def per_command_us_async(command: Callable[[], Awaitable[Any]], n: int) -> float:
    for _ in range(WARMUP):
        await command()
    began = time.process_time()
    for _ in range(n):
        await command()
    return (time.process_time() - began) / n * 1e6


def sync_round(client: redis.Redis, key: str, n: int) -> dict[str, float]:
    client.set(key, "1")
    script = client.register_script(SCRIPT)
    return {
        "GET": per_command_us(lambda: client.get(key), n),
        "EVALSHA": per_command_us(lambda: script(keys=[key]), n),
    }


async def async_round(client: redis.asyncio.Redis, key: str, n: int) -> dict[str, float]:
    await client.set(key, "1")
    script = client.register_script(SCRIPT)
    try:
        return {
            "GET": await per_command_us_async(lambda: client.get(key), n),
            "EVALSHA": await per_command_us_async(lambda: script(keys=[key]), n),
        }
    finally:
        await client.delete(key)
        await client.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench redis_client", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--commands", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--url", default=os.environ.get("SOLO_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args(argv)
    key = f"bench-redis-client-{uuid.uuid4().hex[:8]}"
    clients: dict[str, tuple[Callable[[str], Any], Callable[[str], Any]]] = {
        "redis-py": (stock_sync, stock_async),
        "solo": (redis_clients.sync_client, redis_clients.async_client),
    }
    rows: list[dict[str, Any]] = []
    print("client    round  kind   command  client CPU us/command  load (1 min)")
    for round_ in range(1, args.rounds + 1):
        for name, (make_sync, make_async) in clients.items():
            load = os.getloadavg()[0]
            sync_client = make_sync(args.url)
            measured = {("sync", c): us for c, us in sync_round(sync_client, key, args.commands).items()}
            sync_client.delete(key)
            sync_client.close()
            got = uvloop.run(async_round(make_async(args.url), key, args.commands))
            measured.update({("asyncio", c): us for c, us in got.items()})
            for (kind, command), us in measured.items():
                rows.append({"client": name, "round": round_, "kind": kind, "command": command, "us": round(us, 1)})
                print(f"{name:9} {round_:5}  {kind:7} {command:8} {us:21.1f}  {load:12.2f}")
    write_result("redis_client", sys.argv[1:] if argv is None else argv, {"commands": args.commands, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
