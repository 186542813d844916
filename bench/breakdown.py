"""Breakdown: where one warm call's time goes, measured from outside the processes.

    .venv/bin/python -m bench.breakdown [--calls 300] [--objects 100]

One client sends calls one after another (round-robin over warm objects, so
nothing queues) while Redis MONITOR timestamps every script the API and the
worker run, and Postgres keeps the time each commit was shipped
(`object_log.created_at`, taken by the worker as it ships the commit). All
clocks are the same machine's, so each call splits into:

  api in     client sends the request  -> enqueue.lua reaches Redis
  wake-up    enqueue.lua               -> the owner's claim.lua (wake list, drain scheduled)
  run        claim.lua                 -> the shipment's time stamp (the call, SQLite commit, WAL read)
  ship       the shipment's time stamp -> complete.lua (the fenced write to Postgres, snapshot if due)
  reply      complete.lua              -> client has the answer (reply list, API, HTTP)

MONITOR slows Redis a little; the totals are comparable with `latency`'s
low-rate rows, not identical.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import sys
import threading
import time
import uuid

import redis
import sqlalchemy as sa

from bench.common import System, counter_paths, percentile, print_table, warm, write_result
from bench.loadgen import Connection
from solo.objects.coordination import scripts
from solo.objects.naming import object_id
from solo.objects.state.schema import log_table, make_engine

SEGMENTS = ["api_in", "wake", "run", "ship", "reply", "total"]
COLUMNS = [
    ("segment", "segment", ""),
    ("p50_ms", "p50 ms", ".3f"),
    ("p90_ms", "p90 ms", ".3f"),
    ("mean_ms", "mean ms", ".3f"),
    ("share", "share of mean total", ".0%"),
]
LABELS = {
    "api_in": "api in: request -> enqueue.lua",
    "wake": "wake-up: enqueue.lua -> claim.lua",
    "run": "run: claim.lua -> shipment stamped",
    "ship": "ship: stamped -> complete.lua",
    "reply": "reply: complete.lua -> client",
    "total": "total",
}


def script_sha(name: str) -> str:
    return hashlib.sha1(scripts.source(name).encode()).hexdigest()


class Monitor(threading.Thread):
    """Collects (time, command) of every EVALSHA Redis receives that mentions `prefix`."""

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__(daemon=True, name="redis-monitor")
        self.client = redis.Redis.from_url(url)
        self.prefix = prefix
        self.seen: list[tuple[float, str]] = []
        self.stopping = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        with self.client.monitor() as monitor:
            self.ready.set()
            for entry in monitor.listen():
                command = entry["command"]
                if command.startswith("EVALSHA") and self.prefix in command:
                    self.seen.append((entry["time"], command))
                if self.stopping.is_set():
                    return


async def sequential_calls(url: str, paths: list[str], calls: int) -> list[tuple[str, str, float, float]]:
    """(object name, call id, sent, received) per call, wall-clock seconds."""
    conn = await Connection.open(url)
    done = []
    try:
        for i in range(calls):
            path = paths[i % len(paths)]
            sent = time.time()
            status, body = await conn.post_for_body(path, b"{}")
            received = time.time()
            if status == 200:
                done.append((path.split("/")[4], json.loads(body)["call_id"], sent, received))
    finally:
        conn.close()
    return done


def ship_times(database_url: str, ids: list[str]) -> dict[str, list[float]]:
    engine = make_engine(database_url)
    lg = log_table
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(lg.c.object_id, lg.c.created_at).where(lg.c.object_id.in_(ids))).all()
    finally:
        engine.dispose()
    times: dict[str, list[float]] = {}
    for oid, created in rows:
        times.setdefault(oid, []).append(created.timestamp())
    return {oid: sorted(ts) for oid, ts in times.items()}


def split(calls, seen, shipped, namespace: str = "default") -> dict[str, list[float]]:
    enqueue_sha, claim_sha, complete_sha = script_sha("enqueue"), script_sha("claim"), script_sha("complete")
    segments: dict[str, list[float]] = {s: [] for s in SEGMENTS}
    for name, call_id, sent, received in calls:
        oid = object_id(namespace, "Counter", name)
        mine = [(t, c) for t, c in seen if sent <= t <= received]
        enq = next((t for t, c in mine if enqueue_sha in c and call_id in c), None)
        done = next((t for t, c in mine if complete_sha in c and call_id in c), None)
        if enq is None or done is None:
            continue
        claim = max((t for t, c in mine if claim_sha in c and oid in c and enq <= t <= done), default=None)
        ship = next((t for t in shipped.get(oid, []) if claim is not None and claim <= t <= done), None)
        if claim is None or ship is None:
            continue
        for key, value in (
            ("api_in", enq - sent),
            ("wake", claim - enq),
            ("run", ship - claim),
            ("ship", done - ship),
            ("reply", received - done),
            ("total", received - sent),
        ):
            segments[key].append(value * 1000)
    return segments


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench breakdown", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--objects", type=int, default=100)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)

    with System("breakdown") as system:
        system.start(workers=1)
        paths = counter_paths(f"b-{uuid.uuid4().hex[:4]}", args.objects)
        warm(system.url, paths)
        monitor = Monitor(system.redis_url, system.prefix)
        monitor.start()
        monitor.ready.wait(10)
        calls = asyncio.run(sequential_calls(system.url, paths, args.calls))
        monitor.stopping.set()
        redis.Redis.from_url(system.redis_url).ping()  # one more command lets the monitor see the flag
        monitor.join(timeout=10)
        ids = [object_id("default", "Counter", p.split("/")[4]) for p in paths]
        segments = split(calls, monitor.seen, ship_times(system.database_url, ids))

    mean_total = statistics.mean(segments["total"])
    rows = [
        {
            "segment": LABELS[name],
            "p50_ms": round(percentile(values, 0.5), 3),
            "p90_ms": round(percentile(values, 0.9), 3),
            "mean_ms": round(statistics.mean(values), 3),
            "share": statistics.mean(values) / mean_total,
        }
        for name, values in segments.items()
    ]
    title = "Breakdown of one warm call (sequential calls, nothing queued)"
    print_table(title, COLUMNS, rows)
    write_result(
        "breakdown",
        argv,
        {
            "title": title,
            "columns": COLUMNS,
            "rows": rows,
            "notes": [
                f"{len(segments['total'])} of {args.calls} sequential calls over {args.objects} warm objects "
                "could be split (the others' commands were not all seen). Timestamps: the client's clock, "
                "Redis MONITOR's (when a script reached Redis) and `object_log.created_at` (taken in the "
                "worker as it ships), all the same machine's clock.",
            ],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
