"""Chaos: counters under load while workers are killed and paused and Redis restarts; then a checker.

    .venv/bin/python -m bench.chaos [--seconds 600] [--workers 3] [--objects 50] [--clients 16]
    make chaos                       (10 minutes)
    tests/e2e/test_chaos.py          (CI: about a minute, asserts the verdicts)

The system: an API and `workers` worker processes (default settings, but a
5 s call timeout instead of 30, so that a call lost with Redis is answered
504 soon and sent again) on a Redis server of the
run's own without persistence (bench/private_redis.py: restarting the shared
Redis would disturb everything else using it) and a Postgres database of its
own.

The load: `clients` asyncio clients each repeat: pick one of `objects`
counters, send `Counter.increment` with a fresh Idempotency-Key, and on any
error, timeout (1.5 s, shorter than a failover, so calls stuck on a dead
owner are sent again while their first copy is still queued) or broken
connection send it again with the SAME key until it is answered. Every
operation records when it was first sent, when it was acknowledged and the
value it returned. When the load stops, operations in flight keep retrying
until answered (or `--settle` seconds pass).

The faults, while the load runs:
  - every ~`kill_every` seconds (jittered), SIGKILL of a random worker, and a
    replacement worker started (the count of workers stays the same);
  - every `pause_every` seconds, SIGSTOP of the owner of a random counter for
    2.5 lease TTLs (so another worker takes the object over), then SIGCONT: the
    former owner wakes up mid-batch and must be fenced off;
  - once, at 40 % of the run, SIGKILL of Redis and a restart with nothing in it
    (every mailbox, lease, call record and Dramatiq message is gone).

The checker (bench/chaos_check.py) reads the final counts (`Counter.get`),
re-sends a sample of acknowledged keys, reads the shared database, and says:

  no acknowledged increment lost   Increments return the new count, so with
      exactly-once effects the acknowledged values of one counter are
      distinct and the final count is at least their number. A lost
      commit shows as a repeated value, a value above the final count, or a
      final count below the number acknowledged.
  no increment applied twice   The final count is at most the number of
      increments ever sent; an acknowledged key re-sent afterwards answers
      its recorded value and moves no count.
  linearizable   Each value is the increment's position in the counter's one
      serial order. Real-time order must be respected: an increment
      acknowledged before another was first sent must hold the smaller value.
      Concurrent increments may be acknowledged in either order, so the
      order of acknowledgements alone proves nothing. Together with distinct
      values that match the final count, this is a linearizability check
      of the counter (times come from one clock, in the load process).
  no overlapping committed activations   The activation ledger alone cannot
      show this: a killed owner never records a stop, and a paused one
      records it late, after its successor started, so ledger intervals *do*
      overlap, by design. What must never overlap is the time in which two
      owners commit. Every durable write is a row of `object_log` (or
      `object_snapshots`) written by a statement that moves `objects.head_seq`
      from seq-1 to seq *only if* `objects.epoch` still equals the writer's
      epoch; a takeover increments that epoch. Both lock the same row, so the
      commits of one object form a single chain of sequences, and a write of
      epoch e that reaches the row after the takeover of e+1 matches nothing:
      every accepted write of e committed before that takeover did. Its
      `created_at` is taken by the writer after its own takeover and before
      its write commits; the takeover of e+1 commits before any write of
      e+1 takes its time. So every commit of e carries a time earlier than
      any commit of e+1. The checker verifies exactly that on the stored
      rows, per object: the log is the unbroken chain 1..head; along it
      epochs never decrease and times never go back; snapshots carry the
      epoch of the log record they capture; the intervals [first commit,
      last commit] of distinct epochs are disjoint and ordered like the
      epochs; and each committing epoch has its ledger row, started before
      its first commit. A paused former owner that committed after being
      superseded would show up as an older epoch after a newer one in the
      chain, or as overlapping intervals. (All processes share one machine,
      hence one clock for these timestamps.)

Writes bench/out/chaos.json; exits non-zero if a verdict fails.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis
import sqlalchemy as sa

from bench.chaos_check import (
    Commit,
    LedgerRow,
    Op,
    Verdict,
    check_history,
)
from bench.common import System, parse_config, print_table, verdicts_goal, write_result
from bench.loadgen import Connection
from bench.private_redis import PrivateRedis
from solo.objects.coordination.keys import Keys
from solo.objects.coordination.leases import owner_of
from solo.objects.naming import object_id
from solo.objects.state.schema import activations_table, log_table, make_engine, objects_table, snapshots_table

LEASE_TTL_MS = 2000  # the default; a pause lasts 2.5 of these
CALL_TIMEOUT_S = 5
# Shorter than a failover (about 2 s): a call stuck on a killed or paused owner is given up and sent
# again under its key while the first copy is still queued, so exactly-once has something to absorb.
CLIENT_TIMEOUT_S = 1.5
RETRY_PAUSE_S = 0.1


@dataclass
class ChaosConfig:
    seconds: float = 600
    workers: int = 3
    objects: int = 50
    clients: int = 16
    kill_every_s: float = 5
    pause_every_s: float = 20
    settle_s: float = 60
    replays: int = 300


@dataclass
class ChaosResult:
    config: ChaosConfig
    ops: list[Op]
    finals: dict[str, int]
    verdicts: list[Verdict]
    faults: collections.Counter
    fault_log: list[str]
    errors: collections.Counter
    commit_counts: dict[str, int]
    refused_shipments: int
    elapsed_s: float
    ledger: list[LedgerRow] = field(default_factory=list)
    fault_times: dict[str, list[float]] = field(default_factory=dict)  # time.monotonic() of each, by kind

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)

    @property
    def acknowledged(self) -> int:
        return sum(op.value is not None for op in self.ops)


# -- load -------------------------------------------------------------------


class Client:
    """One client: increments with idempotency keys, retried with the same key until answered."""

    def __init__(
        self,
        index: int,
        url: str,
        names: list[str],
        ops: list[Op],
        errors: collections.Counter,
        timeout_s: float = CLIENT_TIMEOUT_S,
        class_name: str = "Counter",
    ) -> None:
        """`class_name`: a class with Counter's `increment` and `get` (bench/partition.py: SlowCounter)."""
        self.index, self.url, self.names, self.ops, self.errors = index, url, names, ops, errors
        self.timeout_s = timeout_s
        self.class_name = class_name
        self.conn: Connection | None = None

    async def run(self, stop_at: float, give_up_at: float) -> None:
        await self.run_while(lambda: time.monotonic() < stop_at, lambda op: give_up_at)

    async def run_while(self, running: Callable[[], bool], give_up_at: Callable[[Op], float]) -> None:
        """Send operations one after another while `running()`; each is retried until `give_up_at(op)`."""
        n = 0
        while running():
            op = Op(random.choice(self.names), f"c{self.index}-{n}", sent=time.monotonic())
            n += 1
            self.ops.append(op)
            await self.until_answered(op, give_up_at(op))
        if self.conn is not None:
            self.conn.close()

    async def until_answered(self, op: Op, give_up_at: float) -> None:
        path = f"/v1/objects/{self.class_name}/{op.object_name}/increment"
        headers = {"Idempotency-Key": op.key}
        while time.monotonic() < give_up_at:
            op.attempts += 1
            try:
                if self.conn is None:
                    self.conn = await asyncio.wait_for(Connection.open(self.url), self.timeout_s)
                status, body = await asyncio.wait_for(self.conn.post_for_body(path, b"{}", headers), self.timeout_s)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, IndexError, ValueError) as exc:
                self.errors[type(exc).__name__] += 1
                self._drop_connection()  # a late reply must never be read as the next call's
                await asyncio.sleep(RETRY_PAUSE_S)
                continue
            if status == 200:
                op.value = json.loads(body)["result"]
                op.acked = time.monotonic()
                return
            if status == 422 and _code(body) == "poisoned":
                # Its recorded outcome: not run, and every copy sent again gets the same answer.
                self.errors["poisoned"] += 1
                return
            self.errors[f"HTTP {status}"] += 1
            await asyncio.sleep(RETRY_PAUSE_S)

    def _drop_connection(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _code(body: bytes) -> str | None:
    try:
        return json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


async def run_load(url: str, names: list[str], config: ChaosConfig, errors: collections.Counter) -> list[Op]:
    ops: list[Op] = []
    stop_at = time.monotonic() + config.seconds
    give_up_at = stop_at + config.settle_s
    clients = [Client(i, url, names, ops, errors) for i in range(config.clients)]
    await asyncio.gather(*(c.run(stop_at, give_up_at) for c in clients))
    return ops


# -- faults -----------------------------------------------------------------


class Faults(threading.Thread):
    """Kills and pauses workers and restarts Redis on a schedule, until stopped."""

    def __init__(self, system: System, server: PrivateRedis, names: list[str], config: ChaosConfig) -> None:
        super().__init__(name="chaos-faults", daemon=True)
        self.system, self.server, self.names, self.config = system, server, names, config
        self.counts: collections.Counter = collections.Counter()
        self.times: dict[str, list[float]] = collections.defaultdict(list)  # on the clock of the ops' times
        self.log: list[str] = []
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self._began = time.monotonic()

    def note(self, kind: str, what: str) -> None:
        self.counts[kind] += 1
        self.times[kind].append(time.monotonic())
        self.log.append(f"{time.monotonic() - self._began:6.1f}s {kind}: {what}")

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the harness, never lost
            self.error = exc

    def _run(self) -> None:
        config = self.config
        pause_s = 2.5 * LEASE_TTL_MS / 1000
        start = time.monotonic()
        end = start + config.seconds
        next_kill = start + config.kill_every_s
        next_pause = start + min(8.0, config.pause_every_s)
        restart_at = start + 0.4 * config.seconds
        paused: subprocess.Popen | None = None
        resume_at = 0.0
        try:
            while not self.stopping.wait(0.05):
                if paused is not None and time.monotonic() >= resume_at:
                    paused.send_signal(signal.SIGCONT)
                    self.note("resume", f"pid {paused.pid}")
                    paused = None
                if time.monotonic() >= next_kill:
                    self.kill_one(spare=paused)
                    next_kill = time.monotonic() + random.uniform(0.5, 1.5) * config.kill_every_s
                # A pause must end while the load still runs, or nothing is left for the former owner to try.
                if paused is None and next_pause <= time.monotonic() < end - pause_s - 2:
                    paused = self.pause_an_owner()
                    resume_at = time.monotonic() + pause_s
                    next_pause = time.monotonic() + config.pause_every_s
                if restart_at and time.monotonic() >= restart_at:
                    self.server.kill()
                    self.note("redis restart", "SIGKILL, empty restart")
                    time.sleep(0.5)
                    self.server.start()
                    restart_at = 0.0
        finally:
            if paused is not None:
                paused.send_signal(signal.SIGCONT)
                self.note("resume", f"pid {paused.pid}")

    def kill_one(self, spare: subprocess.Popen | None) -> None:
        cluster = self.system.cluster
        candidates = [w for w in cluster.live_workers() if w is not spare]
        if not candidates:
            return
        victim = random.choice(candidates)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.note("kill -9", cluster.worker_ids[cluster.workers.index(victim)])
        self.system.start_ready_worker()

    def pause_an_owner(self) -> subprocess.Popen | None:
        client = redis.Redis.from_url(self.server.url, socket_timeout=2)
        try:
            keys = Keys(self.system.prefix)
            for name in random.sample(self.names, len(self.names)):
                owner = owner_of(client.get(keys.lease(object_id("default", "Counter", name))))
                process = self.system.cluster.worker_by_id(owner) if owner else None
                if process is not None and process.poll() is None:
                    process.send_signal(signal.SIGSTOP)
                    self.note("SIGSTOP", f"{owner}, owner of {name}")
                    return process
        except redis.RedisError:
            pass  # Redis is restarting: pause someone next time
        finally:
            client.close()
        return None


# -- after the run ------------------------------------------------------------


def read_counts(url: str, names: list[str], deadline_s: float = 120, class_name: str = "Counter") -> dict[str, int]:
    counts = {}
    deadline = time.monotonic() + deadline_s
    with httpx.Client(base_url=url, timeout=30) as http:
        for name in names:
            while True:
                try:
                    reply = http.post(f"/v1/objects/{class_name}/{name}/get")
                    if reply.status_code == 200:
                        counts[name] = reply.json()["result"]
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"could not read the count of {name}")
                time.sleep(0.2)
    return counts


