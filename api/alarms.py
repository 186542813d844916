"""``GET /v1/alarms``: pending, retrying, failed and orphaned alarms and schedules across the tenant's objects.

Read from the shared ``alarms`` index, which holds exactly what is durable.
Query parameters (all optional): ``due_before`` (epoch ms or an ISO-8601
time; only alarms due by then), ``class``, ``state`` (pending, retrying,
failed, orphaned) and ``limit`` (1-10000, default 1000). An alarm of a class this
API does not load is ``orphaned``: no worker running the same code can fire it.
``DELETE /v1/alarms?class=C`` removes those of a class no longer served.
"""

from __future__ import annotations

import asyncio
import builtins
import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from solo.api.auth import acting_tenant
from solo.api.errors import ClassServed
from solo.objects.context import wall_clock_ms
from solo.objects.coordination.alarm_queue import AsyncAlarmQueue
from solo.objects.errors import InvalidArguments
from solo.objects.naming import check_class_name
from solo.objects.registry import ClassRegistry
from solo.objects.state.alarm_index import STATES, AlarmIndex

MAX_LIMIT = 10_000
MAX_TIME_MS = 2**63 - 1  # the shared index's times are 64-bit integers


def decimal(text: str, maximum: int) -> int | None:
    """The number ASCII digits spell, if it is at most `maximum`; else None.

    Not str.isdigit(), which is true of "²" and "١" too, nor int() alone, which refuses
    numbers of more than 4300 digits with a ValueError.
    """
    if not (text.isascii() and text.isdigit()):
        return None
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(maximum)) or int(digits) > maximum:
        return None
    return int(digits)


def parse_time_ms(raw: str, what: str) -> int:
    """Epoch milliseconds, or an ISO-8601 time (UTC when it has no offset)."""
    text = raw.strip()
    if text.isascii() and text.isdigit():
        ms = decimal(text, MAX_TIME_MS)
        if ms is None:
            raise InvalidArguments(f"{what} is out of range: epoch milliseconds are at most {MAX_TIME_MS}")
        return ms
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise InvalidArguments(f"{what} must be epoch milliseconds or an ISO-8601 time, not {raw[:60]!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


def listing_filters(params: dict[str, str]) -> dict[str, Any]:
    unknown = set(params) - {"due_before", "class", "state", "limit"}
    if unknown:
        raise InvalidArguments(f"unknown query parameters: {', '.join(sorted(unknown))}")
    filters: dict[str, Any] = {}
    if "due_before" in params:
        filters["due_before"] = parse_time_ms(params["due_before"], "due_before")
    if "class" in params:
        filters["class_name"] = check_class_name(params["class"])
    if "state" in params:
        if params["state"] not in STATES:
            raise InvalidArguments(f"state must be one of {', '.join(STATES)}, not {params['state'][:40]!r}")
        filters["state"] = params["state"]
    if "limit" in params:
        raw = params["limit"]
        limit = decimal(raw, MAX_LIMIT)
        if limit is None or limit < 1:
            raise InvalidArguments(f"limit must be an integer from 1 to {MAX_LIMIT}, not {raw[:40]!r}")
        filters["limit"] = limit
    return filters


def present(row: dict[str, Any]) -> dict[str, Any]:
    """An index row as the API shows it: the object's address, times as epoch ms."""
    return {
        "object": {"id": row["object_id"], "class": row["class_name"], "name": row["object_name"]},
        "name": row["name"],
        "kind": row["kind"],
        "method": row["method"],
        "spec": row["spec"],
        "state": row["state"],
        "scheduled_ms": row["scheduled_ms"],
        "next_ms": row["next_ms"],
        "retry_count": row["retry_count"],
        "failures": row["failures"],
        "last_error": row["last_error"],
        "last_error_ms": row["last_error_ms"],
        "last_fired_ms": row["last_fired_ms"],
    }


class AlarmListing:
    def __init__(self, index: AlarmIndex, registry: ClassRegistry, queue: AsyncAlarmQueue) -> None:
        self.index = index
        self.registry = registry
        self.queue = queue  # the scheduler's time index, which follows a purge

    async def list(self, request: Request) -> JSONResponse:
        filters = listing_filters(dict(request.query_params))
        return JSONResponse({"alarms": await self.of_tenant(acting_tenant(request), filters)})

    async def of_tenant(self, tenant: str, filters: dict[str, Any]) -> builtins.list[dict[str, Any]]:
        served = set(self.registry.names())
        rows = await asyncio.to_thread(lambda: self.index.listing(tenant=tenant, served=served, **filters))
        return [present(r) for r in rows]

    async def purge(self, request: Request) -> JSONResponse:
        """Remove the orphaned alarms of one class (`class`, required) from the index and the scheduler."""
        params = dict(request.query_params)
        if set(params) != {"class"}:
            raise InvalidArguments("purging alarms takes exactly one query parameter: class")
        purged = await self.purge_orphaned(acting_tenant(request), check_class_name(params["class"]))
        return JSONResponse({"purged": purged})

    async def purge_orphaned(self, tenant: str, class_name: str) -> int:
        """How many of the tenant's alarms of `class_name`, a class not served, were removed."""
        if class_name in self.registry.names():
            raise ClassServed(
                f"{class_name} is served: its objects cancel their own alarms; only orphaned ones are purged"
            )
        purged = await asyncio.to_thread(self.index.purge, tenant, class_name)
        by_object: dict[tuple[str, str], builtins.list[tuple[str, int | None]]] = {}
        for object_id, object_name, name in purged:
            by_object.setdefault((object_id, object_name), []).append((name, None))
        for (object_id, object_name), gone in by_object.items():  # no entry left to fire
            await self.queue.announce(object_id, class_name, object_name, gone, wall_clock_ms())
        return len(purged)

    async def counts(self, tenant: str) -> dict[str, int]:
        """The tenant's alarms by state (pending, retrying, failed, orphaned)."""
        served = set(self.registry.names())
        return await asyncio.to_thread(self.index.state_counts, tenant, served)

    async def of_object(self, object_id: str) -> builtins.list[dict[str, Any]]:  # `list` is the method above
        rows = await asyncio.to_thread(lambda: self.index.listing(object_ids=[object_id]))
        return [{k: v for k, v in present(r).items() if k != "object"} for r in rows]
