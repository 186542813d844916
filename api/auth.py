"""Authentication, scopes and rate limits at the edge: one middleware in front of every route.

Every request but the open ones (ROUTE_SCOPES maps them to None) carries an API key,
``Authorization: Bearer solo_<id>_<secret>`` (objects/state/keys.py); a WebSocket handshake,
or a GET of a path ending in ``/ws``, may carry it as the ``token`` query parameter instead,
since browsers cannot set headers on a WebSocket. The middleware then

1. finds the key: ``KeyCache`` answers from memory, reading the shared database at most
   once per key every ``KEY_CACHE_TTL_S`` (so a revoked key stops working within that);
2. checks the key's scope against the route's entry in ``ROUTE_SCOPES``;
3. counts the request against the key's rate, if it has one, in Redis (``KeyRateLimiter``,
   a sliding-window counter of the ``limits`` library), shared by every API process;
4. records who asked as ``request.state.principal``.

Failures answer 401 ``unauthenticated`` (with ``WWW-Authenticate: Bearer``), 403
``forbidden`` or 429 ``rate_limited`` (with ``Retry-After``), through api/errors.py. With
SOLO_AUTH=off every request acts as ``DEV_PRINCIPAL``: the operator of tenant ``default``.
A request acts in its key's tenant; an operator may name another with ``Solo-Tenant``
(``acting_tenant``).
The key is never logged, and nothing here stores it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import redis
import redis.asyncio
import sqlalchemy as sa
from limits import (
    RateLimitItem,
    RateLimitItemPerDay,
    RateLimitItemPerHour,
    RateLimitItemPerMinute,
    RateLimitItemPerSecond,
)
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from starlette.requests import HTTPConnection
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from solo.api.console.session import ConsoleSessions
from solo.api.errors import Forbidden, RateLimited, Unauthenticated, error_response, solo_error_response
from solo.api.routing import MATCHED_ROUTE, RouteMatcher
from solo.objects.coordination.keys import Keys
from solo.objects.errors import SoloError
from solo.objects.metrics import ApiMetrics
from solo.objects.naming import check_tenant
from solo.objects.state.keys import DEV_PRINCIPAL, Principal, Rate, StoredKey, digest_matches, parse_token
from solo.objects.state.keys import Scope as KeyScope

log = logging.getLogger(__name__)

# The scope each route needs, by (HTTP method, route path); None: open to anyone. HEAD is GET;
# a WebSocket route is listed under the method "WEBSOCKET".
# A route missing here needs `operator` (tests/unit/test_auth.py checks that every route is listed);
# a path that matches no route needs any valid key, so that only callers with a key learn what exists.
ROUTE_SCOPES: dict[tuple[str, str], KeyScope | None] = {
    ("POST", "/v1/objects/{class_name}/{name}/{method}"): "call",
    ("GET", "/v1/calls/{call_id}"): "call",
    ("GET", "/v1/whoami"): "call",
    ("GET", "/v1/classes"): "call",
    ("WEBSOCKET", "/v1/objects/{class_name}/{name}/ws"): "call",
    ("GET", "/v1/objects/{class_name}/{name}/ws"): "call",  # without the upgrade: 426
    ("GET", "/v1/objects/{class_name}/{name}"): "admin",
    ("GET", "/v1/objects/{class_name}/{name}/export"): "admin",
    ("GET", "/v1/objects/{class_name}/{name}/history"): "admin",
    ("PUT", "/v1/objects/{class_name}/{name}/import"): "admin",
    ("POST", "/v1/objects/{class_name}/{name}/restore"): "admin",
    ("DELETE", "/v1/objects/{class_name}/{name}"): "admin",
    ("DELETE", "/v1/objects/{class_name}/{name}/mailbox"): "admin",
    ("POST", "/v1/objects/{class_name}/{name}/evict"): "admin",
    ("DELETE", "/v1/objects/{class_name}/{name}/alarms/{alarm}"): "admin",
    ("POST", "/v1/objects/{class_name}/{name}/alarms/{alarm}/fire-now"): "admin",
    ("GET", "/v1/objects"): "admin",
    ("GET", "/v1/alarms"): "admin",
    ("DELETE", "/v1/alarms"): "admin",
    ("GET", "/healthz"): None,
    ("GET", "/readyz"): None,
    ("GET", "/openapi.json"): None,
    ("GET", "/docs"): None,  # the API page (api/docs.py) and its static files: no data
    ("GET", "/docs/{file}"): None,
    # Across tenants (calls and refusals by tenant): the deployment's operators, and Prometheus with their key.
    ("GET", "/metrics"): "operator",
    ("GET", "/v1/workers"): "operator",  # every tenant's workers, by host and pid
    ("GET", "/pages/{page}"): None,  # static pages of the served applications (api/pages.py): no data
    # The console (api/console/): admitted by its session cookie, not a Bearer key (AuthMiddleware).
    ("GET", "/console/login"): None,
    ("POST", "/console/login"): None,
    ("GET", "/console/static/{file}"): None,
    ("POST", "/console/logout"): "admin",
    ("GET", "/console"): "admin",
    ("GET", "/console/objects"): "admin",
    ("GET", "/console/objects/{class_name}/{name}"): "admin",
    ("GET", "/console/objects/{class_name}/{name}/export"): "admin",
    ("POST", "/console/objects/{class_name}/{name}/evict"): "admin",
    ("POST", "/console/objects/{class_name}/{name}/delete"): "admin",
    ("POST", "/console/objects/{class_name}/{name}/purge-queued"): "admin",
    ("GET", "/console/alarms"): "admin",
    ("POST", "/console/alarms/purge"): "admin",
    ("POST", "/console/tenant"): "operator",  # acting in another tenant, like Solo-Tenant
    ("GET", "/console/workers"): "operator",  # worker ids name hosts and pids
    ("GET", "/console/metrics"): "operator",  # across tenants, like /metrics
}
UNLISTED_ROUTE_SCOPE: KeyScope = "operator"
CONSOLE_PREFIX = "/console"
CONSOLE_LOGIN = "/console/login"
UNMATCHED_PATH_SCOPE: KeyScope = "call"

KEY_CACHE_TTL_S = 2.0  # a revoked key stops working in every API process within this (plus one read)
KEY_CACHE_MAX_ENTRIES = 10_000
TOKEN_QUERY_PARAMETER = "token"
TENANT_HEADER = "Solo-Tenant"


@dataclass(frozen=True)
class Requirement:
    """What a request needs: `scope` None means open; `route` is the matched route's path, for messages."""

    scope: KeyScope | None
    route: str | None


