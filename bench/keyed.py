"""Keyed throughput: warm durable calls over HTTP with an API key that has a rate, CPU ms per call by role.

    .venv/bin/python -m bench.keyed [--objects 100] [--concurrency 64] [--seconds 10] [--pyspy OUT[,FLAG...] ...]

As users run `solo api`: SOLO_AUTH=keys, and a key with a rate it never reaches
(1000000/s), so every call passes the gateway's key cache, scope check and rate limiter
(bench.throughput runs with SOLO_AUTH=off). One worker, one API process, the local Redis and
a fresh Postgres database; 64 keep-alive clients in a closed loop, each call a
`Counter.increment` to a random object. Prints one JSON line: calls/s, latencies and CPU ms
per call by process role (bench/cpu.py). `--pyspy OUT,--gil` records the API process with
py-spy (raw format) during the measurement (py-spy must be installed in the venv).
Used for ADR 0020's A/B rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid

from bench.common import System, counter_paths, cpu_columns, stack_meter
from bench.loadgen import Connection, closed_loop
from solo.objects.state.keys import KeyStore
from solo.objects.state.schema import make_engine


async def warm(url, paths, headers):
    conns = [await Connection.open(url) for _ in range(min(32, len(paths)))]
    pending = iter(paths)
    bad = []

    async def client(c):
        for p in pending:
            s = await c.post(p, b"{}", headers)
            if s != 200:
                bad.append((p, s))

    await asyncio.gather(*(client(c) for c in conns))
    for c in conns:
        c.close()
    if bad:
        raise RuntimeError(bad[:3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--auth", default="keys")
    ap.add_argument("--objects", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--pyspy", nargs="*", default=[])
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    with System("apiab") as system:
        system.cluster.start_worker()
        system.cluster.start_api(SOLO_AUTH=a.auth)
        headers = {}
        if a.auth == "keys":
            engine = make_engine(system.database_url)
            try:
                token = KeyStore(engine).create("default", "call", rate="1000000/s", label="ab").token
            finally:
                engine.dispose()
            headers = {"Authorization": f"Bearer {token}"}
        paths = counter_paths(f"ab-{uuid.uuid4().hex[:4]}", a.objects)
        asyncio.run(warm(system.url, paths, headers))
        asyncio.run(closed_loop(system.url, paths, a.concurrency, 2, headers))
        spies = []
        for spec in a.pyspy:
            out, *flags = spec.split(",")
            spies.append(
                subprocess.Popen(
                    [
                        os.path.join(sys.prefix, "bin", "py-spy"),
                        "record",
                        "-p",
                        str(system.cluster.api.pid),
                        "-d",
                        str(int(a.seconds)),
                        "-r",
                        "100",
                        "-f",
                        "raw",
                        "-o",
                        out,
                        *flags,
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        meter = stack_meter(system)
        meter.start()
        sample = asyncio.run(closed_loop(system.url, paths, a.concurrency, a.seconds, headers))
        used = meter.stop()
        for s in spies:
            s.wait()
        calls = len(sample.latencies_s)
        row = {
            "label": a.label,
            "auth": a.auth,
            **sample.summary(),
            **cpu_columns(used, calls, sample.elapsed_s),
            "load": os.getloadavg()[0],
            "utc": time.strftime("%H:%M:%S", time.gmtime()),
        }
        print(json.dumps(row))


if __name__ == "__main__":
    main()
