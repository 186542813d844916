"""An operator's lifecycle of an object: export, import, restore to a point in time, delete.

Every acknowledged commit is in the shared database before its reply, so these
handlers read and write the StateStore directly and never ask the owner.
Writing (import, restore) goes through ``StateStore.replace``, which moves the
object to a new epoch: a current owner's next shipment is refused, it drops the
object, and the next activation hydrates the new state. Delete leaves a
tombstone whose epoch fences the owner the same way.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import sqlite3
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import redis.asyncio
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse

from solo.api.alarms import AlarmListing
from solo.api.calls import Address, CallService
from solo.objects.context import wall_clock_ms
from solo.objects.coordination.alarm_queue import announcement
from solo.objects.coordination.keys import Keys
from solo.objects.definition import ClassRegistry
from solo.objects.errors import InvalidArguments, ObjectNotFound, PayloadTooLarge, SoloError
from solo.objects.settings import Settings
from solo.objects.state.catalog import Catalog
from solo.objects.state.store import InvalidImage, StateStore, check_image
from solo.objects.state.wal import plain_file

IMPORT_CONTENT_TYPE = "application/octet-stream"
SEQ_HEADER = "Solo-Seq"
EXPORT_CHUNK_BYTES = 256 * 1024
DEFAULT_MAX_IMPORT_BYTES = 1 << 30


class UnsupportedMediaType(SoloError):
    """Raised when an import's body is not declared as application/octet-stream."""

    code = "unsupported_media_type"


class OutOfRetention(SoloError):
    """Raised when a restore asks for a point the shared database no longer (or never) held."""

    code = "out_of_retention"


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


