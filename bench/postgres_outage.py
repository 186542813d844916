"""The shared database under load: a restart, then an outage; the chaos checker's verdicts after.

    .venv/bin/python -m bench.postgres_outage [--outage-s 30] [--workers 2] [--objects 12] [--clients 8]
    make chaos                          (a 30 s outage, after the ten minutes of bench/chaos.py)
    tests/e2e/test_postgres_outage.py   (CI: a few seconds of outage, asserts the verdicts)

The system: an API and `workers` worker processes on the machine's Redis and on a
PostgreSQL server of the run's own (bench/private_postgres.py: stopping the machine's
would disturb everything else using it), with a call timeout of CALL_TIMEOUT_S.

The load: bench/chaos.py's clients (increments of `objects` counters under fresh
Idempotency-Keys, each sent again with the same key until answered), but waiting
longer than the call timeout, so that what the API answers is seen.

The faults, while the load runs:
  - restart: a fast shutdown of PostgreSQL (every session ended, open transactions
    rolled back), then at once a start;
  - outage: `restart_gap_s` later, a fast shutdown, `outage_s` with no database, then a start.

What is measured (bench/out/postgres_outage.json; none of it is a verdict):
  - answers during the outage: a call waits for its timeout, then 504 `timeout`
    with its id, and runs once the database is back (a retry under its key answers the
    recorded result); a route that reads the shared database itself (object info) fails
    at once with 503 `unavailable`;
  - workers: process ids before and after (a restarted or crashed worker shows), and the
    CPU time each spent during the outage (/proc/<pid>/stat: a worker that spins on the
    missing database would burn a core);
  - recovery: from the start of PostgreSQL to the first increment acknowledged after it,
    with no operator action;
  - increments in flight when each fault began (sent before, not acknowledged by then),
    and what became of them.

The checker is bench/chaos_check.py's: nothing acknowledged is lost or applied twice,
the counters are linearizable, and no two epochs' commits overlap.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx

from bench.chaos import Client, read_commits, read_counts, replay
from bench.chaos_check import Op, Verdict, check_history
from bench.common import System, parse_config, print_table, write_result
from bench.private_postgres import PrivatePostgres
from solo.objects.naming import object_id
from solo.objects.state.migrate import upgrade

CALL_TIMEOUT_S = 3
# Longer than the call timeout: the API's own answer (504 with the call's id) is what a client sees.
CLIENT_TIMEOUT_S = CALL_TIMEOUT_S + 3
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class OutageConfig:
    outage_s: float = 30
    warm_s: float = 3  # load before the restart
    restart_gap_s: float = 4  # load between the restart and the outage
    after_s: float = 6  # load after the outage
    workers: int = 2
    objects: int = 12
    clients: int = 8
    settle_s: float = 60
    replays: int = 100


@dataclass
class Fault:
    kind: str  # "restart" or "outage"
    stopped: float  # monotonic, on the ops' clock: the fast shutdown done
    returned: float = 0.0  # PostgreSQL accepting again
    in_flight: list[Op] = field(default_factory=list)  # sent before the stop, not acknowledged by then
    cpu_s: dict[int, float] = field(default_factory=dict)  # worker pid -> CPU seconds while it lasted
    probes: list[tuple[str, int, str]] = field(default_factory=list)  # (what, status, error code)


@dataclass
class OutageResult:
    config: OutageConfig
    ops: list[Op]
    faults: list[Fault]
    verdicts: list[Verdict]
    errors: collections.Counter
    pids_before: list[int]
    pids_after: list[int]
    alive_after: bool
    commit_counts: dict[str, int]
    elapsed_s: float

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)

    @property
    def acknowledged(self) -> int:
        return sum(op.value is not None for op in self.ops)

    def recovery_s(self, fault: Fault) -> float | None:
        after = [op.acked for op in self.ops if op.acked is not None and op.acked >= fault.returned]
        return min(after) - fault.returned if after else None

    def fault(self, kind: str) -> Fault:
        return next(f for f in self.faults if f.kind == kind)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (fields 14 and 15 of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Faults(threading.Thread):
    """Restarts the database, then takes it away for `outage_s`, noting what it saw."""

    def __init__(self, system: System, server: PrivatePostgres, names: list[str], config: OutageConfig) -> None:
        super().__init__(name="outage-faults", daemon=True)
        self.system, self.server, self.names, self.config = system, server, names, config
        self.ops: list[Op] = []  # the load's, read to note what is in flight
        self.faults: list[Fault] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the harness, never lost
            self.error = exc
            if not self.server.running:
                self.server.start()

    def _run(self) -> None:
        config = self.config
        time.sleep(config.warm_s)
        restart = self._take_away("restart")
        self.server.start()
        restart.returned = time.monotonic()
        time.sleep(config.restart_gap_s)
        outage = self._take_away("outage")
        pids = [w.pid for w in self.system.cluster.live_workers()]
        cpu_before = {pid: cpu_seconds(pid) for pid in pids}
        ends = time.monotonic() + config.outage_s
        self._probe(outage)
        time.sleep(max(0.0, ends - time.monotonic()))
        outage.cpu_s = {pid: cpu_seconds(pid) - cpu_before[pid] for pid in pids}
        self.server.start()
        outage.returned = time.monotonic()

    def _take_away(self, kind: str) -> Fault:
        self.server.stop()
        fault = Fault(kind, stopped=time.monotonic())
        fault.in_flight = [op for op in list(self.ops) if op.acked is None or op.acked > fault.stopped]
        self.faults.append(fault)
        return fault

    def _probe(self, fault: Fault) -> None:
        """What the API answers while the database is away: object info, and one call of its own."""
        name = random.choice(self.names)
        with httpx.Client(base_url=self.system.url, timeout=CLIENT_TIMEOUT_S + 30) as http:
            info = http.get(f"/v1/objects/Counter/{name}")
            fault.probes.append(("object info", info.status_code, _code(info)))
            ready = http.get("/readyz")
            fault.probes.append(("readyz", ready.status_code, ready.json().get("status", "")))
            call = http.post(f"/v1/objects/Counter/{name}/get")
            fault.probes.append(("call", call.status_code, _code(call)))


def _code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", {}).get("code", ""))
    except ValueError:
        return ""


async def run_load(url: str, names: list[str], config: OutageConfig, ops: list[Op], errors: collections.Counter):
    seconds = config.warm_s + config.restart_gap_s + config.outage_s + config.after_s
    stop_at = time.monotonic() + seconds
    give_up_at = stop_at + config.settle_s
    clients = [Client(i, url, names, ops, errors, timeout_s=CLIENT_TIMEOUT_S) for i in range(config.clients)]
    await asyncio.gather(*(c.run(stop_at, give_up_at) for c in clients))


def run(config: OutageConfig, *, redis: str | None = None) -> OutageResult:
    """Run the load and the faults on a PostgreSQL of the run's own, then check; `redis`: the Redis to use."""
    began = time.monotonic()
    names = [f"pg-{uuid.uuid4().hex[:6]}-{i}" for i in range(config.objects)]
    errors: collections.Counter = collections.Counter()
    with PrivatePostgres() as server:
        upgrade(server.url, ["solo.examples"])
        system = System(
            "postgres-outage",
            redis=redis,
            database_url=server.url,
            objects="solo.examples",
            SOLO_CALL_TIMEOUT_S=str(CALL_TIMEOUT_S),
        )
        with system:
            for _ in range(config.workers):
                system.start_ready_worker()
            system.cluster.start_api()
            read_counts(system.url, names)  # activates every counter without changing it
            pids_before = [w.pid for w in system.cluster.workers]
            faults = Faults(system, server, names, config)
            ops: list[Op] = []
            faults.ops = ops
            faults.start()
            try:
                asyncio.run(run_load(system.url, names, config, ops, errors))
            finally:
                faults.join()
            if faults.error is not None:
                raise RuntimeError("fault injection failed") from faults.error
            finals = read_counts(system.url, names)
            acked = [op for op in ops if op.value is not None]
            replays = asyncio.run(replay(system.url, random.sample(acked, min(config.replays, len(acked)))))
            finals_after = read_counts(system.url, names)
            commits, ledger, heads = read_commits(server.url, [object_id("default", "Counter", n) for n in names])
            pids_after = [w.pid for w in system.cluster.workers]
            alive_after = all(w.poll() is None for w in system.cluster.workers)
    verdicts, commit_counts = check_history(ops, finals, replays, finals_after, commits, ledger, heads)
    return OutageResult(
        config,
        ops,
        faults.faults,
        verdicts,
        errors,
        pids_before,
        pids_after,
        alive_after,
        commit_counts,
        time.monotonic() - began,
    )


