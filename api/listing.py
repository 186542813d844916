"""``GET /v1/objects``: the objects of the tenant a request acts in, a page at a time.

Pages are keyset pages of the catalog in (class, name) order (Catalog.page: one range
of the address index however many objects there are), continued by ``cursor``, the
opaque ``next_cursor`` of the page before. Query parameters, all optional: ``class``
(objects of that class), ``prefix`` (names starting with it), ``limit`` (1 to 1000,
default 100) and ``cursor``. Each object is shown with what the catalog records (epoch,
schema version, state size, sequence, created and last active), what Redis knows now
(active or not, calls queued) and how many of its alarms are still to fire or failed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import builtins
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from solo.api.alarms import decimal
from solo.api.auth import acting_tenant
from solo.api.workers import ServedClasses
from solo.objects.coordination.leases import AsyncLeases
from solo.objects.coordination.mailbox import AsyncMailbox
from solo.objects.errors import InvalidArguments, InvalidName
from solo.objects.naming import MAX_NAME_CHARS, check_class_name, check_object_name
from solo.objects.state.alarm_index import AlarmIndex
from solo.objects.state.catalog import Catalog, ObjectInfo

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
PARAMETERS = ("class", "prefix", "limit", "cursor")


def encode_cursor(class_name: str, name: str) -> str:
    raw = json.dumps([class_name, name], ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """The (class, name) a cursor continues after; InvalidArguments for anything this API did not give."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        class_name, name = json.loads(raw)
        return check_class_name(class_name), check_object_name(name)
    except (binascii.Error, ValueError, TypeError, InvalidName):  # JSON and Unicode errors are ValueErrors
        raise InvalidArguments("cursor is not one this API gave: pass a page's next_cursor as it is") from None


def check_prefix(prefix: str) -> str:
    if len(prefix) > MAX_NAME_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in prefix):
        raise InvalidArguments(f"prefix must be at most {MAX_NAME_CHARS} characters, none of them control characters")
    return prefix


def listing_query(params: dict[str, str]) -> dict[str, Any]:
    """The query parameters as Catalog.page's arguments."""
    unknown = set(params) - set(PARAMETERS)
    if unknown:
        raise InvalidArguments(f"unknown query parameters: {', '.join(sorted(unknown))}")
    query: dict[str, Any] = {"limit": DEFAULT_LIMIT}
    if "class" in params:
        query["class_name"] = check_class_name(params["class"])
    if params.get("prefix"):
        query["prefix"] = check_prefix(params["prefix"])
    if "limit" in params:
        limit = decimal(params["limit"], MAX_LIMIT)
        if limit is None or limit < 1:
            raise InvalidArguments(f"limit must be an integer from 1 to {MAX_LIMIT}, not {params['limit'][:40]!r}")
        query["limit"] = limit
    if "cursor" in params:
        query["after"] = decode_cursor(params["cursor"])
    return query


class ObjectListing:
    def __init__(
        self,
        namespace: str,
        served: ServedClasses,
        catalog: Catalog,
        alarms: AlarmIndex,
        leases: AsyncLeases,
        mailbox: AsyncMailbox,
    ) -> None:
        self.namespace = namespace
        self.served = served
        self.catalog = catalog
        self.alarms = alarms
        self.leases = leases
        self.mailbox = mailbox

    async def list(self, request: Request) -> JSONResponse:
        query = listing_query(dict(request.query_params))
        objects, next_cursor = await self.page(acting_tenant(request), query)
        return JSONResponse({"objects": objects, "next_cursor": next_cursor})

    async def page(self, tenant: str, query: dict[str, Any]) -> tuple[builtins.list[dict[str, Any]], str | None]:
        """One page of the tenant's objects as the API shows them, and the cursor of the next (None: last)."""
        query = dict(query)
        limit = query.pop("limit")
        # One more than asked: whether another page follows, without an empty last page.
        rows = await asyncio.to_thread(lambda: self.catalog.page(self.namespace, tenant, limit=limit + 1, **query))
        page, more = rows[:limit], len(rows) > limit
        ids = [info.id for info in page]
        owners, depths = await self.leases.owners(ids), await self.mailbox.depths(ids)
        counts = await asyncio.to_thread(self.alarms.counts, ids)
        served = await self.served.classes()
        objects = [
            self.present(info, owner is not None, depth, counts.get(info.id, (0, 0)), info.class_name in served)
            for info, owner, depth in zip(page, owners, depths, strict=True)
        ]
        last = page[-1] if more else None
        return objects, encode_cursor(last.class_name, last.name) if last else None

    @staticmethod
    def present(info: ObjectInfo, active: bool, queued: int, alarms: tuple[int, int], served: bool) -> dict[str, Any]:
        return {
            "id": info.id,
            "class": info.class_name,
            "name": info.name,
            "tenant": info.tenant,
            "served": served,
            "active": active,
            "queued_calls": queued,
            "epoch": info.epoch,
            "schema_version": info.schema_version,
            "state_bytes": info.state_bytes,
            "seq": info.head_seq,
            "created_at": info.created_at.isoformat(),
            "last_active_at": info.last_active_at.isoformat(),
            "alarms_pending": alarms[0],
            "alarms_failed": alarms[1],
        }
