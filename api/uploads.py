"""A request body too large to hold in memory, received into a temporary file as it arrives.

An import's body is a whole SQLite file, up to SOLO_MAX_IMPORT_BYTES (512 MiB). It is
written to a private file in the system's temporary directory (`TMPDIR`), a megabyte at
a time and off the event loop, and refused with PayloadTooLarge as soon as it passes the
limit: before anything is read when its Content-Length says so, else at the chunk that
crosses it. The file is removed when the block ends, however it ends: the work done, an
error, a refusal, or the client gone (Starlette raises ClientDisconnect from the stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.requests import Request

from solo.api.bodies import refuse_declared_excess
from solo.objects.errors import PayloadTooLarge

WRITE_BYTES = 1024 * 1024  # what is gathered from the stream before one write to the file


@contextlib.asynccontextmanager
async def body_in_temporary_file(request: Request, limit: int, too_large: str) -> AsyncIterator[Path]:
    """The body as a file of this block's own (`too_large`: the message of PayloadTooLarge)."""
    refuse_declared_excess(request, limit, too_large)
    descriptor, name = tempfile.mkstemp(prefix="solo-upload-")
    path = Path(name)
    try:
        with open(descriptor, "wb") as file:
            received = 0
            pending = bytearray()
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise PayloadTooLarge(too_large)
                pending += chunk
                if len(pending) >= WRITE_BYTES:
                    await asyncio.to_thread(file.write, pending)
                    pending = bytearray()
            await asyncio.to_thread(file.write, pending)
        yield path
    finally:
        # Also when the request was cancelled while a thread works on the file: that thread
        # keeps what it has open, or fails to open it; no file is left behind either way.
        path.unlink(missing_ok=True)