def describe(result: OutageResult) -> list[str]:
    lines = [
        f"{len(result.ops):,} increments sent by {result.config.clients} clients to {result.config.objects} counters "
        f"on {result.config.workers} workers: {result.acknowledged:,} acknowledged.",
        "Answers other than 200 before an acknowledgement (each retried with the same key): "
        + (", ".join(f"{k} x{v}" for k, v in sorted(result.errors.items())) or "none")
        + ".",
    ]
    for fault in result.faults:
        done = [op for op in fault.in_flight if op.value is not None]
        recovery = result.recovery_s(fault)
        line = (
            f"{fault.kind}: {len(fault.in_flight)} increments in flight at the stop, {len(done)} of them acknowledged "
            f"in the end; first acknowledgement "
            + (f"{recovery:.2f} s" if recovery is not None else "never")
            + " after PostgreSQL accepted again"
        )
        if fault.kind == "outage":
            cpu = ", ".join(f"{s / result.config.outage_s:.1%}" for s in fault.cpu_s.values())
            probes = ", ".join(f"{what} {status} {code}".rstrip() for what, status, code in fault.probes)
            line += f"; {result.config.outage_s:g} s without it: workers' CPU {cpu} of a core; answers: {probes}"
        lines.append(line + ".")
    lines.append(
        f"Worker processes: {result.pids_before} before, {result.pids_after} after, "
        + ("all alive" if result.alive_after else "NOT all alive")
        + f". Wall time {result.elapsed_s:.0f} s."
    )
    return lines


