"""Partitions: workers on three "hosts" (network namespaces), one cut off from Redis, Postgres or both.

    .venv/bin/python -m bench.partition [--rounds 1] [--hold-s 8] [--objects 24] [--clients 8]
    make chaos                        (runs it after bench.chaos, with --rounds 3)
    tests/e2e/test_partition.py       (CI: one round, asserts the verdicts)

The machine (bench/netns.py): three network namespaces, each a host running one
real `solo worker` process (`ip netns exec`), joined by veth pairs to a bridge
in the root namespace, the hub, where a Redis server and a PostgreSQL server of
the run's own listen (bench/private_redis.py, bench/private_postgres.py; the
machine's shared servers are not touched). The API process runs on the hub.

The load: bench/chaos.py's clients (increments under Idempotency-Keys, retried
with the same key until answered) on `objects` SlowCounters (tests/objects.py:
Counter's increment, but one may be asked to sleep first).

The faults, one after another, each on the host that owns the most objects
then: its link to Redis's port cut, then (once healed) another host's link to
PostgreSQL's, then a third host's link to both. A cut drops packets both ways
inside the host's namespace (nftables), so its connections hang as on a real
partition. Half a second before each cut, a slow increment starts on two of the
host's objects, so that a call is running on the host when it is cut off. Cut off
from Redis, the host still reaches Postgres: its slow call lasts until 1.5 s
before the heal, after another host has taken the object over (about a lease
TTL), so its shipment meets the epoch fence. Otherwise it lasts `slow_ms`: the
host cannot ship, and a longer call would only delay its failure. The cut lasts
`hold_s`, and on until every object in flight at the cut has been taken over
(at most `max_hold_s`), then is healed; after the last one, the run calls fresh
objects until each cut host has taken one and served it.

The checks: bench/chaos_check.py's verdicts on the whole history (nothing
acknowledged lost or applied twice, linearizable, no two epochs of an object
committing in overlapping times), and per cut:
  in flight        calls to the host's objects were sent before the cut and
                   not yet answered at it;
  taken over       every object in flight at the cut was taken over by another
                   host before the heal (a newer epoch in the activation ledger);
  fenced           the cut host committed nothing for those objects after the
                   takeover; how many of its batches the epoch fence refused
                   (its solo_fenced_batches_total metric);
  rejoined         after the heal, the host took an object and served it.
Takeover time (cut to the newer epoch's ledger start, per object in flight) and
rejoin time (heal to the first object the host took and committed with) are
measured, not asserted; the lease TTL is the default 2 s. A host cut off from
Postgres alone still renews its leases: its objects move only once a shipment
fails (TCP_USER_TIMEOUT and keepalives, objects/state/schema.py), after which it
takes no new object for a lease TTL (workers/host.py).

Writes bench/out/partition.json; exits non-zero if a verdict fails.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from bench.chaos import Client, read_commits, read_counts, replay
from bench.chaos_check import (
    Op,
    Verdict,
    check_history,
)
from bench.common import OUT_DIR, System, parse_config, print_table, verdicts_goal, write_result
from bench.netns import Network, unsupported
from bench.private_postgres import PrivatePostgres
from bench.private_redis import PrivateRedis
from solo.objects.coordination.keys import Keys
from solo.objects.coordination.leases import owner_of
from solo.objects.naming import object_id
from solo.objects.state.migrate import upgrade
from solo.objects.state.schema import activations_table, log_table, make_engine

CLASS = "SlowCounter"
HOSTS = 3
LEASE_TTL_S = 2.0  # the default SOLO_LEASE_TTL_MS
CALL_TIMEOUT_S = 5
METRICS_PORT = 9464  # each host has its own port space
KINDS = ("redis", "postgres", "both")


@dataclass
class PartitionConfig:
    rounds: int = 1  # each round cuts Redis, then Postgres, then both
    hold_s: float = 8.0  # how long a cut lasts at least
    max_hold_s: float = 60.0  # ... and at most, waiting for the objects in flight to be taken over
    objects: int = 24
    clients: int = 8
    slow_ms: int = 1000  # the calls running at a cut from Postgres (see above)
    gap_s: float = 1.5  # load without faults before and between the cuts
    settle_s: float = 60
    replays: int = 50


@dataclass
class Cut:
    kind: str
    host: int
    worker_id: str
    at: float  # time.monotonic(), the ops' clock
    at_wall: dt.datetime
    owned: list[str]  # names of the objects the host owned at the cut
    slow: list[str]  # objects with a slow increment running at the cut
    slow_s: float  # how long those increments sleep
    fenced_before: float = 0.0
    fenced_after: float = 0.0
    healed: float = 0.0
    healed_wall: dt.datetime | None = None
    rejoin_s: float | None = None  # heal to the first object the host took and committed with again
    in_flight: list[str] = field(default_factory=list)  # owned objects with a call sent and not answered at the cut
    takeover_s: dict[str, float] = field(default_factory=dict)  # in flight -> cut to a newer epoch elsewhere
    late_commits: list[str] = field(default_factory=list)  # commits by the host after its object's takeover

    def not_taken_over(self) -> list[str]:
        """Objects in flight at the cut that no other host took over before the heal."""
        hold_s = (self.healed_wall - self.at_wall).total_seconds() if self.healed_wall else 0.0
        return sorted(n for n in self.in_flight if self.takeover_s.get(n, hold_s) >= hold_s)


@dataclass
class PartitionResult:
    config: PartitionConfig
    ops: list[Op]
    cuts: list[Cut]
    verdicts: list[Verdict]
    commit_counts: dict[str, int]
    errors: collections.Counter
    elapsed_s: float
    leftovers: list[str]

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)

    @property
    def acknowledged(self) -> int:
        return sum(op.value is not None for op in self.ops)


def fenced(host_address: str) -> float:
    """The host's solo_fenced_batches_total, all classes (its metrics port is not cut)."""
    text = httpx.get(f"http://{host_address}:{METRICS_PORT}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "solo_fenced_batches"
        for sample in family.samples
        if sample.name.endswith("_total")
    )


