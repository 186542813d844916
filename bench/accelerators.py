"""Accelerators: what uvloop, httptools and hiredis change for warm calls, both stacks in the same run.

    .venv/bin/python -m bench.accelerators [--objects 100] [--concurrency 64] [--seconds 5] [--rounds 4]

Starts two real solos (one API and one worker each, on the local Redis and fresh Postgres
databases): `plain` runs every process through bench/plain_stack.py, which hides the three
modules, so uvicorn runs on asyncio and h11 and redis-py parses replies in Python; `accelerated`
runs as installed (uvicorn's loop="auto" and http="auto" pick uvloop and httptools, redis-py
picks hiredis). Warm `Counter.increment` calls to `objects` objects run in a closed loop against
one solo at a time, in rounds that take turns, so that whatever else the machine does falls on
each alike. Figures are the medians of the rounds; CPU ms per call by role from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import uuid
from contextlib import ExitStack

from bench.common import CPU_COLUMNS, System, closed_loop_run, counter_paths, print_table, warm, write_result
from bench.loadgen import closed_loop

PLAIN = [sys.executable, "-m", "bench.plain_stack"]

COLUMNS = [
    ("mode", "mode", ""),
    ("calls_per_s", "calls/s", ",.0f"),
    ("vs_plain", "x plain", ".3f"),
    ("p50_ms", "p50 ms", ".2f"),
    ("p99_ms", "p99 ms", ".2f"),
    ("cpu_total", "CPU ms/call: total", ".3f"),
    *CPU_COLUMNS,
    ("rounds", "rounds", ""),
    ("errors", "errors", ""),
]
MEDIAN_KEYS = ["calls_per_s", "p50_ms", "p99_ms", "cpu_total", *(key for key, _, _ in CPU_COLUMNS)]


def medians(mode: str, runs: list[dict]) -> dict:
    row = {key: statistics.median(r[key] for r in runs if r.get(key) is not None) for key in MEDIAN_KEYS}
    return {
        "mode": mode,
        **row,
        "rounds": len(runs),
        "errors": sum(r["errors"] for r in runs),
        "per_round_calls_per_s": [round(r["calls_per_s"]) for r in runs],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench accelerators", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=4)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)

    with ExitStack() as stack:
        systems = {"plain": stack.enter_context(System("plain")), "accelerated": stack.enter_context(System("accel"))}
        systems["plain"].start(workers=1, wrap=PLAIN)
        systems["accelerated"].start(workers=1)
        paths = counter_paths(f"acc-{uuid.uuid4().hex[:4]}", args.objects)
        for system in systems.values():
            warm(system.url, paths)
            asyncio.run(closed_loop(system.url, paths, args.concurrency, 2))
        samples: dict[str, list[dict]] = {mode: [] for mode in systems}
        for _ in range(args.rounds):
            for mode, system in systems.items():
                samples[mode].append(closed_loop_run(system, paths, args.concurrency, args.seconds))

    rows = [medians(mode, runs) for mode, runs in samples.items()]
    for row in rows:
        row["vs_plain"] = round(row["calls_per_s"] / rows[0]["calls_per_s"], 3)
    title = f"Accelerators: warm calls over HTTP, {args.objects} objects, {args.concurrency} clients, closed loop"
    print_table(title, COLUMNS, rows)
    write_result(
        "accelerators",
        argv,
        {
            "title": title,
            "columns": COLUMNS,
            "rows": rows,
            "notes": [
                "Two solos (one API, one worker each) on one Redis and Postgres, measured in alternating rounds "
                f"of {args.seconds:g} s ({args.rounds} per mode; medians shown). `plain` hides uvloop, httptools "
                "and hiredis from every process (bench/plain_stack.py); `accelerated` runs as installed.",
            ],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
