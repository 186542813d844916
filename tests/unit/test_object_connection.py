"""An object's connection: no file locks, no shared-memory file, one connection per file in a process."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from solo.objects.runtime.connection import FileInUse, open_connection, reading_copy


def descriptors_on(path: Path) -> list[str]:
    """The files this process holds open beside (and including) `path`."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(path)):
            found.append(target)
    return sorted(found)


@pytest.fixture
def written(tmp_path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    """An object's file, open, with one committed row in table t."""
    path = tmp_path / "o.sqlite"
    conn = open_connection(path)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    yield path, conn
    conn.close()


def test_an_open_object_holds_its_file_and_its_wal_and_no_shared_memory_file(written):
    path, conn = written
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA locking_mode").fetchone()[0] == "exclusive"
    assert descriptors_on(path) == [str(path), f"{path}-wal"]
    assert not Path(f"{path}-shm").exists()
    conn.close()
    assert descriptors_on(path) == []


def test_a_second_connection_to_an_open_file_is_refused_until_the_first_closes(written):
    path, first = written
    with pytest.raises(FileInUse):
        open_connection(path)
    with pytest.raises(FileInUse):  # the same file by another spelling of its path
        open_connection(path.parent / "." / path.name)
    first.close()
    first.close()  # closing twice gives back nothing it does not hold
    second = open_connection(path)
    try:
        assert [tuple(row) for row in second.execute("SELECT x FROM t")] == [(1,)]
    finally:
        second.close()


def test_a_connection_that_fails_to_open_gives_its_file_back(tmp_path):
    path = tmp_path / "o.sqlite"
    path.write_bytes(b"not a database, long enough to have a header" * 4)
    with pytest.raises(sqlite3.DatabaseError):
        open_connection(path)
    path.unlink()
    open_connection(path).close()


def test_a_copy_reads_what_the_open_connection_committed_and_leaves_its_wal_alone(written):
    path, conn = written
    wal_before = Path(f"{path}-wal").read_bytes()
    with reading_copy(path) as copy:
        assert copy.execute("SELECT x FROM t").fetchall() == [(1,)]
    assert Path(f"{path}-wal").read_bytes() == wal_before
    conn.execute("INSERT INTO t VALUES (2)")
    with reading_copy(path) as copy:
        assert copy.execute("SELECT x FROM t").fetchall() == [(1,), (2,)]
