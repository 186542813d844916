"""Observability: what metrics and JSON logs cost a warm call, on and off in the same run.

    .venv/bin/python -m bench.observability [--objects 100] [--concurrency 64] [--seconds 5] [--rounds 3]

Starts two real solos side by side on the local Redis and Postgres (each with a database and
a key prefix of its own), and runs warm `Counter.increment` calls against one at a time, in
rounds that take turns, so that whatever else the machine does falls on each alike:

- off:             a worker with its per-call metrics and log fields turned off
                   (bench/unmeasured_worker.py), plain-text logs at WARNING;
- metrics + json:  a standard worker serving SOLO_METRICS_PORT, both processes logging JSON at
                   INFO, and both metrics pages scraped every --scrape-every seconds (default 5)
                   while the load runs;
- + access log:    the same, through a second API process of the second solo with
                   SOLO_ACCESS_LOG=1: one JSON line per request;
- + traces:        a third solo as the second, with traces on (objects/tracing.py), every span
                   exported over OTLP/HTTP to a sink in this process that answers 200 and drops it
                   (with opentelemetry-exporter-otlp-proto-http installed; else the SDK's console
                   exporter, into the processes' logs: an upper bound). --no-traces leaves it out.

Figures are the medians of the rounds; worker CPU ms per call is the worker's CPU time over
the calls answered. On a busy machine the rounds differ by more than the metrics cost, so
the scenario also times, in this process, the CPU a batch's metrics take per call
(RuntimeMetrics.batch_done and one shipment) and the log fields bound around it, and the CPU
the spans of one warm call take (the API's, queue wait, run and ship; exported to nowhere).

Goal: metrics and JSON logs cost at most 5 % of warm-call throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.server
import importlib.util
import subprocess
import sys
import threading
import time
import uuid

import httpx

from bench.common import System, counter_paths, goal, print_table, round_medians, warm, write_result
from bench.cpu import process_cpu_s
from bench.loadgen import closed_loop
from solo.testing.cluster import free_port

GOAL_MAX_COST = 0.05
READY_TIMEOUT_S = 120  # an API starts slowly on a busy machine: four of them, one after the other

COLUMNS = [
    ("mode", "mode", ""),
    ("calls_per_s", "calls/s", ",.0f"),
    ("vs_off", "x off", ".3f"),
    ("p50_ms", "p50 ms", ".2f"),
    ("p99_ms", "p99 ms", ".2f"),
    ("worker_cpu_ms", "worker CPU ms/call", ".3f"),
    ("rounds", "rounds", ""),
    ("errors", "errors", ""),
]


def metrics_cpu_us(calls_per_batch: int = 1, batches: int = 100_000) -> float:
    """CPU microseconds per call that a batch's metrics and log fields take, in-process."""
    from solo.objects.calls import Call, Outcome
    from solo.objects.metrics import RuntimeMetrics
    from solo.objects.runtime import log_fields

    metrics = RuntimeMetrics()
    calls = [Call(f"c{i}", "0" * 32, "Counter", "a", "increment", {}, enqueued_ms=1) for i in range(calls_per_batch)]
    outcomes = [Outcome.success(c.call_id, 1) for c in calls]
    began = time.process_time()
    for _ in range(batches):
        with log_fields.bound(object="Counter/a", tenant="default", epoch=1):
            for call in calls:
                with log_fields.bound(call_id=call.call_id), log_fields.bound(method=call.method):
                    pass
        metrics.shipped(0.001, 4096)
        metrics.batch_done("Counter", "default", calls, outcomes, claimed_ms=2, done_ms=3, remaining=0, clock_ms=3)
    return (time.process_time() - began) / (batches * calls_per_batch) * 1e6


