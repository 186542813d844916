"""SQLite write-ahead log frames: read what a commit appended, and apply frames to an image.

WAL layout (big-endian): a 32-byte header (magic, version, page size,
checkpoint sequence, salt-1, salt-2, checksums), then frames of a 24-byte
header (page number, database size in pages for a commit frame else 0,
salt-1, salt-2, checksums) followed by one page. When SQLite restarts the log
after a checkpoint it writes a new header with new salts from offset 0;
frames left over from the previous generation carry the old salts.

Shipping reads, after each COMMIT on the object's only connection, every
frame from where it stopped last time up to the last commit frame. Restoring
applies shipped frames to a database image in order: page by page, and
truncating to the database size at each commit frame.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from solo.objects.errors import WalFormatError

WAL_HEADER_BYTES = 32
FRAME_HEADER_BYTES = 24
_HEADER = struct.Struct(">IIIIII")  # magic, version, page size, checkpoint seq, salt-1, salt-2
_FRAME = struct.Struct(">IIII")  # page number, db size after commit, salt-1, salt-2
# What read_committed reads before it asks for the file's size: each system call lets go of the
# interpreter lock, and a commit of a few pages is far smaller. Below glibc's threshold for
# mapping an allocation of its own (128 KiB), so the buffer comes from the heap.
_FIRST_READ_BYTES = 64 * 1024


@dataclass(frozen=True)
class Frames:
    """Committed frames read from a WAL: headers and pages, concatenated as in the file."""

    data: bytes
    page_size: int
    db_pages: int  # database size after the last commit in `data`

    @property
    def count(self) -> int:
        return len(self.data) // (FRAME_HEADER_BYTES + self.page_size)


class WalReader:
    """Remembers how far the log of one database has been read."""

    def __init__(self, database_path: Path) -> None:
        self.wal_path = Path(f"{database_path}-wal")
        self._salts: tuple[int, int] | None = None
        self._offset = WAL_HEADER_BYTES

    def read_committed(self) -> Frames | None:
        """Frames appended since the last call, up to the last commit frame; None if there are none."""
        # Plain descriptor calls, not open(): this runs after every commit, and a buffered file
        # object costs more than the few system calls it wraps.
        try:
            wal = os.open(self.wal_path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            header = os.pread(wal, WAL_HEADER_BYTES, 0)
            if len(header) < WAL_HEADER_BYTES:
                return None
            _magic, _version, page_size, _ckpt, salt1, salt2 = _HEADER.unpack_from(header)
            if (salt1, salt2) != self._salts:  # a new log generation: start from its first frame
                self._salts = (salt1, salt2)
                self._offset = WAL_HEADER_BYTES
            # Most commits' frames fit the first read; only a larger one asks the file's size for the rest.
            tail = os.pread(wal, _FIRST_READ_BYTES, self._offset)
            if len(tail) == _FIRST_READ_BYTES:
                rest = os.fstat(wal).st_size - self._offset - len(tail)
                if rest > 0:
                    tail += os.pread(wal, rest, self._offset + len(tail))
        finally:
            os.close(wal)
        frame_bytes = FRAME_HEADER_BYTES + page_size
        end = db_pages = 0
        for start in range(0, len(tail) - frame_bytes + 1, frame_bytes):
            _pgno, size_after, f_salt1, f_salt2 = _FRAME.unpack_from(tail, start)
            if (f_salt1, f_salt2) != self._salts:
                break  # left over from an earlier generation
            if size_after:
                end, db_pages = start + frame_bytes, size_after
        if end == 0:
            return None
        self._offset += end
        return Frames(tail[:end], page_size, db_pages)

    def forget_position(self) -> None:
        """After a checkpoint that truncated the log, the next read starts from a new header."""
        self._salts = None
        self._offset = WAL_HEADER_BYTES


def apply_frames(image: bytearray, frames: bytes, page_size: int) -> bytearray:
    """Write each frame's page into `image`; cut the image to size at every commit frame."""
    frame_bytes = FRAME_HEADER_BYTES + page_size
    if len(frames) % frame_bytes:
        raise WalFormatError(f"{len(frames)} bytes is not a whole number of {frame_bytes}-byte frames")
    for start in range(0, len(frames), frame_bytes):
        pgno, size_after, _s1, _s2 = _FRAME.unpack_from(frames, start)
        if pgno == 0:
            raise WalFormatError("frame for page 0")
        offset = (pgno - 1) * page_size
        if len(image) < offset:
            image.extend(bytes(offset - len(image)))
        image[offset : offset + page_size] = frames[start + FRAME_HEADER_BYTES : start + frame_bytes]
        if size_after:
            del image[size_after * page_size :]
    return image


def page_size_of(image: bytes) -> int:
    """The page size recorded in a database image's header (bytes 16-17; 1 means 65536)."""
    if len(image) < 100 or not image.startswith(b"SQLite format 3\x00"):
        raise WalFormatError("not an SQLite database image")
    size = struct.unpack_from(">H", image, 16)[0]
    return 65536 if size == 1 else size


def plain_file(image: bytes) -> bytes:
    """The image as a rollback-journal database: bytes 18-19 say WAL mode, meaningless without the log."""
    if len(image) < 20 or image[18:20] == b"\x01\x01":
        return image
    return image[:18] + b"\x01\x01" + image[20:]


def make_plain(path: Path) -> None:
    """plain_file in place, on a file of the caller's own that is an SQLite database (else WalFormatError).

    Opened as it was, a file marked WAL would have SQLite make a log and a shared-memory
    file beside it; as a rollback-journal file it is read and written where it is.
    """
    with open(path, "r+b") as file:
        header = file.read(100)
        page_size_of(header)
        if header[18:20] != b"\x01\x01":
            file.seek(18)
            file.write(b"\x01\x01")
