"""``self.shared``: the shared database, from inside an object, in step with the object's own state.

A batch's writes through it run in one shared-database transaction, and that
transaction is the one that ships the batch's commit (StateStore.ship): a call's
shared writes become visible exactly when its own state is durable, and never
if the call fails or its owner has been fenced off. Each call runs in a
savepoint and each statement in one of its own, so a failed statement, or a
failed call, undoes only itself.

Reads see committed data and this batch's own writes. Until the batch writes,
they use a short read-only connection, so a batch that only reads keeps the
one-statement shipment.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from solo.objects.errors import SharedValueRefused, SoloError


class SharedDatabase:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._writer: Connection | None = None  # the batch's transaction, once it has written
        self._call_savepoint: sa.engine.NestedTransaction | None = None
        self._in_call = False

    # -- user code ---------------------------------------------------------

    def query(self, sql: str, /, **params: Any) -> list[dict[str, Any]]:
        """The rows of a read (`:name` parameters), as dicts. Write with execute()."""
        if self._writer is not None:
            with self._writer.begin_nested(), _values_checked():
                return _rows(self._writer.execute(sa.text(sql), params))
        with self._engine.connect() as conn, _values_checked():
            if not self._sqlite:  # a write here would be lost with the connection: refuse it
                return _rows(conn.execution_options(postgresql_readonly=True).execute(sa.text(sql), params))
            conn.exec_driver_sql("PRAGMA query_only = ON")
            try:
                return _rows(conn.execute(sa.text(sql), params))
            finally:
                conn.exec_driver_sql("PRAGMA query_only = OFF")

    def execute(self, sql: str, /, **params: Any) -> int:
        """Run a write (`:name` parameters); it commits when this call's state does. Returns the rowcount."""
        conn = self._transaction()
        with conn.begin_nested(), _values_checked():
            return conn.execute(sa.text(sql), params).rowcount

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]], /) -> int:
        """Run one write for each mapping of parameters; returns the total rowcount."""
        if not rows:
            return 0
        conn = self._transaction()
        with conn.begin_nested(), _values_checked():
            return conn.execute(sa.text(sql), [dict(r) for r in rows]).rowcount

    # -- the instance's side -------------------------------------------------

    def begin_call(self) -> None:
        self._in_call = True

    def end_call(self, ok: bool) -> None:
        """Keep the call's shared writes (ok) or undo them, with the call's own."""
        self._in_call = False
        savepoint, self._call_savepoint = self._call_savepoint, None
        if savepoint is not None:
            savepoint.commit() if ok else savepoint.rollback()

    def take(self) -> Connection | None:
        """The open transaction with the batch's writes, for the shipment to carry and commit."""
        writer, self._writer = self._writer, None
        self._call_savepoint = None
        return writer

    def abort(self) -> None:
        """Undo the batch's shared writes (the batch failed, or the object is closing)."""
        self._in_call = False
        writer = self.take()
        if writer is not None:
            writer.close()  # rolls back

    # -- internals -------------------------------------------------------------

    def _transaction(self) -> Connection:
        if self._writer is None:
            conn = self._engine.connect()
            if self._sqlite:  # the driver would begin lazily and end at the first RELEASE
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.begin()
            self._writer = conn
        if self._in_call and self._call_savepoint is None:
            self._call_savepoint = self._writer.begin_nested()
        return self._writer


@contextmanager
def _values_checked() -> Iterator[None]:
    """The database's refusal of a statement's values, as solo's error (its message without the values)."""
    try:
        yield
    except sa.exc.DataError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
        raise SharedValueRefused(f"the shared database refused a value of the statement: {reason[:300]}") from None


def _rows(result: sa.CursorResult[*tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [dict(row) for row in result.mappings()] if result.returns_rows else []


class NoSharedDatabase:
    """Stands in where an object runs without a shared database (a local-only instance)."""

    def __getattr__(self, name: str) -> Any:
        raise SoloError("this object runs without a shared database")
