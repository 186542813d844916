"""A Dramatiq worker with default settings whose actor records how late a delayed message ran.

    .venv/bin/python -m bench.delayed_worker --redis URL --namespace NS

Run by bench/alarms.py as the comparison for alarm lateness: a message sent
with `delay` is due at `due_ms`; the actor pushes (now - due_ms) onto the
Redis list `<NS>:lateness`. Default Worker settings (8 threads, 1 s worker
timeout). Stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import time

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

from bench.noop_worker import make_broker, serve

QUEUE = "bench-delayed"
ACTOR = "stamp"


def declare(broker: RedisBroker, results: redis.Redis | None, namespace: str) -> dramatiq.Actor:
    def stamp(due_ms: int) -> None:
        if results is not None:
            results.rpush(f"{namespace}:lateness", time.time_ns() // 1_000_000 - due_ms)

    return dramatiq.Actor(
        stamp, broker=broker, actor_name=ACTOR, queue_name=QUEUE, priority=0, options={"max_retries": 0}
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--namespace", required=True)
    args = parser.parse_args()
    broker = make_broker(args.redis, args.namespace)
    declare(broker, redis.Redis.from_url(args.redis), args.namespace)
    serve(broker)  # Worker defaults, as the comparison asks


if __name__ == "__main__":
    main()
