"""One autocommitted statement run by the driver (psycopg) on a connection of an engine's pool.

For the statement every warm call runs once (the shipment, state/store.py), and the one every
activation runs once (the takeover, state/catalog.py). Through
SQLAlchemy's `Connection` it cost about as much of the worker's CPU as psycopg's own work
(docs/adr/0017-shipments-through-the-driver.md): a Connection made and closed, the isolation
level set and reset, events dispatched, a result object built. Here the pool still hands out,
takes back and recycles the connection, so everything else that uses the engine finds it as
before; only autocommit is switched on for the statement and off again, as
SQLAlchemy's AUTOCOMMIT option does (psycopg's rollback on return is then a no-op).

Errors are raised as SQLAlchemy raises them (`sa.exc.OperationalError` and its kin), so that
callers tell an unreachable database from other failures as they do for every other
statement; a connection the failure left closed or broken is invalidated with every one opened
before it, as SQLAlchemy does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

_CURSOR = "solo_driver_cursor"  # in a pooled connection's `info`
T = TypeVar("T")


class DriverStatements:
    """Autocommitted statements on `engine`'s pooled connections, through their driver cursors."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dialect = engine.dialect
        self._dbapi_error = engine.dialect.loaded_dbapi.Error

    def execute(self, statement: str, parameters: Mapping[str, object]) -> int:
        """Run it; the rows it changed (the driver's rowcount)."""
        return self._run(statement, parameters, _rowcount)

    def first_column(self, statement: str, parameters: Mapping[str, object]) -> list[Any]:
        """Run it; the first column of every row it returned."""
        return self._run(statement, parameters, _first_column)

    def first_row(self, statement: str, parameters: Mapping[str, object]) -> tuple[Any, ...] | None:
        """Run it; the first row it returned, or None."""
        return self._run(statement, parameters, _first_row)

    def _run(self, statement: str, parameters: Mapping[str, object], result: Callable[[Any], T]) -> T:
        try:
            pooled = self.engine.raw_connection()
        except self._dbapi_error as exc:
            raise self._wrapped(statement, parameters, exc, invalidated=False) from exc
        driver = pooled.driver_connection
        assert driver is not None
        try:
            driver.autocommit = True
            try:
                # One cursor per connection, kept with it (the pool forgets it with the connection):
                # making and closing one per shipment cost about a tenth of the statement's CPU.
                cursor = pooled.info.get(_CURSOR)
                if cursor is None:
                    cursor = pooled.info[_CURSOR] = driver.cursor()
                cursor.execute(statement, parameters)
                return result(cursor)
            finally:
                if not (driver.closed or driver.broken):
                    driver.autocommit = False  # as the pool's other users expect it
        except self._dbapi_error as exc:
            gone = self._dialect.is_disconnect(exc, driver, None)
            if gone:
                # As SQLAlchemy's Connection does on a disconnect: this connection and every one opened
                # before it are replaced, so the first statement after the server is back finds fresh
                # ones (a private method of the pool, SQLAlchemy's version being pinned).
                self.engine.pool._invalidate(pooled, exc)
            raise self._wrapped(statement, parameters, exc, invalidated=gone) from exc
        finally:
            pooled.close()

    def _wrapped(
        self, statement: str, parameters: Mapping[str, object], exc: Exception, *, invalidated: bool
    ) -> BaseException:
        # The parameters carry an object's pages: never in a message or a log line.
        return sa.exc.DBAPIError.instance(
            statement,
            dict(parameters),
            exc,
            self._dbapi_error,
            hide_parameters=True,
            connection_invalidated=invalidated,
            dialect=self._dialect,
        )


def _rowcount(cursor: Any) -> int:
    return int(cursor.rowcount)


def _first_row(cursor: Any) -> tuple[Any, ...] | None:
    row = cursor.fetchone()
    return None if row is None else tuple(row)


def _first_column(cursor: Any) -> list[Any]:
    return [row[0] for row in cursor.fetchall()]
