"""Imported database files: checked before they become an object's state.

An imported file is data from outside, never code. It is opened only as a
private temporary file the caller owns (never in a data directory), or in
memory, with ``PRAGMA trusted_schema=OFF`` and read-only while it is checked,
and refused with InvalidImage unless

- it is a sound SQLite database (``integrity_check``);
- solo's own tables (``_solo_*``), where present, are exactly the ones solo
  creates (objects/tables.py), and nothing else in the file is on them or names
  them: no trigger, view, index or table of the file's own. So no statement solo
  runs on its tables, here or later in a worker, can run anything the file brought;
- every row of solo's tables is one solo could have written for the object it
  is imported into (image_rows.py): the schema version is one this code knows,
  sends name their targets by the ids solo computes and wait for no reply,
  alarms call methods a schedule may call, outcomes and storage values parse.

Such a file is refused rather than repaired (solo's tables rebuilt from the rows
that pass): a file solo exported never holds any of this, so one that does was
made or edited by hand, and the operator learns what is wrong with it instead
of getting an object that silently differs from the file. The file that passes
is stored as it was sent, less its source's epoch stamp, which is removed only
after the checks (no trigger can fire on it then), and marked as a
rollback-journal file (wal.make_plain).

An import is checked where it lies on disk, through SQLite's page cache, so that
a file of hundreds of megabytes is never held in memory here.

User tables keep whatever triggers and views they have: they are the user's data,
and run only under the user-code guard of a worker (objects/sql.py).
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from solo.objects.alarms import AlarmRow
from solo.objects.calls import Call
from solo.objects.errors import InvalidImage, WalFormatError
from solo.objects.sql import SOLO_TABLE_PREFIX
from solo.objects.state import image_rows as rows
from solo.objects.state.wal import make_plain, page_size_of, plain_file
from solo.objects.tables import OPTIONAL_TABLES_DDL, SOLO_TABLES_DDL
from solo.objects.websockets import SOCKET_TABLES

Rules = rows.Rules


@dataclass(frozen=True)
class CheckedImport:
    """An importable file, parsed: solo's rows in it, for the object it becomes."""

    schema_version: int
    alarms: list[AlarmRow] = field(default_factory=list)
    outbox: list[Call] = field(default_factory=list)


def check_import(path: Path, rules: Rules) -> CheckedImport:
    """The file at `path` as the state of an object of `rules.cls`, or InvalidImage saying why not.

    `path` is the caller's own copy, and is changed: it is made a rollback-journal file,
    checked where it lies, and, once it has passed, its epoch stamp is removed. What is
    left there is what becomes the object's state.
    """
    with _opened_file(path) as conn:
        _check_sound(conn)
        present = _check_schema(conn)
        version = _schema_version(conn, present, rules.known_migrations)
        for key, value in _select(conn, present, rows.KV, "key, value"):
            rows.parse_kv(key, value)
        for call_id, payload, finished_ms in _select(conn, present, rows.CALLS, "call_id, payload, finished_ms"):
            rows.parse_call_record(call_id, payload, finished_ms)
        outbox = [
            rows.parse_outbox_row(call_id, call, created_ms, rules)
            for call_id, call, created_ms in _select(conn, present, rows.OUTBOX, "call_id, call, created_ms")
        ]
        alarms = [rows.parse_alarm(r, rules.cls) for r in _select(conn, present, rows.ALARMS, rows.ALARM_COLUMNS)]
        _strip_epoch(conn, present)
    return CheckedImport(version, alarms, outbox)


def check_image(image: bytes, known_migrations: int) -> None:
    """A sound SQLite file whose solo tables are solo's own and whose schema version this code knows.

    The checks on the file itself, without the rows that depend on the class (check_import).
    """
    with _opened(image) as conn:
        _check_sound(conn)
        _schema_version(conn, _check_schema(conn), known_migrations)


def check_schema_of(image: bytes) -> None:
    """Refuse a state whose solo tables carry anything solo did not create (restore of an old import)."""
    with _opened(image) as conn:
        _check_schema(conn)


def without_epoch_stamp(image: bytes) -> bytes:
    """Drop the fencing epoch a file carries from the object it came from.

    Epochs belong to the object being written, not to the file: an imported file
    stamped with its source's (higher) epoch would make the target's next owner
    refuse it as "claimed by a later epoch". Nothing else changes; a file without
    a stamp is returned as it is. A file with triggers on solo's tables is refused
    before anything is deleted.
    """
    with _opened(image) as conn:
        return conn.serialize() if _strip_epoch(conn, _check_schema(conn)) else image


# -- internals ---------------------------------------------------------------------------


@contextlib.contextmanager
def _opened(image: bytes) -> Iterator[sqlite3.Connection]:
    """The file in a private in-memory database, read-only, trusting no function its schema names."""
    try:
        page_size_of(image)
    except WalFormatError as exc:
        raise InvalidImage(f"not an SQLite database: {exc}") from None

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(":memory:", isolation_level=None)
        conn.execute("PRAGMA trusted_schema=OFF")
        conn.deserialize(plain_file(image))
        return conn

    with _guarded(connect) as conn:
        yield conn