async def replay(url: str, ops: list[Op], class_name: str = "Counter") -> list[tuple[Op, int]]:
    """Send acknowledged keys again; each must answer its recorded value."""
    conn = await Connection.open(url)
    answers = []
    try:
        for op in ops:
            status, body = await conn.post_for_body(
                f"/v1/objects/{class_name}/{op.object_name}/increment", b"{}", {"Idempotency-Key": op.key}
            )
            answers.append((op, json.loads(body)["result"] if status == 200 else -status))
    finally:
        conn.close()
    return answers


def read_commits(database_url: str, ids: list[str]) -> tuple[list[Commit], list[LedgerRow], dict[str, int]]:
    engine = make_engine(database_url)
    lg, sn, a, o = log_table, snapshots_table, activations_table, objects_table
    try:
        with engine.connect() as conn:
            commits = [
                Commit(r[0], r[1], r[2], r[3], "log")
                for r in conn.execute(
                    sa.select(lg.c.object_id, lg.c.seq, lg.c.epoch, lg.c.created_at).where(lg.c.object_id.in_(ids))
                )
            ]
            commits += [
                Commit(r[0], r[1], r[2], r[3], "snapshot")
                for r in conn.execute(
                    sa.select(sn.c.object_id, sn.c.seq, sn.c.epoch, sn.c.created_at).where(sn.c.object_id.in_(ids))
                )
            ]
            ledger = [
                LedgerRow(*r)
                for r in conn.execute(
                    sa.select(a.c.object_id, a.c.epoch, a.c.worker_id, a.c.started_at, a.c.stopped_at).where(
                        a.c.object_id.in_(ids)
                    )
                )
            ]
            heads = dict(conn.execute(sa.select(o.c.id, o.c.head_seq).where(o.c.id.in_(ids))).all())
    finally:
        engine.dispose()
    return commits, ledger, {i: int(heads.get(i, 0)) for i in ids}


