"""Failover: kill -9 the owner of an object under steady load; time until that object answers again.

    .venv/bin/python -m bench.failover [--trials 20] [--workers 2] [--objects 20] [--clients 8]

Two workers with default settings (lease 2 s) serve `objects` counters under
a steady closed-loop load of `clients` clients. A probe sends a call to one
target object every 20 ms, whatever the replies do. Each trial reads the
target's owner from its Redis lease, kills that process with SIGKILL, and
measures the time from the kill until the first successful reply to a probe
call *sent after* the kill. A replacement worker is then started and the
system settles before the next trial.

Recovery path: the owner's heartbeat lapses (at most one TTL after its last
renewal), which frees every lease it held; a surviving worker's sweeper (every
TTL/3) sees the object overdue with queued calls and sends an activation, a
worker takes the lease, a new epoch, and hydrates the object from Postgres.

Goal: under 3 s with default settings.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from dataclasses import dataclass

import redis

from bench.common import System, counter_paths, goal, print_table, warm, write_result
from bench.loadgen import Connection
from solo.objects.coordination.keys import Keys
from solo.objects.coordination.leases import owner_of
from solo.objects.naming import object_id

GOAL_S = 3.0
PROBE_INTERVAL_S = 0.02

COLUMNS = [
    ("trials", "trials", ""),
    ("p50_s", "p50 s", ".2f"),
    ("max_s", "max s", ".2f"),
    ("min_s", "min s", ".2f"),
    ("load_errors", "errors under load", ""),
]


@dataclass
class ProbeCall:
    sent: float
    done: float | None = None
    ok: bool = False


async def steady_load(url: str, paths: list[str], clients: int, stop: asyncio.Event, errors: list[int]) -> None:
    async def client(index: int) -> None:
        conn = await Connection.open(url)
        while not stop.is_set():
            status = await conn.post(paths[(index + int(time.monotonic() * 1000)) % len(paths)], b"{}")
            if status != 200:
                errors.append(status)
        conn.close()

    await asyncio.gather(*(client(i) for i in range(clients)))


async def probe(url: str, path: str, stop: asyncio.Event, calls: list[ProbeCall]) -> None:
    """One call every PROBE_INTERVAL_S on its own connection, so a stuck call delays no other."""

    async def one(call: ProbeCall) -> None:
        conn = await Connection.open(url)
        try:
            call.ok = await conn.post(path, b"{}") == 200
            call.done = time.perf_counter()
        finally:
            conn.close()

    tasks = []
    while not stop.is_set():
        call = ProbeCall(time.perf_counter())
        calls.append(call)
        tasks.append(asyncio.create_task(one(call)))
        await asyncio.sleep(PROBE_INTERVAL_S)
    await asyncio.gather(*tasks, return_exceptions=True)


async def answered_after(calls: list[ProbeCall], since: float, timeout_s: float = 60) -> float:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        done = [c.done for c in calls if c.ok and c.sent >= since and c.done is not None]
        if done:
            return min(done) - since
        await asyncio.sleep(0.005)
    raise RuntimeError(f"the object did not answer within {timeout_s} s of the kill")


async def run_trials(
    system: System, paths: list[str], trials: int, clients: int, load_errors: list[int]
) -> list[float]:
    """paths[0] is the target; the others carry the steady load."""
    target_path = paths[0]
    target_id = object_id("default", "Counter", target_path.split("/")[4])
    lease_key = Keys(system.prefix).lease(target_id)
    client = redis.Redis.from_url(system.redis_url)
    stop = asyncio.Event()
    calls: list[ProbeCall] = []
    background = [
        asyncio.create_task(steady_load(system.url, paths[1:], clients, stop, load_errors)),
        asyncio.create_task(probe(system.url, target_path, stop, calls)),
    ]
    times = []
    try:
        await asyncio.sleep(1)
        for _ in range(trials):
            owner = owner_of(client.get(lease_key))
            victim = system.cluster.worker_by_id(owner) if owner else None
            if victim is None:
                raise RuntimeError(f"the target has no known owner ({owner!r})")
            victim.kill()
            killed_at = time.perf_counter()
            times.append(await answered_after(calls, killed_at))
            victim.wait()
            await asyncio.to_thread(system.start_ready_worker)
            await asyncio.sleep(1)  # let leases and load settle
    finally:
        stop.set()
        await asyncio.gather(*background, return_exceptions=True)
        client.close()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench failover", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--objects", type=int, default=20)
    parser.add_argument("--clients", type=int, default=8)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)

    load_errors: list[int] = []
    with System("failover") as system:
        for _ in range(args.workers):
            system.start_ready_worker()
        system.cluster.start_api()
        paths = counter_paths(f"f-{uuid.uuid4().hex[:4]}", args.objects)
        warm(system.url, paths)
        times = asyncio.run(run_trials(system, paths, args.trials, args.clients, load_errors))
    row = {
        "trials": len(times),
        "p50_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
        "min_s": round(min(times), 3),
        "load_errors": len(load_errors),
        "times_s": [round(t, 3) for t in times],
    }
    title = "Failover: kill -9 of an object's owner under load, until the object answers again"
    print_table(title, COLUMNS, [row])
    print("each trial (s):", " ".join(f"{t:.2f}" for t in times))
    write_result(
        "failover",
        argv,
        {
            "title": title,
            "columns": COLUMNS,
            "rows": [row],
            "goals": [
                goal("failover, p50", f"< {GOAL_S:g} s", row["p50_s"], "s", row["p50_s"] < GOAL_S, target_value=GOAL_S),
                goal(
                    "failover, worst trial",
                    f"< {GOAL_S:g} s",
                    row["max_s"],
                    "s",
                    row["max_s"] < GOAL_S,
                    target_value=GOAL_S,
                ),
            ],
            "notes": [
                f"{args.workers} workers, default settings (SOLO_LEASE_TTL_MS=2000), {args.objects} objects "
                f"under {args.clients} closed-loop clients; a probe calls the target every "
                f"{PROBE_INTERVAL_S * 1000:.0f} ms. Errors under load counts non-200 answers to the load's "
                "calls (calls wait for the new owner instead of failing).",
                "Each trial (s): " + ", ".join(f"{t:.2f}" for t in times),
            ],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
