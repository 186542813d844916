"""``self.sql``: a sqlite3-style handle on the object's own database.

User code may read and write freely but may not control transactions: each
call already runs in its own savepoint, and the batch commit is solo's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

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


class UserCodeGuard:
    """SQLite authorizer that is strict only while user code runs."""

    def __init__(self) -> None:
        self.user_code_running = False

    def __call__(self, action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None) -> int:
        if not self.user_code_running:
            return sqlite3.SQLITE_OK
        if action in _DENIED_ACTIONS:
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in _DENIED_PRAGMAS:
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK


class SqlHandle:
    """execute / executemany on the object's connection; rows work by index and by column name."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, parameters: Iterable[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        return self._connection.execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Iterable[Any] | dict[str, Any]]) -> sqlite3.Cursor:
        return self._connection.executemany(sql, seq_of_parameters)

    def cursor(self) -> sqlite3.Cursor:
        return self._connection.cursor()

    @property
    def total_changes(self) -> int:
        return self._connection.total_changes


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