class Faults(threading.Thread):
    """Cuts a host off, one kind after another, with slow calls in flight; heals; waits for it to serve."""

    def __init__(
        self,
        system: System,
        net: Network,
        ports: dict[str, tuple[int, ...]],
        names: list[str],
        ops: list[Op],
        config: PartitionConfig,
    ) -> None:
        super().__init__(name="partition-faults", daemon=True)
        self.system, self.net, self.ports, self.names, self.ops, self.config = system, net, ports, names, ops, config
        self.redis = redis.Redis.from_url(system.redis_url, socket_timeout=5)
        self.keys = Keys(system.prefix)
        self.cuts: list[Cut] = []
        self.fresh: list[str] = []  # objects made to see a healed host serve
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            time.sleep(self.config.gap_s)
            for _ in range(self.config.rounds):
                for kind in KINDS:
                    self.cut_once(kind)
                    time.sleep(self.config.gap_s)
            self.await_rejoin()
        except BaseException as exc:  # reported by the harness, never lost
            self.error = exc
        finally:
            for host in list(self.net.cuts):
                self.net.heal(host)
            self.redis.close()

    def owners(self) -> dict[str, list[str]]:
        """Worker id -> names of the objects it holds the lease of."""
        found: dict[str, list[str]] = collections.defaultdict(list)
        for name in self.names:
            owner = owner_of(self.redis.get(self.keys.lease(object_id("default", CLASS, name))))
            if owner:
                found[owner].append(name)
        return found

    def cut_once(self, kind: str) -> None:
        ids = self.system.cluster.worker_ids
        owners = self.owners()
        previous = self.cuts[-1].host if self.cuts else None
        host = max((h for h in range(HOSTS) if h != previous), key=lambda h: len(owners.get(ids[h], [])))
        owned = owners.get(ids[host], [])
        slow_s = self.config.hold_s - 1.0 if kind == "redis" else self.config.slow_ms / 1000
        slow = owned[:2]
        for name in slow:
            self.start_slow(name, slow_s)
        time.sleep(0.5)  # the slow calls are running on the host
        before = fenced(self.net.address(host))
        self.net.cut(host, self.ports[kind])
        cut = Cut(kind, host, ids[host], time.monotonic(), dt.datetime.now(dt.UTC), owned, slow, slow_s, before)
        self.cuts.append(cut)
        self.hold(cut)
        self.net.heal(host)
        cut.healed, cut.healed_wall = time.monotonic(), dt.datetime.now(dt.UTC)
        cut.fenced_after = fenced(self.net.address(host))

    def hold(self, cut: Cut) -> None:
        """Keep the cut for `hold_s`, and longer until each object in flight at it has a newer epoch on
        another host (at most `max_hold_s`: past that, the verdict says which were not taken over)."""
        time.sleep(self.config.hold_s)
        waiting = {object_id("default", CLASS, n) for n in in_flight(self.ops, set(cut.owned), cut.at)}
        give_up = cut.at + self.config.max_hold_s
        a = activations_table
        engine = make_engine(self.system.database_url)
        try:
            while waiting and time.monotonic() < give_up:
                elsewhere = sa.select(a.c.object_id).where(
                    a.c.object_id.in_(waiting), a.c.worker_id != cut.worker_id, a.c.started_at >= cut.at_wall
                )
                with engine.connect() as conn:
                    waiting -= set(conn.execute(elsewhere).scalars())
                time.sleep(0.2)
        finally:
            engine.dispose()

    def start_slow(self, name: str, seconds: float) -> None:
        op = Op(name, f"slow-{uuid.uuid4().hex[:8]}", sent=time.monotonic())
        self.ops.append(op)
        arguments = {"sleep_ms": int(seconds * 1000)}
        threading.Thread(target=self.until_answered, args=(op, arguments), daemon=True).start()

    def until_answered(self, op: Op, arguments: dict, deadline_s: float = 120) -> None:
        give_up = time.monotonic() + deadline_s
        with httpx.Client(base_url=self.system.url, timeout=CALL_TIMEOUT_S + 5) as http:
            while time.monotonic() < give_up:
                op.attempts += 1
                try:
                    reply = http.post(
                        f"/v1/objects/{CLASS}/{op.object_name}/increment",
                        json=arguments,
                        headers={"Idempotency-Key": op.key},
                    )
                except httpx.HTTPError:
                    time.sleep(0.1)
                    continue
                if reply.status_code == 200:
                    op.value, op.acked = reply.json()["result"], time.monotonic()
                    return
                if reply.status_code == 422 and reply.json()["error"]["code"] == "poisoned":
                    return  # its recorded outcome: not run (bench/chaos.py's clients stop there too)
                time.sleep(0.1)

    def await_rejoin(self, deadline_s: float = 90, batch: int = 6) -> None:
        """Until each cut host has served a call since its last heal: call fresh objects, `batch` at a time
        (each activation goes to whichever worker takes it first), and read the activation ledger."""
        last_heal = {cut.worker_id: cut.healed_wall for cut in self.cuts}
        engine = make_engine(self.system.database_url)
        give_up = time.monotonic() + deadline_s
        try:
            while time.monotonic() < give_up:
                if not [w for w, healed in last_heal.items() if first_served(engine, w, healed) is None]:
                    return
                ops = []
                for _ in range(batch):
                    name = f"{self.names[0].rsplit('-', 1)[0]}-fresh{len(self.fresh)}"
                    self.fresh.append(name)
                    ops.append(Op(name, f"fresh-{uuid.uuid4().hex[:8]}", sent=time.monotonic()))
                self.ops.extend(ops)
                threads = [threading.Thread(target=self.until_answered, args=(op, {})) for op in ops]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
        finally:
            engine.dispose()


