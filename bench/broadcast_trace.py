"""Run a solo command with timestamps along a broadcast's path and the cyclic collector's pauses.

    BROADCAST_TRACE_DIR=/path python -m bench.broadcast_trace python -m solo api

Used by ``bench/sockets.py --trace DIR``; nothing of it runs in solo itself. Each process
writes JSON lines to ``DIR/<command>-<pid>.jsonl``, every time from ``time.monotonic()``
(one clock for all processes of the machine):

- ``gc``: a collection of the cyclic collector: its generation, start and end;
- ``route`` (worker): ``GatewayRouter.route`` began and ended, with the texts it routed;
- ``pop`` (API): the gateway's inbox pop returned, with the texts it got;
- ``delivered`` (API): the gateway's ``_deliver`` of one message returned (its writes done,
  in line or handed to writer tasks), with the text, how many sockets it named and the
  event loop thread's CPU time it took.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import runpy
import sys
import threading
import time
from typing import Any

MAX_TEXT = 40  # texts are the benchmark's short markers; longer ones are cut


class Trace:
    def __init__(self, path: str) -> None:
        self._out = open(path, "a", buffering=1)  # noqa: SIM115 (for the life of the process)
        self._lock = threading.Lock()
        self._gc_started = 0.0

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            self._out.write(line)

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        now = time.monotonic()
        if phase == "start":
            self._gc_started = now
        else:
            self.write(
                {
                    "k": "gc",
                    "gen": info["generation"],
                    "t0": self._gc_started,
                    "t1": now,
                    "collected": info["collected"],
                }
            )


def _texts(messages: Any) -> list[str]:
    out = []
    for m in messages:
        if isinstance(m, (str, bytes)):
            m = json.loads(m)
        d = m.get("d")
        if isinstance(d, str):
            out.append(d[:MAX_TEXT])
    return out


def install(trace: Trace) -> None:
    gc.callbacks.append(trace.on_gc)
    from solo.api import sockets
    from solo.objects.coordination import gateways

    route = gateways.GatewayRouter.route

    @functools.wraps(route)
    def traced_route(self: Any, messages: Any) -> None:
        t0 = time.monotonic()
        route(self, messages)
        trace.write({"k": "route", "t0": t0, "t1": time.monotonic(), "texts": _texts(messages)})

    gateways.GatewayRouter.route = traced_route  # type: ignore[method-assign]

    pop = gateways.AsyncGateway.pop

    @functools.wraps(pop)
    async def traced_pop(self: Any, *args: Any, **kwargs: Any) -> Any:
        messages = await pop(self, *args, **kwargs)
        if messages:
            trace.write({"k": "pop", "t": time.monotonic(), "texts": _texts(messages)})
        return messages

    gateways.AsyncGateway.pop = traced_pop  # type: ignore[method-assign]

    deliver = sockets.SocketGateway._deliver

    @functools.wraps(deliver)
    async def traced_deliver(self: Any, message: dict[str, Any]) -> None:
        t0, cpu0 = time.monotonic(), time.thread_time()
        await deliver(self, message)
        cpu_ms = (time.thread_time() - cpu0) * 1000
        d = message.get("d")
        trace.write(
            {
                "k": "delivered",
                "t0": t0,
                "t1": time.monotonic(),
                "cpu_ms": cpu_ms,
                "text": d[:MAX_TEXT] if isinstance(d, str) else None,
                "sockets": len(message.get("s") or []),
            }
        )

    sockets.SocketGateway._deliver = traced_deliver  # type: ignore[method-assign]


def main() -> None:
    folder = os.environ["BROADCAST_TRACE_DIR"]
    command = sys.argv[1:]
    module = command.index("-m") + 1
    role = command[module + 1] if len(command) > module + 1 else command[module]
    install(Trace(os.path.join(folder, f"{role}-{os.getpid()}.jsonl")))
    sys.argv = [command[module], *command[module + 1 :]]
    runpy.run_module(command[module], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()


def client_gc(folder: str) -> None:
    """The benchmark's own process: its collections go to the same folder."""
    gc.callbacks.append(Trace(os.path.join(folder, f"client-{os.getpid()}.jsonl")).on_gc)


def read(folder: str) -> dict[str, list[dict[str, Any]]]:
    """Records by role (the file name's first part: api, worker, client)."""
    by_role: dict[str, list[dict[str, Any]]] = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".jsonl"):
            with open(os.path.join(folder, name)) as f:
                by_role.setdefault(name.split("-")[0], []).extend(json.loads(line) for line in f if line.strip())
    return by_role


def stages(folder: str, broadcasts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each broadcast's path in ms from the client's call, and the collections that overlapped it, by process."""
    records = read(folder)
    routes = {t: r for r in records.get("worker", []) if r["k"] == "route" for t in r["texts"]}
    pops = {t: r for r in records.get("api", []) if r["k"] == "pop" for t in r["texts"]}
    delivered = {r["text"]: r for r in records.get("api", []) if r["k"] == "delivered"}
    rows = []
    for b in broadcasts:
        t0, text = b["started"], b["text"]

        def ms(t: float | None, t0: float = t0) -> float | None:
            return None if t is None else round((t - t0) * 1000, 1)

        route, pop, done = routes.get(text, {}), pops.get(text, {}), delivered.get(text, {})
        row = {
            "text": text,
            "routed": ms(route.get("t1")),
            "popped": ms(pop.get("t")),
            "written": ms(done.get("t1")),
            "write_cpu_ms": round(done.get("cpu_ms", 0.0), 1),
            "answered": ms(b["answered"]),
            "first": ms(b["first"]),
            "last": ms(b["last"]),
        } | {k: round(v, 1) for k, v in b.items() if k.startswith("cpu_")}
        for role in ("api", "worker", "client"):
            pauses = [
                (r["gen"], (r["t1"] - r["t0"]) * 1000)
                for r in records.get(role, [])
                if r["k"] == "gc" and r["t1"] > t0 and r["t0"] < b["last"]
            ]
            row[f"gc_{role}"] = " ".join(f"g{g}:{d:.0f}" for g, d in pauses if d >= 1.0)
            row[f"gc_{role}_ms"] = round(sum(d for _, d in pauses), 1)
        rows.append(row)
    return rows
