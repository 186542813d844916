"""Where the CPU goes during a measurement, read from /proc: per role, and the machine's total.

On two cores every process of the stack (API, workers, Redis, Postgres and
the load generator itself) competes for the same CPU, so CPU milliseconds per
call by role say more about a throughput ceiling than any single timer:
calls/s can never exceed (cores * 1000) / (total CPU ms per call).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # after "(comm)", which may contain spaces
    return (int(fields[11]) + int(fields[12])) / TICKS


def context_switches(pid: int) -> int:
    """Times the threads of one process living now gave up the CPU, waiting or preempted (0 if it is
    gone): each a trip through the kernel's scheduler, which on a VM costs tens of microseconds."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            lines = status.read_text().splitlines()
        except OSError:
            continue  # a thread that ended meanwhile
        total += sum(int(line.split()[1]) for line in lines if "ctxt_switches:" in line)
    return total


def process_rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _processes_named(name: str) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == name:
                found.append((int(entry.name), (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()))
        except OSError:
            continue
    return found


def redis_pids() -> list[int]:
    return [pid for pid, _ in _processes_named("redis-server")]


def postgres_pids(database: str) -> list[int]:
    """The server's own processes plus the backends connected to `database` (not other runs' backends)."""
    pids = []
    for pid, title in _processes_named("postgres"):
        client_backend = "(" in title or "[local]" in title
        if database in title or not client_backend:
            pids.append(pid)
    return pids


def machine_cpu_s() -> tuple[float, float, float]:
    """(busy, total, interrupts) CPU seconds of the whole machine since boot.

    Interrupt time (irq + softirq) is mostly the kernel moving loopback TCP
    packets: no process is charged for it.
    """
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # up to steal; guest time is already counted in user
    return (total - idle) / TICKS, total / TICKS, (values[5] + values[6]) / TICKS


class CpuMeter:
    """CPU seconds used by each role between start() and stop().

    `roles` maps a role to a function returning its current process ids, so
    processes started during the window (new Postgres backends) count too.
    """

    def __init__(self, roles: dict[str, Callable[[], list[int]]]) -> None:
        self.roles = roles
        self._before: dict[str, dict[int, float]] = {}
        self._machine_before = (0.0, 0.0, 0.0)

    def _sample(self) -> dict[str, dict[int, float]]:
        return {role: {pid: process_cpu_s(pid) for pid in pids()} for role, pids in self.roles.items()}

    def start(self) -> None:
        self._before = self._sample()
        self._machine_before = machine_cpu_s()

    def stop(self) -> dict[str, float]:
        """CPU seconds per role, plus "kernel" (interrupts), "other" (the rest of the machine) and "idle"."""
        after = self._sample()
        busy, total, interrupts = machine_cpu_s()
        used: dict[str, float] = {}
        for role, pids in after.items():
            before = self._before.get(role, {})
            used[role] = sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in pids.items())
        machine_busy = busy - self._machine_before[0]
        used["kernel"] = interrupts - self._machine_before[2]
        used["other"] = max(0.0, machine_busy - sum(used.values()))
        used["idle"] = max(0.0, (total - self._machine_before[1]) - machine_busy)
        return used


def stack_meter(system, *, include_load: bool = True) -> CpuMeter:
    """A CpuMeter for a bench System: api, workers, redis, postgres, and this process (load)."""
    roles: dict[str, Callable[[], list[int]]] = {
        "api": lambda: system.pids()["api"],
        "workers": lambda: system.pids()["workers"],
        "redis": redis_pids,
        "postgres": lambda: postgres_pids(system.db_name),
    }
    if include_load:
        roles["load"] = lambda: [os.getpid()]
    return CpuMeter(roles)


def per_call_ms(used: dict[str, float], calls: int) -> dict[str, float]:
    """CPU milliseconds per call for each role (idle excluded)."""
    if not calls:
        return {}
    return {role: round(seconds * 1000 / calls, 3) for role, seconds in used.items() if role != "idle"}