COLUMNS = [("check", "check", ""), ("verdict", "verdict", ""), ("detail", "detail", "")]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_config(OutageConfig, "solo bench postgres_outage", __doc__, argv)
    result = run(args)

    title = f"PostgreSQL restarted, then away for {args.outage_s:g} s, under load"
    rows = [{"check": v.name, "verdict": "PASS" if v.ok else "FAIL", "detail": v.detail} for v in result.verdicts]
    print_table(title, COLUMNS, rows)
    notes = describe(result)
    for line in notes:
        print(line)
    for verdict in result.verdicts:
        for problem in verdict.problems[:20]:
            print(f"  {verdict.name}: {problem}")
    recovery = {f.kind: result.recovery_s(f) for f in result.faults}
    write_result(
        "postgres_outage",
        argv,
        {
            "title": title,
            "columns": COLUMNS,
            "rows": rows,
            "ok": result.ok,
            "sent": len(result.ops),
            "acknowledged": result.acknowledged,
            "errors": dict(result.errors),
            "recovery_s": recovery,
            "outage_cpu_s": {str(k): v for k, v in result.fault("outage").cpu_s.items()},
            "probes": result.fault("outage").probes,
            "problems": {v.name: v.problems[:100] for v in result.verdicts if v.problems},
            "goals": [
                {
                    "goal": "serving again after PostgreSQL returns, with no operator action",
                    "target": 5,
                    "measured": round(recovery["outage"], 2) if recovery["outage"] is not None else None,
                    "unit": "s to the first acknowledgement",
                    "met": recovery["outage"] is not None and recovery["outage"] <= 5,
                }
            ],
            "notes": notes,
        },
    )
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
