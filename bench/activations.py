"""Activations: cold activations of small objects per second on one worker.

    .venv/bin/python -m bench.activations [--objects 2000] [--connections 64] [--rounds 1] [--warm 200]

One worker process (SOLO_IDLE_EVICT_S=3600, so nothing is evicted meanwhile) and
one API process. `warm` objects are called first, unmeasured (imports, pools,
the first files of the data directory). Then each of `objects` new Counter
objects is called once, `connections` calls at a time: every call is an
activation (Dramatiq message, lease, epoch minted in Postgres, the activation
row, a new SQLite file, claim and migrations, on_start, the call, its commit
and shipment). Each round calls a new set. The activation rows in Postgres are
counted after each round: every activation must be recorded; and the run's
database's transactions (pg_stat_database, read once every backend has reported),
per activation.

Goal (issue 18): at least 500 cold activations of small objects per second on one worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid

import sqlalchemy as sa

from bench.common import CPU_COLUMNS, System, counter_paths, cpu_columns, goal, print_table, warm, write_result
from bench.cpu import context_switches, stack_meter
from bench.loadgen import post_each
from solo.objects.state.schema import normalize_url

GOAL_PER_S = 500
IDLE_EVICT_S = 3600
STATS_FLUSH_S = 11  # an idle Postgres backend reports its counters within 10 s (PostgreSQL 15)

COLUMNS = [
    ("round", "round", ""),
    ("activations", "activations", ","),
    ("seconds", "seconds", ".2f"),
    ("per_s", "activations/s", ",.0f"),
    ("errors", "errors", ""),
    ("recorded", "activation rows", ","),
    ("pg_xacts", "Postgres transactions per activation", ".2f"),
    ("worker_switches", "worker context switches per activation", ".1f"),
    *[(key, header.replace("call", "activation"), spec) for key, header, spec in CPU_COLUMNS],
]


def ledger(database_url: str, name: str) -> tuple[int, int]:
    """(activation rows, transactions of the database so far), once every backend has reported its counters."""
    time.sleep(STATS_FLUSH_S)
    engine = sa.create_engine(normalize_url(database_url))
    try:
        with engine.connect() as conn:
            rows = int(conn.execute(sa.text("SELECT count(*) FROM activations")).scalar_one())
            conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
            xacts = conn.execute(
                sa.text("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = :name"),
                {"name": name},
            ).scalar_one()
        return rows, int(xacts)
    finally:
        engine.dispose()


def one_round(system: System, number: int, objects: int, connections: int) -> dict:
    """First calls to `objects` new objects; activations/s, CPU by role per activation, ledger rows."""
    paths = counter_paths(f"act-{uuid.uuid4().hex[:6]}", objects)
    _, idle_before = ledger(system.database_url, system.db_name)
    rows_before, xacts_before = ledger(system.database_url, system.db_name)
    idle = xacts_before - idle_before  # a reading's own, and what runs meanwhile with no activation
    meter = stack_meter(system)
    (worker,) = system.pids()["workers"]
    switches_before = context_switches(worker)
    meter.start()
    started = time.perf_counter()
    replies = asyncio.run(post_each(system.url, [(p, b"{}") for p in paths], connections))
    seconds = time.perf_counter() - started
    used = meter.stop()
    switches = context_switches(worker) - switches_before
    answered = [json.loads(body)["result"] for status, body in replies if status == 200]
    rows_after, xacts_after = ledger(system.database_url, system.db_name)
    return {
        "round": number,
        "activations": objects,
        "seconds": round(seconds, 2),
        "per_s": round(objects / seconds, 1),
        "errors": objects - sum(result == 1 for result in answered),
        "recorded": rows_after - rows_before,
        "pg_xacts": round((xacts_after - xacts_before - idle) / objects, 2),
        "worker_switches": round(switches / objects, 1),
        **cpu_columns(used, objects, seconds),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench activations", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=2000, help="new objects per round")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--warm", type=int, default=200, help="objects activated first, unmeasured")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)

    with System("activations") as system:
        worker = system.start_ready_worker(SOLO_IDLE_EVICT_S=str(IDLE_EVICT_S))
        system.cluster.start_api()
        warm(system.url, counter_paths(f"warm-{uuid.uuid4().hex[:6]}", args.warm), args.connections)
        rows = [one_round(system, n + 1, args.objects, args.connections) for n in range(args.rounds)]
        alive = worker.poll() is None

    title = f"Activations: first calls to {args.objects:,} new small objects on one worker, per round"
    print_table(title, COLUMNS, rows)
    median = statistics.median(row["per_s"] for row in rows)
    correct = alive and all(row["errors"] == 0 and row["recorded"] == row["activations"] for row in rows)
    write_result(
        "activations",
        argv,
        {
            "title": title,
            "columns": COLUMNS,
            "rows": rows,
            "goals": [
                goal(
                    "activation: cold activations of small objects on one worker",
                    f">= {GOAL_PER_S}/s",
                    median,
                    "activations/s (median of rounds)",
                    correct and median >= GOAL_PER_S,
                    target_value=GOAL_PER_S,
                )
            ],
            "notes": [
                f"One worker process (default threads, SOLO_IDLE_EVICT_S={IDLE_EVICT_S}) and one API process; "
                f"{args.connections} connections; {args.warm} objects activated first, unmeasured. Each round "
                "calls `Counter.increment` once on new objects: each call is one activation (Dramatiq message, "
                "lease, epoch and activation row in Postgres, a new SQLite file, claim, migrations, on_start, "
                "the call, its commit and shipment) and must answer 1.",
                "Activation rows: rows the round added to the activation ledger; every activation is recorded. "
                "Postgres transactions: pg_stat_database's commits and rollbacks of the run's database over the "
                "round, per activation (an autocommitted statement is one; the round's call is included), less "
                "what as long an interval with no activation counted (the readings' own, the scheduler's). "
                "CPU ms per activation by process role, over the round. Worker context switches: the times the "
                "worker's threads gave up the CPU (waiting for the GIL, a lock, a queue or I/O, or preempted) over "
                "the round, per activation (/proc/<pid>/task/*/status).",
            ],
        },
    )
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(main())