def requirement(routes: Sequence[BaseRoute], scope: Scope) -> Requirement:
    """The scope a request needs, from the first route that matches it fully (as the router picks it)."""
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return requirement_of(route, scope)
    return requirement_of(None, scope)


def requirement_of(route: BaseRoute | None, scope: Scope) -> Requirement:
    """The scope a request needs, from the route that matches it fully (None: no route does)."""
    if route is None:
        return Requirement(UNMATCHED_PATH_SCOPE, None)
    path = getattr(route, "path", None)
    if path is None:
        return Requirement(UNLISTED_ROUTE_SCOPE, None)
    method = scope.get("method", "GET") if scope["type"] == "http" else "WEBSOCKET"
    method = "GET" if method == "HEAD" else method
    return Requirement(ROUTE_SCOPES.get((method, path), UNLISTED_ROUTE_SCOPE), path)


def presented_key(scope: Scope) -> str | None:
    """The key a request carries: its Bearer token, or for WebSockets the `token` query parameter."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() != "bearer":
                return None
            return token.strip() or None
    websocket = scope["type"] == "websocket" or (scope.get("method") == "GET" and scope["path"].endswith("/ws"))
    if websocket and scope.get("query_string"):
        values = parse_qs(scope["query_string"].decode("latin-1")).get(TOKEN_QUERY_PARAMETER)
        return values[0] if values else None
    return None


@dataclass
class _Entry:
    stored: StoredKey | None  # None: no key has this id
    expires: float  # on the cache's clock


class KeyCache:
    """Keys by id, each read from the shared database at most once per `ttl_s` in this process.

    A warm request costs a dict lookup, a SHA-256 and a constant-time compare; no database
    round trip. An entry expires `ttl_s` after its read *started*, so what it says is never
    older than that: a key revoked in the database fails here within `ttl_s` (plus the time
    of the read that notices). Concurrent requests with an expired key wait on one read.
    Ids that name no key are remembered too, for as long. At most `max_entries` are kept,
    the oldest dropped first.
    """

    def __init__(
        self,
        lookup: Callable[[str], StoredKey | None],
        *,
        ttl_s: float = KEY_CACHE_TTL_S,
        max_entries: int = KEY_CACHE_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lookup = lookup
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self.reads = 0  # database reads made: a test's window on the cache
        self._entries: dict[str, _Entry] = {}
        self._reading: dict[str, asyncio.Task[_Entry]] = {}

    async def check(self, token: str) -> StoredKey | None:
        """The key `token` is, if it is one and not revoked; else None."""
        parsed = parse_token(token)
        if parsed is None:
            return None
        stored = await self.by_id(parsed[0])
        if stored is None or not digest_matches(token, stored.token_sha256):
            return None
        return stored

    async def by_id(self, key_id: str) -> StoredKey | None:
        """The key with this id, if there is one and it is not revoked (a console session names only the id)."""
        entry = self._entries.get(key_id)
        if entry is None or entry.expires <= self.clock():
            entry = await self._read(key_id)
        stored = entry.stored
        return None if stored is None or stored.revoked else stored

    async def _read(self, key_id: str) -> _Entry:
        task = self._reading.get(key_id)
        if task is None:
            task = asyncio.ensure_future(self._load(key_id))
            self._reading[key_id] = task
            task.add_done_callback(lambda _: self._reading.pop(key_id, None))
        return await asyncio.shield(task)

    async def _load(self, key_id: str) -> _Entry:
        started = self.clock()
        self.reads += 1
        stored = await asyncio.to_thread(self.lookup, key_id)
        entry = _Entry(stored, started + self.ttl_s)
        self._entries.pop(key_id, None)  # re-inserted last: the dict stays in order of expiry
        self._entries[key_id] = entry
        while len(self._entries) > self.max_entries:
            del self._entries[next(iter(self._entries))]
        return entry


_ITEMS: dict[str, type[RateLimitItem]] = {
    "second": RateLimitItemPerSecond,
    "minute": RateLimitItemPerMinute,
    "hour": RateLimitItemPerHour,
    "day": RateLimitItemPerDay,
}


_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
SHARE_TAKEN_AT_ONCE = 0.01  # of a key's rate, by one API process from Redis in one round trip
SHARE_LIFETIME_S = 1.0  # at most; then what is left of it is dropped (never carried into a later window)


@dataclass
class _Share:
    """Requests a process may still admit for one key without asking Redis, until `expires`."""

    left: int = 0
    expires: float = 0.0
    # One refill at a time: requests that find the share spent wait for the next one instead
    # of each taking a share of their own (64 waiting requests would take 64 shares at once).
    refill: asyncio.Lock = field(default_factory=asyncio.Lock)

    def live(self, now: float) -> bool:
        return self.left > 0 and self.expires > now

    def take(self, now: float) -> bool:
        if self.live(now):
            self.left -= 1
            return True
        return False


class KeyRateLimiter:
    """Each key's rate, counted in Redis so that every API process shares it (a sliding-window counter).

    A process takes a key's requests from the shared counter in shares of 1 % of its rate
    (one script call admits that many) and admits them from memory for at most a tenth of
    the window or a second. A share is counted in Redis when taken, so together the
    processes never admit more than the rate; at most they refuse a little early, by the
    unused rest of other processes' shares. A rate under 200 per window takes one request
    at a time: exact, at one round trip per request, which such a key can make only that
    often. Keys without a rate cost nothing.
    """

    def __init__(self, client: redis.asyncio.Redis, keys: Keys, *, clock: Callable[[], float] = time.monotonic) -> None:
        shared: dict[str, Any] = {"connection_pool": client.connection_pool}  # the API's own (fakeredis in tests)
        storage = RedisStorage("async+redis://", implementation="redispy", key_prefix=keys.rate_limits, **shared)
        self.limiter = SlidingWindowCounterRateLimiter(storage)
        self.clock = clock
        self._items: dict[Rate, RateLimitItem] = {}
        self._shares: dict[tuple[str, Rate], _Share] = {}

    def _item(self, rate: Rate) -> RateLimitItem:
        item = self._items.get(rate)
        if item is None:
            item = self._items[rate] = _ITEMS[rate.unit](rate.amount, rate.multiples)
        return item

    async def hit(self, key_id: str, rate: Rate) -> None:
        """Count one request of `key_id`; RateLimited if its rate is used up."""
        size = int(rate.amount * SHARE_TAKEN_AT_ONCE)
        if size > 1:
            share = self._share(key_id, rate)
            if share.take(self.clock()):
                return
            async with share.refill:
                if share.take(self.clock()):  # refilled while this request waited
                    return
                if await self.limiter.hit(self._item(rate), key_id, cost=size):
                    window_s = rate.multiples * _UNIT_SECONDS[rate.unit]
                    share.left, share.expires = size - 1, self.clock() + min(window_s / 10, SHARE_LIFETIME_S)
                    return
        item = self._item(rate)
        if await self.limiter.hit(item, key_id):  # no whole share left in the window: one at a time
            return
        stats = await self.limiter.get_window_stats(item, key_id)
        retry_after_s = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(f"API key {key_id} is limited to {rate}; retry in {retry_after_s} s", retry_after_s)

    def _share(self, key_id: str, rate: Rate) -> _Share:
        share = self._shares.get((key_id, rate))
        if share is None:
            if len(self._shares) >= KEY_CACHE_MAX_ENTRIES:  # bounded like the key cache: drop the spent ones
                now = self.clock()
                self._shares = {k: v for k, v in self._shares.items() if v.live(now) or v.refill.locked()}
            share = self._shares[(key_id, rate)] = _Share()
        return share


class Authenticator:
    """Who a request is, and whether it may go on: the logic of the middleware, without ASGI."""

    def __init__(
        self,
        mode: str,
        cache: KeyCache | None,
        limiter: KeyRateLimiter | None,
        *,
        metrics: ApiMetrics | None = None,
    ) -> None:
        if mode == "keys" and (cache is None or limiter is None):
            raise ValueError("auth mode 'keys' needs a key cache and a rate limiter")
        self.mode = mode
        self.cache = cache
        self.limiter = limiter
        self.metrics = metrics or ApiMetrics()  # refusals, by reason and tenant

    async def admit(self, token: str | None, needed: Requirement) -> Principal:
        """The request's principal; Unauthenticated, Forbidden or RateLimited if it may not go on."""
        if self.mode == "off":
            return DEV_PRINCIPAL
        assert self.cache is not None and self.limiter is not None and needed.scope is not None
        if token is None:
            self.metrics.refused("unauthenticated")
            raise Unauthenticated("this request needs an API key: send Authorization: Bearer <key>")
        stored = await self.cache.check(token)
        if stored is None:
            self.metrics.refused("unauthenticated")
            raise Unauthenticated("the API key is not valid: malformed, unknown or revoked")
        return await self._admit_key(stored, needed)

    async def admit_session(self, key_id: str | None, needed: Requirement) -> Principal:
        """A console session's principal: the key it names must still be valid and allow the route."""
        if self.mode == "off":
            return DEV_PRINCIPAL
        assert self.cache is not None and needed.scope is not None
        stored = await self.cache.by_id(key_id) if key_id is not None else None
        if stored is None:
            self.metrics.refused("unauthenticated")
            raise Unauthenticated("the console session's API key is no longer valid: sign in again")
        return await self._admit_key(stored, needed)

    async def _admit_key(self, stored: StoredKey, needed: Requirement) -> Principal:
        assert self.limiter is not None and needed.scope is not None
        principal = stored.principal
        if not principal.allows(needed.scope):
            self.metrics.refused("forbidden", principal.tenant)
            what = f"this route ({needed.route})" if needed.route else "this path"
            raise Forbidden(f"API key {principal.key_id} has scope {principal.scope}; {what} needs {needed.scope}")
        if stored.rate is not None:
            try:
                await self.limiter.hit(principal.key_id or "", stored.rate)
            except RateLimited:
                self.metrics.refused("rate_limited", principal.tenant)
                raise
        return principal


