"""Experimental changes to the worker, for bench/whatif.py only: never imported by solo itself.

Python imports `sitecustomize` at start-up from PYTHONPATH; bench/whatif.py
puts this directory first on a worker's PYTHONPATH and names the changes in
BENCH_WHATIF (comma-separated). Each one patches a module right after it is
first imported:

  snapshot-floor  no snapshot until the log since the last one exceeds 1 MiB
                  (today: as soon as it exceeds the database, every other
                  commit for a small object)
  one-statement   ship a commit as one autocommitted statement on a plain
                  psycopg connection per thread (fenced UPDATE and INSERT in
                  one CTE): one round trip instead of three, no SQLAlchemy
                  statement building per shipment
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import threading

CHANGES = {c for c in os.environ.get("BENCH_WHATIF", "").split(",") if c}
SNAPSHOT_FLOOR_BYTES = 1 << 20

ONE_STATEMENT_SHIP = """
WITH moved AS (
  UPDATE objects SET head_seq = %(seq)s, log_bytes = log_bytes + %(size)s
  WHERE id = %(id)s AND epoch = %(epoch)s AND head_seq = %(seq)s - 1 AND NOT deleted
  RETURNING id
)
INSERT INTO object_log (object_id, seq, epoch, page_size, db_pages, frames, created_at)
SELECT id, %(seq)s, %(epoch)s, %(page_size)s, %(db_pages)s, %(frames)s, clock_timestamp() FROM moved
"""


def patch_shipping(module) -> None:
    if "snapshot-floor" in CHANGES:
        snapshot = module.LogShipper._snapshot

        def _snapshot(self, conn):
            if self.log_bytes >= SNAPSHOT_FLOOR_BYTES:
                snapshot(self, conn)

        module.LogShipper._snapshot = _snapshot


def patch_statestore(module) -> None:
    if "one-statement" in CHANGES:
        import psycopg

        local = threading.local()
        ship = module.StateStore.ship

        def one_statement_ship(self, object_id, epoch, seq, frames, alarms=None):
            if alarms is not None:  # alarm rows need the full transaction
                return ship(self, object_id, epoch, seq, frames, alarms)
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True, prepare_threshold=0)
            values = {
                "seq": seq,
                "size": len(frames.data),
                "id": object_id,
                "epoch": epoch,
                "page_size": frames.page_size,
                "db_pages": frames.db_pages,
                "frames": frames.data,
            }
            return conn.execute(ONE_STATEMENT_SHIP, values).rowcount == 1

        module.StateStore.ship = one_statement_ship


PATCHES = {"objects.shipping": patch_shipping, "objects.statestore": patch_statestore}


class PatchAfterImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in PATCHES:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            PATCHES[name](module)

        spec.loader.exec_module = exec_module
        return spec


if CHANGES:
    sys.meta_path.insert(0, PatchAfterImport())
