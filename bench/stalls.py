"""Stalls: when calls in flight all wait at once, which process had stopped running Python.

    .venv/bin/python -m bench.stalls [--objects 100] [--rate 500] [--seconds 20] [--worker-threads 16]

Starts a real solo whose API and worker run under bench/stall_probe.py, sends warm calls
in an open loop at `rate`, and lists every stall: a 20 ms window in which calls answered
took over `--slow-ms`. Beside each, the probes' late wake-ups in each process at that
moment (how late, the CPU the process used meanwhile, the probe's time in the OS's run
queue), so a stall reads as: a process not given the CPU (the machine busy), a process
whose threads held the GIL (a convoy), a GIL holder that did not run, or neither process
held up (Redis, Postgres, the load generator). `--worker-threads` sets SOLO_WORKER_THREADS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid

from bench.common import System, counter_paths, warm
from bench.loadgen import Connection

PROBE = [sys.executable, "-m", "bench.stall_probe"]


async def open_loop(url: str, paths: list[str], rate: float, seconds: float) -> list[tuple[float, float]]:
    """(wall time sent, latency s) of every call, sent on schedule."""
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(256):
        idle.put_nowait(await Connection.open(url))
    calls: list[tuple[float, float]] = []

    async def one() -> None:
        conn = await idle.get()
        sent, wall = time.perf_counter(), time.time()
        await conn.post(random.choice(paths), b"{}")
        calls.append((wall, time.perf_counter() - sent))
        idle.put_nowait(conn)

    tasks = []
    began = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return calls


def read_probe(path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines()]
    except FileNotFoundError:
        return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="solo bench stalls", description=__doc__)
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--slow-ms", type=float, default=40)
    parser.add_argument("--worker-threads", type=int, default=16)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    with System("stalls") as system:
        files = {role: system.workdir / f"probe-{role}.jsonl" for role in ("api", "worker")}
        system.cluster.start_worker(
            wrap=PROBE, STALL_PROBE_FILE=str(files["worker"]), SOLO_WORKER_THREADS=str(args.worker_threads)
        )
        system.cluster.start_api(wrap=PROBE, STALL_PROBE_FILE=str(files["api"]))
        paths = counter_paths(f"st-{uuid.uuid4().hex[:4]}", args.objects)
        warm(system.url, paths)
        asyncio.run(open_loop(system.url, paths, args.rate, 2))
        for f in files.values():
            f.write_text("")
        calls = asyncio.run(open_loop(system.url, paths, args.rate, args.seconds))
        probes = {role: read_probe(f) for role, f in files.items()}

    latencies = sorted(latency for _, latency in calls)
    print(
        f"{len(calls)} calls at {args.rate:g}/s, {args.worker_threads} worker threads: p50 "
        f"{1000 * latencies[len(latencies) // 2]:.1f} ms, p99 {1000 * latencies[int(len(latencies) * 0.99)]:.1f} ms, "
        f"max {1000 * latencies[-1]:.1f} ms"
    )
    slow = sorted((sent + latency, latency) for sent, latency in calls if latency * 1000 > args.slow_ms)
    episodes: list[list[tuple[float, float]]] = []
    for done, latency in slow:
        if episodes and done - episodes[-1][-1][0] < 0.05:
            episodes[-1].append((done, latency))
        else:
            episodes.append([(done, latency)])
    print(f"{len(episodes)} stall episodes (calls over {args.slow_ms:g} ms, grouped when 50 ms apart)")
    for episode in episodes:
        end = episode[-1][0]
        start = min(done - latency for done, latency in episode)
        worst = max(latency for _, latency in episode)
        stamp = time.strftime("%H:%M:%S", time.gmtime(start)) + f".{int(start % 1 * 1000):03d}"
        print(f"  {stamp} {1000 * (end - start):6.0f} ms, {len(episode)} slow calls, worst {1000 * worst:.0f} ms")
        for role, rows in probes.items():
            for row in rows:
                if start - 0.05 <= row["t"] <= end + 0.05:
                    print(
                        f"      {role:6} probe late {row['late_ms']:6.1f} ms, process CPU meanwhile"
                        f" {row['cpu_ms']:6.1f} ms, in the run queue {row['runqueue_ms']:6.1f} ms,"
                        f" {row['threads']} threads"
                    )
    for role, rows in probes.items():
        queued = [r for r in rows if r["runqueue_ms"] >= r["late_ms"] / 2]  # the OS ran others
        busy = [r for r in rows if r not in queued and r["cpu_ms"] >= r["late_ms"] / 2]  # its threads held the GIL
        print(
            f"{role}: {len(rows)} late wake-ups over 20 ms, worst {max((r['late_ms'] for r in rows), default=0):.0f}"
            f" ms: {len(queued)} waiting in the OS's run queue (the machine busy), {len(busy)} waiting for the GIL"
            f" while the process's threads ran, {len(rows) - len(queued) - len(busy)} waiting for a GIL whose"
            " holder did not run (preempted by the OS, or blocked in C without releasing it)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