def first_served(engine: sa.Engine, worker_id: str, since: dt.datetime) -> dt.datetime | None:
    """When `worker_id` first took an object after `since` and committed with it (a call served), or None."""
    a, lg = activations_table, log_table
    committed = sa.select(lg.c.seq).where(lg.c.object_id == a.c.object_id, lg.c.epoch == a.c.epoch).exists()
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.min(a.c.started_at)).where(a.c.worker_id == worker_id, a.c.started_at > since, committed)
        ).scalar()


def in_flight(ops: list[Op], names: set[str], at: float) -> list[str]:
    """Those of `names` with a call sent before `at` and not answered by then."""
    return sorted({op.object_name for op in ops if op.object_name in names and op.sent < at and not op.acked_by(at)})


def measure(cuts: list[Cut], ops: list[Op], database_url: str) -> None:
    """Fill each cut's objects in flight, their takeover times and the host's commits after a takeover."""
    engine = make_engine(database_url)
    a = activations_table
    try:
        with engine.connect() as conn:
            for cut in cuts:
                cut.in_flight = in_flight(ops, set(cut.owned), cut.at)
                assert cut.healed_wall is not None
                served = first_served(engine, cut.worker_id, cut.healed_wall)
                cut.rejoin_s = (served - cut.healed_wall).total_seconds() if served is not None else None
                for name in cut.owned:
                    oid = object_id("default", CLASS, name)
                    rows = conn.execute(
                        sa.select(a.c.epoch, a.c.worker_id, a.c.started_at)
                        .where(a.c.object_id == oid)
                        .order_by(a.c.epoch)
                    ).all()
                    mine = {r.epoch for r in rows if r.worker_id == cut.worker_id}
                    later = [r for r in rows if r.worker_id != cut.worker_id and r.started_at >= cut.at_wall]
                    if not later:
                        continue
                    takeover = later[0]
                    if name in cut.in_flight:
                        cut.takeover_s[name] = (takeover.started_at - cut.at_wall).total_seconds()
                    late = conn.execute(
                        sa.text(
                            "SELECT seq, epoch, created_at FROM object_log WHERE object_id = :oid"
                            " AND epoch < :epoch AND created_at > :at"
                        ),
                        {"oid": oid, "epoch": takeover.epoch, "at": takeover.started_at},
                    ).all()
                    cut.late_commits += [f"{name} seq {r.seq} epoch {r.epoch}" for r in late if r.epoch in mine]
    finally:
        engine.dispose()


