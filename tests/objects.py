"""Durable object classes used by the tests."""

from __future__ import annotations

import time
from typing import Literal

from objects import DurableObject, UserError, rpc


class Ledger(DurableObject):
    """Records when each call started and ended, to prove calls never overlap."""

    migrations = [
        "CREATE TABLE entries (seq INTEGER PRIMARY KEY AUTOINCREMENT, tag TEXT NOT NULL,"
        " started_ns INTEGER NOT NULL, ended_ns INTEGER NOT NULL)",
    ]

    def on_start(self) -> None:
        self.running = False

    @rpc
    def append(self, tag: str, sleep_ms: float = 0) -> int:
        if self.running:
            raise RuntimeError("overlapping calls")
        self.running = True
        try:
            started = time.monotonic_ns()
            if sleep_ms:
                time.sleep(sleep_ms / 1000)
            cursor = self.sql.execute(
                "INSERT INTO entries (tag, started_ns, ended_ns) VALUES (?, ?, ?)", (tag, started, time.monotonic_ns())
            )
            return cursor.lastrowid
        finally:
            self.running = False

    @rpc
    def entries(self) -> list[dict]:
        return [dict(r) for r in self.sql.execute("SELECT seq, tag, started_ns, ended_ns FROM entries ORDER BY seq")]


class Fragile(DurableObject):
    """Methods that fail in the ways a caller must be told about."""

    migrations = ["CREATE TABLE notes (text TEXT NOT NULL)"]

    @rpc
    def add(self, text: str) -> int:
        self.sql.execute("INSERT INTO notes VALUES (?)", (text,))
        return self.count()

    @rpc
    def add_then_fail(self, text: str, kind: Literal["user", "crash"] = "crash") -> None:
        self.sql.execute("INSERT INTO notes VALUES (?)", (text,))
        self.storage.put("last", text)
        if kind == "user":
            raise UserError("conflict: try later", status=409)
        raise ValueError("boom")

    @rpc
    def count(self) -> int:
        return self.sql.execute("SELECT count(*) FROM notes").fetchone()[0]

    @rpc
    def unsendable(self) -> dict:
        return {"when": object()}  # type: ignore[dict-item]

    @rpc
    def lone_surrogate(self, text: str) -> str:
        self.sql.execute("INSERT INTO notes VALUES (?)", (text,))
        return "\ud800"  # valid in Python, not encodable as UTF-8

    @rpc
    def slow(self, ms: int) -> int:
        time.sleep(ms / 1000)
        return ms


class Bulky(DurableObject):
    """Grows to any size, then changes one row: what one small update costs to ship."""

    migrations = [
        "CREATE TABLE filler (id INTEGER PRIMARY KEY, data BLOB NOT NULL)",
        "CREATE TABLE cell (id INTEGER PRIMARY KEY CHECK (id = 0), value INTEGER NOT NULL)",
        "INSERT INTO cell VALUES (0, 0)",
    ]

    @rpc
    def grow(self, kib: int) -> int:
        self.sql.executemany("INSERT INTO filler (data) VALUES (randomblob(1024))", [()] * kib)
        return self.sql.execute("SELECT count(*) FROM filler").fetchone()[0]

    @rpc
    def touch(self) -> int:
        self.sql.execute("UPDATE cell SET value = value + 1")
        return self.sql.execute("SELECT value FROM cell").fetchone()[0]
