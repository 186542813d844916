"""Soak: a long steady load with a short retention window; the shared database's size, every minute.

    .venv/bin/python -m bench.soak [--minutes 30] [--rate 200] [--objects 1000]   (make soak)

Starts the real system (API and one worker, which runs the scheduler and so the
compactor) on a fresh PostgreSQL database with SOLO_RETENTION_S=60 and
SOLO_COMPACT_INTERVAL_S=30, then calls `increment` on `--objects` Counters at a fixed
`--rate` for `--minutes`, one minute at a time. After each minute it samples the
database's size and the rows of the tables retention prunes. With retention working,
they level off after the first few minutes instead of growing with every commit.

Prints a table and writes bench/out/soak.json. Not in CI, not part of `make bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import sqlalchemy as sa

from bench.common import System, counter_paths, print_table, warm, write_result
from bench.loadgen import open_loop
from solo.objects.state.schema import normalize_url

RETENTION_S = 60
COMPACT_INTERVAL_S = 30


def sample(database_url: str) -> dict[str, Any]:
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
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--rate", type=float, default=200.0, help="calls per second")
    parser.add_argument("--objects", type=int, default=1000)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    rows = []
    with System("soak", SOLO_RETENTION_S=str(RETENTION_S), SOLO_COMPACT_INTERVAL_S=str(COMPACT_INTERVAL_S)) as system:
        system.start(workers=1)
        paths = counter_paths(system.prefix, args.objects)
        warm(system.url, paths)
        rows.append({"minute": 0, **sample(system.database_url)})
        for minute in range(1, args.minutes + 1):
            load = asyncio.run(open_loop(system.url, paths, args.rate, 60.0))
            summary = load.summary()
            rows.append({"minute": minute, "calls": summary["calls"], "errors": summary["errors"]})
            rows[-1].update(sample(system.database_url))
            print_table("", COLUMNS, rows[-1:])
    title = (
        f"Soak: {args.rate:,.0f} calls/s on {args.objects:,} Counters for {args.minutes} min,"
        f" SOLO_RETENTION_S={RETENTION_S}, SOLO_COMPACT_INTERVAL_S={COMPACT_INTERVAL_S}"
    )
    print_table(title, COLUMNS, rows)
    write_result("soak", argv, {"title": title, "columns": COLUMNS, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
