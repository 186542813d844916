"""``self.sql``: a sqlite3-style handle on the object's own database.

User code may read and write its own tables freely, but may not control
transactions (each call already runs in its own savepoint, and the batch commit
is solo's) and may not touch solo's own tables (``_solo_*``: call records, the
epoch, storage, alarms, the outbox), which only solo's code reaches, through
``self.storage``, schedules and calls.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

# What sqlite3 binds: a sequence for `?` placeholders, a mapping for `:name` ones.
Parameters = Sequence[Any] | Mapping[str, Any]

# Statements that would break the call's savepoint, the batch commit or the WAL layout.
_DENIED_ACTIONS = {sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT, sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH}
_DENIED_PRAGMAS = {
    "journal_mode",
    "locking_mode",
    "wal_autocheckpoint",
    "wal_checkpoint",
    "synchronous",
    "writable_schema",
}


SOLO_TABLE_PREFIX = "_solo_"

# Every statement of user code starts with this comment. sqlite3 reuses a prepared statement
# by its exact text, without asking the authorizer again: a user statement must never be
# taken for one of solo's own, prepared while its tables were allowed.
_USER_STATEMENT = "/* user */ "


class UserCodeGuard:
    """SQLite authorizer that is strict only while user code runs, and strictest for its own SQL."""

    def __init__(self) -> None:
        self.user_code_running = False
        self.user_statement = False  # the statement being prepared is the user's (not storage's or solo's)
        self.denied: str | None = None  # why the last statement was refused, for its error message

    def __call__(self, action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None) -> int:
        if not self.user_code_running:
            return sqlite3.SQLITE_OK
        if action in _DENIED_ACTIONS:
            return self._deny("transactions belong to solo: every call runs in its own savepoint")
        if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in _DENIED_PRAGMAS:
            return self._deny(f"PRAGMA {arg1} is solo's")
        if self.user_statement:
            for name in (arg1, arg2):
                if name and name.lower().startswith(SOLO_TABLE_PREFIX):
                    return self._deny(f"{name} is one of solo's own tables")
        return sqlite3.SQLITE_OK

    def _deny(self, reason: str) -> int:
        self.denied = reason
        return sqlite3.SQLITE_DENY

    def user_sql(self, run: Callable[[str], T], sql: str) -> T:
        """Prepare and run a statement of user code under the strict rules."""
        self.user_statement, self.denied = True, None
        try:
            return run(_USER_STATEMENT + sql)
        except sqlite3.DatabaseError as exc:
            if self.denied is None:
                raise
            raise type(exc)(f"{exc}: {self.denied}") from None
        finally:
            self.user_statement = False


class SqlHandle:
    """execute / executemany on the object's connection; rows work by index and by column name."""

    def __init__(self, connection: sqlite3.Connection, guard: UserCodeGuard) -> None:
        self._connection = connection
        self._guard = guard

    def execute(self, sql: str, parameters: Parameters = ()) -> sqlite3.Cursor:
        return self._guard.user_sql(lambda s: self._connection.execute(s, parameters), sql)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Parameters]) -> sqlite3.Cursor:
        return self._guard.user_sql(lambda s: self._connection.executemany(s, seq_of_parameters), sql)

    def cursor(self) -> UserCursor:
        return UserCursor(self._connection.cursor(), self._guard)

    @property
    def total_changes(self) -> int:
        return self._connection.total_changes


class UserCursor:
    """A sqlite3 cursor whose statements are user code's (see UserCodeGuard)."""

    def __init__(self, cursor: sqlite3.Cursor, guard: UserCodeGuard) -> None:
        self._cursor = cursor
        self._guard = guard

    def execute(self, sql: str, parameters: Parameters = ()) -> UserCursor:
        self._guard.user_sql(lambda s: self._cursor.execute(s, parameters), sql)
        return self

    def executemany(self, sql: str, seq_of_parameters: Iterable[Parameters]) -> UserCursor:
        self._guard.user_sql(lambda s: self._cursor.executemany(s, seq_of_parameters), sql)
        return self

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)

    def __getattr__(self, name: str) -> Any:  # fetchone, fetchall, description, rowcount, lastrowid, close...
        return getattr(self._cursor, name)


def split_statements(script: str) -> list[str]:
    """Split an SQL script into complete statements (quotes and comments respected by SQLite).

    Split at every ';' that ends a complete statement, not only at line ends: several
    statements may share a line, and sqlite3 executes one statement at a time.
    """
    statements, current = [], ""
    *pieces, tail = script.split(";")
    for piece in pieces:
        current += piece + ";"
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    current += tail
    if current.strip():
        statements.append(current.strip())
    return [s for s in statements if s.rstrip(";").strip()]
