"""An object's SQLite connection: journal settings, no file locks, limits, defensive mode; and SQLite's heap limit.

The file is opened without file locks (OBJECT_VFS, below), one connection per file in a process
(_OpenFiles); anything else that reads it reads a copy (reading_copy).

What an object's SQL may ask for is decided by the authorizer (objects/sql.py). This module
sets what the connection itself enforces, whatever the statement:

- limits (``Connection.setlimit``): the longest string or blob, the longest statement, the
  deepest expression, and no attached database;
- SQLite's defensive mode (SQLITE_DBCONFIG_DEFENSIVE: no writes to virtual tables' shadow
  tables, no writable_schema, no schema_version writes) with fts3_tokenizer's pointer form
  off (SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER). Python 3.12 sets both with
  ``Connection.setconfig``; Python 3.11 has no such method, so SQLite's own
  ``sqlite3_auto_extension`` hook sets them, through ctypes, on the connections this module
  opens. Where neither is possible, ``open_connection`` reports it and the authorizer keeps
  fts5 (the one module whose shadow tables user SQL could reach) closed;
- every built-in function outside objects/sql.py's FUNCTIONS (fts3_tokenizer, load_extension,
  rtreenode, sqlite_compileoption_get...) replaced, on every object connection, by one that
  always fails: SQLite does not ask the authorizer about a column's DEFAULT expression, nor
  about the schema of an imported file, and these must not run there either.

The soft heap limit is process-wide in SQLite: a worker sets it once at start
(SOLO_SQLITE_SOFT_HEAP_BYTES, workers/process.py); user SQL may not change it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from solo.objects.sql import EXPR_DEPTH_LIMIT, FUNCTIONS, SQL_LENGTH_LIMIT, VALUE_LENGTH_LIMIT

log = logging.getLogger(__name__)

LIMITS = {
    sqlite3.SQLITE_LIMIT_LENGTH: VALUE_LENGTH_LIMIT,
    sqlite3.SQLITE_LIMIT_SQL_LENGTH: SQL_LENGTH_LIMIT,
    sqlite3.SQLITE_LIMIT_EXPR_DEPTH: EXPR_DEPTH_LIMIT,
    sqlite3.SQLITE_LIMIT_ATTACHED: 0,
}

# WAL mode: commits are not synced, checkpoints are (before a closed file is marked clean)
SYNCHRONOUS = "NORMAL"

# SQLite's "unix-none" VFS takes no file locks and keeps no list of open files. The default "unix" VFS
# walks a process-wide list of every database it holds open, under one mutex, on each open: with
# thousands of objects open, that walk was a worker's largest cost (ADR 0024). Nothing else may
# open an object's file: its worker's directory is the worker's alone (workers/datadir.py), and
# within the process _OpenFiles refuses a second connection to a file already open. With no
# shared memory in this VFS, WAL mode needs EXCLUSIVE locking: the WAL's index lives in the
# connection's heap, no -shm file is made, and a transaction takes no lock. An open object holds
# two descriptors: its file and its WAL.
OBJECT_VFS = "unix-none"

# sqlite3.h; Python 3.12 has them as sqlite3.SQLITE_DBCONFIG_*
_DBCONFIG_ENABLE_FTS3_TOKENIZER = 1004
_DBCONFIG_DEFENSIVE = 1010


def open_connection(path: Path) -> sqlite3.Connection:
    """The object's connection, in WAL mode, limited and (where this Python allows) defensive."""
    conn, _ = open_object_connection(path)
    return conn


def open_object_connection(path: Path) -> tuple[sqlite3.Connection, bool]:
    """open_connection, and whether the connection is in SQLite's defensive mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = _connect_defensive(path)
    try:
        defensive = _configure(conn)
        for limit, value in LIMITS.items():
            conn.setlimit(limit, value)
        for name, arguments in _functions_refused():
            conn.create_function(name, arguments, _refused_function)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")  # before the first read: no shared memory is asked for
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
        conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoint only frames that were shipped (state/shipper.py)
        conn.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        conn.close()
        raise
    return conn, defensive


@contextlib.contextmanager
def reading_copy(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to a copy of an object's file and WAL (for tests and diagnostics).

    Never a second connection to the file itself: one that closed last would checkpoint and
    remove the WAL under the object's own connection (OBJECT_VFS takes no locks that would tell)."""
    with tempfile.TemporaryDirectory(prefix="solo-copy-") as directory:
        copy = Path(directory) / path.name
        shutil.copyfile(path, copy)
        with contextlib.suppress(FileNotFoundError):
            shutil.copyfile(f"{path}-wal", f"{copy}-wal")
        conn = sqlite3.connect(copy)
        try:
            yield conn
        finally:
            conn.close()


def sync_file(path: Path) -> None:
    """fsync a closed database file: what a checkpoint made with synchronous=OFF wrote reaches the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def set_soft_heap_limit(limit_bytes: int) -> int:
    """SQLite's soft heap limit for this whole process (0: none); returns the one it replaced.

    Past it SQLite gives back cache memory before it takes more; it never fails an allocation.
    """
    conn = sqlite3.connect(":memory:")
    try:
        (previous,) = conn.execute(f"PRAGMA soft_heap_limit={int(limit_bytes)}").fetchone()
    finally:
        conn.close()
    return int(previous)


# Should this SQLite not list its functions: the ones that must never run.
_NEVER = (("fts3_tokenizer", 1), ("fts3_tokenizer", 2), ("load_extension", 1), ("load_extension", 2))
_refused_functions: list[tuple[str, int]] | None = None


def _functions_refused() -> list[tuple[str, int]]:
    """Every (name, number of arguments) of the built-in functions outside FUNCTIONS, listed once."""
    global _refused_functions
    if _refused_functions is None:
        conn = sqlite3.connect(":memory:")
        try:
            listed = conn.execute("SELECT DISTINCT name, narg FROM pragma_function_list").fetchall()
        except sqlite3.Error:
            listed = list(_NEVER)
        finally:
            conn.close()
        _refused_functions = sorted({(name, narg) for name, narg in listed if name.lower() not in FUNCTIONS})
    return _refused_functions


def _refused_function(*_args: Any) -> None:
    raise sqlite3.OperationalError("this function is not available to objects")


# -- one connection per file -------------------------------------------------------


class FileInUse(sqlite3.OperationalError):
    """The object's file is already open on another connection in this process."""


