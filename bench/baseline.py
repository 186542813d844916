"""Baseline: the floor the stack stands on, with nothing of solo in the way.

    .venv/bin/python -m bench.baseline [--messages 20000] [--http-seconds 10] [--concurrency 64]

Dramatiq: a no-op actor (bench/noop_worker.py) through the same Redis as
solo. The queue is filled with `messages` messages first, then the worker
processes start, and the drain rate is measured over the middle 90 % of the
queue (start-up excluded). Several settings are tried (processes x threads x
prefetch); the best one is the figure other scenarios compare with.

HTTP: a bare Starlette endpoint (bench/bare_app.py) under uvicorn with the
settings `solo api` uses, driven by `concurrency` keep-alive clients in a
closed loop from this process (bench/loadgen.py).

Writes bench/out/baseline.json; `best_dramatiq_msgs_per_s` and
`bare_http_requests_per_s` are the figures other scenarios read.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid

import redis

from bench import ROOT, noop_worker
from bench.common import delete_keys, print_table, redis_url, write_result
from bench.cpu import CpuMeter, per_call_ms
from bench.loadgen import closed_loop
from solo.testing.cluster import free_port

# (processes, threads per process, prefetch per consumer; 0 = Dramatiq's default of 2 x threads)
SETTINGS = [(1, 8, 0), (1, 8, 64), (1, 16, 0), (2, 8, 0), (2, 8, 64)]

COLUMNS = [
    ("what", "what", ""),
    ("settings", "settings", ""),
    ("rate", "per second", ",.0f"),
    ("p50_ms", "p50 ms", ".2f"),
    ("p99_ms", "p99 ms", ".2f"),
    ("cpu_ms", "CPU ms per message/request", ".3f"),
]


def fill_queue(broker, actor, messages: int) -> float:
    """Enqueue `messages` no-op messages from this thread; returns the enqueue rate."""
    started = time.perf_counter()
    for _ in range(messages):
        broker.enqueue(actor.message())
    return messages / (time.perf_counter() - started)


def drain_rate(url: str, processes: int, threads: int, prefetch: int, messages: int) -> dict:
    namespace = f"solo-bench-baseline-{uuid.uuid4().hex[:6]}-dramatiq"
    broker = noop_worker.make_broker(url, namespace)
    actor = noop_worker.declare(broker)
    client = redis.Redis.from_url(url)
    pending_key = f"{namespace}:{noop_worker.QUEUE}.msgs"  # a message's body stays here until it is acked
    workers: list[subprocess.Popen] = []
    try:
        enqueue_rate = fill_queue(broker, actor, messages)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if prefetch:
            env["dramatiq_queue_prefetch"] = str(prefetch)
        for _ in range(processes):
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bench.noop_worker", "--redis", url, "--namespace", namespace]
                    + ["--threads", str(threads)],
                    cwd=ROOT,
                    env=env,
                )
            )
        meter = CpuMeter({"workers": lambda: [w.pid for w in workers]})
        high, low = messages * 0.95, messages * 0.05
        t_high = t_low = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            remaining = client.hlen(pending_key)
            now = time.perf_counter()
            if t_high is None and remaining <= high:
                t_high = now
                meter.start()
            if remaining <= low:
                t_low = now
                break
            time.sleep(0.005)
        if t_high is None or t_low is None:
            raise RuntimeError("the no-op workers did not drain the queue in time")
        used = meter.stop()
        measured = int(high - low)
        return {
            "what": "Dramatiq no-op actor",
            "settings": f"{processes} proc x {threads} threads, prefetch {prefetch or 2 * threads}",
            "rate": round(measured / (t_low - t_high), 1),
            "cpu_ms": per_call_ms(used, measured)["workers"],
            "enqueue_rate": round(enqueue_rate, 1),
        }
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
        broker.close()
        client.close()
        delete_keys(url, namespace.removesuffix("-dramatiq"))


def wait_for_port(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def bare_http(seconds: float, concurrency: int) -> dict:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--host", "127.0.0.1", "--port", str(port)]
        + ["--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "75"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        wait_for_port(port)
        url = f"http://127.0.0.1:{port}"
        paths = ["/v1/objects/Counter/bench/increment"]
        asyncio.run(closed_loop(url, paths, concurrency, 2))  # warm up
        meter = CpuMeter({"api": lambda: [server.pid], "load": lambda: [os.getpid()]})
        meter.start()
        sample = asyncio.run(closed_loop(url, paths, concurrency, seconds))
        used = per_call_ms(meter.stop(), len(sample.latencies_s))
        summary = sample.summary()
        return {
            "what": "bare Starlette endpoint",
            "settings": f"uvicorn, 1 process, {concurrency} clients",
            "rate": summary["calls_per_s"],
            "p50_ms": summary["p50_ms"],
            "p99_ms": summary["p99_ms"],
            "cpu_ms": used["api"],
            "load_cpu_ms": used["load"],
            "errors": summary["errors"],
        }
    finally:
        server.terminate()
        server.wait(timeout=20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench baseline", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--http-seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=64)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)

    url = redis_url()
    rows = [drain_rate(url, *setting, args.messages) for setting in SETTINGS]
    best = max(rows, key=lambda r: r["rate"])
    best["best"] = True
    http = bare_http(args.http_seconds, args.concurrency)
    rows.append(http)
    title = "Baseline: a no-op Dramatiq actor and a bare Starlette endpoint"
    print_table(title, COLUMNS, rows)
    enqueue = max(r["enqueue_rate"] for r in rows if "enqueue_rate" in r)
    write_result(
        "baseline",
        argv,
        {
            "title": title,
            "columns": COLUMNS,
            "rows": rows,
            "best_dramatiq_msgs_per_s": best["rate"],
            "best_dramatiq_settings": best["settings"],
            "bare_http_requests_per_s": http["rate"],
            "enqueue_msgs_per_s": enqueue,
            "notes": [
                f"Dramatiq: {args.messages:,} messages queued first, drain rate over the middle 90 %; best: "
                f"{best['settings']}. Enqueueing from one thread ran at up to {enqueue:,.0f} messages/s.",
                f"HTTP: {args.concurrency} keep-alive clients in a closed loop for {args.http_seconds:g} s "
                f"from one asyncio process (bench/loadgen.py), which itself used {http['load_cpu_ms']:.3f} "
                "CPU ms per request. uvicorn runs on uvloop and httptools (solo's dependencies).",
            ],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
