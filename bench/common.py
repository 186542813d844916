"""What every benchmark scenario shares: services, the system under test, results, tables.

A scenario is a module ``bench/<name>.py`` with ``main(argv) -> int`` that parses
its own arguments, runs, prints a table (``print_table``) and writes
``bench/out/<name>.json`` (``write_result``). ``bench/report.py`` turns those
files into ``bench/RESULTS.md``; ``bench/all.py`` runs every scenario.

A result is a dict: ``scenario``, ``title``, ``date``, ``command``, ``machine``,
``versions`` (added by ``write_result``), ``columns`` + ``rows`` (one table),
``goals`` (see ``goal``), ``notes`` (sentences for RESULTS.md), and anything else.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa

from bench import ROOT
from bench.cpu import per_call_ms, stack_meter
from bench.loadgen import closed_loop, open_loop, post_each
from solo.objects.state.migrate import upgrade
from solo.objects.state.schema import normalize_url
from solo.testing.cluster import Cluster, process_env

OUT_DIR = ROOT / "bench" / "out"
PACKAGES = ("uvicorn", "starlette", "dramatiq", "redis", "SQLAlchemy", "psycopg", "alembic")

# (key in a row, column header, format spec for format(); "" = str())
Column = tuple[str, str, str]


# -- services -------------------------------------------------------------


def redis_url() -> str:
    """The Redis the benchmarks use (the local one unless REDIS_URL says otherwise)."""
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def admin_postgres_url() -> str:
    """A Postgres database through which each run creates and drops a database of its own."""
    return os.environ.get("SOLO_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def fresh_database(admin_url: str) -> tuple[str, str]:
    """Create and migrate a database of this run's own; returns (name, url)."""
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


def delete_keys(url: str, prefix: str) -> None:
    """Delete every key of a run (its solo keys and its Dramatiq namespace)."""
    client = redis.Redis.from_url(url)
    try:
        for pattern in (f"{prefix}:*", f"{prefix}-dramatiq*"):
            keys = list(client.scan_iter(match=pattern, count=1000))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])
    finally:
        client.close()


# -- the system under test ------------------------------------------------


class System:
    """A real solo (API and worker processes) on a fresh database, a key prefix and a directory of its own.

    Everything is removed on exit, even after a failure: processes stopped,
    Redis keys deleted, database dropped, directory deleted (kept, and its
    path printed, when the run failed, for the processes' logs).
    """

    def __init__(
        self,
        name: str,
        *,
        redis: str | None = None,
        database_url: str | None = None,
        objects: str = "solo.examples,tests.objects",
        **env: str,
    ):
        """`database_url`: a migrated database to use (and keep) instead of a fresh one."""
        self.name = name
        self.redis_url = redis or redis_url()
        self.admin_url = admin_postgres_url()
        self.prefix = f"solo-bench-{name}-{uuid.uuid4().hex[:6]}"
        self.objects = objects
        self.extra_env = env
        self.own_database = database_url is None
        self.database_url = database_url or ""
        self.db_name = database_url.rsplit("/", 1)[1] if database_url else ""
        self.workdir = Path()
        self.cluster: Cluster

    def __enter__(self) -> System:
        self.workdir = Path(tempfile.mkdtemp(prefix=f"solo-bench-{self.name}-"))
        if self.own_database:
            self.db_name, self.database_url = fresh_database(self.admin_url)
        env = process_env(
            redis_url=self.redis_url,
            database_url=self.database_url,
            key_prefix=self.prefix,
            data_dir=self.workdir / "objects",
            pythonpath=ROOT,  # tests.objects and bench modules
            SOLO_OBJECTS=self.objects,
            **self.extra_env,
        )
        self.cluster = Cluster(env, self.workdir)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.cluster.stop()
        finally:
            try:
                delete_keys(self.redis_url, self.prefix)
            except redis.RedisError:
                pass  # a private Redis already gone holds nothing to delete
            finally:
                if self.own_database:
                    drop_database(self.admin_url, self.db_name)
                if exc_type is None:
                    shutil.rmtree(self.workdir, ignore_errors=True)
                else:
                    print(f"logs kept in {self.workdir}", file=sys.stderr)

    @property
    def url(self) -> str:
        return self.cluster.url

    def start(self, workers: int = 1, wrap: Sequence[str] = (), **worker_env: str) -> None:
        """`wrap`: a command that runs every process (bench/plain_stack.py)."""
        for _ in range(workers):
            self.cluster.start_worker(wrap=wrap, **worker_env)
        self.cluster.start_api(wrap=wrap)

    def start_ready_worker(self, timeout_s: float = 30, **worker_env: str) -> subprocess.Popen:
        """Start a worker and return once it takes activations (its log says "ready")."""
        index = len(self.cluster.workers)
        process = self.cluster.start_worker(SOLO_LOG_LEVEL="INFO", **worker_env)
        deadline = time.monotonic() + timeout_s
        while " ready" not in self.cluster.log(f"worker{index}"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker{index} did not start; see {self.workdir / f'worker{index}.log'}")
            time.sleep(0.02)
        return process

    def pids(self) -> dict[str, list[int]]:
        """Process ids by role, for CpuMeter."""
        c = self.cluster
        return {
            "api": [c.api.pid] if c.api and c.api.poll() is None else [],
            "workers": [w.pid for w in c.workers if w.poll() is None],
        }


def counter_paths(prefix: str, count: int, method: str = "increment") -> list[str]:
    return [f"/v1/objects/Counter/{prefix}-{i}/{method}" for i in range(count)]


def warm(url: str, paths: Sequence[str], connections: int = 64) -> None:
    """Call every path once (activating its object); fails unless every call succeeded."""
    replies = asyncio.run(post_each(url, [(p, b"{}") for p in paths], min(connections, len(paths))))
    failed = [(path, status) for path, (status, _) in zip(paths, replies) if status != 200]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(paths)} warm-up calls failed, e.g. {failed[:3]}")


