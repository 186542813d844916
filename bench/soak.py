"""Soak: an hour of steady load with a ten-minute retention window; the shared database's size, every minute.

    .venv/bin/python -m bench.soak [--minutes 60] [--rate 100] [--objects 1000] [--retention-s 600]
                                   [--call-record-ttl-s 300]   (make soak)

Starts the real system (API and one worker, which runs the scheduler and so the
compactor) on a fresh PostgreSQL database with SOLO_RETENTION_S=--retention-s and
SOLO_COMPACT_INTERVAL_S=--compact-interval-s, then calls `increment` on `--objects`
Counters at a fixed `--rate` for `--minutes`, one minute at a time. After each minute
it samples the database's size, the rows of the tables retention prunes, and the CPU
of each role. With retention working, the size levels off after the first window
instead of growing with every commit.

An object's latest state includes the records of its recent calls (kept
SOLO_CALL_RECORD_TTL_S, a day by default, so that a retried call is answered from its
record). With the default, every Counter's own state would grow for a whole day and the
plot would show that, not retention; the soak keeps call records --call-record-ttl-s
(five minutes), so each object's state reaches its steady size within the first window.

The compaction's cost is read from the worker's metrics (solo_compaction_*): the
compactor thread's CPU as a share of all the CPU the stack used, and the share of the
wall clock a pass was running (its statements' work in PostgreSQL falls in that time).

Prints a table, writes bench/out/soak.json and draws bench/out/soak.png (matplotlib,
`pip install matplotlib`; `make soak` installs it). Not in CI, not part of `make bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from bench.common import OUT_DIR, System, counter_paths, print_table, warm, write_result
from bench.cpu import stack_meter
from bench.loadgen import open_loop
from solo.objects.state.schema import normalize_url

SAMPLE_PATIENCE_S = 300.0  # a busy database (or one out of connections) delays a sample, not the hour


def sample(database_url: str) -> dict[str, Any]:
    deadline = time.monotonic() + SAMPLE_PATIENCE_S
    while True:
        try:
            return _sample(database_url)
        except sa.exc.OperationalError as exc:
            if time.monotonic() > deadline:
                raise
            print(f"sampling the database failed ({exc.orig}); again in 5 s", file=sys.stderr)
            time.sleep(5)


def _sample(database_url: str) -> dict[str, Any]:
    engine = sa.create_engine(normalize_url(database_url))
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT pg_database_size(current_database()), pg_total_relation_size('object_log'),"
                    " pg_total_relation_size('object_snapshots'), (SELECT count(*) FROM object_log),"
                    " (SELECT count(*) FROM object_snapshots), (SELECT count(*) FROM activations)"
                )
            ).one()
    finally:
        engine.dispose()
    return {
        "database_mib": row[0] / 2**20,
        "log_mib": row[1] / 2**20,
        "snapshots_mib": row[2] / 2**20,
        "log_rows": row[3],
        "snapshot_rows": row[4],
        "activation_rows": row[5],
    }


def compaction_counters(metrics_url: str) -> dict[str, float]:
    """The worker's solo_compaction_* counters (passes, seconds, cpu_seconds, deleted_rows)."""
    page = httpx.get(metrics_url, timeout=10).text
    values = {}
    for family in text_string_to_metric_families(page):
        if family.name.startswith("solo_compaction_"):
            for s in family.samples:
                if s.name.endswith("_total"):
                    values[family.name.removeprefix("solo_compaction_")] = s.value
    return values


