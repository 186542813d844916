"""Drain: how long a worker holding many objects takes to stop on SIGTERM (a deploy).

    .venv/bin/python -m bench.drain [--objects 1000 3000] [--connections 64]

For each count, a fresh solo (one API, one worker with SOLO_IDLE_EVICT_S=3600) activates
that many new Counter objects, each called once; then the worker gets SIGTERM, and the
time until it exits is measured. A drain hands every object off: on_stop(), the file's
close, its activation's stop recorded in Postgres, its lease released in Redis (workers/
host.py, ObjectHost.stop). Afterwards no lease of theirs may be left in Redis, and every
activation row must carry its stop.

No goal of its own: a deploy's stop timeout (Kubernetes' default grace period is 30 s)
bounds how many objects a worker can hand off cleanly; past it the rest are killed and their
leases lapse (one lease TTL) instead.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import uuid

import redis
import sqlalchemy as sa

from bench.common import System, counter_paths, print_table, warm, write_result
from solo.objects.coordination.keys import Keys
from solo.objects.naming import object_id
from solo.objects.state.schema import normalize_url

IDLE_EVICT_S = 3600
STOP_WAIT_S = 600

COLUMNS = [
    ("objects", "objects held", ","),
    ("stop_s", "SIGTERM to exit, s", ".2f"),
    ("per_object_ms", "ms per object", ".2f"),
    ("exit_status", "exit status", ""),
    ("leases_held", "leases before", ","),
    ("leases_left", "leases left in Redis", ","),
    ("unstopped", "activations without their stop", ","),
]


def one_count(count: int, connections: int) -> dict:
    with System("drain") as system:
        worker = system.start_ready_worker(SOLO_IDLE_EVICT_S=str(IDLE_EVICT_S))
        system.cluster.start_api()
        prefix = f"drain-{uuid.uuid4().hex[:6]}"
        warm(system.url, counter_paths(prefix, count), connections)
        keys = Keys(system.prefix)
        client = redis.Redis.from_url(system.redis_url)
        leases = [keys.lease(object_id("default", "Counter", f"{prefix}-{i}")) for i in range(count)]
        leases_held = sum(client.exists(lease) for lease in leases)
        started = time.perf_counter()
        worker.send_signal(signal.SIGTERM)
        worker.wait(STOP_WAIT_S)
        stop_s = time.perf_counter() - started
        leases_left = sum(client.exists(lease) for lease in leases)
        client.close()
        engine = sa.create_engine(normalize_url(system.database_url))
        with engine.connect() as conn:
            unstopped = conn.execute(sa.text("SELECT count(*) FROM activations WHERE stopped_at IS NULL")).scalar_one()
        engine.dispose()
    return {
        "objects": count,
        "stop_s": round(stop_s, 2),
        "per_object_ms": round(stop_s * 1000 / count, 2),
        "exit_status": worker.returncode,
        "leases_held": leases_held,
        "leases_left": leases_left,
        "unstopped": int(unstopped),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench drain", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, nargs="+", default=[1000, 3000])
    parser.add_argument("--connections", type=int, default=64)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)

    rows = [one_count(count, args.connections) for count in args.objects]
    title = "Drain: SIGTERM to exit of a worker holding N objects"
    print_table(title, COLUMNS, rows)
    correct = all(
        r["exit_status"] == 0 and r["leases_held"] == r["objects"] and r["leases_left"] == 0 and r["unstopped"] == 0
        for r in rows
    )
    write_result(
        "drain",
        argv,
        {
            "title": title,
            "columns": COLUMNS,
            "rows": rows,
            "goals": [],
            "notes": [
                f"One API and one worker (default threads, SOLO_IDLE_EVICT_S={IDLE_EVICT_S}); each object is a "
                "new Counter called once, then the worker gets SIGTERM. The stop hands every object off: "
                "on_stop(), the file's close (synced, marked clean), the activation's stop recorded in Postgres, "
                "the lease released. Leases before / left: the objects' lease keys in Redis before the SIGTERM and "
                "after the exit; "
                "activations without their stop: activation rows whose stopped_at is empty.",
            ],
        },
    )
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(main())