def shipped_records(database_url: str) -> tuple[int, int, int]:
    """(log records, snapshots, transactions committed) in the shared database: one log record per
    shipped commit. Transactions as Postgres's statistics count them, which may lag by up to a second."""
    engine = sa.create_engine(normalize_url(database_url))
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT (SELECT count(*) FROM object_log), (SELECT count(*) FROM object_snapshots), "
                    "(SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())"
                )
            ).one()
    finally:
        engine.dispose()
    return int(row[0]), int(row[1]), int(row[2])


def shipping_columns(before: tuple[int, int, int], after: tuple[int, int, int], calls: int) -> dict[str, Any]:
    """How many calls each shipment (one log record) carried, snapshots per shipment, and calls per
    Postgres transaction (several objects' shipments share one when they are grouped)."""
    records, snapshots, commits = after[0] - before[0], after[1] - before[1], after[2] - before[2]
    return {
        "calls_per_shipment": round(calls / records, 2) if records else None,
        "snapshots_per_shipment": round(snapshots / records, 2) if records else None,
        "calls_per_commit": round(calls / commits, 2) if commits > 0 else None,
    }


def closed_loop_run(system: System, paths: Sequence[str], concurrency: int, seconds: float) -> dict[str, Any]:
    """`concurrency` clients calling as fast as replies come: calls/s, latencies, CPU ms per call by role."""
    records = shipped_records(system.database_url)
    meter = stack_meter(system)
    meter.start()
    sample = asyncio.run(closed_loop(system.url, list(paths), concurrency, seconds))
    used = meter.stop()
    calls = len(sample.latencies_s)
    return {
        **sample.summary(),
        **cpu_columns(used, calls, sample.elapsed_s),
        **shipping_columns(records, shipped_records(system.database_url), calls),
    }


def open_loop_run(system: System, paths: Sequence[str], rate: float, seconds: float) -> dict[str, Any]:
    """Calls started at a fixed rate whatever the replies do, so queueing shows as latency."""
    records = shipped_records(system.database_url)
    meter = stack_meter(system)
    meter.start()
    sample = asyncio.run(open_loop(system.url, list(paths), rate, seconds))
    used = meter.stop()
    calls = len(sample.latencies_s)
    return {
        "rate": round(rate, 1),
        **sample.summary(),
        **cpu_columns(used, calls, sample.elapsed_s),
        **shipping_columns(records, shipped_records(system.database_url), calls),
    }


def cpu_columns(used: dict[str, float], calls: int, seconds: float) -> dict[str, Any]:
    """CPU ms per call by role as `cpu_<role>` keys, their total, and the machine's idle share."""
    per_call = per_call_ms(used, calls)
    total_s = sum(used.values()) or 1.0
    columns: dict[str, Any] = {f"cpu_{role}": value for role, value in per_call.items()}
    columns["cpu_total"] = round(sum(per_call.values()), 3)
    columns["idle_pct"] = round(100 * used.get("idle", 0.0) / total_s, 1)
    return columns


CPU_COLUMNS: list[Column] = [
    ("cpu_api", "CPU ms/call: api", ".3f"),
    ("cpu_workers", "workers", ".3f"),
    ("cpu_redis", "redis", ".3f"),
    ("cpu_postgres", "postgres", ".3f"),
    ("cpu_load", "load gen", ".3f"),
    ("cpu_kernel", "kernel irq", ".3f"),
    ("cpu_other", "other", ".3f"),
    ("idle_pct", "idle %", ".0f"),
]

SHIPPING_COLUMNS: list[Column] = [
    ("calls_per_shipment", "calls per shipment", ".2f"),
    ("snapshots_per_shipment", "snapshots per shipment", ".2f"),
    ("calls_per_commit", "calls per PG commit", ".2f"),
]


