"""Auth: what API keys cost a warm call, with SOLO_AUTH=off and SOLO_AUTH=keys in the same run.

    .venv/bin/python -m bench.auth [--objects 100] [--concurrency 64] [--seconds 5] [--rounds 3]

Starts a real solo (one worker, the local Redis and a fresh Postgres database) with two API
processes on the same services: one with SOLO_AUTH=off, one with SOLO_AUTH=keys. Warm
`Counter.increment` calls to `objects` objects run in a closed loop against one API at a time,
in rounds that take turns, so that whatever else the machine does falls on each alike:

- off:        the API with SOLO_AUTH=off;
- key:        the API with keys, called with a key without a rate (the key cache, the scope check);
- key + rate: the same API, called with a key with a rate it never reaches (1000000/s): also one
              Redis script per call for the shared sliding-window counter.

Every request carries the same Authorization header (the off API ignores it), so the requests
are the same bytes. Figures are the medians of the rounds; API CPU ms per call is the API
process's CPU time over the calls it answered. On a busy machine the rounds differ by more
than auth costs, so the scenario also times the gateway alone, in this process: the CPU one
request with a warm key spends in it (route match, key parse, cache, SHA-256, scope check).

Goal: a key (without a rate) costs at most 5 % of throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid

from bench.common import System, counter_paths, goal, print_table, round_medians, warm, write_result
from bench.cpu import process_cpu_s
from bench.loadgen import closed_loop
from solo.objects.state.keys import KeyStore
from solo.objects.state.schema import make_engine

GOAL_MAX_COST = 0.05

COLUMNS = [
    ("mode", "mode", ""),
    ("calls_per_s", "calls/s", ",.0f"),
    ("vs_off", "x off", ".3f"),
    ("p50_ms", "p50 ms", ".2f"),
    ("p99_ms", "p99 ms", ".2f"),
    ("api_cpu_ms", "API CPU ms/call", ".3f"),
    ("rounds", "rounds", ""),
    ("errors", "errors", ""),
]


def one_round(url: str, pid: int, paths: list[str], headers: dict[str, str], concurrency: int, seconds: float):
    cpu_before = process_cpu_s(pid)
    sample = asyncio.run(closed_loop(url, paths, concurrency, seconds, headers))
    cpu_s = process_cpu_s(pid) - cpu_before
    calls = len(sample.latencies_s)
    return {**sample.summary(), "api_cpu_ms": 1000 * cpu_s / calls if calls else None}


def gateway_cpu_us(requests: int = 100_000) -> float:
    """CPU microseconds the auth middleware's checks take per request with a warm key (no rate), in-process."""
    from solo.api.app import create_app
    from solo.api.auth import Authenticator, KeyCache, presented_key, requirement
    from solo.objects.settings import Settings
    from solo.objects.state.keys import Principal, StoredKey, token_digest

    token = f"solo_{'0' * 16}_{'s' * 43}"
    stored = StoredKey(token_digest(token), Principal("0" * 16, "bench", "call"), None, False)
    settings = Settings.from_mapping({"redis_url": "redis://unused", "database_url": "sqlite://"})
    routes = create_app(settings, dispatch=lambda _id: None).routes
    auth = Authenticator("keys", KeyCache(lambda _id: stored, ttl_s=1e9), limiter=object())  # the key has no rate
    headers = [(b"host", b"x"), (b"content-type", b"application/json"), (b"authorization", f"Bearer {token}".encode())]
    scope = {"type": "http", "method": "POST", "path": "/v1/objects/Counter/a-17/increment", "headers": headers}

    async def run() -> float:
        await auth.admit(presented_key(scope), requirement(routes, scope))  # the cache is warm from here
        began = time.process_time()
        for _ in range(requests):
            await auth.admit(presented_key(scope), requirement(routes, scope))
        return (time.process_time() - began) / requests * 1e6

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench auth", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)

    gateway_us = gateway_cpu_us()
    with System("auth") as system:
        system.start(workers=1)  # the first API: SOLO_AUTH=off (process_env's default)
        keyed_url = system.cluster.start_api(SOLO_AUTH="keys")
        engine = make_engine(system.database_url)
        try:
            store = KeyStore(engine)
            plain = store.create("bench", "call", label="bench: no rate").token
            limited = store.create("bench", "call", rate="1000000/s", label="bench: a rate never reached").token
        finally:
            engine.dispose()
        api_off, api_keys = system.cluster.apis
        modes = {
            "off": (system.url, api_off.pid, plain),
            "key": (keyed_url, api_keys.pid, plain),
            "key + rate": (keyed_url, api_keys.pid, limited),
        }
        paths = counter_paths(f"auth-{uuid.uuid4().hex[:4]}", args.objects)
        warm(system.url, paths)
        for url, _, token in modes.values():  # each API's connections, and the key cache, warm too
            asyncio.run(closed_loop(url, paths, args.concurrency, 1, {"Authorization": f"Bearer {token}"}))

        samples: dict[str, list[dict]] = {mode: [] for mode in modes}
        for _ in range(args.rounds):
            for mode, (url, pid, token) in modes.items():
                headers = {"Authorization": f"Bearer {token}"}
                samples[mode].append(one_round(url, pid, paths, headers, args.concurrency, args.seconds))

    rows = round_medians(samples, "api_cpu_ms")
    off = rows[0]["calls_per_s"]
    title = f"Auth: warm calls over HTTP, {args.objects} objects, {args.concurrency} clients, closed loop"
    print_table(title, COLUMNS, rows)
    key = rows[1]["calls_per_s"]
    cost = 1 - key / off if off else 1.0
    goals = [
        goal(
            "throughput with API keys vs SOLO_AUTH=off",
            f">= {1 - GOAL_MAX_COST:.0%} of off",
            key,
            "calls/s",
            cost <= GOAL_MAX_COST,
            baseline=off,
        )
    ]
    off_cpu_ms = rows[0]["api_cpu_ms"]
    print(f"\nwith a key, {cost:.1%} fewer calls/s than with auth off, this run (goal: at most {GOAL_MAX_COST:.0%})")
    print(
        f"the gateway alone: {gateway_us:.1f} us CPU per request with a warm key"
        + (f", {gateway_us / 1000 / off_cpu_ms:.1%} of the API's CPU per call with auth off" if off_cpu_ms else "")
    )
    write_result(
        "auth",
        argv,
        {
            "title": title,
            "columns": COLUMNS,
            "rows": rows,
            "goals": goals,
            "gateway_cpu_us_per_request": round(gateway_us, 2),
            "notes": [
                f"The gateway alone (in-process, warm key, no rate): {gateway_us:.1f} us of CPU per request.",
                "Two API processes on one worker, Redis and Postgres: SOLO_AUTH=off and SOLO_AUTH=keys, measured "
                f"in alternating rounds of {args.seconds:g} s ({args.rounds} per mode; medians shown). Every "
                "request carries the same Authorization header.",
                "`key + rate`: a key with a rate it never reaches, so each call also runs the sliding-window "
                "counter's script in Redis (the `limits` library).",
            ],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
