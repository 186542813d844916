"""Retention: what a compaction pass costs on PostgreSQL, and what it does to owners shipping meanwhile.

    .venv/bin/python -m bench.retention [--objects 100000] [--records 5] [--batch 500]

On a fresh database (SOLO_BENCH_POSTGRES_URL), with histories made in SQL from the
frames of a real Counter (its first record, the whole file, and a one-row update,
12,360 bytes), for `--objects` objects of `--records` log records each, nine days old:

1. delete only: each object also has a snapshot at its head, so a pass deletes every
   log record and folds nothing. The whole pass is timed (reading each batch's plan, one
   array-joined DELETE per batch, the VACUUM at the end), while 4 threads ship one-row
   records to 100 other objects in a loop: their latency is compared with the same load
   before the pass;
2. a pass with nothing left to do (the steady state's cost of looking);
3. fold and delete: no snapshots, so each object's log is folded into one (rebuilt from the
   log, as a hydrate does) before it is deleted: the first pass over idle objects;
4. the alternatives: the same rows deleted with one statement per batch (`unnest`), and
   a time-partitioned log whose old partition is dropped whole.

Prints tables and writes bench/out/retention.json. Not part of `make bench` (it writes
gigabytes); run it alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.common import admin_postgres_url, drop_database, fresh_database, percentile, print_table, write_result
from solo.examples.counter import Counter
from solo.objects.calls import Call
from solo.objects.naming import new_call_id, object_id
from solo.objects.runtime.instance import ObjectInstance
from solo.objects.state.catalog import Catalog
from solo.objects.state.compactor import Compactor
from solo.objects.state.schema import make_engine
from solo.objects.state.store import StateStore
from solo.objects.state.wal import Frames

NAMESPACE = "bench"
HOT_OBJECTS = 100
SHIPPERS = 4


def real_counter(engine: sa.Engine, workdir: Path) -> tuple[bytes, bytes, bytes]:
    """(first record, a one-row update's record, the image after them) of a real Counter."""
    catalog, store = Catalog(engine), StateStore(engine)
    oid = object_id("template", "Counter", "t")
    takeover = catalog.take_over(oid, "template", "Counter", "t", "bench", known_schema=len(Counter.migrations))
    instance = ObjectInstance(
        Counter, object_id=oid, name="t", path=workdir / "t.sqlite", epoch=takeover.epoch, store=store
    )
    instance.hydrate()
    (outcome,) = instance.run_batch([Call(new_call_id(), oid, "Counter", "t", "increment", {})]).outcomes
    assert outcome.ok
    instance.close()
    with engine.connect() as conn:
        first, update = (
            bytes(r[0])
            for r in conn.execute(
                sa.text("SELECT frames FROM object_log WHERE object_id = :id ORDER BY seq"), {"id": oid}
            )
        )
    return first, update, store.image_at(oid, 2)


def make_histories(engine: sa.Engine, prefix: str, objects: int, records: int, frames: tuple[bytes, bytes, bytes]):
    """`objects` objects whose `records` log records were committed nine days ago, plus a snapshot at the
    head when the prefix says so. Every history applies: record 1 is a whole file, the others an update."""
    first, update, image = frames
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO objects (id, namespace, class_name, name, epoch, created_at, last_active_at, head_seq,"
                " snapshot_seq, log_bytes) SELECT md5(:p || g), :ns, 'Counter', :p || g, 1,"
                " now() - interval '9 days', now() - interval '9 days', :r, 0, 0 FROM generate_series(1, :n) g"
            ),
            {"p": prefix, "ns": NAMESPACE, "n": objects, "r": records},
        )
        conn.execute(
            sa.text(
                "INSERT INTO object_log (object_id, seq, epoch, page_size, db_pages, frames, created_at)"
                " SELECT md5(:p || g), s, 1, 4096, 4, CASE WHEN s = 1 THEN :first ELSE :update END,"
                " now() - interval '9 days' + s * interval '1 second'"
                " FROM generate_series(1, :n) g, generate_series(1, :r) s"
            ),
            {"p": prefix, "n": objects, "r": records, "first": first, "update": update},
        )
        if prefix.startswith("snap"):
            conn.execute(
                sa.text(
                    "INSERT INTO object_snapshots (object_id, seq, epoch, image, created_at)"
                    " SELECT md5(:p || g), :r, 1, :image, now() - interval '9 days' + :r * interval '1 second'"
                    " FROM generate_series(1, :n) g"
                ),
                {"p": prefix, "n": objects, "r": records, "image": image},
            )
            conn.execute(
                sa.text(
                    "UPDATE objects SET snapshot_seq = head_seq WHERE id IN (SELECT md5(:p || g) FROM"
                    " generate_series(1, :n) g)"
                ),
                {"p": prefix, "n": objects},
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    return time.perf_counter() - started


def log_size(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT pg_total_relation_size('object_log')")).scalar())


class ShipLoad:
    """Owners shipping one-row records to other objects, in threads; the latency of each shipment."""

    def __init__(self, engine: sa.Engine, update: bytes) -> None:
        self.store = StateStore(engine)
        self.frames = Frames(update, 4096, 4)
        self.ids = [object_id("hot", "Counter", f"h{i}") for i in range(HOT_OBJECTS)]
        with engine.begin() as conn:
            for oid in self.ids:
                conn.execute(
                    sa.text(
                        "INSERT INTO objects (id, namespace, class_name, name, epoch, created_at, last_active_at)"
                        " VALUES (:id, 'hot', 'Counter', :id, 1, now(), now())"
                    ),
                    {"id": oid},
                )
        self.seq = dict.fromkeys(self.ids, 0)
        self.latencies: list[float] = []
        self.refused = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _run(self, mine: list[str]) -> None:
        while not self._stop.is_set():
            for oid in mine:
                started = time.perf_counter()
                if self.store.ship(oid, 1, self.seq[oid] + 1, self.frames):
                    self.seq[oid] += 1
                else:
                    self.refused += 1
                self.latencies.append(time.perf_counter() - started)

    def start(self) -> None:
        self.latencies, self._stop = [], threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(self.ids[i::SHIPPERS],), daemon=True) for i in range(SHIPPERS)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        ms = [v * 1000 for v in self.latencies]
        return {
            "ships": len(ms),
            "p50_ms": statistics.median(ms),
            "p99_ms": percentile(ms, 0.99),
            "max_ms": max(ms),
        }


def timed_pass(engine: sa.Engine, batch: int) -> tuple[float, Any]:
    compactor = Compactor(engine, NAMESPACE, 7 * 86400, batch_objects=batch)
    started = time.perf_counter()
    report = compactor.run()
    return time.perf_counter() - started, report


def unnest_delete(engine: sa.Engine, prefix: str, objects: int, records: int, batch: int) -> float:
    """The alternative statement: one DELETE per batch of objects, joined to arrays of (id, up to)."""
    with engine.connect() as conn:
        ids = list(conn.execute(sa.text("SELECT id FROM objects WHERE name LIKE :p"), {"p": f"{prefix}%"}).scalars())
    assert len(ids) == objects
    started = time.perf_counter()
    for low in range(0, len(ids), batch):
        chunk = ids[low : low + batch]
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "DELETE FROM object_log l"
                    " USING unnest(CAST(:ids AS text[]), CAST(:upto AS bigint[])) AS v(id, upto)"
                    " WHERE l.object_id = v.id AND l.seq <= v.upto"
                ),
                {"ids": chunk, "upto": [records] * len(chunk)},
            )
    return time.perf_counter() - started