def cut_verdicts(cuts: list[Cut], ops: list[Op]) -> list[Verdict]:
    problems: dict[str, list[str]] = collections.defaultdict(list)
    for cut in cuts:
        what = f"{cut.kind} cut of host {cut.host}"
        if not cut.in_flight:
            problems["in flight"].append(f"{what}: no call to its objects in flight at the cut")
        # Taken over while the host was still cut off: a newer epoch, which only a host that reaches
        # both Redis (the lease) and Postgres (the epoch) can take. The cut lasts until it happened or
        # max_hold_s passed (Faults.hold): a bound, not a timing; the times are reported.
        late = cut.not_taken_over()
        if late:
            problems["taken over"].append(f"{what}: not taken over by another host during the cut: {late}")
        if cut.late_commits:
            problems["fenced"].append(f"{what}: committed after the takeover: {cut.late_commits[:5]}")
        if cut.rejoin_s is None:
            problems["rejoined"].append(f"{what}: did not serve again after the heal")
    takeovers = [s for cut in cuts for s in cut.takeover_s.values()]
    refused = sum(cut.fenced_after - cut.fenced_before for cut in cuts)
    return [
        Verdict(
            "cut hosts had calls in flight",
            not problems["in flight"],
            f"{sum(len(c.in_flight) for c in cuts)} objects over {len(cuts)} cuts",
            problems["in flight"],
        ),
        Verdict(
            "other hosts took over",
            not problems["taken over"],
            f"{len(takeovers)} objects taken over",
            problems["taken over"],
        ),
        Verdict(
            "cut owners never committed after losing the fence",
            not problems["fenced"],
            f"{refused:g} of their batches refused by the epoch fence",
            problems["fenced"],
        ),
        Verdict("cut hosts serve again once healed", not problems["rejoined"], "", problems["rejoined"]),
    ]


async def load(clients: list[Client], faults: Faults, config: PartitionConfig) -> None:
    """The clients' load until the faults are done (each operation retried for up to `settle_s`)."""
    tasks = [asyncio.create_task(c.run_while(faults.is_alive, lambda op: op.sent + config.settle_s)) for c in clients]
    await asyncio.gather(*tasks)


