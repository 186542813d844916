"""Durable state without a shared database: object images rebuilt from WAL frames, and imported images checked.

Shipping, restoring and fencing through a shared database are in tests/contract/test_durable_state.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from solo.objects.errors import InvalidImage
from solo.objects.state.images import check_image
from solo.objects.state.wal import WalReader, apply_frames


def test_a_rebuilt_image_is_byte_identical_to_the_live_database_across_checkpoints(tmp_path):
    path = tmp_path / "a.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    reader, image = WalReader(path), bytearray()

    def ship() -> None:
        frames = reader.read_committed()
        if frames:
            apply_frames(image, frames.data, frames.page_size)

    conn.execute("CREATE TABLE t (x)")
    ship()
    for i in range(40):
        conn.execute("INSERT INTO t VALUES (?)", (str(i) * 200,))
        ship()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    reader.forget_position()
    for i in range(40):
        conn.execute("UPDATE t SET x = x || 'y' WHERE rowid = ?", (i,))
        ship()
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")  # the next writer restarts the log with new salts
    conn.execute("DELETE FROM t WHERE rowid % 2 = 0")
    ship()
    assert bytes(image) == conn.serialize()
    conn.close()


@pytest.mark.parametrize("rows", [1, 15, 16, 17, 200])
def test_a_commit_of_any_size_is_read_whole_up_to_its_commit_frame(tmp_path, rows):
    # Given commits of one page up to far more than the reader's first read (64 KiB, 16 frames of 4 KiB)
    path = tmp_path / "a.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    reader, image = WalReader(path), bytearray()
    conn.execute("CREATE TABLE t (x)")
    apply_frames(image, reader.read_committed().data, 4096)
    for _ in range(2):
        # When one transaction writes `rows` pages' worth
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO t VALUES (?)", [(bytes(4000),) for _ in range(rows)])
        conn.execute("COMMIT")
        frames = reader.read_committed()
        # Then every frame of it is read, and nothing is left for the next read
        assert frames is not None
        apply_frames(image, frames.data, frames.page_size)
        assert bytes(image) == conn.serialize()
        assert reader.read_committed() is None
    conn.close()


def test_an_import_must_be_a_sound_database_this_code_knows(tmp_path):
    with pytest.raises(InvalidImage):
        check_image(b"not a database at all", 2)
    path = tmp_path / "x.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE _solo_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID")
    conn.execute("INSERT INTO _solo_meta VALUES ('schema_version', 5)")
    conn.commit()
    conn.close()
    with pytest.raises(InvalidImage, match="schema version 5"):
        check_image(Path(path).read_bytes(), 2)
    check_image(Path(path).read_bytes(), 5)
