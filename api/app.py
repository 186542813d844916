"""The Starlette application: routes and their wiring."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from typing import Any

import redis.asyncio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from solo.api.alarms import AlarmListing
from solo.api.calls import CallService
from solo.api.errors import (
    http_error_handler,
    outcome_error_response,
    redis_error_handler,
    solo_error_handler,
    unexpected_error_handler,
)
from solo.api.openapi import openapi_document
from solo.api.operations import Lifecycle
from solo.api.replies import ReplyListener
from solo.objects.calls import Outcome
from solo.objects.coordination.keys import Keys
from solo.objects.coordination.leases import owner_of
from solo.objects.coordination.mailbox import AsyncMailbox, MailboxConfig
from solo.objects.coordination.redis_clients import async_client, sync_client
from solo.objects.definition import ClassRegistry, load_object_modules
from solo.objects.errors import CallNotFound, InvalidArguments, ObjectNotFound, PayloadTooLarge, SoloError
from solo.objects.settings import Settings
from solo.objects.state.alarm_index import AlarmIndex
from solo.objects.state.catalog import Catalog, make_engine
from solo.objects.state.store import StateStore


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    return bytes(body)


def _reject_constant(name: str) -> Any:
    raise InvalidArguments(f"the request body is not valid JSON: {name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidArguments(f"the request body is not valid JSON: the number {text[:40]} is out of range")
    return value


MAX_ARGUMENT_DEPTH = 64  # nesting of arrays and objects in a request body


def _check_text(text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidArguments("the request body has a string with an unpaired surrogate") from None


def _check_encodable(value: Any) -> None:
    """Refuse what the JSON decoder lets through but the call's path cannot carry.

    Deep nesting overflows the recursion of the encoders downstream (a 500 after
    validation), and strings with unpaired surrogates ("\\ud800") cannot be
    encoded as UTF-8 by SQLite or in the response. Iterative, so it cannot
    overflow itself.
    """
    if isinstance(value, str):
        _check_text(value)
    if not isinstance(value, (dict, list)):
        return
    stack: list[tuple[dict | list, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_ARGUMENT_DEPTH:
            raise InvalidArguments(f"the request body is nested deeper than {MAX_ARGUMENT_DEPTH} levels")
        if isinstance(item, dict):
            for key in item:
                _check_text(key)
            children = item.values()
        else:
            children = item
        for child in children:
            if isinstance(child, str):
                _check_text(child)
            elif isinstance(child, (dict, list)):
                stack.append((child, depth + 1))


def parse_arguments(body: bytes) -> Any:
    if not body.strip():
        return {}
    try:
        # Strict JSON: Python's parser would accept NaN, Infinity and 1e999, which
        # the mailbox cannot encode again (a 500 after validation).
        arguments = json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:  # includes bad UTF-8, integers over the digit limit, deep nesting
        reason = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise InvalidArguments(f"the request body is not valid JSON: {reason}") from None
    _check_encodable(arguments)
    return arguments


def outcome_response(outcome: Outcome) -> JSONResponse:
    if outcome.ok:
        return JSONResponse({"result": outcome.result, "call_id": outcome.call_id})
    assert outcome.error is not None
    return outcome_error_response(outcome.error, outcome.call_id)


class Api:
    """Holds what the handlers need; built once per process by create_app()."""

    def __init__(
        self,
        settings: Settings,
        registry: ClassRegistry,
        catalog: Catalog,
        dispatch,
        client: redis.asyncio.Redis | None = None,
    ) -> None:
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.registry = registry
        self.catalog = catalog
        self.redis = client or async_client(settings.redis_url)
        self.replies = ReplyListener(self.redis, self.keys)
        config = MailboxConfig(self.keys, settings.call_record_ttl_s, settings.lease_ttl_ms)
        self.calls = CallService(
            namespace=settings.namespace,
            registry=registry,
            mailbox=AsyncMailbox(self.redis, config),
            replies=self.replies,
            dispatch=dispatch,
        )
        self.alarms = AlarmListing(AlarmIndex(catalog.engine, settings.namespace))
        self.lifecycle = Lifecycle(
            settings, registry, catalog, StateStore(catalog.engine), self.calls, self.alarms, self.redis
        )

    async def call_method(self, request: Request) -> JSONResponse:
        p = request.path_params
        address = self.calls.address(p["class_name"], p["name"])
        self.registry.method(address.class_name, p["method"])  # 404 before reading the body
        arguments = parse_arguments(await read_body(request, self.settings.max_body_bytes))
        wait = "respond-async" not in request.headers.get("prefer", "").lower()
        call = self.calls.prepare(
            address, p["method"], arguments, idempotency_key=request.headers.get("idempotency-key"), wait=wait
        )
        if not wait:
            recorded = await self.calls.submit(call)
            if recorded is not None:
                return outcome_response(recorded)
            status_url = f"/v1/calls/{call.call_id}"
            return JSONResponse(
                {"call_id": call.call_id, "status_url": status_url}, status_code=202, headers={"Location": status_url}
            )
        return outcome_response(await self.calls.call(call, self.settings.call_timeout_s))

    async def get_call(self, request: Request) -> JSONResponse:
        call_id = request.path_params["call_id"]
        record = await self.redis.hgetall(self.keys.call(call_id)) if len(call_id) <= 64 else {}
        if not record:
            raise CallNotFound(f"no call {call_id!r} (unknown, or its record expired)")
        status = record[b"status"].decode()
        body: dict[str, Any] = {"call_id": call_id, "status": status}
        if b"outcome" in record:
            outcome = Outcome.from_payload(record[b"outcome"])
            if outcome.ok:
                body["result"] = outcome.result
            else:
                body["error"] = {k: v for k, v in (outcome.error or {}).items() if k != "status"}
        return JSONResponse(body)

    async def get_object(self, request: Request) -> JSONResponse:
        address = self.calls.address(request.path_params["class_name"], request.path_params["name"])
        info = await asyncio.to_thread(self.catalog.get, address.object_id)
        if info is None:
            raise ObjectNotFound(f"{address.class_name}/{address.name} has never been called")
        owner = owner_of(await self.redis.get(self.keys.lease(address.object_id)))
        queued = await self.redis.llen(self.keys.mailbox(address.object_id))
        return JSONResponse(
            {
                "id": info.id,
                "class": info.class_name,
                "name": info.name,
                "active": owner is not None,
                "owner": owner,
                "queued_calls": queued,
                "epoch": info.epoch,
                "schema_version": info.schema_version,
                "state_bytes": info.state_bytes,
                "seq": info.head_seq,
                "created_at": info.created_at.isoformat(),
                "last_active_at": info.last_active_at.isoformat(),
                "alarms": await self.alarms.of_object(address.object_id),
            }
        )

    async def healthz(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(self.redis.ping(), 2)
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"{type(exc).__name__}: {exc}"
        try:
            await asyncio.wait_for(asyncio.to_thread(self.catalog.ping), 2)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"{type(exc).__name__}: {exc}"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
        )

    async def openapi(self, request: Request) -> JSONResponse:
        return JSONResponse(openapi_document(self.registry))

    def routes(self) -> list[Route]:
        lifecycle = self.lifecycle
        return [
            # Before the method route: it would take POST .../restore as a call of a method "restore".
            Route("/v1/objects/{class_name}/{name}/restore", lifecycle.restore, methods=["POST"]),
            Route("/v1/objects/{class_name}/{name}/export", lifecycle.export, methods=["GET"]),
            Route("/v1/objects/{class_name}/{name}/import", lifecycle.import_, methods=["PUT"]),
            Route("/v1/objects/{class_name}/{name}/{method}", self.call_method, methods=["POST"]),
            Route("/v1/objects/{class_name}/{name}", self.get_object, methods=["GET"]),
            Route("/v1/objects/{class_name}/{name}", lifecycle.delete, methods=["DELETE"]),
            Route("/v1/calls/{call_id}", self.get_call, methods=["GET"]),
            Route("/v1/alarms", self.alarms.list, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
        ]


def create_app(
    settings: Settings | None = None, *, dispatch=None, client: redis.asyncio.Redis | None = None
) -> Starlette:
    """Build the app. Without `dispatch`, activations go out as Dramatiq messages.

    Tests pass `dispatch` (activate in-process) and `client` (a fakeredis client).
    """
    settings = settings or Settings.from_env()
    registry = load_object_modules(settings.object_modules)
    engine = make_engine(settings.database_url)
    broker = None
    if dispatch is None:
        from solo.workers.broker import DramatiqDispatcher, make_broker

        broker = make_broker(settings, sync_client(settings.redis_url))
        dispatch = DramatiqDispatcher(broker)
    api = Api(settings, registry, Catalog(engine), dispatch, client)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        api.replies.start()
        try:
            yield
        finally:
            await api.replies.stop()
            await api.redis.aclose()
            if broker is not None:
                broker.close()
            engine.dispose()

    app = Starlette(
        routes=api.routes(),
        lifespan=lifespan,
        exception_handlers={
            SoloError: solo_error_handler,
            HTTPException: http_error_handler,
            redis.RedisError: redis_error_handler,
            Exception: unexpected_error_handler,
        },
    )
    app.state.api = api
    return app