def start_workers(system: System, net: Network, timeout_s: float = 60) -> None:
    """One worker on each host, started together; returns once each says it is ready."""
    for host in range(HOSTS):
        system.cluster.start_worker(
            wrap=net.run_in(host),
            SOLO_LOG_LEVEL="INFO",  # the dropped and fenced objects, in bench/out/partition-logs/
            SOLO_METRICS_PORT=str(METRICS_PORT),
            SOLO_METRICS_HOST=net.address(host),
        )
    deadline = time.monotonic() + timeout_s
    for host, process in enumerate(system.cluster.workers):
        while " ready" not in system.cluster.log(f"worker{host}"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker on host {host} did not start; see bench/out/partition-logs/")
            time.sleep(0.05)


def keep_logs(workdir: Path) -> None:
    """The processes' logs into bench/out/partition-logs/, then the run's directory removed, however it ended."""
    if not workdir.name or not workdir.is_dir():  # never made
        return
    target = OUT_DIR / "partition-logs"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for log in workdir.glob("*.log"):
        shutil.copy(log, target / log.name)
    shutil.rmtree(workdir, ignore_errors=True)


def run(config: PartitionConfig) -> PartitionResult:
    began = time.monotonic()
    tag = uuid.uuid4().hex[:6]
    names = [f"part-{tag}-{i}" for i in range(config.objects)]
    errors: collections.Counter = collections.Counter()
    ops: list[Op] = []
    with contextlib.ExitStack() as stack:
        net = stack.enter_context(Network(HOSTS))
        pg = stack.enter_context(PrivatePostgres(host=net.hub, trusted=net.cidr))
        upgrade(pg.url)
        redis_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="solo-partition-redis-"))
        server = stack.enter_context(PrivateRedis(Path(redis_dir), host=net.hub))
        system = System(
            "partition",
            redis=server.url,
            database_url=pg.url,
            objects="solo.examples,tests.objects",
            SOLO_CALL_TIMEOUT_S=str(CALL_TIMEOUT_S),
        )
        stack.callback(lambda: keep_logs(system.workdir))  # after the processes stopped, even on failure
        stack.enter_context(system)
        start_workers(system, net)
        stack.callback(lambda: [net.heal(h) for h in list(net.cuts)])  # before the processes stop
        system.cluster.start_api()
        read_counts(system.url, names, class_name=CLASS)  # activates every object without changing it
        ports = {"redis": (server.port,), "postgres": (pg.port,), "both": (server.port, pg.port)}
        faults = Faults(system, net, ports, names, ops, config)
        faults.start()
        clients = [Client(i, system.url, names, ops, errors, class_name=CLASS) for i in range(config.clients)]
        asyncio.run(load(clients, faults, config))
        faults.join()
        if faults.error is not None:
            raise RuntimeError("fault injection failed") from faults.error
        everyone = names + faults.fresh
        finals = read_counts(system.url, everyone, class_name=CLASS)
        acked = [op for op in ops if op.value is not None and not op.key.startswith("slow-")]  # replayed with {}
        sample = random.sample(acked, min(config.replays, len(acked)))
        replays = asyncio.run(replay(system.url, sample, class_name=CLASS))
        finals_after = read_counts(system.url, everyone, class_name=CLASS)
        commits, ledger, heads = read_commits(pg.url, [object_id("default", CLASS, n) for n in everyone])
        measure(faults.cuts, ops, pg.url)
    leftovers = net.leftovers()  # after the network's own exit: what it left behind
    verdicts, commit_counts = check_history(ops, finals, replays, finals_after, commits, ledger, heads)
    verdicts += cut_verdicts(faults.cuts, ops)
    return PartitionResult(
        config, ops, faults.cuts, verdicts, commit_counts, errors, time.monotonic() - began, leftovers
    )


def spread(values: list[float]) -> str:
    if not values:
        return "none"
    return f"median {statistics.median(values):.2f} s, max {max(values):.2f} s (n={len(values)})"


def cut_rows(result: PartitionResult) -> list[dict]:
    rows = []
    for cut in result.cuts:
        takeovers = list(cut.takeover_s.values())
        rows.append(
            {
                "cut": cut.kind,
                "host": cut.host,
                "owned": len(cut.owned),
                "in_flight": len(cut.in_flight),
                "takeover_median_s": round(statistics.median(takeovers), 2) if takeovers else None,
                "takeover_max_s": round(max(takeovers), 2) if takeovers else None,
                "during_cut": f"{len(cut.in_flight) - len(cut.not_taken_over())} of {len(cut.in_flight)}",
                "fenced": int(cut.fenced_after - cut.fenced_before),
                "late_commits": len(cut.late_commits),
                "rejoin_s": round(cut.rejoin_s, 2) if cut.rejoin_s is not None else None,
            }
        )
    return rows


