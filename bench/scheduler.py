"""The scheduler alone: what it costs Redis idle, and how late it hands alarms to dispatch.

    .venv/bin/python -m bench.scheduler [--idle-s 20] [--notice 300] [--stream-rate 300] [--stream-s 5]

One `Scheduler` thread (workers/scheduler.py) on a Redis of the run's own (bench/private_redis.py)
and a SQLite shared database; no worker and no API. Alarms are announced as a worker announces
them (`AlarmQueue.announce`); lateness is the moment the scheduler hands a fire to `dispatch`
minus the alarm's due time: the scheduler's own share of an alarm's lateness. Phases:
- idle: Redis commands/s (`INFO commandstats`) and the scheduler thread's CPU, nothing pending;
- short notice: `notice` alarms, each announced 5-500 ms before it is due, one every 20-60 ms;
- Redis restart: Redis killed and started again empty, then 50 more such alarms;
- stream: `stream-rate` alarms a second set due at once, for `stream-s`: Redis commands and
  Redis CPU per alarm (announcements and scheduler together).
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import threading
import time
import uuid
from pathlib import Path

import redis

from bench.private_redis import PrivateRedis
from solo.objects.coordination.alarm_queue import AlarmQueue
from solo.objects.coordination.keys import Keys
from solo.objects.coordination.redis_clients import sync_client
from solo.objects.settings import Settings
from solo.objects.state.alarm_index import AlarmIndex
from solo.objects.state.migrate import upgrade
from solo.objects.state.schema import make_engine
from solo.workers.scheduler import Scheduler


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def thread_cpu_s(native_id: int) -> float:
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def lateness(values: list[int]) -> str:
    if not values:
        return "none dispatched"
    return f"p50 {percentile(values, 0.5)} ms, p99 {percentile(values, 0.99)} ms, max {max(values)} ms"


class Dispatched:
    """The `dispatch` given to the scheduler: records how late each awaited alarm was handed over."""

    def __init__(self) -> None:
        self.due: dict[str, int] = {}
        self.late: list[int] = []
        self._lock = threading.Lock()

    def expect(self, object_id: str, due_ms: int) -> None:
        with self._lock:
            self.due[object_id] = due_ms

    def __call__(self, object_id: str) -> None:
        with self._lock:
            due = self.due.pop(object_id, None)
            if due is not None:
                self.late.append(now_ms() - due)

    def take(self) -> list[int]:
        with self._lock:
            late, self.late = self.late, []
            self.due.clear()
            return late


def announce_soon(queue: AlarmQueue, dispatched: Dispatched, count: int, tag: str) -> None:
    for i in range(count):
        time.sleep(random.uniform(0.02, 0.06))
        object_id, due = f"{tag}{i}", now_ms() + random.randint(5, 500)
        dispatched.expect(object_id, due)
        queue.announce(object_id, "Alarmed", object_id, [("_alarm", due)], now_ms())
    time.sleep(1.5)


def redis_cpu_s(admin: redis.Redis) -> float:
    cpu = admin.info("cpu")
    return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle-s", type=float, default=20)
    parser.add_argument("--notice", type=int, default=300)
    parser.add_argument("--stream-rate", type=float, default=300)
    parser.add_argument("--stream-s", type=float, default=5)
    args = parser.parse_args()
    random.seed(1)
    workdir = Path(tempfile.mkdtemp(prefix="solo-bench-scheduler-"))
    with PrivateRedis(workdir) as private:
        database_url = f"sqlite:///{workdir / 'shared.db'}"
        upgrade(database_url)
        prefix = f"sched-{uuid.uuid4().hex[:6]}"
        settings = Settings.from_mapping(
            {
                "redis_url": private.url,
                "database_url": database_url,
                "key_prefix": prefix,
                "namespace": prefix,
                "data_dir": str(workdir / "objects"),
                "lease_ttl_ms": 2000,
                "worker_id": "bench-scheduler",
            }
        )
        dispatched = Dispatched()
        index = AlarmIndex(make_engine(database_url), prefix)
        scheduler = Scheduler(settings, sync_client(private.url), index, dispatched)
        scheduler.start()
        time.sleep(3)  # it takes the lease and settles
        assert scheduler._thread is not None and scheduler._thread.native_id is not None
        thread_id = scheduler._thread.native_id
        admin = sync_client(private.url)
        queue = AlarmQueue(sync_client(private.url), Keys(prefix), 60_000)
        try:
            admin.config_resetstat()
            cpu_before, started = thread_cpu_s(thread_id), time.monotonic()
            time.sleep(args.idle_s)
            elapsed = time.monotonic() - started
            cpu = thread_cpu_s(thread_id) - cpu_before
            stats = admin.info("commandstats")
            total = sum(v["calls"] for k, v in stats.items() if k != "cmdstat_config|resetstat")
            top = ", ".join(
                f"{name[8:]} {stat['calls'] / elapsed:.1f}"
                for name, stat in sorted(stats.items(), key=lambda kv: -kv[1]["calls"])[:5]
            )
            print(
                f"idle: {total / elapsed:.1f} Redis commands/s, scheduler thread CPU {1000 * cpu / elapsed:.2f} ms/s"
                f" over {elapsed:.0f} s ({top})"
            )

            announce_soon(queue, dispatched, args.notice, "n")
            print(f"short notice: {args.notice} alarms, {lateness(dispatched.take())}")

            private.kill()
            time.sleep(0.3)
            private.start()
            announce_soon(queue, dispatched, 50, "r")
            print(f"after a Redis restart: 50 alarms, {lateness(dispatched.take())}")

            admin.config_resetstat()
            cpu_before, started, count = redis_cpu_s(admin), time.monotonic(), 0
            while time.monotonic() - started < args.stream_s:
                ahead = started + count / args.stream_rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
                object_id, due = f"s{count}", now_ms()
                dispatched.expect(object_id, due)
                queue.announce(object_id, "Alarmed", object_id, [("_alarm", due)], due)
                count += 1
            time.sleep(1.0)
            commands = sum(v["calls"] for k, v in admin.info("commandstats").items() if k != "cmdstat_config|resetstat")
            cpu_us = 1e6 * (redis_cpu_s(admin) - cpu_before)
            print(
                f"stream: {count} alarms due at once ({count / args.stream_s:.0f}/s), {commands / count:.2f} Redis"
                f" commands and {cpu_us / count:.0f} µs Redis CPU per alarm, {lateness(dispatched.take())}"
            )
        finally:
            scheduler.stop()


if __name__ == "__main__":
    main()