class _OpenFiles:
    """The object files this process holds open. With no file locks (OBJECT_VFS), two connections
    to one file would each keep their own WAL index and overwrite each other's frames; the second
    is refused instead, as a lock would have refused it."""

    _lock = threading.Lock()
    _paths: set[str] = set()

    @classmethod
    def take(cls, path: str) -> None:
        with cls._lock:
            if path in cls._paths:
                raise FileInUse(f"{path} is open on another connection in this process")
            cls._paths.add(path)

    @classmethod
    def give_back(cls, path: str) -> None:
        with cls._lock:
            cls._paths.discard(path)


class _ObjectConnection(sqlite3.Connection):
    """A connection that gives its file back to _OpenFiles when it closes."""

    solo_path = ""

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.solo_path:
                _OpenFiles.give_back(self.solo_path)
                self.solo_path = ""


def _connect(path: Path) -> sqlite3.Connection:
    key = os.path.abspath(path)
    _OpenFiles.take(key)
    try:
        conn = sqlite3.connect(
            f"file:{quote(key)}?vfs={OBJECT_VFS}",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            factory=_ObjectConnection,
        )
    except BaseException:
        _OpenFiles.give_back(key)
        raise
    conn.solo_path = key
    return conn


# -- defensive mode ----------------------------------------------------------------


def _connect_defensive(path: Path) -> sqlite3.Connection:
    if hasattr(sqlite3.Connection, "setconfig") or not _AutoExtension.install():
        return _connect(path)
    _AutoExtension.local.wanted, _AutoExtension.local.defensive = True, False
    try:
        return _connect(path)
    finally:
        _AutoExtension.local.wanted = False


def _configure(conn: sqlite3.Connection) -> bool:
    """Turn defensive mode on (and the pointer form of fts3_tokenizer off); whether it is on."""
    setconfig = getattr(conn, "setconfig", None)
    if setconfig is not None:  # Python 3.12+
        setconfig(_DBCONFIG_DEFENSIVE, True)
        setconfig(_DBCONFIG_ENABLE_FTS3_TOKENIZER, False)
        return bool(conn.getconfig(_DBCONFIG_DEFENSIVE))  # type: ignore[attr-defined]
    return bool(getattr(_AutoExtension.local, "defensive", False))


class _AutoExtension:
    """sqlite3_auto_extension: SQLite calls it for every connection this process opens.

    It configures only connections that open_object_connection opens, on the same
    thread, while `local.wanted` is set, and records in `local.defensive` that it did.
    Registered once per process; the callback is kept alive for the process's lifetime.
    """

    local = threading.local()
    _lock = threading.Lock()
    _callback: Any = None
    _available: bool | None = None

    @classmethod
    def install(cls) -> bool:
        with cls._lock:
            if cls._available is None:
                cls._available = cls._register()
            return cls._available

    @classmethod
    def _register(cls) -> bool:
        try:
            import _sqlite3  # the extension module; its library is the one sqlite3 uses

            library = ctypes.CDLL(_sqlite3.__file__)
            if library.sqlite3_libversion_number() != _version_number(sqlite3.sqlite_version_info):
                raise OSError("ctypes found another SQLite library than the sqlite3 module's")
            db_config = library.sqlite3_db_config
            db_config.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
            db_config.restype = ctypes.c_int
            entry_point = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)

            def configure(db: int, _error: int, _api: int) -> int:
                local = cls.local
                if not getattr(local, "wanted", False):
                    return 0
                defensive, tokenizer = ctypes.c_int(0), ctypes.c_int(1)
                ok = db_config(db, _DBCONFIG_DEFENSIVE, 1, ctypes.byref(defensive)) == 0
                ok = ok and db_config(db, _DBCONFIG_ENABLE_FTS3_TOKENIZER, 0, ctypes.byref(tokenizer)) == 0
                local.defensive = ok and defensive.value == 1 and tokenizer.value == 0
                return 0

            callback = entry_point(configure)
            library.sqlite3_auto_extension.argtypes = [ctypes.c_void_p]
            if library.sqlite3_auto_extension(ctypes.cast(callback, ctypes.c_void_p)) != 0:
                raise OSError("sqlite3_auto_extension failed")
        except (ImportError, OSError, AttributeError) as exc:
            log.warning("SQLite's defensive mode is not available (%s): fts5 is closed to objects' SQL", exc)
            return False
        cls._callback = callback
        return True


def _version_number(info: tuple[int, int, int]) -> int:
    major, minor, patch = info
    return major * 1_000_000 + minor * 1_000 + patch


def out_of_space(exc: BaseException) -> bool:
    """Whether `exc`, or an exception it was raised from, says the disk is full: SQLite's
    SQLITE_FULL (a statement or COMMIT that could not grow the file or its WAL) or ENOSPC
    from a write of solo's own (a file rebuilt at hydrate). Followed through user code that
    wrapped it in an error of its own."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sqlite3.Error) and getattr(current, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_FULL:
            return True
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        current = current.__cause__ or current.__context__
    return False
