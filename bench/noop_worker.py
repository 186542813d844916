"""A Dramatiq worker process whose only actor does nothing: the floor under `activate`.

    .venv/bin/python -m bench.noop_worker --redis URL --namespace NS [--threads 8]

Run by bench/baseline.py (prefetch through Dramatiq's own `dramatiq_queue_prefetch`
environment variable). Stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import threading

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

QUEUE = "bench-noop"
ACTOR = "noop"


def make_broker(redis_url: str, namespace: str) -> RedisBroker:
    return RedisBroker(client=redis.Redis.from_url(redis_url), namespace=namespace)


def declare(broker: RedisBroker) -> dramatiq.Actor:
    def noop() -> None:
        return None

    return dramatiq.Actor(
        noop, broker=broker, actor_name=ACTOR, queue_name=QUEUE, priority=0, options={"max_retries": 0}
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--timeout-ms", type=int, default=100)
    args = parser.parse_args()
    broker = make_broker(args.redis, args.namespace)
    declare(broker)
    serve(broker, worker_threads=args.threads, worker_timeout=args.timeout_ms)


def serve(broker: RedisBroker, **worker_options) -> None:
    """Run a Dramatiq Worker on `broker` until SIGTERM."""
    worker = dramatiq.Worker(broker, **worker_options)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    worker.start()
    done.wait()
    worker.stop()
    broker.close()


if __name__ == "__main__":
    main()
