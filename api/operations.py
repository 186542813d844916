"""HTTP for an operator's actions on an object's state: export, import, restore, delete.

The actions themselves are `StateAdmin`'s (objects/state/admin.py); this module
reads and checks the request (an import's file into a temporary file, api/uploads.py),
runs the action off the event loop, and then has the scheduler's time index follow
the object's new alarms.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse

from solo.api.bodies import parse_restore_point, read_body
from solo.api.calls import CallService
from solo.api.errors import UnsupportedMediaType
from solo.api.uploads import body_in_temporary_file
from solo.objects.context import wall_clock_ms
from solo.objects.coordination.alarm_queue import AsyncAlarmQueue
from solo.objects.errors import ObjectNotFound
from solo.objects.naming import Address
from solo.objects.registry import ClassRegistry
from solo.objects.settings import Settings
from solo.objects.state.admin import StateAdmin
from solo.objects.state.alarm_index import Due

IMPORT_CONTENT_TYPE = "application/octet-stream"
SEQ_HEADER = "Solo-Seq"
EXPORT_CHUNK_BYTES = 256 * 1024


def content_disposition(class_name: str, name: str) -> str:
    """attachment; an ASCII fallback filename and the exact one (RFC 6266 / 5987)."""
    filename = f"{class_name}-{name}.sqlite"
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


class StateOperations:
    def __init__(
        self,
        settings: Settings,
        registry: ClassRegistry,
        admin: StateAdmin,
        calls: CallService,
        alarm_queue: AsyncAlarmQueue,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.admin = admin
        self.calls = calls
        self.alarm_queue = alarm_queue
        self.max_import_bytes = settings.max_import_bytes

    async def _announce(self, address: Address, due: list[Due]) -> None:
        """After the state (and with it the alarm index) was replaced or deleted: the scheduler's
        Redis entries follow, so that no old entry fires late, early or for a deleted object."""
        await self.alarm_queue.announce(address.object_id, address.class_name, address.name, due, wall_clock_ms())

    async def export(self, request: Request) -> StreamingResponse:
        return await self.export_response(self.calls.addressed(request))

    async def export_response(self, address: Address) -> StreamingResponse:
        """The object's state as a download (the console's export button too)."""
        seq, image = await asyncio.to_thread(self.admin.export, address)

        async def chunks() -> AsyncIterator[bytes]:
            view = memoryview(image)
            for start in range(0, len(view), EXPORT_CHUNK_BYTES):
                yield bytes(view[start : start + EXPORT_CHUNK_BYTES])

        return StreamingResponse(
            chunks(),
            media_type=IMPORT_CONTENT_TYPE,
            headers={
                "Content-Length": str(len(image)),
                "Content-Disposition": content_disposition(address.class_name, address.name),
                SEQ_HEADER: str(seq),
            },
        )

    async def import_(self, request: Request) -> JSONResponse:
        address = self.calls.addressed(request)
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != IMPORT_CONTENT_TYPE:
            raise UnsupportedMediaType(
                f"an import's body is the raw .sqlite file as {IMPORT_CONTENT_TYPE}, not {media_type or 'none'}"
            )
        limit = self.max_import_bytes
        too_large = f"the file is larger than SOLO_MAX_IMPORT_BYTES ({limit} bytes)"
        async with body_in_temporary_file(request, limit, too_large) as path:
            replaced = await asyncio.to_thread(self.admin.import_file, address, path, self.registry)
        await self._announce(address, replaced.alarms)
        return JSONResponse({"seq": replaced.seq})

    async def restore(self, request: Request) -> JSONResponse:
        address = self.calls.addressed(request)
        point = parse_restore_point(await read_body(request, self.settings.max_body_bytes))
        replaced = await asyncio.to_thread(self.admin.restore, address, point)
        await self._announce(address, replaced.alarms)
        return JSONResponse({"seq": replaced.seq, "restored_from": replaced.restored_from})

    async def delete(self, request: Request) -> JSONResponse:
        await self.delete_object(self.calls.addressed(request, served=False))  # the state alone: any class
        return JSONResponse({"deleted": True})

    async def delete_object(self, address: Address) -> None:
        # Queued calls stay in the mailbox: they run on the empty object. The alarm index rows
        # go with the state (same transaction); the scheduler's entries are removed after, so
        # that no fire brings the deleted object back.
        try:
            due = await asyncio.to_thread(self.admin.delete, address)
        except ObjectNotFound:
            self.registry.get(address.class_name)  # a class nobody has heard of: unknown_class
            raise
        await self._announce(address, due)