def stack_cpu(used: dict[str, float]) -> float:
    """CPU seconds the stack used (its processes and the kernel's packet work), not the rest of the machine."""
    return sum(v for role, v in used.items() if role not in ("idle", "other"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


COLUMNS = [
    ("minute", "minute", ""),
    ("calls", "calls", ","),
    ("errors", "errors", ","),
    ("database_mib", "database MiB", ",.1f"),
    ("log_mib", "object_log MiB", ",.1f"),
    ("snapshots_mib", "object_snapshots MiB", ",.1f"),
    ("log_rows", "log rows", ","),
    ("snapshot_rows", "snapshot rows", ","),
    ("activation_rows", "activation rows", ","),
    ("stack_cpu_s", "stack CPU s", ",.1f"),
    ("compaction_cpu_s", "compactor CPU s", ",.2f"),
]


def plot(rows: list[dict[str, Any]], title: str, retention_s: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no screen
    import matplotlib.pyplot as plt

    minutes = [r["minute"] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.plot(minutes, [r["database_mib"] for r in rows], label="database")
    ax.plot(minutes, [r["log_mib"] for r in rows], label="object_log")
    ax.plot(minutes, [r["snapshots_mib"] for r in rows], label="object_snapshots")
    ax.axvline(retention_s / 60, color="grey", linestyle="--", label="end of the first window")
    ax.set_xlabel("minute")
    ax.set_ylabel("MiB")
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=9)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--rate", type=float, default=100.0, help="calls per second")
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--retention-s", type=float, default=600.0, help="SOLO_RETENTION_S")
    parser.add_argument("--compact-interval-s", type=float, default=60.0, help="SOLO_COMPACT_INTERVAL_S")
    parser.add_argument("--call-record-ttl-s", type=int, default=300, help="SOLO_CALL_RECORD_TTL_S")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    rows = []
    metrics_port = free_port()
    env = {
        "SOLO_RETENTION_S": str(args.retention_s),
        "SOLO_COMPACT_INTERVAL_S": str(args.compact_interval_s),
        "SOLO_CALL_RECORD_TTL_S": str(args.call_record_ttl_s),
    }
    with System("soak", **env) as system:
        system.start(workers=1, SOLO_METRICS_PORT=str(metrics_port))
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        paths = counter_paths(system.prefix, args.objects)
        warm(system.url, paths)
        rows.append({"minute": 0, **sample(system.database_url)})
        meter = stack_meter(system, include_load=False)
        meter.start()
        started = time.monotonic()
        for minute in range(1, args.minutes + 1):
            minute_meter = stack_meter(system, include_load=False)
            minute_meter.start()
            load = asyncio.run(open_loop(system.url, paths, args.rate, 60.0))
            used = minute_meter.stop()
            summary = load.summary()
            minute_cpu = stack_cpu(used)
            counters = compaction_counters(metrics_url)
            rows.append(
                {
                    "minute": minute,
                    "calls": summary["calls"],
                    "errors": summary["errors"],
                    "stack_cpu_s": minute_cpu,
                    "compaction_cpu_s": counters.get("cpu_seconds", 0.0),  # cumulative
                }
            )
            rows[-1].update(sample(system.database_url))
            print_table("", COLUMNS, rows[-1:])
        wall_s = time.monotonic() - started
        used = meter.stop()
        counters = compaction_counters(metrics_url)
    stack_cpu_s = stack_cpu(used)
    cost = {
        "passes": counters.get("passes", 0),
        "deleted_rows": counters.get("deleted_rows", 0),
        "compactor_cpu_s": counters.get("cpu_seconds", 0.0),
        "stack_cpu_s": stack_cpu_s,
        "compactor_cpu_share_pct": 100 * counters.get("cpu_seconds", 0.0) / max(stack_cpu_s, 1e-9),
        "compaction_wall_share_pct": 100 * counters.get("seconds", 0.0) / wall_s,
        "cpu_by_role_s": {role: round(v, 1) for role, v in used.items()},
    }
    title = (
        f"Soak: {args.rate:,.0f} calls/s on {args.objects:,} Counters for {args.minutes} min,"
        f" SOLO_RETENTION_S={args.retention_s:g}, SOLO_COMPACT_INTERVAL_S={args.compact_interval_s:g},"
        f" SOLO_CALL_RECORD_TTL_S={args.call_record_ttl_s}"
    )
    print_table(title, COLUMNS, rows)
    print("compaction:", cost)
    OUT_DIR.mkdir(exist_ok=True)
    picture = OUT_DIR / "soak.png"
    try:
        plot(rows, title, args.retention_s, picture)
        print(f"plot: {picture}")
    except ImportError:
        print("no plot: matplotlib is not installed (pip install matplotlib)", file=sys.stderr)
    write_result("soak", argv, {"title": title, "columns": COLUMNS, "rows": rows, "compaction": cost})
    return 0


if __name__ == "__main__":
    sys.exit(main())
