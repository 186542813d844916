"""Capacity: one worker process keeps 10,000 objects active with at most 1,000 object files open.

    .venv/bin/python -m bench.capacity [--objects 10000] [--max-open 1000] [--threads 8] [--connections 64]
                                        [--sample 10]

One worker (SOLO_MAX_OPEN_DATABASES=`max-open`, SOLO_WORKER_THREADS=`threads`,
and SOLO_IDLE_EVICT_S=3600 so that no object is evicted while the others are
being called) and one API process. Every object is called once, `connections`
calls at a time: its activation (takeover, a new file, the first commit
shipped). Then the worker's leases are counted in Redis, the object files it
holds open in /proc/<pid>/fd, and its resident memory. Then every `sample`-th
object is called again: most of their files were closed to stay under the
cap, so those calls reopen them, and each must answer 2 (its state intact).

Goal: all `objects` active in the one worker at once, with at most `max-open`
files open, and each object called again answering from its state.
tests/e2e/test_open_files.py proves the same at a small size in every test run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid

import redis

from bench.common import System, counter_paths, goal, print_table, write_result
from bench.cpu import process_rss_bytes
from bench.loadgen import post_each
from solo.objects.coordination.keys import Keys
from solo.testing.cluster import open_files

IDLE_EVICT_S = 3600

COLUMNS = [
    ("phase", "phase", ""),
    ("calls", "calls", ","),
    ("seconds", "seconds", ".1f"),
    ("calls_per_s", "calls/s", ",.0f"),
    ("errors", "errors", ""),
    ("wrong_results", "wrong results", ""),
    ("leases", "objects active", ","),
    ("open_files", "files open", ","),
    ("rss_mib", "worker RSS MiB", ".1f"),
]


def call_each(url: str, paths: list[str], connections: int) -> tuple[list[tuple[int, bytes]], float]:
    started = time.perf_counter()
    replies = asyncio.run(post_each(url, [(p, b"{}") for p in paths], connections))
    return replies, time.perf_counter() - started


def held_leases(system: System) -> int:
    client = redis.Redis.from_url(system.redis_url)
    try:
        return sum(1 for _ in client.scan_iter(match=Keys(system.prefix).lease("*"), count=5000))
    finally:
        client.close()


def phase(system: System, worker_pid: int, name: str, paths: list[str], connections: int, expect: int) -> dict:
    """Call every path once; then the facts of the worker process: leases, open files, memory."""
    replies, seconds = call_each(system.url, paths, connections)
    answered = [json.loads(body)["result"] for status, body in replies if status == 200]
    return {
        "phase": name,
        "calls": len(paths),
        "seconds": round(seconds, 2),
        "calls_per_s": round(len(paths) / seconds, 1),
        "errors": len(paths) - len(answered),
        "wrong_results": sum(result != expect for result in answered),
        "leases": held_leases(system),
        "open_files": len(open_files(worker_pid, ".sqlite")),
        "rss_mib": round(process_rss_bytes(worker_pid) / 2**20, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench capacity", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--max-open", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--sample", type=int, default=10, help="call every n-th object again")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)

    with System("capacity") as system:
        worker = system.start_ready_worker(
            SOLO_MAX_OPEN_DATABASES=str(args.max_open),
            SOLO_WORKER_THREADS=str(args.threads),
            SOLO_IDLE_EVICT_S=str(IDLE_EVICT_S),
        )
        system.cluster.start_api()
        paths = counter_paths(f"cap-{uuid.uuid4().hex[:4]}", args.objects)
        first = phase(system, worker.pid, f"first call to each of {args.objects:,} objects", paths, args.connections, 1)
        sample = paths[:: args.sample]
        again = phase(system, worker.pid, f"every {args.sample}th object again", sample, args.connections, 2)
        alive = worker.poll() is None
    rows = [first, again]

    title = f"Capacity: {args.objects:,} active objects on one worker, at most {args.max_open:,} files open"
    print_table(title, COLUMNS, rows)
    met = (
        alive
        and all(row["errors"] == 0 and row["wrong_results"] == 0 for row in rows)
        and first["leases"] == args.objects
        and max(row["open_files"] for row in rows) <= args.max_open
    )
    write_result(
        "capacity",
        argv,
        {
            "title": title,
            "columns": COLUMNS,
            "rows": rows,
            "goals": [
                goal(
                    "capacity: objects active at once in one worker, state intact",
                    f"{args.objects:,} with <= {args.max_open:,} files open",
                    first["leases"],
                    "objects",
                    met,
                    target_value=args.objects,
                )
            ],
            "notes": [
                f"One worker process with SOLO_MAX_OPEN_DATABASES={args.max_open}, SOLO_WORKER_THREADS="
                f"{args.threads} and SOLO_IDLE_EVICT_S={IDLE_EVICT_S} (no object is evicted while the others are "
                f"called); one API process; {args.connections} connections. Objects active: leases held in Redis "
                "after the phase. Files open: the worker's descriptors of object files (/proc/<pid>/fd) after "
                "the phase. Beyond the cap the least recently used idle object's file is closed; the object keeps "
                "its lease and memory, and its next call reopens the file.",
                f"Calling every {args.sample}th object again reopens closed files; each call must answer 2, the "
                "count its first call left.",
            ],
        },
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
