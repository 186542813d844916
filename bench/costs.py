"""What one call, activation, alarm and idle active object costs Redis and Postgres, counted.

    .venv/bin/python -m bench.costs [--calls 300] [--objects 100] [--idle 1000] [--idle-s 10]

A real solo (API + one worker with its embedded scheduler) on a Redis of the
run's own (bench/private_redis.py) and a fresh Postgres database. Redis work is
counted from `INFO commandstats` (every command any process sent, the Dramatiq
broker's included), reset before each phase. Postgres work is counted from
`pg_stat_database` for the run's own database: transactions (commits +
rollbacks) and rows written; each reading waits for every backend to report.
Counts do not depend on the machine's load; no timing is taken here.

Phases, each divided by what it did:
- warm, one object: `calls` sequential calls to one active object;
- warm, many objects: `calls` calls spread over `objects` active objects, 32 at a time;
- cold: the first call to each of `objects` new objects (activation and call);
- alarm: `objects` alarms on active objects, from due to fired and announced;
- idle: per second with the objects above idle, then with `idle` more, over `idle-s` seconds.
What the system does with no object at all (scheduler passes, lease and sweep rounds) is
measured first, per second, and subtracted from each phase over its duration.
Redis counts include the commands run inside Lua scripts (each script is one EVALSHA round
trip); objects stay active throughout (SOLO_IDLE_EVICT_S=3600). A worker renews its one
heartbeat every third of SOLO_LEASE_TTL_MS (30 s here unless --lease-ttl-ms says otherwise),
whatever it holds: an idle object should cost nothing at any setting (ADR 0004); run with
--lease-ttl-ms 2000 for the default setting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
import sqlalchemy as sa

from bench.common import System, admin_postgres_url, normalize_url, print_table, write_result
from bench.loadgen import post_each
from bench.private_redis import PrivateRedis

STATS_FLUSH_S = 11  # an idle Postgres backend reports its counters within 10 s (PostgreSQL 15)

COLUMNS = [
    ("phase", "per", ""),
    ("redis", "Redis commands", ".2f"),
    ("redis_cpu_us", "Redis CPU µs", ".0f"),
    ("top", "most frequent Redis commands", ""),
    ("pg_xacts", "Postgres transactions", ".2f"),
    ("pg_rows", "Postgres rows written", ".2f"),
]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def post_all(url: str, requests: list[tuple[str, dict]], connections: int) -> None:
    replies = asyncio.run(post_each(url, [(p, json.dumps(b).encode()) for p, b in requests], connections))
    failed = [status for status, _ in replies if status != 200]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(requests)} calls failed (e.g. HTTP {failed[0]})")


class Counters:
    """Redis commands and Postgres transactions/rows since the last reset."""

    def __init__(self, redis_url: str, db_name: str) -> None:
        self.redis = redis.Redis.from_url(redis_url)
        self.engine = sa.create_engine(normalize_url(admin_postgres_url()), poolclass=sa.pool.NullPool)
        self.db_name = db_name
        self._pg_base = (0, 0)
        self._cpu_base = self.cpu_s = 0.0

    def _pg(self) -> tuple[int, int]:
        time.sleep(STATS_FLUSH_S)
        with self.engine.connect() as conn:
            conn.execute(sa.text("select pg_stat_clear_snapshot()"))
            row = conn.execute(
                sa.text(
                    "select xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted"
                    " from pg_stat_database where datname = :name"
                ),
                {"name": self.db_name},
            ).one()
        return int(row[0]), int(row[1])

    def _redis_cpu_s(self) -> float:
        cpu = self.redis.info("cpu")
        return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])

    def reset(self) -> None:
        self._pg_base = self._pg()
        self.redis.config_resetstat()
        self._cpu_base = self._redis_cpu_s()

    def read(self) -> tuple[dict[str, int], int, int]:
        """(Redis calls by command, Postgres transactions, Postgres rows written) since reset."""
        stats = self.redis.info("commandstats")
        self.cpu_s = self._redis_cpu_s() - self._cpu_base
        xacts, rows = self._pg()
        commands = {name.removeprefix("cmdstat_"): int(s["calls"]) for name, s in stats.items()}
        # Our own reads are not part of what was measured.
        for own in ("info", "config|resetstat", "config"):
            commands.pop(own, None)
        return commands, xacts - self._pg_base[0], rows - self._pg_base[1]  # ours are in another database

    def measure(self, action, divisor: float, background: dict | None = None) -> dict:
        """What `action` cost, per `divisor`, minus `background` (a per-second row) over its duration."""
        self.reset()
        began = time.monotonic()
        action()
        elapsed = time.monotonic() - began
        commands, xacts, rows = self.read()
        cpu_s = self.cpu_s
        if background is not None:
            for name, per_s in background["commands"].items():
                commands[name] = commands.get(name, 0) - per_s * elapsed
            xacts -= background["pg_xacts"] * elapsed
            rows -= background["pg_rows"] * elapsed
            cpu_s -= background["redis_cpu_us"] / 1e6 * elapsed
        top = sorted(commands.items(), key=lambda kv: -kv[1])[:4]
        return {
            "redis": sum(commands.values()) / divisor,
            "redis_cpu_us": cpu_s * 1e6 / divisor,
            "top": ", ".join(f"{name} {calls / divisor:.2f}" for name, calls in top),
            "pg_xacts": xacts / divisor,
            "pg_rows": rows / divisor,
            "commands": {name: calls / divisor for name, calls in commands.items()},
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench costs", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--idle-s", type=float, default=10)
    parser.add_argument(
        "--lease-ttl-ms",
        type=int,
        default=30_000,
        help="SOLO_LEASE_TTL_MS: the worker's heartbeat is renewed every third of it; give 2000 "
        "(the default setting) to compare with earlier runs",
    )
    args = parser.parse_args(argv)
    run = uuid.uuid4().hex[:6]
    rows: list[dict] = []

    with (
        tempfile.TemporaryDirectory(prefix="solo-bench-costs-redis-") as redis_dir,
        PrivateRedis(Path(redis_dir)) as private,
        System(
            "costs", redis=private.url, SOLO_IDLE_EVICT_S="3600", SOLO_LEASE_TTL_MS=str(args.lease_ttl_ms)
        ) as system,
    ):
        system.start(workers=1)
        url = system.url
        counters = Counters(private.url, system.db_name)

        def tally(path: str, n: int) -> list[tuple[str, dict]]:
            return [(path, {"tag": str(i)}) for i in range(n)]

        def wait_idle() -> None:
            time.sleep(args.idle_s)

        # What the system does by itself (scheduler passes, lease and sweep rounds), per second:
        # subtracted from every phase below over its duration.
        bg = counters.measure(wait_idle, args.idle_s)
        rows.append({"phase": "second, no active object (background)", **bg})

        one = f"/v1/objects/Tally/{run}-one/add"
        post_all(url, tally(one, 1), 1)
        rows.append(
            {
                "phase": "call, warm, one object (sequential)",
                **counters.measure(lambda: post_all(url, tally(one, args.calls), 1), args.calls, bg),
            }
        )

        many = [f"/v1/objects/Tally/{run}-many-{i}/add" for i in range(args.objects)]
        post_all(url, [(p, {}) for p in many], 32)
        spread = [(many[i % len(many)], {"tag": str(i)}) for i in range(args.calls)]
        warm = counters.measure(lambda: post_all(url, spread, 32), args.calls, bg)
        rows.append({"phase": f"call, warm, across {args.objects} objects (32 at a time)", **warm})

        cold = [(f"/v1/objects/Tally/{run}-cold-{i}/add", {}) for i in range(args.objects)]
        first = counters.measure(lambda: post_all(url, cold, 32), args.objects, bg)
        rows.append({"phase": "first call to a new object (activation + call)", **first})

        alarmed = [f"/v1/objects/Alarmed/{run}-alarm-{i}" for i in range(args.objects)]
        post_all(url, [(f"{p}/get_alarm", {}) for p in alarmed], 32)  # active before the alarms

        def set_and_fire() -> None:
            due = now_ms() + 2000
            post_all(url, [(f"{p}/set_alarm", {"at_ms": due}) for p in alarmed], 32)
            time.sleep(max(0.0, (due - now_ms()) / 1000) + 4)  # every fire ran and was announced

        both = counters.measure(set_and_fire, args.objects, bg)
        keys = ("redis", "redis_cpu_us", "pg_xacts", "pg_rows")
        fired = {k: both[k] - warm[k] for k in keys}
        rows.append(
            {"phase": "alarm set and fired, minus a warm call", **fired, "top": both["top"] + " (with the set)"}
        )

        active = 3 * args.objects + 1
        before = counters.measure(wait_idle, args.idle_s, bg)
        rows.append({"phase": f"second, {active} idle active objects, beyond background", **before})
        post_all(url, [(f"/v1/objects/Tally/{run}-idle-{i}/total", {}) for i in range(args.idle)], 32)
        after = counters.measure(wait_idle, args.idle_s, bg)
        rows.append({"phase": f"second, {active + args.idle:,} idle active objects, beyond background", **after})
        per_object = {k: (after[k] - before[k]) / args.idle for k in keys}
        rows.append({"phase": "second, one idle active object", **per_object, "top": after["top"] + " (all objects)"})

    title = "Redis commands and Postgres work, counted"
    print_table(title, COLUMNS, rows)
    write_result(
        "costs",
        argv or [],
        {
            "title": title,
            "columns": COLUMNS,
            "rows": rows,
            "goals": [],
            "notes": [
                "Counted, not timed: Redis INFO commandstats on a Redis of the run's own (every process's "
                "commands, Dramatiq's included) and pg_stat_database for the run's own database.",
            ],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