def is_console(path: str) -> bool:
    return path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


class AuthMiddleware:
    """Runs `Authenticator.admit` before the router; answers its refusals itself.

    The console's pages (``/console/...``) are the one exception to the Bearer key: they are
    admitted by the console's signed session cookie instead (`sessions`, api/console/session.py),
    which names a key that must still be valid and allow the route; with auth off too, since
    the session carries the CSRF token. Only the routes ROUTE_SCOPES leaves open (the login
    form and the console's static files) are reached without one.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticator: Authenticator,
        routes: Sequence[BaseRoute],
        sessions: ConsoleSessions | None = None,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.routes = routes
        self.matcher = RouteMatcher(routes)
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http" and self.sessions is not None and is_console(scope["path"]):
            await self._console(scope, receive, send)
            return
        if self.authenticator.mode == "off":  # every route is open: skip the matching too
            scope.setdefault("state", {})["principal"] = DEV_PRINCIPAL
            await self.app(scope, receive, send)
            return
        matched = self.matcher.full_match(scope)
        needed = requirement_of(matched[0] if matched is not None else None, scope)
        if matched is not None:  # the router takes it from here instead of matching again
            scope[MATCHED_ROUTE] = matched
        if needed.scope is None:
            await self.app(scope, receive, send)
            return
        try:
            principal = await self.authenticator.admit(presented_key(scope), needed)
        except SoloError as exc:
            response = solo_error_response(exc)
        except redis.RedisError:
            log.warning("rate limiter: Redis is unavailable", exc_info=True)
            response = error_response("unavailable", "Redis is unavailable; retry", 503)
        except sa.exc.SQLAlchemyError:
            log.warning("API keys: the shared database is unavailable", exc_info=True)
            response = error_response("unavailable", "the shared database is unavailable; retry", 503)
        else:
            scope.setdefault("state", {})["principal"] = principal
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await refuse_websocket(WebSocket(scope, receive, send), response)
        else:
            await response(scope, receive, send)

    async def _console(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.sessions is not None
        needed = requirement(self.routes, scope)
        if needed.scope is None:
            await self.app(scope, receive, send)
            return
        reading = scope.get("method") in ("GET", "HEAD")
        response: Response
        try:
            session = await self.sessions.read(HTTPConnection(scope))
            if session is None or not session.signed_in:
                raise Unauthenticated("sign in to the console first (/console/login)")
            principal = await self.authenticator.admit_session(session.key_id, needed)
        except Unauthenticated as exc:
            # A page a browser asks for goes to the login form; an action gets the error itself.
            response = RedirectResponse(CONSOLE_LOGIN, 303) if reading else solo_error_response(exc)
            self.sessions.clear(response)  # a session whose key went stays out (the form shows again)
        except SoloError as exc:
            response = solo_error_response(exc)
        except redis.RedisError:
            log.warning("rate limiter: Redis is unavailable", exc_info=True)
            response = error_response("unavailable", "Redis is unavailable; retry", 503)
        except sa.exc.SQLAlchemyError:
            log.warning("console session: the shared database is unavailable", exc_info=True)
            response = error_response("unavailable", "the shared database is unavailable; retry", 503)
        else:
            state = scope.setdefault("state", {})
            state["principal"], state["console_session"] = principal, session
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


async def refuse_websocket(websocket: WebSocket, response: Any) -> None:
    """An HTTP answer to the handshake where the server can send one, else a close (HTTP 403)."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(response)
    else:
        await websocket.close(code=1008)


def acting_tenant(request: HTTPConnection) -> str:
    """The tenant a request acts in: its key's, or, for an operator, the one it names in `Solo-Tenant`.

    Everything a request reaches is addressed in this tenant (naming.object_id), so what
    another tenant holds is not found rather than forbidden.
    """
    principal = principal_of(request.state)
    assert principal is not None  # only open routes have none, and they name no object
    chosen = request.headers.get(TENANT_HEADER)
    if chosen is None or chosen == principal.tenant:
        return principal.tenant
    if principal.scope != "operator":
        raise Forbidden(
            f"API key {principal.key_id} acts in its own tenant; only an operator key names one ({TENANT_HEADER})"
        )
    return check_tenant(chosen)


def principal_of(state: Any) -> Principal | None:
    """The principal the middleware recorded on a request's state (None on open routes)."""
    return getattr(state, "principal", None)
