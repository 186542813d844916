"""Durable state: what one small update ships, and how long a cold hydrate takes.

    .venv/bin/python -m bench.durability [--sizes-mb 1 50]

Runs the object model in-process against a fresh Postgres database
(SOLO_BENCH_POSTGRES_URL): for each size, grows a `Bulky` object to that size
through ordinary calls, ships a one-row update and records its log record
size, then hydrates the object on an empty data directory (restore from
snapshot + log, open, claim, migrations check, on_start) and times it.
Prints a table and writes bench/out/durability.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import admin_postgres_url, drop_database, fresh_database, goal, print_table, write_result
from solo.objects.calls import Call
from solo.objects.naming import new_call_id, object_id
from solo.objects.runtime.instance import ObjectInstance
from solo.objects.state.catalog import Catalog
from solo.objects.state.schema import make_engine
from solo.objects.state.store import StateStore
from tests.objects import Bulky


def activate(catalog: Catalog, store: StateStore, directory: Path, name: str) -> tuple[ObjectInstance, float]:
    oid = object_id("bench", "Bulky", name)
    started = time.perf_counter()
    takeover = catalog.take_over(oid, "bench", "Bulky", name, directory.name, known_schema=len(Bulky.migrations))
    instance = ObjectInstance(
        Bulky,
        object_id=oid,
        name=name,
        path=directory / f"{oid}.sqlite",
        epoch=takeover.epoch,
        store=store,
        head_seq=takeover.head_seq,
    )
    instance.hydrate()
    return instance, time.perf_counter() - started


def call(instance: ObjectInstance, method: str, **args):
    (outcome,) = instance.run_batch(
        [Call(new_call_id(), instance.object_id, "Bulky", instance.name, method, args)]
    ).outcomes
    assert outcome.ok, outcome.error
    return outcome.result


def measure(catalog: Catalog, store: StateStore, workdir: Path, size_mb: int) -> dict:
    name = f"bulky-{size_mb}mb-{uuid.uuid4().hex[:6]}"
    owner, _ = activate(catalog, store, workdir / "owner", name)
    for _ in range(size_mb):
        call(owner, "grow", kib=1024)
    call(owner, "touch")
    seq = owner.seq
    started = time.perf_counter()
    call(owner, "touch")
    update_s = time.perf_counter() - started
    shipped = store.shipped_bytes(owner.object_id, seq + 1)
    database_bytes = len(owner._conn.serialize())  # noqa: SLF001 - the owner's own view
    owner.close()
    head = store.head(owner.object_id)
    cold, hydrate_s = activate(catalog, store, workdir / f"cold-{size_mb}", name)
    assert call(cold, "touch") == 3
    cold.close()
    return {
        "size_mb": size_mb,
        "database_bytes": database_bytes,
        "one_row_update_shipped_bytes": shipped,
        "one_row_update_ms": round(update_s * 1000, 2),
        "hydrate_empty_dir_ms": round(hydrate_s * 1000, 1),
        "restored_from_snapshot_seq": head.snapshot_seq,
        "head_seq": head.seq,
    }


COLUMNS = [
    ("size_mb", "rows", ""),
    ("database_bytes", "SQLite file bytes", ","),
    ("one_row_update_shipped_bytes", "one-row update shipped, bytes", ","),
    ("one_row_update_ms", "update ms", ".2f"),
    ("hydrate_empty_dir_ms", "hydrate on an empty directory, ms", ",.1f"),
]
GOAL_SHIPPED_BYTES = 16 * 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="solo bench durability", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[1, 50])
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    admin_url = admin_postgres_url()
    db_name, db_url = fresh_database(admin_url)
    engine = make_engine(db_url)
    runs = []
    try:
        with tempfile.TemporaryDirectory(prefix="solo-durability-") as tmp:
            for size in args.sizes_mb:
                runs.append(measure(Catalog(engine), StateStore(engine), Path(tmp), size))
    finally:
        engine.dispose()
        drop_database(admin_url, db_name)
    for run in runs:
        run["size_mb"] = f"{run['size_mb']} MiB"
    title = "Durable state: bytes shipped per small update, hydrate time (object model in-process)"
    print_table(title, COLUMNS, runs)
    largest = max(r["one_row_update_shipped_bytes"] for r in runs)
    write_result(
        "durability",
        argv,
        {
            "title": title,
            "columns": COLUMNS,
            "rows": runs,
            "goals": [
                goal(
                    "shipped bytes of a one-row update, whatever the database size",
                    f"<= {GOAL_SHIPPED_BYTES:,} B",
                    largest,
                    "B",
                    largest <= GOAL_SHIPPED_BYTES,
                )
            ],
            "notes": [
                "A one-row update ships the row's page and the exactly-once record's pages, whatever the "
                "database size. Hydrate = catalog takeover + restore from snapshot and log + open + "
                "migrations check + on_start, in-process against Postgres on loopback (no HTTP, no Dramatiq: "
                "`bench/cold.py` measures the whole first call)."
            ],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