def tracing_cpu_us(calls: int = 20_000) -> float:
    """CPU microseconds per call that the spans of a warm call take, in-process, exported to nowhere."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from solo.objects.calls import Call, Outcome
    from solo.objects.tracing import TRACER_NAME, Tracing

    class Discard(SpanExporter):
        def export(self, spans):  # noqa: ANN001, ANN201
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    tracing = Tracing(provider.get_tracer(TRACER_NAME))
    headers = {"traceparent": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"}
    began = time.process_time()
    for i in range(calls):
        with tracing.server("POST /v1/objects/{class_name}/{name}/{method}", headers, {"solo.method": "increment"}):
            trace = tracing.current()
        call = Call(f"c{i}", "0" * 32, "Counter", "a", "increment", {}, enqueued_ms=1, trace=trace)
        tracing.queued([call], 2)
        with tracing.run(call, call.method, epoch=1) as span:
            tracing.ended(span, Outcome.success(call.call_id, 1))
        with tracing.ship([call.trace]):
            pass
    provider.shutdown()  # the export thread's CPU counts too
    return (time.process_time() - began) / calls * 1e6


class OtlpSink:
    """A collector that costs nothing: accepts OTLP/HTTP exports, answers 200 and drops them."""

    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("content-length") or 0))
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OtlpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def traces_env(stack: contextlib.ExitStack) -> tuple[str, dict[str, str]]:
    """The exporter the `+ traces` mode uses, and the environment that sets it up."""
    env = {"SOLO_LOG_FORMAT": "json", "OTEL_SERVICE_NAME": "solo-bench"}
    if importlib.util.find_spec("opentelemetry.exporter.otlp.proto.http") is None:
        return "console", {**env, "OTEL_TRACES_EXPORTER": "console"}
    sink = stack.enter_context(OtlpSink())
    return "otlp", {**env, "OTEL_TRACES_EXPORTER": "otlp_proto_http", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": sink.url}


class Scraper:
    """Fetch metrics pages every `interval_s`, as Prometheus would."""

    def __init__(self, urls: list[str], interval_s: float) -> None:
        self.urls = urls
        self.interval_s = interval_s
        self.scrapes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.wait(self.interval_s):
                for url in self.urls:
                    if client.get(url).status_code == 200:
                        self.scrapes += 1

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def one_round(url: str, worker_pid: int, paths: list[str], concurrency: int, seconds: float) -> dict:
    cpu_before = process_cpu_s(worker_pid)
    sample = asyncio.run(closed_loop(url, paths, concurrency, seconds))
    cpu_s = process_cpu_s(worker_pid) - cpu_before
    calls = len(sample.latencies_s)
    return {**sample.summary(), "worker_cpu_ms": 1000 * cpu_s / calls if calls else None}


def start_unmeasured_worker(system: System) -> subprocess.Popen:
    cluster = system.cluster
    with open(cluster.log_dir / "worker0.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.unmeasured_worker"],
            env={**cluster.env, "SOLO_WORKER_ID": f"unmeasured-{uuid.uuid4().hex[:6]}"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    cluster.workers.append(process)  # stopped with the cluster
    return process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench observability", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scrape-every", type=float, default=5, help="seconds between scrapes (Prometheus: 15)")
    parser.add_argument("--no-traces", action="store_true", help="leave out the `+ traces` mode")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)

    in_process_us = metrics_cpu_us()
    spans_us = tracing_cpu_us()
    with (
        System("obs-off") as off,
        System("obs-on", SOLO_LOG_FORMAT="json") as on,
        contextlib.ExitStack() as stack,
    ):
        off_worker = start_unmeasured_worker(off)
        off.cluster.start_api(ready_timeout_s=READY_TIMEOUT_S)
        metrics_port = free_port()
        on_worker = on.cluster.start_worker(SOLO_METRICS_PORT=str(metrics_port), SOLO_LOG_LEVEL="INFO")
        on.cluster.start_api(ready_timeout_s=READY_TIMEOUT_S, SOLO_LOG_LEVEL="INFO")
        access_url = on.cluster.start_api(ready_timeout_s=READY_TIMEOUT_S, SOLO_LOG_LEVEL="INFO", SOLO_ACCESS_LOG="1")
        modes = {
            "off": (off.url, off_worker.pid),
            "metrics + json": (on.url, on_worker.pid),
            "+ access log": (access_url, on_worker.pid),
        }
        paths = counter_paths(f"obs-{uuid.uuid4().hex[:4]}", args.objects)
        exporter = ""
        if not args.no_traces:
            exporter, traced_env = traces_env(stack)
            traced = stack.enter_context(System("obs-traced", **traced_env))
            traced_worker = traced.cluster.start_worker(SOLO_METRICS_PORT=str(free_port()), SOLO_LOG_LEVEL="INFO")
            traced.cluster.start_api(ready_timeout_s=READY_TIMEOUT_S, SOLO_LOG_LEVEL="INFO")
            modes["+ traces"] = (traced.url, traced_worker.pid)
            warm(traced.url, paths)
        warm(off.url, paths)
        warm(on.url, paths)
        for url, _ in modes.values():  # each API's connections warm too
            asyncio.run(closed_loop(url, paths, args.concurrency, 1))

        samples: dict[str, list[dict]] = {mode: [] for mode in modes}
        pages = [f"http://127.0.0.1:{metrics_port}/metrics", f"{on.url}/metrics"]
        with Scraper(pages, args.scrape_every) as scraper:
            for _ in range(args.rounds):
                for mode, (url, pid) in modes.items():
                    samples[mode].append(one_round(url, pid, paths, args.concurrency, args.seconds))
        scrapes = scraper.scrapes

    rows = round_medians(samples, "worker_cpu_ms")
    off_rate = rows[0]["calls_per_s"]
    title = f"Observability: warm calls over HTTP, {args.objects} objects, {args.concurrency} clients, closed loop"
    print_table(title, COLUMNS, rows)
    observed = rows[1]["calls_per_s"]
    cost = 1 - observed / off_rate if off_rate else 1.0
    goals = [
        goal(
            "throughput with metrics and JSON logs vs without",
            f">= {1 - GOAL_MAX_COST:.0%} of off",
            observed,
            "calls/s",
            cost <= GOAL_MAX_COST,
            baseline=off_rate,
        )
    ]
    worker_ms = rows[0]["worker_cpu_ms"]
    share = f", {in_process_us / 1000 / worker_ms:.1%} of the worker's CPU per call with them off" if worker_ms else ""
    print(f"\nwith metrics and JSON logs, {cost:.1%} fewer calls/s than without, this run (goal: at most 5%)")
    print(f"a batch's metrics and log fields alone: {in_process_us:.1f} us CPU per call{share}")
    print(f"the spans of a warm call alone: {spans_us:.1f} us CPU per call (exported to nowhere)")
    traced_row = next((r for r in rows if r["mode"] == "+ traces"), None)
    if traced_row and observed:
        ratio = traced_row["calls_per_s"] / observed
        print(f"with traces ({exporter} exporter) vs metrics + json: x{ratio:.3f} calls/s")
    print(f"metrics pages scraped {scrapes} times during the rounds")
    write_result(
        "observability",
        argv,
        {
            "title": title,
            "columns": COLUMNS,
            "rows": rows,
            "goals": goals,
            "metrics_cpu_us_per_call": round(in_process_us, 2),
            "spans_cpu_us_per_call": round(spans_us, 2),
            "notes": [
                f"A batch's metrics and log fields alone (in-process, one call per batch): {in_process_us:.1f} us"
                " of CPU per call.",
                "Two solos side by side on one Redis and Postgres, measured in alternating rounds of "
                f"{args.seconds:g} s ({args.rounds} per mode; medians shown); the metrics pages of the second "
                f"were scraped every {args.scrape_every:g} s ({scrapes} scrapes).",
                "`off`: per-call metrics and log fields replaced with nothing (bench/unmeasured_worker.py); "
                "`+ access log`: one JSON line per request written by the API.",
                f"The spans of one warm call alone (in-process, exported to nowhere): {spans_us:.1f} us of CPU; "
                "`+ traces`: a third solo as the second with traces on, "
                + (
                    "every span exported over OTLP/HTTP (opentelemetry-exporter-otlp-proto-http) to a sink "
                    "in the load process that drops it."
                    if exporter == "otlp"
                    else "every span written by the console exporter as indented JSON to the processes' logs "
                    "(an upper bound of a real exporter's cost)."
                ),
            ],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
