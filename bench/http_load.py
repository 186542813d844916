"""Warm durable calls over HTTP: throughput and latency for 1 and for 100 objects.

    .venv/bin/python -m bench.http_load [--objects 1 100] [--seconds 10] [--concurrency 64] [--workers 1]

Starts Redis-backed solo processes (API + workers, as the Procfile does) on
REDIS_URL (default the local Redis) and a fresh Postgres database on
SOLO_BENCH_POSTGRES_URL, warms the objects, then measures from this process:
  throughput  closed loop, `concurrency` clients calling Counter.increment
  latency     open loop at half the measured throughput: p50 / p99 / max
Prints a table and writes JSON to bench/out/http_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
import uuid
from pathlib import Path

import redis
import sqlalchemy as sa

from bench.cluster import ROOT, Cluster, process_env
from bench.loadgen import closed_loop, open_loop
from objects.catalog import normalize_url
from objects.migrate import upgrade


def fresh_database(admin_url: str) -> tuple[str, str]:
    name = f"solo_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    return name, url


def drop_database(admin_url: str, name: str) -> None:
    admin = sa.create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    admin_url = os.environ.get("SOLO_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    prefix = f"solo-bench-{uuid.uuid4().hex[:6]}"
    db_name, db_url = fresh_database(admin_url)
    workdir = Path(tempfile.mkdtemp(prefix="solo-bench-"))
    env = process_env(redis_url=redis_url, database_url=db_url, key_prefix=prefix, data_dir=workdir / "objects")
    cluster = Cluster(env, workdir)
    results: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": f"{platform.node()} {os.cpu_count()} cpus",
        "python": platform.python_version(),
        "workers": args.workers,
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "runs": [],
    }
    try:
        for _ in range(args.workers):
            cluster.start_worker()
        cluster.start_api()
        for count in args.objects:
            paths = [f"/v1/objects/Counter/bench-{count}-{i}/increment" for i in range(count)]
            asyncio.run(closed_loop(cluster.url, paths, min(args.concurrency, 4 * count), 2))  # warm up
            throughput = asyncio.run(closed_loop(cluster.url, paths, args.concurrency, args.seconds)).summary()
            half = throughput["calls_per_s"] / 2
            latency = {"rate": half, **asyncio.run(open_loop(cluster.url, paths, half, args.seconds)).summary()}
            results["runs"].append({"objects": count, "throughput": throughput, "latency_at_half_rate": latency})
    finally:
        cluster.stop()
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
        drop_database(admin_url, db_name)

    print(f"\nwarm durable calls over HTTP ({args.workers} worker, {args.concurrency} clients, {args.seconds:g} s)")
    print(
        f"{'objects':>8} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8} | {'at rate':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'errors':>7}"
    )
    for run in results["runs"]:
        t, lat = run["throughput"], run["latency_at_half_rate"]
        print(
            f"{run['objects']:>8} {t['calls_per_s']:>9.0f} {t['p50_ms']:>8.2f} {t['p99_ms']:>8.2f} | "
            f"{lat['rate']:>8.0f} {lat['p50_ms']:>8.2f} {lat['p99_ms']:>8.2f} {lat['max_ms']:>8.2f} "
            f"{t['errors'] + lat['errors']:>7}"
        )
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "http_load.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
