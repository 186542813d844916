"""WebSockets: idle sockets held by one API process, echo round trips, and a broadcast to 1,000 sockets.

    .venv/bin/python -m bench.sockets [--idle 10000] [--echoes 500] [--fanout 1000] [--broadcasts 30]
        [--client-gc frozen|default] [--trace DIR]

- idle: `--idle` sockets (100 per Room) opened through one API process and left idle; the API
  process's resident memory before and after gives the memory per socket. The same count is
  opened on a bare Starlette echo endpoint (bench/bare_ws_app.py) under uvicorn, for comparison.
- echo: one socket alone in a Room sends a message and waits for the Room's broadcast of it (the
  whole path: gateway, mailbox, worker, commit, shipment, routing, gateway); `--echoes` round
  trips one after the other. The same against the bare echo endpoint.
- broadcast: `--fanout` sockets in one Room; an HTTP call to `announce` sends one message to all
  of them; the time from the call to the last socket's receipt, over `--broadcasts` calls. The
  client process's connections are frozen out of its own collections (`--client-gc default`: not).
  `--trace DIR` runs the servers under bench/broadcast_trace.py and prints each broadcast's stages
  (routed by the worker, popped and written by the gateway, first and last receipt), the gateway's
  CPU for its writes, and the collections of each process that overlapped it.

Goals: 10,000 idle sockets in at most 200 MiB of the API process; broadcast to 1,000 sockets with
p99 time to last receipt at most 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import websockets

from bench import broadcast_trace
from bench.common import System, goal, percentile, print_table, write_result
from bench.cpu import process_cpu_s
from solo.testing.cluster import free_port, wait_until_ready

GOAL_IDLE_SOCKETS = 10_000
GOAL_IDLE_MIB = 200
GOAL_BROADCAST_P99_MS = 100
SOCKETS_PER_ROOM = 100

COLUMNS = [
    ("what", "what", ""),
    ("server", "server", ""),
    ("value", "value", ",.2f"),
    ("unit", "unit", ""),
]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def ws_base(url: str) -> str:
    return url.replace("http://", "ws://")


async def open_many(urls: list[str], concurrency: int = 64) -> list[websockets.ClientConnection]:
    gate = asyncio.Semaphore(concurrency)

    async def one(url: str) -> websockets.ClientConnection:
        async with gate:
            return await websockets.connect(url, open_timeout=120, ping_interval=None, max_queue=None)

    return list(await asyncio.gather(*(one(u) for u in urls)))


async def close_all(sockets: list[websockets.ClientConnection]) -> None:
    await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)


async def idle(base: str, pid: int, count: int, room_prefix: str) -> dict[str, float]:
    before = rss_bytes(pid)
    urls = [f"{base}/v1/objects/Room/{room_prefix}-{i // SOCKETS_PER_ROOM}/ws?user=u{i}" for i in range(count)]
    started = time.monotonic()
    sockets = await open_many(urls)
    opened_s = time.monotonic() - started
    await asyncio.sleep(2)  # let the server settle (buffers allocated at accept, collector runs)
    after = rss_bytes(pid)
    await close_all(sockets)
    return {
        "opened": len(sockets),
        "open_s": opened_s,
        "rss_before_mib": before / 2**20,
        "rss_after_mib": after / 2**20,
        "bytes_per_socket": (after - before) / max(1, len(sockets)),
    }


async def echo(url: str, count: int, expect_prefix: str) -> list[float]:
    times = []
    async with websockets.connect(url, open_timeout=120, ping_interval=None) as ws:
        for i in range(count + 20):
            started = time.perf_counter()
            await ws.send(f"e{i}")
            while True:
                got = await ws.recv()
                if got == f"{expect_prefix}e{i}":
                    break
            if i >= 20:  # the first ones warm the path up
                times.append((time.perf_counter() - started) * 1000)
    return times


async def broadcast(
    base: str,
    http_url: str,
    fanout: int,
    count: int,
    stages: list[dict[str, Any]] | None = None,
    freeze_clients: bool = True,
    pids: dict[str, int] | None = None,
) -> list[float]:
    """Times to the last receipt; `stages`, if given, gets each broadcast's client-side times.

    `freeze_clients`: the open connections are kept out of this process's cyclic collections
    (gc.freeze). This one process plays 1,000 clients; its full collections walk all their
    connections and took 100 ms to 0.8 s of wall time on a busy machine (measured with --trace),
    delaying the call and the reads as if the server were slow. A client of its own would not.
    """
    room = f"fan-{uuid.uuid4().hex[:6]}"
    sockets = await open_many([f"{base}/v1/objects/Room/{room}/ws?user=u{i}" for i in range(fanout)])
    if freeze_clients:
        gc.collect()
        gc.freeze()
    times = []
    try:
        async with httpx.AsyncClient(base_url=http_url, timeout=60) as http:
            for i in range(count + 3):
                text = f"b{i}"

                async def receipt(ws: websockets.ClientConnection, text: str = text) -> float:
                    while await ws.recv() != text:
                        pass
                    return time.perf_counter()

                waiting = [asyncio.create_task(receipt(ws)) for ws in sockets]
                cpu_before = {role: process_cpu_s(pid) for role, pid in (pids or {}).items()}
                client_cpu_before = time.process_time()
                started = time.perf_counter()
                response = await http.post(f"/v1/objects/Room/{room}/announce", json={"text": text})
                answered = time.perf_counter()
                assert response.status_code == 200, response.text
                receipts = await asyncio.gather(*waiting)
                last = max(receipts)
                if i >= 3:
                    times.append((last - started) * 1000)
                if stages is not None:  # perf_counter is CLOCK_MONOTONIC on Linux, as time.monotonic()
                    cpu_ms = {
                        f"cpu_{role}_ms": (process_cpu_s(pid) - cpu_before[role]) * 1000
                        for role, pid in (pids or {}).items()
                    }
                    cpu_ms["cpu_client_ms"] = (time.process_time() - client_cpu_before) * 1000
                    stages.append(
                        {"text": text, "started": started, "answered": answered, "first": min(receipts), "last": last}
                        | cpu_ms
                    )
    finally:
        await close_all(sockets)
        gc.unfreeze()
    return times


def start_bare(workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(workdir / "bare_ws.log", "ab")  # noqa: SIM115 (the child keeps it)
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.bare_ws_app:app", "--host", "127.0.0.1", "--port", str(port)]
        + ["--log-level", "warning", "--no-access-log", "--ws-per-message-deflate", "false"],  # as `solo api`
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return process, url


def summary(times: list[float]) -> dict[str, float]:
    return {"p50": percentile(times, 0.5), "p99": percentile(times, 0.99), "max": max(times)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench sockets", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--idle", type=int, default=GOAL_IDLE_SOCKETS)
    parser.add_argument("--echoes", type=int, default=500)
    parser.add_argument("--fanout", type=int, default=1000)
    parser.add_argument("--broadcasts", type=int, default=30)
    parser.add_argument(
        "--client-gc",
        choices=("frozen", "default"),
        default="frozen",
        help="the broadcast client's open connections out of its collections (frozen), or not",
    )
    parser.add_argument(
        "--trace",
        metavar="DIR",
        help="time each broadcast's stages and every process's collections (bench/broadcast_trace.py) into DIR",
    )
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # the client and the servers hold a socket each
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    rows: list[dict] = []
    # A connect event is a call: on a busy machine it may take longer than the default call timeout.
    trace_env, wrap = {}, []
    if args.trace:
        Path(args.trace).mkdir(parents=True, exist_ok=True)
        trace_env = {"BROADCAST_TRACE_DIR": str(Path(args.trace).resolve())}
        wrap = [sys.executable, "-m", "bench.broadcast_trace"]
        broadcast_trace.client_gc(args.trace)
    stages: list[dict[str, Any]] | None = [] if args.trace else None
    with System("sockets", SOLO_IDLE_EVICT_S="600", SOLO_CALL_TIMEOUT_S="120", **trace_env) as system:
        system.start(workers=1, wrap=wrap)
        assert wait_until_ready(system.url, 30)
        api_pid = system.cluster.api.pid
        base = ws_base(system.url)
        solo_idle = asyncio.run(idle(base, api_pid, args.idle, f"idle-{uuid.uuid4().hex[:6]}"))
        solo_echo = summary(
            asyncio.run(echo(f"{base}/v1/objects/Room/echo-{uuid.uuid4().hex[:6]}/ws?user=a", args.echoes, "a: "))
        )
        fan = summary(
            asyncio.run(
                broadcast(
                    base,
                    system.url,
                    args.fanout,
                    args.broadcasts,
                    stages,
                    args.client_gc == "frozen",
                    {"api": api_pid, "worker": system.cluster.workers[0].pid},
                )
            )
        )
        if stages is not None:
            for row in broadcast_trace.stages(args.trace, stages):
                print(json.dumps(row))
        bare, bare_url = start_bare(system.workdir)
        try:
            bare_idle = asyncio.run(idle(ws_base(bare_url), bare.pid, args.idle, "bare"))
            bare_echo = summary(asyncio.run(echo(f"{ws_base(bare_url)}/v1/objects/Room/echo/ws", args.echoes, "")))
        finally:
            bare.terminate()
            bare.wait()

    for server, measured in (("solo", solo_idle), ("bare Starlette", bare_idle)):
        rows.append(
            {
                "what": f"{measured['opened']:,} idle sockets: API process RSS",
                "server": server,
                "value": measured["rss_after_mib"],
                "unit": "MiB",
            }
        )
        rows.append(
            {
                "what": "memory per idle socket",
                "server": server,
                "value": measured["bytes_per_socket"] / 1024,
                "unit": "KiB",
            }
        )
        rows.append(
            {
                "what": f"time to open {measured['opened']:,} sockets",
                "server": server,
                "value": measured["open_s"],
                "unit": "s",
            }
        )
    for server, measured in (("solo", solo_echo), ("bare Starlette", bare_echo)):
        for q in ("p50", "p99"):
            rows.append({"what": f"echo round trip {q}", "server": server, "value": measured[q], "unit": "ms"})
    for q in ("p50", "p99", "max"):
        rows.append(
            {"what": f"broadcast to {args.fanout:,}: last receipt {q}", "server": "solo", "value": fan[q], "unit": "ms"}
        )

    title = "WebSockets: idle sockets, echo, broadcast"
    print_table(title, COLUMNS, rows)
    idle_ok = solo_idle["opened"] >= GOAL_IDLE_SOCKETS and solo_idle["rss_after_mib"] <= GOAL_IDLE_MIB
    write_result(
        "sockets",
        argv,
        {
            "title": title,
            "columns": COLUMNS,
            "rows": rows,
            "goals": [
                goal(
                    f"{GOAL_IDLE_SOCKETS:,} idle sockets in one API process",
                    f"<= {GOAL_IDLE_MIB} MiB",
                    solo_idle["rss_after_mib"],
                    "MiB",
                    idle_ok,
                    target_value=GOAL_IDLE_MIB,
                ),
                goal(
                    f"broadcast to {args.fanout:,} sockets, time to last receipt p99",
                    f"<= {GOAL_BROADCAST_P99_MS} ms",
                    fan["p99"],
                    "ms",
                    fan["p99"] <= GOAL_BROADCAST_P99_MS,
                    target_value=GOAL_BROADCAST_P99_MS,
                ),
            ],
            "notes": [
                "One API process and one worker on two cores, with the client in a third process on the same cores;"
                f" idle sockets are spread over Rooms of {SOCKETS_PER_ROOM}.",
                "Echo: a message to a Room with one socket, back as the Room's broadcast of it: gateway, mailbox,"
                " worker, commit, shipment to Postgres, routing and gateway again.",
            ],
        },
    )
    del soft
    return 0


if __name__ == "__main__":
    sys.exit(main())
