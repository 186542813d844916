"""Breakdown: where one warm call's time goes, stage by stage, from time stamps inside the processes.

    .venv/bin/python -m bench.breakdown [--rate 50] [--seconds 10] [--objects 100] [--sequential]

The API and the worker run under bench/path_probe.py, which stamps each stage of a call's path
with the system-wide monotonic clock; the client sends warm calls over 100 objects in an open
loop at `--rate` (or, with `--sequential`, one after another with nothing between them). Each
call then splits into:

  http in      client writes the request   -> the API handler has the validated call
  flush        handler                     -> the group enqueue's task starts (call_soon, a task)
  enqueue      the task                    -> enqueue.lua answered
  wake         enqueue sent                -> the worker's wake listener has the wake-up (BLMPOP)
  claim        wake-up                     -> claim_many.lua answered
  hand-off     claimed                     -> a pool thread starts the drain
  to run       drain started               -> run_batch starts
  run          run_batch                   -> shipment starts (the call, SQLite COMMIT, WAL read)
  ship         shipment                    -> Postgres answered (the output gate)
  to complete  shipped                     -> complete.lua sent
  reply pop    complete.lua sent           -> the API's reply listener has the outcome
  resolve      outcome popped              -> the handler resumes
  http out     handler resumes             -> the client has read the response

Where a segment's two stamps were taken on one thread, `thread CPU` is that thread's CPU
time between them: the rest of the segment it waited (I/O, the GIL, the OS's run queue).
Segments that overlap the one before (enqueue's answer and the wake-up race) are
measured from the stamp named, so the stages need not add up exactly to the total.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

from bench.common import System, counter_paths, percentile, print_table, warm, write_result
from bench.loadgen import Connection
from solo.objects.naming import object_id

PROBE = [sys.executable, "-m", "bench.path_probe"]

# (name, label, from stamp, to stamp); call-keyed stamps by call id, object-keyed ones by object id.
SEGMENTS = [
    ("http_in", "http in: request -> handler", "sent", "api.call.0"),
    ("flush", "flush: handler -> enqueue task runs", "api.call.0", "api.enq.0"),
    ("enqueue", "enqueue: enqueue.lua round trip", "api.enq.0", "api.enq.1"),
    ("wake", "wake: enqueue sent -> wake listener has it", "api.enq.0", "w.wake.0"),
    ("claim", "claim: claim_many.lua round trip", "w.wake.0", "w.claim.1"),
    ("handoff", "hand-off: claimed -> drain thread runs", "w.claim.1", "w.drain.0"),
    ("to_run", "drain -> run_batch", "w.drain.0", "w.run.0"),
    ("run", "run: call + SQLite commit + WAL read", "w.run.0", "w.ship.0"),
    ("ship", "ship: Postgres statement", "w.ship.0", "w.ship.1"),
    ("to_complete", "shipped -> complete.lua sent", "w.ship.1", "w.complete.0"),
    ("reply_pop", "reply: complete.lua sent -> API popped it", "w.complete.0", "api.popped"),
    ("resolve", "resolve: popped -> handler resumes", "api.popped", "api.call.1"),
    ("http_out", "http out: handler -> client has response", "api.call.1", "received"),
    ("total", "total (client)", "sent", "received"),
]
# An object's stamp: (after this call's stamp, before this one, the last of them rather than the first).
OBJECT_WINDOWS = {
    "w.wake.0": ("api.enq.0", "w.run.0", False),
    "w.claim.1": ("api.enq.0", "w.run.0", False),
    "w.drain.0": ("api.enq.0", "w.run.0", True),
    "w.ship.0": ("w.run.0", "w.complete.0", False),
    "w.ship.1": ("w.run.0", "w.complete.0", False),
}
OBJECT_STAMPS = set(OBJECT_WINDOWS)
COLUMNS = [
    ("segment", "segment", ""),
    ("p50_ms", "p50 ms", ".3f"),
    ("p90_ms", "p90 ms", ".3f"),
    ("p99_ms", "p99 ms", ".3f"),
    ("mean_ms", "mean ms", ".3f"),
    ("cpu_p50_ms", "thread CPU p50 ms", ".3f"),
    ("slowest_mean_ms", "mean in slowest 1 %", ".3f"),
]


async def send_calls(url: str, paths: list[str], rate: float, seconds: float, sequential: bool) -> list[tuple]:
    """(object name, call id, sent ns, received ns) per answered call."""
    done: list[tuple] = []
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(1 if sequential else 64):
        idle.put_nowait(await Connection.open(url))

    async def one(path: str) -> None:
        conn = await idle.get()
        sent = time.perf_counter_ns()
        status, body = await conn.post_for_body(path, b"{}")
        received = time.perf_counter_ns()
        idle.put_nowait(conn)
        if status == 200:
            done.append((path.split("/")[4], json.loads(body)["call_id"], sent, received))

    began = time.perf_counter()
    count = int(rate * seconds)
    if sequential:
        for i in range(count):
            await one(paths[i % len(paths)])
    else:
        tasks = []
        for i in range(count):
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(random.choice(paths))))
        await asyncio.gather(*tasks)
    while not idle.empty():
        idle.get_nowait().close()
    return done


Stamp = tuple[int, int, str]  # (monotonic ns, the thread's CPU ns, process:thread)


def read_stamps(directory: Path) -> dict[tuple[str, str], list[Stamp]]:
    stamps: dict[tuple[str, str], list[Stamp]] = defaultdict(list)
    for path in directory.glob("*.stamps"):
        for line in path.read_text().splitlines():
            stage, key, ns, cpu, thread = line.split()
            stamps[(stage, key)].append((int(ns), int(cpu), f"{path.stem}:{thread}"))
    for times in stamps.values():
        times.sort()
    return stamps


Split = dict[str, tuple[float, float | None]]


def split(calls: list[tuple], stamps: dict[tuple[str, str], list[Stamp]]) -> list[Split]:
    """Per call, per segment: (wall ms, the thread's CPU ms where both ends were stamped on one thread).

    An object's stamps (wake-up, claim, drain, shipment) are the ones between the call's own
    stamps around them; a call claimed by the batch before it's complete has no wake-up of its own."""
    rows = []
    for name, call_id, sent, received in calls:
        oid = object_id("default", "Counter", name)
        at: dict[str, Stamp] = {"sent": (sent, 0, "client"), "received": (received, 0, "client")}
        for stage in {s for _, _, a, b in SEGMENTS for s in (a, b)} - {"sent", "received"} - OBJECT_STAMPS:
            if stamps.get((stage, call_id)):
                at[stage] = stamps[(stage, call_id)][0]
        for stage, (after, before, last) in OBJECT_WINDOWS.items():
            if after in at and before in at:
                inside = [t for t in stamps.get((stage, oid), []) if at[after][0] <= t[0] <= at[before][0]]
                if inside:
                    at[stage] = inside[-1] if last else inside[0]
        row = {}
        for seg, _, a, b in SEGMENTS:
            if a in at and b in at:
                same_thread = at[a][2] == at[b][2] != "client"
                cpu = (at[b][1] - at[a][1]) / 1e6 if same_thread else None
                row[seg] = ((at[b][0] - at[a][0]) / 1e6, cpu)
        rows.append(row)
    return rows


def table(calls: list[Split]) -> list[dict]:
    """p50 / p90 / p99 / mean per segment, its CPU, and its mean in the slowest 1 % of calls."""
    totals = [c["total"][0] for c in calls]
    slow = [c for c in calls if c["total"][0] >= percentile(totals, 0.99)]
    labels = {name: label for name, label, *_ in SEGMENTS}
    rows = []
    for name, *_ in SEGMENTS:
        values = [c[name][0] for c in calls if name in c]
        cpu = [c[name][1] for c in calls if name in c and c[name][1] is not None]
        tail = [c[name][0] for c in slow if name in c]
        rows.append(
            {
                "segment": labels[name],
                "p50_ms": round(percentile(values, 0.5), 3),
                "p90_ms": round(percentile(values, 0.9), 3),
                "p99_ms": round(percentile(values, 0.99), 3),
                "mean_ms": round(statistics.mean(values), 3) if values else None,
                "cpu_p50_ms": round(percentile(cpu, 0.5), 3) if cpu else None,
                "slowest_mean_ms": round(statistics.mean(tail), 3) if tail else None,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench breakdown", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--sequential", action="store_true", help="one call after another, nothing between")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="solo-path-") as stamp_dir:
        with System("breakdown", PATH_PROBE_DIR=stamp_dir) as system:
            system.start(workers=1, wrap=PROBE)
            paths = counter_paths(f"b-{uuid.uuid4().hex[:4]}", args.objects)
            warm(system.url, paths)
            for path in Path(stamp_dir).glob("*.stamps"):
                path.write_text("")  # the warm-up's stamps (activations) are not what is measured
            calls = asyncio.run(send_calls(system.url, paths, args.rate, args.seconds, args.sequential))
        split_calls = split(calls, read_stamps(Path(stamp_dir)))

    rows = table(split_calls)
    load = "one after another" if args.sequential else f"{args.rate:g} calls/s open loop"
    title = f"Breakdown of one warm call ({load}, {args.objects} objects)"
    print_table(title, COLUMNS, rows)
    write_result(
        "breakdown",
        argv,
        {
            "title": title,
            "columns": COLUMNS,
            "rows": rows,
            "notes": [
                f"{len(split_calls)} calls answered; time stamps from bench/path_probe.py in the API and "
                "the worker (CLOCK_MONOTONIC, the client's too). Segments overlap where stages race "
                "(enqueue's answer and the wake-up), so they need not add up to the total.",
            ],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