@contextlib.contextmanager
def _opened_file(path: Path) -> Iterator[sqlite3.Connection]:
    """The caller's copy of a file, opened where it lies; otherwise as _opened.

    Only in rollback-journal mode, with the journal in memory: SQLite makes no file beside
    it, so removing the one file removes everything.
    """
    try:
        make_plain(path)
    except WalFormatError as exc:
        raise InvalidImage(f"not an SQLite database: {exc}") from None

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=rw", uri=True, isolation_level=None)
        conn.execute("PRAGMA trusted_schema=OFF")
        conn.execute("PRAGMA journal_mode=MEMORY")
        return conn

    with _guarded(connect) as conn:
        yield conn


@contextlib.contextmanager
def _guarded(connect: Callable[[], sqlite3.Connection]) -> Iterator[sqlite3.Connection]:
    """A connection to the file, read-only until _strip_epoch; any SQLite error is InvalidImage."""
    conn: sqlite3.Connection | None = None
    try:
        conn = connect()
        conn.execute("PRAGMA trusted_schema=OFF")  # per connection; again, to be plain about it
        conn.execute("PRAGMA query_only=ON")  # nothing is written while the file is checked
        yield conn
    except sqlite3.Error as exc:
        raise InvalidImage(f"not a readable SQLite database: {exc}") from None
    finally:
        if conn is not None:
            conn.close()


def _check_sound(conn: sqlite3.Connection) -> None:
    verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
    if verdict != "ok":
        raise InvalidImage(f"integrity check failed: {verdict}")


@functools.cache
def _solo_schema() -> dict[str, tuple[str, str, str | None]]:
    """name -> (type, table, sql) of every schema object solo creates, as SQLite records them."""
    conn = sqlite3.connect(":memory:")
    try:
        for ddl in (*SOLO_TABLES_DDL, *OPTIONAL_TABLES_DDL):
            conn.execute(ddl)
        return {name: (type_, table, sql) for type_, name, table, sql in _schema(conn)}
    finally:
        conn.close()


def _schema(conn: sqlite3.Connection) -> list[tuple[str, str, str, str | None]]:
    return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()


def _short(value: object) -> str:
    """A name or statement from the file, quoted, at most 200 characters."""
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _is_solo(name: object) -> bool:
    return isinstance(name, str) and name.lower().startswith(SOLO_TABLE_PREFIX)


def _check_schema(conn: sqlite3.Connection) -> set[str]:
    """The names of solo's tables present in the file, once nothing foreign is on or refers to them."""
    ours = _solo_schema()
    present: set[str] = set()
    for type_, name, table, sql in _schema(conn):
        if _is_solo(name) or _is_solo(table):
            if ours.get(name) == (type_, table, sql):
                present.add(name)
                continue
            if type_ == "trigger":
                raise InvalidImage(
                    f"trigger {_short(name)} on {str(table)[:200]}: solo's own tables (_solo_*) carry no triggers"
                )
            if name in ours:
                raise InvalidImage(f"solo's {ours[name][0]} {name} is not as solo creates it: {_short(sql)}")
            raise InvalidImage(
                f"{type_} {_short(name)} on {str(table)[:200]} is not one solo creates: only solo makes those (_solo_*)"
            )
        if sql is not None and SOLO_TABLE_PREFIX in sql.lower():
            raise InvalidImage(f"{type_} {_short(name)} refers to solo's own tables (_solo_*): nothing in a file may")
    return present


def _select(conn: sqlite3.Connection, present: set[str], table: str, columns: str) -> list[tuple[Any, ...]]:
    return conn.execute(f"SELECT {columns} FROM {table}").fetchall() if table in present else []


def _schema_version(conn: sqlite3.Connection, present: set[str], known_migrations: int) -> int:
    return rows.parse_meta(list(_select(conn, present, rows.META, "key, value")), known_migrations)


def _strip_epoch(conn: sqlite3.Connection, present: set[str]) -> bool:
    """Delete the epoch stamp, if the file has one, and the source's open WebSockets (True if
    anything went). After _check_schema: no trigger is on solo's tables, so the DELETEs run
    nothing of the file's. The sockets belong to the source's live connections, not its data."""
    stamped = rows.META in present and conn.execute("SELECT 1 FROM _solo_meta WHERE key = 'epoch'").fetchone()
    sockets = [t for t in SOCKET_TABLES if t in present and conn.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone()]
    if not stamped and not sockets:
        return False
    conn.execute("PRAGMA query_only=OFF")
    conn.execute("BEGIN")
    if stamped:
        conn.execute("DELETE FROM _solo_meta WHERE key = 'epoch'")
    for table in sockets:
        conn.execute(f"DELETE FROM {table}")
    conn.execute("COMMIT")
    return True
