"""A small, fast HTTP/1.1 load generator on asyncio streams (keep-alive, POST only).

httpx tops out near 250 requests/s here at 64 connections, far below what
the server does, so the benchmarks use this instead. Closed loop measures
throughput; open loop sends at a fixed rate so that queueing shows up as
latency instead of being hidden by back-pressure.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Sample:
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed_s: float = 0.0
    # Open loop only: from the moment the request was written, and how late it was written.
    from_send_s: list[float] = field(default_factory=list)
    send_lag_s: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.latencies_s) / self.elapsed_s if self.elapsed_s else 0.0

    def percentile_ms(self, q: float, values: list[float] | None = None) -> float:
        ordered = sorted(self.latencies_s if values is None else values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")

    def summary(self) -> dict:
        figures = {
            "calls": len(self.latencies_s),
            "errors": self.errors,
            "seconds": round(self.elapsed_s, 3),
            "calls_per_s": round(self.rate, 1),
            "p50_ms": round(self.percentile_ms(0.50), 3),
            "p99_ms": round(self.percentile_ms(0.99), 3),
            "max_ms": round(self.percentile_ms(1.0), 3),
        }
        if self.from_send_s:
            for name, q in (("p50", 0.5), ("p99", 0.99), ("max", 1.0)):
                figures[f"sent_{name}_ms"] = round(self.percentile_ms(q, self.from_send_s), 3)
            figures["send_lag_p50_ms"] = round(self.percentile_ms(0.5, self.send_lag_s), 3)
            figures["send_lag_p99_ms"] = round(self.percentile_ms(0.99, self.send_lag_s), 3)
        return figures


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, url: str) -> Connection:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer, parts.netloc)

    async def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> int:
        return (await self.post_for_body(path, body, headers))[0]

    async def post_for_body(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        content = await self.reader.readexactly(length)
        return int(status_line.split()[1]), content

    def close(self) -> None:
        self.writer.close()


async def closed_loop(
    url: str, paths: list[str], connections: int, seconds: float, headers: dict[str, str] | None = None
) -> Sample:
    """`connections` clients, each sending its next call as soon as the last one returns (with `headers`)."""
    sample = Sample()
    conns = [await Connection.open(url) for _ in range(connections)]
    stop_at = time.perf_counter() + seconds

    async def client(conn: Connection) -> None:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            status = await conn.post(random.choice(paths), b"{}", headers)
            if status == 200:
                sample.latencies_s.append(time.perf_counter() - started)
            else:
                sample.errors += 1

    began = time.perf_counter()
    await asyncio.gather(*(client(c) for c in conns))
    sample.elapsed_s = time.perf_counter() - began
    for c in conns:
        c.close()
    return sample


async def open_loop(url: str, paths: list[str], rate: float, seconds: float, connections: int = 256) -> Sample:
    """Start one call every 1/rate seconds on an idle connection, whatever the replies do."""
    sample = Sample()
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await Connection.open(url))

    async def one(scheduled: float) -> None:
        conn = await idle.get()
        sent = time.perf_counter()
        status = await conn.post(random.choice(paths), b"{}")
        if status == 200:
            done = time.perf_counter()
            sample.latencies_s.append(done - scheduled)  # includes waiting for a connection
            sample.from_send_s.append(done - sent)
            sample.send_lag_s.append(sent - scheduled)  # the generator's own lateness (timers, a busy loop)
        else:
            sample.errors += 1
        idle.put_nowait(conn)

    tasks = []
    began = time.perf_counter()
    for i in range(int(rate * seconds)):
        scheduled = began + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    sample.elapsed_s = time.perf_counter() - began
    while not idle.empty():
        idle.get_nowait().close()
    return sample


async def post_each(url: str, requests: list[tuple[str, bytes]], connections: int) -> list[tuple[int, bytes]]:
    """POST every (path, body) once over `connections` keep-alive connections; replies in input order."""
    replies: list[tuple[int, bytes]] = [(0, b"")] * len(requests)
    pending = iter(enumerate(requests))
    conns = [await Connection.open(url) for _ in range(connections)]

    async def client(conn: Connection) -> None:
        for index, (path, body) in pending:
            replies[index] = await conn.post_for_body(path, body)

    await asyncio.gather(*(client(c) for c in conns))
    for c in conns:
        c.close()
    return replies
