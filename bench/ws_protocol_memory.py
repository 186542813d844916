"""Memory per idle WebSocket of a server protocol alone: uvicorn's websockets-sansio, or solo's.

    .venv/bin/python -m bench.ws_protocol_memory [--sockets 2000] [--protocol uvicorn|solo] [--trace]

uvicorn serves the bare echo endpoint (bench/bare_ws_app.py) in this process, with solo's
settings (no compression); a child process opens the sockets and holds them idle. Prints the
resident memory after minus before, per socket; with --trace, what tracemalloc finds per
socket, by line (tracing itself inflates the resident figure). No Redis, worker or database:
this isolates the server's share (docs/adr/0007-lean-websocket-server.md).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import socket
import subprocess
import sys
import tracemalloc
from pathlib import Path

import uvicorn

from bench.bare_ws_app import app
from solo.api.ws_protocol import LeanWebSocketProtocol

PROTOCOLS: dict[str, object] = {"uvicorn": "websockets-sansio", "solo": LeanWebSocketProtocol}

CLIENT = r"""
import asyncio, sys, websockets
async def main(port, n):
    gate = asyncio.Semaphore(64)
    async def one():
        async with gate:
            return await websockets.connect(
                f"ws://127.0.0.1:{port}/v1/objects/Room/x/ws?user=u", open_timeout=120, ping_interval=None
            )
    sockets = await asyncio.gather(*(one() for _ in range(n)))
    await sockets[0].send("hi")
    await sockets[0].recv()
    print("open", flush=True)
    sys.stdin.readline()
asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def measure(count: int, protocol: object, trace: bool) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(app, ws=protocol, log_level="warning", access_log=False, ws_per_message_deflate=False)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        await asyncio.sleep(0.05)
    gc.collect()
    if trace:
        tracemalloc.start(1)
    before, first = rss_bytes(), tracemalloc.take_snapshot() if trace else None
    client = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, str(port), str(count), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert client.stdout is not None and client.stdin is not None
    await client.stdout.readline()
    await asyncio.sleep(1)  # let the server settle (the last handshakes' garbage collected)
    gc.collect()
    after = rss_bytes()
    per_socket_kib = (after - before) / count / 1024
    print(
        f"{count} idle sockets: RSS {before / 2**20:.1f} -> {after / 2**20:.1f} MiB, {per_socket_kib:.2f} KiB a socket"
    )
    if first is not None:
        stats = tracemalloc.take_snapshot().compare_to(first, "lineno")
        print(f"traced: {sum(s.size_diff for s in stats) / count / 1024:.2f} KiB per socket; the largest:")
        for stat in stats[:20]:
            frame = stat.traceback[0]
            print(f"{stat.size_diff / count:8.0f} B  {frame.filename.split('site-packages/')[-1]}:{frame.lineno}")
    client.stdin.write(b"\n")
    await client.stdin.drain()
    await client.wait()
    server.should_exit = True
    await serving


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.ws_protocol_memory", description=__doc__)
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="solo")
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args(argv)
    asyncio.run(measure(args.sockets, PROTOCOLS[args.protocol], args.trace))
    return 0


if __name__ == "__main__":
    sys.exit(main())