# -- results ----------------------------------------------------------------


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kib / 1024 / 1024),
        "os": platform.platform(terse=True),
        "load_average_1m": round(os.getloadavg()[0], 2),  # other work on the machine when the run started
    }


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "-"
    try:
        client = redis.Redis.from_url(redis_url(), socket_timeout=2)
        found["redis-server"] = client.info("server")["redis_version"]
        client.close()
    except redis.RedisError:
        found["redis-server"] = "?"
    try:
        engine = sa.create_engine(normalize_url(admin_postgres_url()))
        with engine.connect() as conn:
            found["postgresql"] = conn.execute(sa.text("SHOW server_version")).scalar().split()[0]
        engine.dispose()
    except sa.exc.SQLAlchemyError:
        found["postgresql"] = "?"
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(  # uncommitted changes to anything but the results themselves
            ["git", "status", "--porcelain", "--", ".", ":!bench/RESULTS.md"], cwd=ROOT, capture_output=True, text=True
        )
        found["solo"] = head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")
    except OSError:
        found["solo"] = "?"
    return found


def command(scenario: str, argv: Sequence[str]) -> str:
    """The command that reproduces a run (`solo bench <scenario> ...` does the same)."""
    return " ".join([".venv/bin/python -m", f"bench.{scenario}", *argv])


def parse_config(config_type: type, prog: str, doc: str | None, argv: Sequence[str]) -> Any:
    """A scenario's config dataclass from its command line: one `--option` per field, its default the field's."""
    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, value in vars(config_type()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    return config_type(**vars(parser.parse_args(argv)))


def verdicts_goal(what: str, verdicts: Sequence[Any], ok: bool) -> dict[str, Any]:
    """The goal that every checker verdict of a fault run passes."""
    return {
        "goal": f"{what}: every checker verdict",
        "target": "all pass",
        "measured": sum(v.ok for v in verdicts),
        "unit": f"of {len(verdicts)} pass",
        "met": ok,
    }


def goal(
    what: str,
    target: str,
    measured: float,
    unit: str,
    met: bool,
    *,
    baseline: float | None = None,
    target_value: float | None = None,
) -> dict[str, Any]:
    """One goal of the issue: its target, the measured figure, and whether it was met.

    `baseline`, when given, is the figure the measured one is compared with (ratio = measured / baseline);
    `target_value` the target as a number (of_target = measured / target_value).
    """
    entry: dict[str, Any] = {"goal": what, "target": target, "measured": measured, "unit": unit, "met": met}
    if baseline:
        entry["ratio"] = round(measured / baseline, 3)
    if target_value:
        entry["of_target"] = round(measured / target_value, 3)
    return entry


def write_result(scenario: str, argv: Sequence[str], result: dict[str, Any]) -> Path:
    """Add the run's context and write bench/out/<scenario>.json."""
    full = {
        "scenario": scenario,
        "date": utc_now(),
        "command": command(scenario, argv),
        "machine": machine(),
        "versions": versions(),
        **result,
    }
    OUT_DIR.mkdir(exist_ok=True)
    path = OUT_DIR / f"{scenario}.json"
    path.write_text(json.dumps(full, indent=2, default=str) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def read_result(scenario: str) -> dict[str, Any] | None:
    path = OUT_DIR / f"{scenario}.json"
    return json.loads(path.read_text()) if path.exists() else None


# -- tables -----------------------------------------------------------------


def format_cell(value: Any, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if spec and isinstance(value, (int, float)):
        return format(value, spec)
    return str(value)


def print_table(title: str, columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> None:
    cells = [[format_cell(row.get(key), spec) for key, _, spec in columns] for row in rows]
    widths = [max([len(header)] + [len(r[i]) for r in cells]) for i, (_, header, _) in enumerate(columns)]
    print(f"\n{title}")
    print("  ".join(header.rjust(w) for (_, header, _), w in zip(columns, widths)))
    for r in cells:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))


def markdown_table(columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(header for _, header, _ in columns) + " |"]
    lines.append("|" + "|".join(" ---: " if spec else " --- " for _, _, spec in columns) + "|")
    for row in rows:
        lines.append("| " + " | ".join(format_cell(row.get(key), spec) for key, _, spec in columns) + " |")
    return "\n".join(lines)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def round_medians(samples: dict[str, list[dict[str, Any]]], cpu_column: str) -> list[dict[str, Any]]:
    """One row per mode of alternating rounds: medians of the rounds, and throughput against the first mode."""
    rows = []
    for mode, runs in samples.items():
        rows.append(
            {
                "mode": mode,
                "calls_per_s": statistics.median(r["calls_per_s"] for r in runs),
                "p50_ms": statistics.median(r["p50_ms"] for r in runs),
                "p99_ms": statistics.median(r["p99_ms"] for r in runs),
                cpu_column: statistics.median(r[cpu_column] for r in runs if r[cpu_column] is not None),
                "rounds": len(runs),
                "errors": sum(r["errors"] for r in runs),
                "per_round_calls_per_s": [r["calls_per_s"] for r in runs],
            }
        )
    first = rows[0]["calls_per_s"]
    for row in rows:
        row["vs_off"] = round(row["calls_per_s"] / first, 3) if first else None
    return rows
