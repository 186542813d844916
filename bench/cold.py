"""Cold start: the first call to an object of 1 MB and of 50 MB on a worker with an empty data directory.

    .venv/bin/python -m bench.cold [--sizes-mb 1 50] [--trials 3]

Grows a `Bulky` object (tests/objects.py) to each size through ordinary
calls, then for each trial stops every worker (SIGTERM: it drains and
releases the object), starts a new worker process (a new worker id, so an
empty data directory of its own), waits until it takes activations, and
times one `touch` call over HTTP: Dramatiq activation, takeover (new epoch),
restore from the newest snapshot plus the log after it, migrations check,
the call itself, its commit and shipment. The next call shows the warm cost.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid

import httpx

from bench.common import System, print_table, write_result

COLUMNS = [
    ("size_mb", "object", ""),
    ("state_bytes", "SQLite file bytes", ","),
    ("first_call_p50_ms", "first call p50 ms", ",.1f"),
    ("first_call_max_ms", "first call max ms", ",.1f"),
    ("warm_call_ms", "next call ms", ".1f"),
    ("trials", "trials", ""),
]


def timed_call(http: httpx.Client, path: str, **arguments) -> tuple[float, object]:
    started = time.perf_counter()
    reply = http.post(path, json=arguments)
    elapsed = time.perf_counter() - started
    reply.raise_for_status()
    return elapsed, reply.json()["result"]


def grow(http: httpx.Client, base: str, size_mb: int) -> None:
    for _ in range(size_mb):
        timed_call(http, f"{base}/grow", kib=1024)
    timed_call(http, f"{base}/touch")


def restart_workers(system: System) -> None:
    """Drain every worker, then start one with a fresh data directory."""
    for worker in system.cluster.live_workers():
        worker.terminate()
        worker.wait(timeout=60)
    system.start_ready_worker()


def measure(system: System, http: httpx.Client, size_mb: int, trials: int) -> dict:
    base = f"/v1/objects/Bulky/cold-{size_mb}mb-{uuid.uuid4().hex[:6]}"
    grow(http, base, size_mb)
    first, warm = [], []
    for _ in range(trials):
        restart_workers(system)
        first.append(timed_call(http, f"{base}/touch")[0])
        warm.append(timed_call(http, f"{base}/touch")[0])
    state_bytes = http.get(base).json()["state_bytes"]  # recorded when the last worker drained it
    return {
        "size_mb": f"{size_mb} MB of rows",
        "state_bytes": state_bytes,
        "first_call_p50_ms": round(statistics.median(first) * 1000, 1),
        "first_call_max_ms": round(max(first) * 1000, 1),
        "first_calls_ms": [round(s * 1000, 1) for s in first],
        "warm_call_ms": round(statistics.median(warm) * 1000, 1),
        "trials": trials,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench cold", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--trials", type=int, default=3)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)

    with System("cold") as system:
        system.start_ready_worker()
        system.cluster.start_api()
        with httpx.Client(base_url=system.url, timeout=300) as http:
            rows = [measure(system, http, size, args.trials) for size in args.sizes_mb]
    title = "Cold start: first call on a worker with an empty data directory"
    print_table(title, COLUMNS, rows)
    write_result(
        "cold",
        argv,
        {
            "title": title,
            "columns": COLUMNS,
            "rows": rows,
            "notes": [
                "First call = HTTP round trip of one `Bulky.touch` right after a new worker process became "
                "ready: Dramatiq activation message, takeover, restore from Postgres (newest snapshot plus "
                "the log after it), open, the call, its commit and shipment. The SQLite file is bigger "
                "than the rows it holds (page overhead)."
            ],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
