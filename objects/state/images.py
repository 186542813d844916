"""Imported database files: checked before they become an object's state.

An imported file is data from outside: it is opened only in memory or in a
private temporary file, with nothing in it run as code, and refused with
InvalidImage unless it is a sound SQLite database whose schema this code knows.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from solo.objects.errors import InvalidImage
from solo.objects.state.wal import page_size_of, plain_file


def check_image(image: bytes, known_migrations: int) -> None:
    """An importable image: a sound SQLite file whose schema this code knows."""
    try:
        page_size_of(image)
    except Exception as exc:
        raise InvalidImage(f"not an SQLite database: {exc}") from None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "import.sqlite"
        path.write_bytes(image)
        try:
            conn = sqlite3.connect(path)
            try:
                verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
                version = 0
                has_meta = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_solo_meta'"
                ).fetchone()
                if has_meta:
                    row = conn.execute("SELECT value FROM _solo_meta WHERE key = 'schema_version'").fetchone()
                    version = int(row[0]) if row else 0
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            raise InvalidImage(f"not a readable SQLite database: {exc}") from None
    if verdict != "ok":
        raise InvalidImage(f"integrity check failed: {verdict}")
    if version > known_migrations:
        raise InvalidImage(f"the file has schema version {version}; this code knows {known_migrations} migrations")


def without_epoch_stamp(image: bytes) -> bytes:
    """Drop the fencing epoch a file carries from the object it came from.

    Epochs belong to the object being written, not to the file: an imported file
    stamped with its source's (higher) epoch would make the target's next owner
    refuse it as "claimed by a later epoch". Nothing else changes; a file without
    a stamp is returned as it is.
    """
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(plain_file(image))
        conn.execute("PRAGMA trusted_schema=OFF")
        has_meta = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_solo_meta'").fetchone()
        if not has_meta or not conn.execute("SELECT 1 FROM _solo_meta WHERE key = 'epoch'").fetchone():
            return image
        with conn:
            conn.execute("DELETE FROM _solo_meta WHERE key = 'epoch'")
        return conn.serialize()
    except sqlite3.Error as exc:
        raise InvalidImage(f"cannot read solo's metadata in the file: {exc}") from None
    finally:
        conn.close()