def content_disposition(class_name: str, name: str) -> str:
    """attachment; an ASCII fallback filename and the exact one (RFC 6266 / 5987)."""
    filename = f"{class_name}-{name}.sqlite"
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def parse_restore_point(body: bytes) -> tuple[str, Any]:
    """("seq", n) or ("at", aware UTC datetime) from a JSON body with exactly one of them."""
    try:
        point = json.loads(body) if body.strip() else None
    except (ValueError, RecursionError):
        raise InvalidArguments('the body must be JSON: {"seq": n} or {"at": "<ISO-8601 time>"}') from None
    if not isinstance(point, dict) or len(point) != 1 or not set(point) <= {"seq", "at"}:
        raise InvalidArguments('the body must be exactly one of {"seq": n} or {"at": "<ISO-8601 time>"}')
    if "seq" in point:
        seq = point["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise InvalidArguments(f"seq must be an integer, not {json.dumps(seq)[:40]}")
        return "seq", seq
    at = point["at"]
    try:
        when = dt.datetime.fromisoformat(at)
    except (TypeError, ValueError):
        raise InvalidArguments(f"at must be an ISO-8601 time, not {json.dumps(at)[:60]}") from None
    if when.tzinfo is None:  # a time without an offset is UTC, as every stored time
        when = when.replace(tzinfo=dt.UTC)
    return "at", when.astimezone(dt.UTC)


async def _read_limited(request: Request, limit: int, message: str) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(message)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(message)
    return bytes(body)


class Lifecycle:
    def __init__(
        self,
        settings: Settings,
        registry: ClassRegistry,
        catalog: Catalog,
        store: StateStore,
        calls: CallService,
        alarms: AlarmListing,
        client: redis.asyncio.Redis,
    ) -> None:
        self.settings = settings
        self.alarms = alarms
        self.redis = client
        self.alarms_due_key = Keys(settings.key_prefix).alarms_due
        self.registry = registry
        self.catalog = catalog
        self.store = store
        self.calls = calls
        self.max_import_bytes: int = getattr(settings, "max_import_bytes", DEFAULT_MAX_IMPORT_BYTES)

    def _address(self, request: Request) -> Address:
        return self.calls.address(request.path_params["class_name"], request.path_params["name"])

    @staticmethod
    def _not_found(address: Address) -> ObjectNotFound:
        return ObjectNotFound(f"{address.class_name}/{address.name} has no state (never called, or deleted)")

    # -- export --------------------------------------------------------------

    def _export_image(self, address: Address) -> tuple[int, bytes]:
        head = self.store.head(address.object_id)
        if head is None or head.seq == 0:
            raise self._not_found(address)
        try:
            image = self.store.image_at(address.object_id, head.seq)
        except RuntimeError:  # the log vanished under us: deleted meanwhile?
            if self.store.head(address.object_id) is None:
                raise self._not_found(address) from None
            raise
        return head.seq, plain_file(image)

    async def export(self, request: Request) -> StreamingResponse:
        address = self._address(request)
        seq, image = await asyncio.to_thread(self._export_image, address)

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

    # -- import --------------------------------------------------------------

    def _import_image(self, address: Address, image: bytes) -> int:
        cls = self.registry.get(address.class_name)
        check_image(image, len(cls.migrations))
        image = without_epoch_stamp(image)
        return self.store.replace(address.object_id, self.settings.namespace, address.class_name, address.name, image)

    async def import_(self, request: Request) -> JSONResponse:
        address = self._address(request)
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != IMPORT_CONTENT_TYPE:
            raise UnsupportedMediaType(
                f"an import's body is the raw .sqlite file as {IMPORT_CONTENT_TYPE}, not {media_type or 'none'}"
            )
        limit = self.max_import_bytes
        image = await _read_limited(request, limit, f"the file is larger than SOLO_MAX_IMPORT_BYTES ({limit} bytes)")
        before = await self.alarms.of_object(address.object_id)
        seq = await asyncio.to_thread(self._import_image, address, image)
        await self._update_time_index(address, before, await self.alarms.of_object(address.object_id))
        return JSONResponse({"seq": seq})

    # -- restore -------------------------------------------------------------

    def _restorable_from(self, object_id: str) -> int:
        """The earliest restorable sequence: 1 while the log from the start is kept, else the oldest snapshot."""
        if self.store.shipped_bytes(object_id, 1) > 0:
            return 1
        return self.store.oldest_seq(object_id)

    def _restore(self, address: Address, kind: str, point: Any) -> dict[str, int]:
        oid = address.object_id
        head = self.store.head(oid)
        if head is None:
            raise self._not_found(address)
        first = self._restorable_from(oid)
        if head.seq == 0 or first == 0:
            raise OutOfRetention(f"{address.class_name}/{address.name} has no restorable state yet")
        window = f"sequences {first} to {head.seq} can be restored"
        if kind == "at":
            seq = self.store.seq_at(oid, point)
            if seq < first:
                raise OutOfRetention(f"nothing restorable was committed at or before {point.isoformat()}; {window}")
        else:
            seq = point
            if not first <= seq <= head.seq:
                raise OutOfRetention(f"sequence {seq} is out of the retention window; {window}")
        try:
            image = self.store.image_at(oid, seq)
        except RuntimeError as exc:  # a gap in the log: retention removed part of it meanwhile
            raise OutOfRetention(f"sequence {seq} can no longer be rebuilt ({exc}); {window}") from None
        new_seq = self.store.replace(oid, self.settings.namespace, address.class_name, address.name, image)
        return {"seq": new_seq, "restored_from": seq}

    async def restore(self, request: Request) -> JSONResponse:
        address = self._address(request)
        limit = self.settings.max_body_bytes
        body = await _read_limited(request, limit, f"request body is larger than {limit} bytes")
        kind, point = parse_restore_point(body)
        before = await self.alarms.of_object(address.object_id)
        restored = await asyncio.to_thread(self._restore, address, kind, point)
        await self._update_time_index(address, before, await self.alarms.of_object(address.object_id))
        return JSONResponse(restored)

    # -- delete --------------------------------------------------------------

    async def delete(self, request: Request) -> JSONResponse:
        address = self._address(request)
        # Queued calls stay in the mailbox: they run on the empty object. The alarm index rows
        # go with the state (same transaction); the scheduler's entries are removed after, so
        # that no fire brings the deleted object back.
        before = await self.alarms.of_object(address.object_id)
        if not await asyncio.to_thread(self.store.delete, address.object_id):
            raise self._not_found(address)
        await self._update_time_index(address, before, [])
        return JSONResponse({"deleted": True})

    # -- the scheduler's time index ------------------------------------------

    async def _update_time_index(self, address: Address, before: list[dict], after: list[dict]) -> None:
        """After the state (and with it the alarm index) was replaced or deleted: the scheduler's
        Redis entries follow, so that no old entry fires late, early or for a deleted object."""
        due = [(a["name"], None) for a in before] + [(a["name"], a["next_ms"]) for a in after]
        horizon_ms = int(self.settings.alarm_horizon_s * 1000)
        add, drop = announcement(address.object_id, address.class_name, address.name, due, wall_clock_ms(), horizon_ms)
        pipe = self.redis.pipeline(transaction=False)
        if drop:
            pipe.zrem(self.alarms_due_key, *drop)
        if add:
            pipe.zadd(self.alarms_due_key, add)
        await pipe.execute()
