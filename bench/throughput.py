"""Throughput: warm durable calls per second over HTTP, across 1, 100 and 10,000 objects.

    .venv/bin/python -m bench.throughput [--objects 1 100 10000] [--concurrency 64] [--seconds 10] [--workers 1]

Starts a real solo (uvicorn API and worker processes, as the Procfile does)
on the local Redis and a fresh Postgres database, calls every object once
(activation), warms up for 2 s, then runs `concurrency` keep-alive clients in
a closed loop for `seconds`, each call a `Counter.increment` to a random
object: an SQLite write, committed and shipped to Postgres before the reply.
CPU ms per call by process role come from /proc (bench/cpu.py).

Goal: at least 2,000 calls/s across 100 objects on two cores, and no less
than the best no-op Dramatiq figure of bench/baseline.py (ratio printed when
bench/out/baseline.json exists).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

from bench.common import (
    CPU_COLUMNS,
    SHIPPING_COLUMNS,
    System,
    closed_loop_run,
    counter_paths,
    goal,
    print_table,
    read_result,
    warm,
    write_result,
)
from bench.loadgen import closed_loop

GOAL_CALLS_PER_S = 2000
IDLE_EVICT_S = 3600

COLUMNS = [
    ("objects", "objects", ","),
    ("workers", "workers", ""),
    ("calls_per_s", "calls/s", ",.0f"),
    ("ratio", "x no-op Dramatiq", ".2f"),
    ("p50_ms", "p50 ms", ".1f"),
    ("p99_ms", "p99 ms", ".1f"),
    ("errors", "errors", ""),
    *SHIPPING_COLUMNS,
    *CPU_COLUMNS,
]


def measure(system: System, count: int, concurrency: int, seconds: float) -> dict:
    paths = counter_paths(f"t{count}-{uuid.uuid4().hex[:4]}", count)
    warm(system.url, paths)
    asyncio.run(closed_loop(system.url, paths, concurrency, 2))
    return {"objects": count, **closed_loop_run(system, paths, concurrency, seconds)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench throughput", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 100, 10_000])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=1)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)

    baseline = read_result("baseline")
    noop = baseline["best_dramatiq_msgs_per_s"] if baseline else None
    rows = []
    # Warming 10,000 objects takes longer than the default idle eviction (60 s): keep them active,
    # or the first ones would be evicted and re-activated during the measurement.
    with System("throughput", SOLO_IDLE_EVICT_S=str(IDLE_EVICT_S)) as system:
        system.start(workers=args.workers)
        for count in args.objects:
            row = {"workers": args.workers, **measure(system, count, args.concurrency, args.seconds)}
            row["ratio"] = round(row["calls_per_s"] / noop, 3) if noop else None
            rows.append(row)
    title = f"Throughput: warm durable calls over HTTP, {args.concurrency} clients, closed loop"
    print_table(title, COLUMNS, rows)
    goals = []
    for row in rows:
        if row["objects"] == 100:
            rate = row["calls_per_s"]
            goals.append(
                goal(
                    "throughput, 100 objects",
                    f">= {GOAL_CALLS_PER_S:,} calls/s",
                    rate,
                    "calls/s",
                    rate >= GOAL_CALLS_PER_S,
                    target_value=GOAL_CALLS_PER_S,
                )
            )
            if noop:
                goals.append(
                    goal(
                        "throughput, 100 objects vs no-op Dramatiq",
                        f">= {noop:,.0f} msgs/s ({baseline['best_dramatiq_settings']})",
                        rate,
                        "calls/s",
                        rate >= noop,
                        baseline=noop,
                        target_value=noop,
                    )
                )
    write_result(
        "throughput",
        argv,
        {
            "title": title,
            "columns": COLUMNS,
            "rows": rows,
            "goals": goals,
            "baseline_dramatiq_msgs_per_s": noop,
            "notes": [
                f"{args.workers} worker process(es) with default settings (16 threads, batches of up to 128 "
                "calls, at most 10,000 open SQLite files, or what the open-file limit holds at three descriptors each: "
                "beyond that, an active object's file is closed and "
                f"reopened on its next call) except SOLO_IDLE_EVICT_S={IDLE_EVICT_S}: activating 10,000 "
                "objects takes longer than the default 60 s, and evicted objects would be re-activated "
                "during the measurement. One API process, the load generator, Redis and Postgres, all on "
                "the same machine.",
                "CPU ms per call: CPU time each role used during the measurement divided by the calls "
                "answered; `kernel irq` is interrupt time (mostly loopback TCP), `other` the rest of the "
                "machine (including any other work on it). Calls per shipment: calls answered per log record "
                "written to Postgres (one transaction each); snapshots per shipment: extra snapshot transactions.",
            ],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