def refused_shipments(workdir: Path) -> int:
    """Former owners' shipments refused by the epoch fence, as their logs tell."""
    return sum(log.read_text(errors="replace").count("refused") for log in workdir.glob("worker*.log"))


# -- the run ------------------------------------------------------------------


def run(config: ChaosConfig, *, database_url: str | None = None) -> ChaosResult:
    """Run the load and the faults, then check. `database_url`: a migrated database to use instead of a fresh one."""
    began = time.monotonic()
    run_tag = uuid.uuid4().hex[:6]
    names = [f"chaos-{run_tag}-{i}" for i in range(config.objects)]
    errors: collections.Counter = collections.Counter()
    with tempfile.TemporaryDirectory(prefix="solo-chaos-redis-") as redis_dir, PrivateRedis(Path(redis_dir)) as server:
        system = System(
            "chaos",
            redis=server.url,
            database_url=database_url,
            objects="solo.examples",
            SOLO_CALL_TIMEOUT_S=str(CALL_TIMEOUT_S),
        )
        with system:
            for _ in range(config.workers):
                system.start_ready_worker()
            system.cluster.start_api()
            read_counts(system.url, names)  # activates every counter without changing it
            faults = Faults(system, server, names, config)
            faults.start()
            try:
                ops = asyncio.run(run_load(system.url, names, config, errors))
            finally:
                faults.stopping.set()
                faults.join()
            if faults.error is not None:
                raise RuntimeError("fault injection failed") from faults.error
            finals = read_counts(system.url, names)
            acked = [op for op in ops if op.value is not None]
            replays = asyncio.run(replay(system.url, random.sample(acked, min(config.replays, len(acked)))))
            finals_after = read_counts(system.url, names)
            ids = [object_id("default", "Counter", n) for n in names]
            commits, ledger, heads = read_commits(system.database_url, ids)
            refused = refused_shipments(system.workdir)
    verdicts, commit_counts = check_history(ops, finals, replays, finals_after, commits, ledger, heads)
    return ChaosResult(
        config=config,
        ops=ops,
        finals=finals,
        verdicts=verdicts,
        faults=faults.counts,
        fault_log=faults.log,
        errors=errors,
        commit_counts=commit_counts,
        refused_shipments=refused,
        elapsed_s=time.monotonic() - began,
        ledger=ledger,
        fault_times=dict(faults.times),
    )


