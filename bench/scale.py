"""Scale: warm-call latency with 1,000 versus 1,000,000 objects in the catalog; worker memory per object.

    .venv/bin/python -m bench.scale [--objects 1000] [--catalog 1000000] [--rate 200] [--seconds 10] [--rounds 2]

One worker activates `objects` counters; its resident memory before and
after gives the memory per active object. Warm calls to those objects are
then measured in an open loop at a fixed `rate` (p50 / p99), and so is the
first call of 50 new objects (takeover: an upsert into the catalog), in
alternating phases, `rounds` times:
  A  the catalog holds only the objects called so far;
  B  filler rows bring it to `catalog` rows (one INSERT ... SELECT
     generate_series straight into the shared `objects` table, then VACUUM
     ANALYZE and CHECKPOINT, as after any bulk load); deleted again after.
Alternating keeps drift on a shared machine from passing for an effect.

Goal: warm-call p50 with 1,000,000 objects within 10 % of that with 1,000
(means over the rounds).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid

import httpx
import sqlalchemy as sa

from bench.common import System, counter_paths, goal, open_loop_run, print_table, warm, write_result
from bench.cpu import process_rss_bytes
from solo.objects.state.schema import normalize_url

COLUMNS = [
    ("phase", "phase", ""),
    ("catalog_rows", "catalog rows", ","),
    ("rate", "calls/s", ",.0f"),
    ("p50_ms", "warm p50 ms", ".2f"),
    ("p99_ms", "warm p99 ms", ".2f"),
    ("errors", "errors", ""),
    ("first_call_p50_ms", "new object p50 ms", ".1f"),
    ("first_call_max_ms", "new object max ms", ".1f"),
    ("cpu_other", "CPU ms/call: other", ".3f"),
    ("idle_pct", "idle %", ".0f"),
]

FILL = """
INSERT INTO objects (id, namespace, class_name, name, epoch, created_at, last_active_at)
SELECT md5('filler-' || g), 'bench-filler', 'Counter', 'filler-' || g, 1, now(), now()
FROM generate_series(1, :rows) AS g
"""


def execute(database_url: str, *statements: tuple[str, dict]) -> None:
    engine = sa.create_engine(normalize_url(database_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for sql, params in statements:
            conn.execute(sa.text(sql), params)
    engine.dispose()


def fill(database_url: str, rows: int) -> None:
    """Bulk-load filler rows; vacuum and checkpoint at once, as after any bulk load, so neither runs later."""
    execute(database_url, (FILL, {"rows": rows}), ("VACUUM ANALYZE objects", {}), ("CHECKPOINT", {}))


def empty(database_url: str) -> None:
    execute(
        database_url,
        ("DELETE FROM objects WHERE namespace = 'bench-filler'", {}),
        ("VACUUM ANALYZE objects", {}),
        ("CHECKPOINT", {}),
    )


def catalog_rows(database_url: str) -> int:
    engine = sa.create_engine(normalize_url(database_url))
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT count(*) FROM objects")).scalar()
    engine.dispose()
    return int(rows)


def first_calls(url: str, count: int) -> list[float]:
    """One call each to `count` new objects, one after another: takeover + hydrate of an empty object."""
    times = []
    with httpx.Client(base_url=url, timeout=60) as http:
        for path in counter_paths(f"new-{uuid.uuid4().hex[:6]}", count):
            started = time.perf_counter()
            http.post(path).raise_for_status()
            times.append(time.perf_counter() - started)
    return times


def phase(system: System, name: str, paths: list[str], rate: float, seconds: float) -> dict:
    warm_calls = open_loop_run(system, paths, rate, seconds)
    new = first_calls(system.url, 50)
    return {
        "phase": name,
        "catalog_rows": catalog_rows(system.database_url),
        **warm_calls,
        "first_call_p50_ms": round(statistics.median(new) * 1000, 2),
        "first_call_max_ms": round(max(new) * 1000, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench scale", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--catalog", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)

    with System("scale") as system:
        worker = system.start_ready_worker()
        system.cluster.start_api()
        warm(system.url, counter_paths("mem-probe", 1))  # imports and pools in place before measuring
        time.sleep(1)
        rss_before = process_rss_bytes(worker.pid)
        paths = counter_paths(f"s-{uuid.uuid4().hex[:4]}", args.objects)
        warm(system.url, paths)
        time.sleep(1)
        rss_after = process_rss_bytes(worker.pid)
        rows, fill_times = [], []
        for round_ in range(1, args.rounds + 1):
            rows.append(phase(system, f"A{round_}: active objects only", paths, args.rate, args.seconds))
            filler = args.catalog - catalog_rows(system.database_url)
            started = time.perf_counter()
            fill(system.database_url, filler)
            fill_times.append(time.perf_counter() - started)
            rows.append(phase(system, f"B{round_}: + {filler:,} filler rows", paths, args.rate, args.seconds))
            empty(system.database_url)
        rss_end = process_rss_bytes(worker.pid)

    small = statistics.mean(r["p50_ms"] for r in rows if r["phase"].startswith("A"))
    big = statistics.mean(r["p50_ms"] for r in rows if r["phase"].startswith("B"))
    small_p99 = statistics.mean(r["p99_ms"] for r in rows if r["phase"].startswith("A"))
    big_p99 = statistics.mean(r["p99_ms"] for r in rows if r["phase"].startswith("B"))
    fill_s = statistics.mean(fill_times)
    per_object = (rss_after - rss_before) / args.objects
    title = f"Scale: {args.objects:,} active objects, catalog of {args.objects:,} vs {args.catalog:,} rows"
    print_table(title, COLUMNS, rows)
    print(
        f"worker memory: {rss_before / 2**20:.1f} MiB -> {rss_after / 2**20:.1f} MiB with {args.objects:,} active "
        f"objects: {per_object / 1024:.1f} KiB per object"
    )
    write_result(
        "scale",
        argv,
        {
            "title": title,
            "columns": COLUMNS,
            "rows": rows,
            "worker_rss_before_bytes": rss_before,
            "worker_rss_after_bytes": rss_after,
            "worker_rss_end_bytes": rss_end,
            "worker_bytes_per_active_object": round(per_object),
            "fill_seconds": round(fill_s, 1),
            "goals": [
                goal(
                    "scale: warm p50 with 1,000,000 vs 1,000 catalog rows",
                    "within 10 %",
                    round(big / small, 3),
                    "x",
                    abs(big / small - 1) <= 0.10,
                )
            ],
            "notes": [
                f"Worker resident memory: {rss_before / 2**20:.1f} MiB before, {rss_after / 2**20:.1f} MiB with "
                f"{args.objects:,} active objects (each an open SQLite file, its lease and its instance): "
                f"{per_object / 1024:.1f} KiB per active object; {rss_end / 2**20:.1f} MiB at the end.",
                f"Filling the catalog took {fill_s:.1f} s. Warm calls: open loop at {args.rate:g} calls/s for "
                f"{args.seconds:g} s over the {args.objects:,} objects; new objects: 50 first calls one after "
                f"another. Phases alternate ({args.rounds} rounds of A then B) so that drift on the machine "
                f"does not pass for an effect. Mean p50: {small:.2f} ms (A) vs {big:.2f} ms (B); mean p99: "
                f"{small_p99:.2f} ms vs {big_p99:.2f} ms.",
            ],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
