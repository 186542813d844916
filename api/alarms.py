"""Alarms over HTTP: listing them across the tenant's objects, and an operator's actions on them.

``GET /v1/alarms``: pending, retrying, failed and orphaned alarms and schedules, read from
the shared ``alarms`` index, which holds exactly what is durable. Query parameters (all
optional): ``due_before`` (epoch ms or an ISO-8601 time; only alarms due by then),
``class``, ``state`` (pending, retrying, failed, orphaned) and ``limit`` (1-10000, default
1000). An alarm of a class no live worker serves is ``orphaned`` (api/workers.py): nothing
can fire it, and the scheduler no longer sends it (workers/scheduler.py).
``DELETE /v1/alarms?class=C`` removes those of a class no longer served.

One alarm (``_alarm``, the object's single alarm, or a schedule's name):
``DELETE /v1/objects/{class}/{name}/alarms/{alarm}`` cancels it and
``POST .../alarms/{alarm}/fire-now`` makes it due now. Both are calls queued in the
object's mailbox (objects/alarms.py, ``ACTION_METHOD``), so the object's own table
decides and the change travels with its shipment; the answer comes once it is durable
and announced. An orphaned alarm cannot be run by its object: cancelling it removes it
from the index and the scheduler, as a purge does.
"""

from __future__ import annotations

import asyncio
import builtins
import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from solo.api.auth import acting_tenant
from solo.api.calls import CallService
from solo.api.errors import ClassServed, outcome_error_response
from solo.api.workers import ServedClasses
from solo.objects.alarms import ACTION_METHOD, ALARM, check_schedule_name
from solo.objects.calls import Call
from solo.objects.context import wall_clock_ms
from solo.objects.coordination.alarm_queue import AsyncAlarmQueue
from solo.objects.errors import AlarmNotFound, InvalidArguments, InvalidSchedule, ObjectNotFound, UnknownClass
from solo.objects.naming import Address, check_class_name, new_call_id
from solo.objects.state.alarm_index import STATES, AlarmIndex
from solo.objects.state.catalog import Catalog

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
    def __init__(self, index: AlarmIndex, served: ServedClasses, queue: AsyncAlarmQueue) -> None:
        self.index = index
        self.served = served
        self.queue = queue  # the scheduler's time index, which follows a purge

    async def list(self, request: Request) -> JSONResponse:
        filters = listing_filters(dict(request.query_params))
        return JSONResponse({"alarms": await self.of_tenant(acting_tenant(request), filters)})

    async def of_tenant(self, tenant: str, filters: dict[str, Any]) -> builtins.list[dict[str, Any]]:
        served = await self.served.classes()
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
        if class_name in await self.served.classes():
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
        served = await self.served.classes()
        return await asyncio.to_thread(self.index.state_counts, tenant, served)

    async def of_object(self, object_id: str) -> builtins.list[dict[str, Any]]:  # `list` is the method above
        served = await self.served.classes()
        rows = await asyncio.to_thread(lambda: self.index.listing(object_ids=[object_id], served=served))
        return [{k: v for k, v in present(r).items() if k != "object"} for r in rows]


def check_alarm_name(name: str) -> str:
    """The object's single alarm (``_alarm``) or a schedule's name."""
    if name != ALARM:
        try:
            check_schedule_name(name)
        except InvalidSchedule as exc:
            raise InvalidArguments(f"not an alarm: {exc.message}") from None
    return name


class AlarmActions:
    """Cancel one alarm, or make it due now, through the object (see the module's docstring)."""

    def __init__(
        self,
        calls: CallService,
        catalog: Catalog,
        index: AlarmIndex,
        served: ServedClasses,
        queue: AsyncAlarmQueue,
        timeout_s: float,
    ) -> None:
        self.calls = calls
        self.catalog = catalog
        self.index = index
        self.served = served
        self.queue = queue
        self.timeout_s = timeout_s

    async def cancel(self, request: Request) -> JSONResponse:
        address = self.calls.addressed(request, served=False)
        name = check_alarm_name(request.path_params["alarm"])
        if address.class_name not in await self.served.classes():
            return await self._cancel_orphaned(address, name)
        return await self._act(address, "cancel", name)

    async def fire_now(self, request: Request) -> JSONResponse:
        address = self.calls.addressed(request, served=False)
        name = check_alarm_name(request.path_params["alarm"])
        if address.class_name not in await self.served.classes():
            raise UnknownClass(f"no worker serves {address.class_name}: nothing can fire its alarms (cancel them)")
        return await self._act(address, "fire_now", name)

    async def _act(self, address: Address, action: str, name: str) -> JSONResponse:
        self.calls.address(address.tenant, address.class_name, address.name)  # this API must know the class
        if await asyncio.to_thread(self.catalog.get, address.object_id) is None:  # not made by asking
            raise ObjectNotFound(f"{address.ref} has never been called")
        call = Call(
            call_id=new_call_id(),
            object_id=address.object_id,
            class_name=address.class_name,
            object_name=address.name,
            method=ACTION_METHOD,
            args={"action": action, "name": name},
            reply_to=self.calls.replies.key,
            enqueued_ms=wall_clock_ms(),
            tenant=address.tenant,
        )
        outcome = await self.calls.call(call, self.timeout_s)
        if not outcome.ok:
            assert outcome.error is not None
            return outcome_error_response(outcome.error, outcome.call_id)
        return JSONResponse(outcome.result)

    async def _cancel_orphaned(self, address: Address, name: str) -> JSONResponse:
        purged = await asyncio.to_thread(
            lambda: self.index.purge(address.tenant, address.class_name, object_id=address.object_id, name=name)
        )
        if not purged:
            raise AlarmNotFound(f"{address.ref} has no alarm {name!r} in the index")
        await self.queue.announce(address.object_id, address.class_name, address.name, [(name, None)], wall_clock_ms())
        return JSONResponse({"cancelled": True})