def summary_rows(result: ChaosResult) -> list[dict]:
    return [{"check": v.name, "verdict": "PASS" if v.ok else "FAIL", "detail": v.detail} for v in result.verdicts]


COLUMNS = [("check", "check", ""), ("verdict", "verdict", ""), ("detail", "detail", "")]


def describe(result: ChaosResult) -> list[str]:
    ops = result.ops
    unanswered = len(ops) - result.acknowledged
    retried = sum(op.attempts > 1 for op in ops)
    faults = result.faults
    return [
        f"{len(ops):,} increments sent by {result.config.clients} clients to {result.config.objects} counters "
        f"over {result.config.seconds:g} s: {result.acknowledged:,} acknowledged, {unanswered} never answered, "
        f"{retried:,} needed more than one attempt.",
        "Client-side errors before an answer (each retried with the same key): "
        + (", ".join(f"{k} x{v}" for k, v in sorted(result.errors.items())) or "none")
        + ".",
        f"Faults: {faults['kill -9']} workers killed with SIGKILL, {faults['SIGSTOP']} owners paused past their "
        f"lease and resumed, {faults['redis restart']} Redis restart(s) without persistence; "
        f"{result.refused_shipments} shipments of resumed former owners refused by the epoch fence.",
        f"Activation ledger: {result.commit_counts['activations']:,} activations, "
        f"{result.commit_counts['epochs_that_committed']:,} of them committed; "
        f"{result.commit_counts['ledger_overlaps']:,} consecutive pairs overlap in the ledger (stop recorded late "
        f"or never: {result.commit_counts['activations_never_stopped']:,} activations never stopped), none "
        "overlap in committed time.",
        f"Wall time {result.elapsed_s:.0f} s.",
    ]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_config(ChaosConfig, "solo bench chaos", __doc__, argv)
    result = run(args)

    title = f"Chaos: {args.seconds:g} s of load with kill -9, SIGSTOP and a Redis restart"
    rows = summary_rows(result)
    print_table(title, COLUMNS, rows)
    notes = describe(result)
    for line in notes:
        print(line)
    for verdict in result.verdicts:
        for problem in verdict.problems[:20]:
            print(f"  {verdict.name}: {problem}")
    print("faults:\n  " + "\n  ".join(result.fault_log))
    write_result(
        "chaos",
        argv,
        {
            "title": title,
            "columns": COLUMNS,
            "rows": rows,
            "ok": result.ok,
            "sent": len(result.ops),
            "acknowledged": result.acknowledged,
            "faults": dict(result.faults),
            "fault_log": result.fault_log,
            "errors": dict(result.errors),
            "commit_counts": result.commit_counts,
            "refused_shipments": result.refused_shipments,
            "problems": {v.name: v.problems[:100] for v in result.verdicts if v.problems},
            "goals": [verdicts_goal(f"chaos ({args.seconds:g} s)", result.verdicts, result.ok)],
            "notes": notes,
        },
    )
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