def partition_drop(engine: sa.Engine, objects: int, records: int, update: bytes) -> dict[str, float]:
    """A log partitioned by day: the old day's rows go by dropping its partition."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE log_by_day (object_id varchar(32) NOT NULL, seq bigint NOT NULL, frames bytea NOT NULL,"
                " created_at timestamptz NOT NULL, PRIMARY KEY (object_id, seq, created_at))"
                " PARTITION BY RANGE (created_at)"
            )
        )
        conn.execute(
            sa.text(
                "CREATE TABLE log_old PARTITION OF log_by_day FOR VALUES FROM (now() - interval '30 days')"
                " TO (now() - interval '8 days')"
            )
        )
        conn.execute(
            sa.text(
                "CREATE TABLE log_new PARTITION OF log_by_day FOR VALUES FROM (now() - interval '8 days') TO (MAXVALUE)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO log_by_day SELECT md5('part' || g), s, :update, now() - interval '9 days'"
                " FROM generate_series(1, :n) g, generate_series(1, :r) s"
            ),
            {"n": objects, "r": records, "update": update},
        )
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE log_by_day DETACH PARTITION log_old"))
        conn.execute(sa.text("DROP TABLE log_old"))
    dropped = time.perf_counter() - started
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE log_by_day"))
    return {"drop_s": dropped}


COLUMNS = [
    ("phase", "phase", ""),
    ("objects", "objects", ","),
    ("log_records", "log records deleted", ","),
    ("snapshots_written", "snapshots written", ","),
    ("seconds", "seconds", ".1f"),
    ("records_per_s", "records/s", ",.0f"),
    ("objects_per_s", "objects/s", ",.0f"),
]
SHIP_COLUMNS = [
    ("when", "shipments of 4 owner threads", ""),
    ("ships", "shipments", ","),
    ("p50_ms", "p50 ms", ".2f"),
    ("p99_ms", "p99 ms", ".2f"),
    ("max_ms", "max ms", ".1f"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench retention", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--records", type=int, default=5)
    parser.add_argument("--batch", type=int, default=500, help="objects per batch of the compactor")
    parser.add_argument("--baseline-s", type=float, default=20.0, help="shipments measured before the pass")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    admin_url = admin_postgres_url()
    db_name, db_url = fresh_database(admin_url)
    engine = make_engine(db_url, connections=SHIPPERS + 4)
    rows: list[dict[str, Any]] = []
    ship_rows: list[dict[str, Any]] = []
    notes: list[str] = []
    n, r = args.objects, args.records
    try:
        with tempfile.TemporaryDirectory(prefix="solo-retention-") as tmp:
            frames = real_counter(engine, Path(tmp))
        first, update, image = frames
        notes.append(
            f"Histories are real Counter records: the first (the whole file) {len(first):,} bytes, a one-row"
            f" update {len(update):,} bytes; a snapshot {len(image):,} bytes."
        )

        made = make_histories(engine, "snap", n, r, frames)
        size_before = log_size(engine)
        notes.append(
            f"Made {n:,} objects x {r} log records (+1 snapshot each) in {made:.0f} s; object_log with TOAST:"
            f" {size_before / 2**20:,.0f} MiB ({size_before / (n * r):,.0f} bytes per record on disk)."
        )
        load = ShipLoad(engine, update)
        load.start()
        time.sleep(args.baseline_s)
        ship_rows.append({"when": f"alone, {args.baseline_s:.0f} s", **load.stop()})
        load.start()
        seconds, report = timed_pass(engine, args.batch)
        ship_rows.append({"when": f"during the delete-only pass, {seconds:.0f} s", **load.stop()})
        rows.append(
            {
                "phase": "1. delete only (a snapshot at each head)",
                "objects": n,
                "log_records": report.log_records,
                "snapshots_written": report.folded,
                "seconds": seconds,
                "records_per_s": report.log_records / seconds,
                "objects_per_s": n / seconds,
            }
        )
        assert report.log_records == n * r, report
        assert load.refused == 0
        notes.append(
            f"After the delete-only pass and its VACUUM, object_log takes {log_size(engine) / 2**20:,.0f} MiB on"
            " disk (the owners' shipments of the run included): VACUUM makes deleted rows' space reusable and"
            " gives back only the empty pages at the end of a file."
        )

        seconds, report = timed_pass(engine, args.batch)
        rows.append(
            {
                "phase": "2. nothing left to do",
                "objects": n,
                "log_records": report.log_records,
                "snapshots_written": report.folded,
                "seconds": seconds,
                "objects_per_s": n / seconds,
            }
        )

        made = make_histories(engine, "fold", n, r, frames)
        seconds, report = timed_pass(engine, args.batch)
        rows.append(
            {
                "phase": "3. fold, then delete (no snapshots)",
                "objects": n,
                "log_records": report.log_records,
                "snapshots_written": report.folded,
                "seconds": seconds,
                "records_per_s": report.log_records / seconds,
                "objects_per_s": n / seconds,
            }
        )
        assert report.folded == n and report.log_records == n * r, report

        make_histories(engine, "unnest", n, r, frames)
        seconds = unnest_delete(engine, "unnest", n, r, args.batch)
        rows.append(
            {
                "phase": "4a. the same deletes, one unnest statement per batch",
                "objects": n,
                "log_records": n * r,
                "seconds": seconds,
                "records_per_s": n * r / seconds,
                "objects_per_s": n / seconds,
            }
        )
        dropped = partition_drop(engine, n, r, update)
        rows.append(
            {
                "phase": "4b. a day's partition of the same rows, dropped",
                "objects": n,
                "log_records": n * r,
                "seconds": dropped["drop_s"],
                "records_per_s": n * r / dropped["drop_s"],
            }
        )
    finally:
        engine.dispose()
        drop_database(admin_url, db_name)

    title = f"Retention on PostgreSQL: compaction passes over {n:,} objects x {r} log records"
    print_table(title, COLUMNS, rows)
    print_table("Owners' shipments (one-row records to 100 other objects)", SHIP_COLUMNS, ship_rows)
    for note in notes:
        print(f"- {note}")
    write_result(
        "retention",
        argv,
        {"title": title, "columns": COLUMNS, "rows": rows, "shipments": ship_rows, "notes": notes},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
