"""Hot object: one object, as many clients as help.

    .venv/bin/python -m bench.hot [--concurrency 16 64 256] [--seconds 5]

Every client calls `Counter.increment` on the same object in a closed loop.
Calls queued behind each other run as one batch: one SQLite transaction, one
shipment to Postgres, one publish of all the replies (group commit). The best
rate over the client counts tried is the figure.

Goal: at least 1,000 durable calls/s.
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
    warm,
    write_result,
)
from bench.loadgen import closed_loop

GOAL_CALLS_PER_S = 1000

COLUMNS = [
    ("clients", "clients", ""),
    ("calls_per_s", "calls/s", ",.0f"),
    ("p50_ms", "p50 ms", ".1f"),
    ("p99_ms", "p99 ms", ".1f"),
    ("errors", "errors", ""),
    *SHIPPING_COLUMNS,
    *CPU_COLUMNS,
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench hot", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--seconds", type=float, default=5)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)

    rows = []
    with System("hot") as system:
        system.start(workers=1)
        paths = counter_paths(f"hot-{uuid.uuid4().hex[:4]}", 1)
        warm(system.url, paths)
        asyncio.run(closed_loop(system.url, paths, 64, 2))
        for clients in args.concurrency:
            rows.append({"clients": clients, **closed_loop_run(system, paths, clients, args.seconds)})
    best = max(rows, key=lambda r: r["calls_per_s"])
    title = "Hot object: one object, closed loop"
    print_table(title, COLUMNS, rows)
    rate = best["calls_per_s"]
    write_result(
        "hot",
        argv,
        {
            "title": title,
            "columns": COLUMNS,
            "rows": rows,
            "best_calls_per_s": rate,
            "best_clients": best["clients"],
            "goals": [
                goal(
                    "hot object",
                    f">= {GOAL_CALLS_PER_S:,} calls/s",
                    rate,
                    "calls/s",
                    rate >= GOAL_CALLS_PER_S,
                    target_value=GOAL_CALLS_PER_S,
                )
            ],
            "notes": [f"Best: {rate:,.0f} calls/s with {best['clients']} clients; one worker, default settings."],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
