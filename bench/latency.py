"""Latency: p50 / p99 / max of warm durable calls at half of the measured maximum rate.

    .venv/bin/python -m bench.latency [--objects 1 100] [--seconds 10] [--concurrency 64] [--low-rate 50]

For each object count: starts from warm objects, measures the maximum rate
with `concurrency` clients in a closed loop (5 s), then sends calls in an open
loop at half that rate for `seconds` (a call is sent on schedule whatever the
replies do, so queueing shows up as latency). Latency counts from the moment
the request was written; the table also shows it from the moment it was due
and the load generator's lateness between the two. A second open loop at
`low-rate` calls/s shows the floor of one call's path when nothing queues.

Goal: at half the maximum rate, p50 at most 2 ms and p99 at most 10 ms.
"""

from __future__ import annotations

import argparse
import sys
import uuid

from bench.common import (
    CPU_COLUMNS,
    SHIPPING_COLUMNS,
    System,
    closed_loop_run,
    counter_paths,
    goal,
    open_loop_run,
    print_table,
    warm,
    write_result,
)

GOAL_P50_MS, GOAL_P99_MS = 2.0, 10.0

COLUMNS = [
    ("objects", "objects", ","),
    ("load", "load", ""),
    ("rate", "calls/s sent", ",.0f"),
    ("calls_per_s", "answered/s", ",.0f"),
    ("sent_p50_ms", "p50 ms", ".2f"),
    ("sent_p99_ms", "p99 ms", ".2f"),
    ("sent_max_ms", "max ms", ".1f"),
    ("p50_ms", "p50 from schedule", ".2f"),
    ("p99_ms", "p99 from schedule", ".2f"),
    ("send_lag_p99_ms", "generator lag p99 ms", ".2f"),
    ("errors", "errors", ""),
    *SHIPPING_COLUMNS,
    *CPU_COLUMNS,
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench latency", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--low-rate", type=float, default=50)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)

    rows = []
    with System("latency") as system:
        system.start(workers=1)
        for count in args.objects:
            paths = counter_paths(f"l{count}-{uuid.uuid4().hex[:4]}", count)
            warm(system.url, paths)
            peak = closed_loop_run(system, paths, args.concurrency, 5)
            half = open_loop_run(system, paths, peak["calls_per_s"] / 2, args.seconds)
            low = open_loop_run(system, paths, args.low_rate, args.seconds)
            rows.append({"objects": count, "load": f"closed loop, {args.concurrency} clients", **peak})
            rows.append({"objects": count, "load": "open loop, half the maximum", **half})
            rows.append({"objects": count, "load": f"open loop, {args.low_rate:g}/s", **low})
    for row in rows:
        if row["load"].startswith("closed"):  # sent as fast as answered: latency counts from the send
            row["rate"] = None
            row.update(sent_p50_ms=row["p50_ms"], sent_p99_ms=row["p99_ms"], sent_max_ms=row["max_ms"])
    title = "Latency of warm durable calls over HTTP"
    print_table(title, COLUMNS, rows)
    goals = []
    for row in rows:
        if row["load"] == "open loop, half the maximum":
            label = f"latency at half the maximum rate, {row['objects']} object(s)"
            for name, limit in (("p50", GOAL_P50_MS), ("p99", GOAL_P99_MS)):
                value = row[f"sent_{name}_ms"]
                goals.append(
                    goal(f"{label}: {name}", f"<= {limit:g} ms", value, "ms", value <= limit, target_value=limit)
                )
    write_result(
        "latency",
        argv,
        {
            "title": title,
            "columns": COLUMNS,
            "rows": rows,
            "goals": goals,
            "notes": [
                "Open loop: a call is sent on schedule on one of 256 keep-alive connections, whatever the "
                "replies do. p50 / p99 / max count from the moment its request was written (the goals use "
                "these); `from schedule` counts from the moment it was due, so it adds the load generator's "
                "own lateness (asyncio timers wake up to about 1 ms late, more when the two cores are busy), "
                "shown as `generator lag`. One worker, one API process, default settings.",
            ],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
