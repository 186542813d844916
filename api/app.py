"""The Starlette application: routes and their wiring."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import redis.asyncio
import sqlalchemy as sa
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from solo.api.access_log import AccessLog
from solo.api.alarms import AlarmActions, AlarmListing
from solo.api.auth import Authenticator, AuthMiddleware, KeyCache, KeyRateLimiter, acting_tenant, principal_of
from solo.api.bodies import parse_arguments, read_body
from solo.api.calls import CallService
from solo.api.classes import ClassListing
from solo.api.console.routes import Console
from solo.api.docs import ApiDocs
from solo.api.errors import (
    InternalErrors,
    database_error_handler,
    http_error_handler,
    outcome_error_response,
    redis_error_handler,
    solo_error_handler,
    status_of,
)
from solo.api.group_enqueue import GroupEnqueue
from solo.api.listing import ObjectListing
from solo.api.openapi import openapi_document
from solo.api.operations import StateOperations
from solo.api.pages import Pages
from solo.api.replies import ReplyListener
from solo.api.routing import MatchedOnceRouter
from solo.api.sockets import SocketGateway
from solo.api.workers import ServedClasses, WorkerListing
from solo.objects.calls import Outcome
from solo.objects.coordination.alarm_queue import AsyncAlarmQueue
from solo.objects.coordination.gateways import AsyncGateway, GatewayBeat
from solo.objects.coordination.keys import Keys
from solo.objects.coordination.leases import AsyncLeases
from solo.objects.coordination.mailbox import AsyncMailbox, MailboxConfig
from solo.objects.coordination.redis_clients import async_client, sync_client
from solo.objects.coordination.workers import AsyncWorkerBeats
from solo.objects.errors import CallNotFound, ObjectNotFound, SoloError
from solo.objects.metrics import ApiMetrics
from solo.objects.naming import Address
from solo.objects.registry import ClassRegistry, load_object_modules
from solo.objects.settings import Settings
from solo.objects.state.admin import StateAdmin
from solo.objects.state.alarm_index import AlarmIndex
from solo.objects.state.catalog import Catalog
from solo.objects.state.installation import installation_secret
from solo.objects.state.keys import KeyStore, Principal
from solo.objects.state.schema import make_engine
from solo.objects.state.store import StateStore
from solo.objects.tracing import OFF, Tracing, process_tracing

if TYPE_CHECKING:
    from opentelemetry.trace import Span

log = logging.getLogger(__name__)

CALL_ROUTE = "/v1/objects/{class_name}/{name}/{method}"


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
        tracing: Tracing = OFF,
        beat_client: redis.Redis | None = None,
    ) -> None:
        self.settings = settings
        self.tracing = tracing
        self.keys = Keys(settings.key_prefix)
        self.registry = registry
        self.catalog = catalog
        self.redis = client or async_client(settings.redis_url)
        self.replies = ReplyListener(self.redis, self.keys)
        self.metrics = ApiMetrics()
        self.metrics.waiting_calls.set_function(lambda: self.replies.waiting)
        config = MailboxConfig(
            self.keys,
            settings.call_record_ttl_s,
            settings.lease_ttl_ms,
            max_queued=settings.max_queued_calls,
            compare_requests=True,
        )
        self.mailbox = AsyncMailbox(self.redis, config)
        self.leases = AsyncLeases(self.redis, self.keys)
        self.calls = CallService(
            namespace=settings.namespace,
            registry=registry,
            enqueues=GroupEnqueue(self.redis, self.mailbox),
            replies=self.replies,
            dispatch=dispatch,
            secret=lambda: installation_secret(catalog.engine),
            metrics=self.metrics,
            tracing=tracing,
        )
        beats = AsyncWorkerBeats(self.redis, self.keys)
        self.workers = WorkerListing(beats)
        self.served = ServedClasses(beats, registry)
        alarm_index = AlarmIndex(catalog.engine, settings.namespace)
        alarm_queue = AsyncAlarmQueue(self.redis, self.keys, int(settings.alarm_horizon_s * 1000))
        self.alarms = AlarmListing(alarm_index, self.served, alarm_queue)
        self.alarm_actions = AlarmActions(
            self.calls, catalog, alarm_index, self.served, alarm_queue, settings.call_timeout_s
        )
        self.listing = ObjectListing(settings.namespace, self.served, catalog, alarm_index, self.leases, self.mailbox)
        # This process is the gateway of the WebSockets it holds; one id names its replies and its inbox.
        # Its heartbeat has a synchronous client of its own, for its own thread (api/gateway_heartbeat.py).
        self.owns_beat_client = beat_client is None
        self.beat_client = beat_client if beat_client is not None else sync_client(settings.redis_url)
        self.sockets = SocketGateway(
            self.calls,
            AsyncGateway(self.redis, self.keys, self.replies.listener_id),
            GatewayBeat(self.beat_client, self.keys, self.replies.listener_id),
            connect_timeout_s=settings.call_timeout_s,
        )
        self.operations = StateOperations(
            settings,
            registry,
            StateAdmin(StateStore(catalog.engine), settings.namespace, settings.retention_s),
            self.calls,
            alarm_queue,
        )
        self.pages = Pages(settings.object_modules)
        self.classes = ClassListing(registry)
        self.docs = ApiDocs()
        self.key_store = KeyStore(catalog.engine)
        if settings.auth == "keys":
            limiter = KeyRateLimiter(self.redis, self.keys)
            self.auth = Authenticator("keys", KeyCache(self.key_store.lookup), limiter, metrics=self.metrics)
        else:
            self.auth = Authenticator("off", None, None, metrics=self.metrics)

    async def announce_auth(self) -> None:
        """At start-up: say how requests are authenticated, and what to do when no key exists yet."""
        if self.settings.auth == "off":
            log.warning("SOLO_AUTH=off: requests are not authenticated; each acts as the operator of tenant 'default'")
            return
        try:
            active = await asyncio.to_thread(self.key_store.count_active)
        except sa.exc.SQLAlchemyError as exc:
            log.warning("cannot read API keys (has `solo migrate` run?): %s", type(exc).__name__)
            return
        if active == 0:
            log.warning(
                "SOLO_AUTH=keys and no API key exists yet: every request gets 401 unauthenticated. Create one"
                " with: solo keys create --tenant default --scope operator (with this DATABASE_URL)"
            )

    async def call_method(self, request: Request) -> JSONResponse:
        if not self.tracing.on:
            return await self._call_method(request)
        attributes = {"http.request.method": "POST", "http.route": CALL_ROUTE}
        with self.tracing.server(f"POST {CALL_ROUTE}", request.headers, attributes) as span:
            assert span is not None
            try:
                response = await self._call_method(request, span)
            except SoloError as exc:  # answered by solo_error_handler: a refusal (4xx) is no fault of the server
                span.set_attributes({"error.type": exc.code, "http.response.status_code": status_of(exc)})
                if status_of(exc) >= 500:
                    self.tracing.failed(span, exc.code)
                raise
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__name__)
                self.tracing.failed(span, type(exc).__name__)
                raise
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                self.tracing.failed(span)
            return response

    async def _call_method(self, request: Request, span: Span | None = None) -> JSONResponse:
        p = request.path_params
        address = self.calls.addressed(request)
        self.registry.method(address.class_name, p["method"])  # 404 before reading the body
        if span is not None:  # names checked: a class and method this API serves
            attributes = {"solo.class": address.class_name, "solo.method": p["method"], "solo.tenant": address.tenant}
            span.set_attributes(attributes)
        arguments = parse_arguments(await read_body(request, self.settings.max_body_bytes))
        wait = "respond-async" not in request.headers.get("prefer", "").lower()
        call = await self.calls.prepare(
            address, p["method"], arguments, idempotency_key=request.headers.get("idempotency-key"), wait=wait
        )
        if span is not None:
            span.set_attribute("solo.call_id", call.call_id)
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
        record = await self.mailbox.record(call_id) if len(call_id) <= 64 else None
        if record is None or record.tenant != acting_tenant(request):  # another tenant's call: not found
            raise CallNotFound(f"no call {call_id!r} (unknown, or its record expired)")
        body: dict[str, Any] = {"call_id": call_id, "status": record.status}
        outcome = record.outcome
        if outcome is not None:
            if outcome.ok:
                body["result"] = outcome.result
            else:
                body["error"] = {k: v for k, v in (outcome.error or {}).items() if k != "status"}
        return JSONResponse(body)

    async def get_object(self, request: Request) -> JSONResponse:
        # An object of a class no longer served too.
        address = self.calls.addressed(request, served=False)
        return JSONResponse(await self.describe(address, principal_of(request.state)))

    async def describe(self, address: Address, principal: Principal | None) -> dict[str, Any]:
        """What GET /v1/objects/{class}/{name} shows of an object (the console's object page too)."""
        info = await asyncio.to_thread(self.catalog.get, address.object_id)
        if info is None:
            self.registry.get(address.class_name)  # a class nobody has heard of: unknown_class
            raise ObjectNotFound(f"{address.class_name}/{address.name} has never been called")
        owner = await self.leases.owner(address.object_id)
        queued = await self.mailbox.depth(address.object_id)
        # A worker's id names its host and pid: for the deployment's operators only.
        shown_owner = owner if principal is not None and principal.scope == "operator" else None
        return {
            "id": info.id,
            "class": info.class_name,
            "name": info.name,
            "tenant": info.tenant,
            "served": address.class_name in await self.served.classes(),
            "active": owner is not None,
            "owner": shown_owner,
            "queued_calls": queued,
            "epoch": info.epoch,
            "schema_version": info.schema_version,
            "state_bytes": info.state_bytes,
            "seq": info.head_seq,
            "created_at": info.created_at.isoformat(),
            "last_active_at": info.last_active_at.isoformat(),
            "alarms": await self.alarms.of_object(address.object_id),
            "poisoned_calls": await self.mailbox.poisoned(address.object_id),
        }

    async def history(self, request: Request) -> JSONResponse:
        """The object's activations, oldest first: epoch, worker, start and stop (`solo objects history`)."""
        address = self.calls.addressed(request)
        activations = await asyncio.to_thread(self.catalog.history, address.object_id)
        if not activations:
            raise ObjectNotFound(f"{address.class_name}/{address.name} has never been called")
        principal = principal_of(request.state)
        operator = principal is not None and principal.scope == "operator"  # as for `owner` above
        return JSONResponse(
            {
                "activations": [
                    {
                        "epoch": a.epoch,
                        "worker": a.worker_id if operator else None,
                        "started_at": a.started_at.isoformat(),
                        "stopped_at": a.stopped_at.isoformat() if a.stopped_at else None,
                    }
                    for a in activations
                ]
            }
        )

    async def purge_mailbox(self, request: Request) -> JSONResponse:
        return JSONResponse({"purged": await self.purge_queued(self.calls.addressed(request))})

    async def purge_queued(self, address: Address) -> int:
        """Fail the object's queued calls (their callers get the error); how many there were."""
        return await self.mailbox.purge(address.object_id, f"purged from {address.ref}'s mailbox by an operator")

    async def evict(self, request: Request) -> JSONResponse:
        return JSONResponse({"evicting": await self.evict_object(self.calls.addressed(request))})

    async def evict_object(self, address: Address) -> bool:
        """End the object's activation after its current batch: its next call hydrates it afresh.

        False if no worker holds it (nothing to end)."""
        if await asyncio.to_thread(self.catalog.get, address.object_id) is None:
            raise ObjectNotFound(f"{address.class_name}/{address.name} has never been called")
        # As long as enqueue.lua keeps a wake list: a worker that died meanwhile leaves nothing behind.
        return await self.leases.ask_to_evict(address.object_id, self.settings.lease_ttl_ms * 10)

    async def whoami(self, request: Request) -> JSONResponse:
        principal = principal_of(request.state)
        assert principal is not None  # the route is not open: the middleware recorded one
        return JSONResponse({"key_id": principal.key_id, "tenant": principal.tenant, "scope": principal.scope})

    async def healthz(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> JSONResponse:
        # Each check is "ok" or "unavailable": why (which may name hosts) goes to the log only.
        checks = {
            "redis": await self._check("redis", self.redis.ping()),
            "database": await self._check("database", asyncio.to_thread(self.catalog.ping)),
        }
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
        )

    @staticmethod
    async def _check(name: str, probe: Any) -> str:
        try:
            await asyncio.wait_for(probe, 2)
        except Exception as exc:
            log.warning("readiness: %s is unavailable: %s: %s", name, type(exc).__name__, exc)
            return "unavailable"
        return "ok"

    async def metrics_page(self, request: Request) -> Response:
        """This API process's metrics in Prometheus' text format (workers serve theirs on SOLO_METRICS_PORT)."""
        try:  # the format the scraper asks for, as the client's own server chooses it
            encode, content_type = choose_encoder(request.headers.get("accept", ""))
        except (TypeError, ValueError):  # a version it cannot read ("version=abc"): the plain format
            encode, content_type = generate_latest, CONTENT_TYPE_PLAIN_0_0_4
        return Response(encode(self.metrics.registry), media_type=content_type)

    async def openapi(self, request: Request) -> JSONResponse:
        return JSONResponse(openapi_document(self.registry))

    def routes(self) -> list[BaseRoute]:
        operations = self.operations
        return [
            WebSocketRoute("/v1/objects/{class_name}/{name}/ws", self.sockets.serve),
            Route("/v1/objects/{class_name}/{name}/ws", self.sockets.upgrade_required, methods=["GET"]),
            # Before the method route: it would take POST .../restore as a call of a method "restore".
            Route("/v1/objects/{class_name}/{name}/restore", operations.restore, methods=["POST"]),
            Route("/v1/objects/{class_name}/{name}/export", operations.export, methods=["GET"]),
            Route("/v1/objects/{class_name}/{name}/import", operations.import_, methods=["PUT"]),
            Route("/v1/objects/{class_name}/{name}/mailbox", self.purge_mailbox, methods=["DELETE"]),
            Route("/v1/objects/{class_name}/{name}/evict", self.evict, methods=["POST"]),
            Route("/v1/objects/{class_name}/{name}/alarms/{alarm}", self.alarm_actions.cancel, methods=["DELETE"]),
            Route(
                "/v1/objects/{class_name}/{name}/alarms/{alarm}/fire-now", self.alarm_actions.fire_now, methods=["POST"]
            ),
            Route("/v1/objects/{class_name}/{name}/history", self.history, methods=["GET"]),
            Route(CALL_ROUTE, self.call_method, methods=["POST"]),
            Route("/v1/objects/{class_name}/{name}", self.get_object, methods=["GET"]),
            Route("/v1/objects/{class_name}/{name}", operations.delete, methods=["DELETE"]),
            Route("/v1/objects", self.listing.list, methods=["GET"]),
            Route("/v1/calls/{call_id}", self.get_call, methods=["GET"]),
            Route("/v1/alarms", self.alarms.list, methods=["GET"]),
            Route("/v1/alarms", self.alarms.purge, methods=["DELETE"]),
            Route("/v1/classes", self.classes.list, methods=["GET"]),
            Route("/v1/workers", self.workers.list, methods=["GET"]),
            Route("/v1/whoami", self.whoami, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/docs", self.docs.page, methods=["GET"]),
            Route("/docs/{file}", self.docs.asset, methods=["GET"]),
            Route("/metrics", self.metrics_page, methods=["GET"]),
            Route("/pages/{page}", self.pages.get, methods=["GET"]),
        ]


def create_app(
    settings: Settings | None = None,
    *,
    dispatch=None,
    client: redis.asyncio.Redis | None = None,
    tracing: Tracing | None = None,
    beat_client: redis.Redis | None = None,
) -> Starlette:
    """Build the app. Without `dispatch`, activations go out as Dramatiq messages.

    Tests pass `dispatch` (activate in-process), `client` (a fakeredis client) and `beat_client`
    (a synchronous one on the same fake server, for the WebSocket gateway's heartbeat).
    """
    settings = settings or Settings.from_env()
    registry = load_object_modules(settings.object_modules)
    engine = make_engine(settings.database_url)
    broker = None
    if dispatch is None:
        from solo.workers.broker import DramatiqDispatcher, make_broker

        broker = make_broker(settings, sync_client(settings.redis_url))
        dispatch = DramatiqDispatcher(broker)
    api = Api(settings, registry, Catalog(engine), dispatch, client, tracing or process_tracing(), beat_client)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await api.announce_auth()
        api.replies.start()
        api.sockets.start()
        try:
            yield
        finally:
            await api.sockets.stop()
            await api.replies.stop()
            await api.redis.aclose()
            if api.owns_beat_client:
                api.beat_client.close()
            if broker is not None:
                broker.close()
            engine.dispose()

    console = Console(api)
    # The gateway and the router share one list of routes: a route the gateway matched is the router's pick.
    router = MatchedOnceRouter(api.routes() + console.routes(), lifespan=lifespan)
    routes = router.routes
    app = Starlette(
        routes=routes,
        # Outermost first: an unexpected error anywhere, the gateway's too, is answered by InternalErrors.
        middleware=[
            *([Middleware(AccessLog)] if settings.access_log else []),
            Middleware(InternalErrors, debug=settings.debug),
            Middleware(AuthMiddleware, authenticator=api.auth, routes=routes, sessions=console.sessions),
        ],
        lifespan=lifespan,
        exception_handlers={
            SoloError: solo_error_handler,
            HTTPException: http_error_handler,
            redis.RedisError: redis_error_handler,
            # Not every SQLAlchemyError: one that is not about reaching the database is a bug (500).
            sa.exc.OperationalError: database_error_handler,
            sa.exc.InterfaceError: database_error_handler,
        },
    )
    app.router = router
    app.state.api = api
    return app