CUT_COLUMNS = [
    ("cut", "cut off from", ""),
    ("host", "host", ""),
    ("owned", "objects it owned", ""),
    ("in_flight", "with calls in flight", ""),
    ("takeover_median_s", "takeover median (s)", ""),
    ("takeover_max_s", "takeover max (s)", ""),
    ("during_cut", "taken over before the heal", ""),
    ("fenced", "its batches fenced", ""),
    ("late_commits", "its commits after takeover", ""),
    ("rejoin_s", "heal to serving again (s)", ""),
]


def takeover_goals(rows: list[dict]) -> list[dict]:
    """Per kind of cut: the median takeover against the lease TTL (a goal of the issue, not a test)."""
    goals = []
    for kind in KINDS:
        medians = [r["takeover_median_s"] for r in rows if r["cut"] == kind and r["takeover_median_s"] is not None]
        if medians:
            measured = round(statistics.median(medians), 2)
            goals.append(
                {
                    "goal": f"partition from {kind}: takeover of the objects in flight, median of the cuts' medians",
                    "target": f"<= {LEASE_TTL_S:g} s (the lease TTL)",
                    "measured": measured,
                    "unit": "s",
                    "of_target": round(measured / LEASE_TTL_S, 2),
                    "met": measured <= LEASE_TTL_S,
                }
            )
    return goals


def describe(result: PartitionResult) -> list[str]:
    ops = result.ops
    takeovers = {kind: [s for c in result.cuts if c.kind == kind for s in c.takeover_s.values()] for kind in KINDS}
    return [
        f"{len(ops):,} increments to {CLASS} objects on {HOSTS} hosts: {result.acknowledged:,} acknowledged, "
        f"{len(ops) - result.acknowledged} never answered, {sum(op.attempts > 1 for op in ops):,} needed more "
        "than one attempt.",
        "Client-side errors before an answer (each retried with the same key): "
        + (", ".join(f"{k} x{v}" for k, v in sorted(result.errors.items())) or "none")
        + ".",
        f"Takeover after a cut (lease TTL {LEASE_TTL_S:g} s), cut to the newer epoch's start: "
        + "; ".join(f"{kind}: {spread(values)}" for kind, values in takeovers.items())
        + ".",
        f"Activation ledger: {result.commit_counts['activations']:,} activations, "
        f"{result.commit_counts['epochs_that_committed']:,} of them committed; none overlap in committed time.",
        f"Left behind after the run: {', '.join(result.leftovers) or 'nothing'}. Wall time {result.elapsed_s:.0f} s.",
    ]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_config(PartitionConfig, "python -m bench.partition", __doc__, argv)
    reason = unsupported()
    if reason is not None:
        print(f"partition scenario skipped: {reason}")
        return 0
    result = run(args)

    title = f"Partitions: {args.rounds} round(s) of Redis, Postgres and both cut off from one of {HOSTS} hosts"
    rows = cut_rows(result)
    print_table(title, CUT_COLUMNS, rows)
    notes = describe(result)
    for line in notes:
        print(line)
    for verdict in result.verdicts:
        print(f"  {'PASS' if verdict.ok else 'FAIL'} {verdict.name}: {verdict.detail}")
        for problem in verdict.problems[:20]:
            print(f"    {problem}")
    write_result(
        "partition",
        argv,
        {
            "title": title,
            "columns": CUT_COLUMNS,
            "rows": rows,
            "ok": result.ok,
            "sent": len(result.ops),
            "acknowledged": result.acknowledged,
            "errors": dict(result.errors),
            "commit_counts": result.commit_counts,
            "verdicts": {v.name: v.ok for v in result.verdicts},
            "problems": {v.name: v.problems[:100] for v in result.verdicts if v.problems},
            "goals": [
                verdicts_goal(f"partitions ({args.rounds} round(s))", result.verdicts, result.ok),
                *takeover_goals(rows),
            ],
            "notes": notes,
        },
    )
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
