"""A snapshot row whose image is read from a file in chunks, never held in memory whole.

An import (up to SOLO_MAX_IMPORT_BYTES, 512 MiB) becomes one snapshot row. Bound as a
parameter, the image would be in memory several times over: the bytes, the driver's
copy, the client library's send buffer. Instead PostgreSQL takes the row by `COPY ...
FROM STDIN` in binary format, the image written into the stream piece by piece: the
process holds a chunk at a time. SQLite (the development shared database) takes a
zero-filled blob of the file's size, then has it written with incremental blob I/O; as
the image is not the table's last column, SQLite builds that zero-filled row in memory
while it inserts it (about twice the file, briefly, in SQLite's heap). Either way the row
is written on the caller's connection, in its transaction.
"""

from __future__ import annotations

import datetime as dt
import io
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from solo.objects.state.schema import snapshots_table

CHUNK_BYTES = 1024 * 1024

# PostgreSQL's binary COPY format: a signature, flags and header extension length; each row
# the count of its fields, each field its length and its value; -1 as the count at the end.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
_POSTGRES_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # timestamptz: microseconds since then
_COPY_SNAPSHOT = "COPY object_snapshots (object_id, seq, epoch, created_at, image) FROM STDIN (FORMAT BINARY)"


def insert_snapshot_file(
    conn: Connection, object_id: str, seq: int, epoch: int, path: Path, created_at: dt.datetime
) -> None:
    """Insert the snapshot (object_id, seq) whose image is the file at `path`."""
    with open(path, "rb") as file:
        size = _size_of(file)
        if conn.dialect.name == "postgresql":
            _copy_into_postgres(conn, object_id, seq, epoch, created_at, file, size)
        elif conn.dialect.name == "sqlite":
            _write_into_sqlite(conn, object_id, seq, epoch, created_at, file, size)
        else:  # no streaming known for the dialect: the image is read whole
            values = dict(object_id=object_id, seq=seq, epoch=epoch, image=file.read(), created_at=created_at)
            conn.execute(snapshots_table.insert().values(**values))


def _size_of(file: io.BufferedReader) -> int:
    file.seek(0, 2)
    size = file.tell()
    file.seek(0)
    return size


def _chunks(file: io.BufferedReader, size: int) -> Iterator[memoryview]:
    """Exactly `size` bytes of `file`, a buffer at a time (the buffer is reused: use each before the next)."""
    buffer = bytearray(CHUNK_BYTES)
    view = memoryview(buffer)
    left = size
    while left:
        read = file.readinto(view[: min(left, CHUNK_BYTES)])
        if not read:
            raise OSError(f"{file.name} ended {left} bytes short of its {size} bytes while it was stored")
        left -= read
        yield view[:read]


def _field(value: bytes) -> bytes:
    return struct.pack(">i", len(value)) + value


def _copy_into_postgres(
    conn: Connection, object_id: str, seq: int, epoch: int, created_at: dt.datetime, file: io.BufferedReader, size: int
) -> None:
    micros = (created_at - _POSTGRES_EPOCH) // dt.timedelta(microseconds=1)
    head = b"".join(
        [
            struct.pack(">h", 5),
            _field(object_id.encode()),
            _field(struct.pack(">q", seq)),
            _field(struct.pack(">q", epoch)),
            _field(struct.pack(">q", micros)),
            struct.pack(">i", size),  # the image's length; its bytes follow
        ]
    )
    driver: Any = conn.connection.driver_connection  # psycopg's, in the transaction `conn` began
    with driver.cursor() as cursor, cursor.copy(_COPY_SNAPSHOT) as copy:
        copy.write(_COPY_HEADER + head)
        for chunk in _chunks(file, size):
            copy.write(chunk)
        copy.write(_COPY_TRAILER)


def _write_into_sqlite(
    conn: Connection, object_id: str, seq: int, epoch: int, created_at: dt.datetime, file: io.BufferedReader, size: int
) -> None:
    values = dict(object_id=object_id, seq=seq, epoch=epoch, image=sa.func.zeroblob(size), created_at=created_at)
    rowid = conn.execute(snapshots_table.insert().values(**values)).lastrowid
    driver: Any = conn.connection.driver_connection  # sqlite3's, in the transaction `conn` began
    with driver.blobopen("object_snapshots", "image", rowid) as blob:
        for chunk in _chunks(file, size):
            blob.write(chunk)
