"""The pieces of the gateway one by one: rates, the scope table, the presented key, the key cache.

The same rules over HTTP: tests/contract/test_auth.py (in-process) and tests/e2e/test_auth.py
(real processes).
"""

from __future__ import annotations

import asyncio

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocket

from solo.api.app import create_app
from solo.api.auth import (
    ROUTE_SCOPES,
    Authenticator,
    AuthMiddleware,
    KeyCache,
    Requirement,
    presented_key,
    requirement,
)
from solo.api.errors import Forbidden, Unauthenticated
from solo.objects.errors import InvalidKeySpec
from solo.objects.settings import Settings
from solo.objects.state.keys import (
    DEV_PRINCIPAL,
    SCOPES,
    Principal,
    Rate,
    StoredKey,
    parse_rate,
    token_digest,
)

KEY_ID = "0123456789abcdef"
TOKEN = f"solo_{KEY_ID}_{'s' * 43}"


# -- rates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, rate, canonical",
    [
        ("100/s", Rate(100, 1, "second"), "100/s"),
        ("100/second", Rate(100, 1, "second"), "100/s"),
        ("6/minute", Rate(6, 1, "minute"), "6/m"),
        ("6 / MIN", Rate(6, 1, "minute"), "6/m"),
        ("1000/5m", Rate(1000, 5, "minute"), "1000/5m"),
        ("10/hours", Rate(10, 1, "hour"), "10/h"),
        ("10000/d", Rate(10000, 1, "day"), "10000/d"),
    ],
)
def test_rates_are_read_in_several_spellings_and_kept_in_one(text, rate, canonical):
    assert parse_rate(text) == rate
    assert str(rate) == canonical
    assert parse_rate(canonical) == rate


@pytest.mark.parametrize("text", ["100", "/s", "0/s", "100/ms", "100/0s", "-1/s", "1.5/s", "100/week", "100/s/s"])
def test_malformed_rates_are_refused(text):
    with pytest.raises(InvalidKeySpec):
        parse_rate(text)


# -- scopes, as data ----------------------------------------------------------------------


def app_routes():
    settings = Settings.from_mapping({"redis_url": "redis://fake", "database_url": "sqlite://"})
    return create_app(settings, dispatch=lambda _id: None).routes


def test_every_route_has_an_entry_in_the_scope_table_and_every_entry_a_route():
    served = {
        (method, route.path)
        for route in app_routes()
        for method in getattr(route, "methods", None) or {"WEBSOCKET"}  # a WebSocketRoute has no methods
        if method != "HEAD"
    }
    assert served == set(ROUTE_SCOPES)


# What each scope may do, spelled out: (method, a concrete path) -> the least scope allowed, None: open.
NEEDED = {
    ("POST", "/v1/objects/Counter/a/increment"): "call",
    ("GET", "/v1/calls/0123"): "call",
    ("GET", "/v1/whoami"): "call",
    ("GET", "/v1/classes"): "call",
    ("GET", "/v1/objects/Counter/a"): "admin",
    ("HEAD", "/v1/objects/Counter/a"): "admin",
    ("GET", "/v1/objects/Counter/a/export"): "admin",
    ("PUT", "/v1/objects/Counter/a/import"): "admin",
    ("POST", "/v1/objects/Counter/a/restore"): "admin",
    ("DELETE", "/v1/objects/Counter/a"): "admin",
    ("DELETE", "/v1/objects/Counter/a/mailbox"): "admin",
    ("GET", "/v1/alarms"): "admin",
    ("GET", "/v1/objects"): "admin",
    ("DELETE", "/v1/alarms"): "admin",
    ("POST", "/v1/objects/Counter/a/evict"): "admin",
    ("GET", "/healthz"): None,
    ("GET", "/readyz"): None,
    ("GET", "/openapi.json"): None,
    ("GET", "/docs"): None,
    ("GET", "/docs/swagger-ui.css"): None,
    ("GET", "/metrics"): "operator",
    ("GET", "/pages/chat.html"): None,
    # the console: its login form and static files are open; its pages need a session of these scopes
    ("GET", "/console/login"): None,
    ("POST", "/console/login"): None,
    ("GET", "/console/static/console.js"): None,
    ("GET", "/console/objects"): "admin",
    ("GET", "/console/objects/Counter/a"): "admin",
    ("POST", "/console/objects/Counter/a/evict"): "admin",
    ("POST", "/console/objects/Counter/a/delete"): "admin",
    ("POST", "/console/alarms/purge"): "admin",
    ("POST", "/console/logout"): "admin",
    ("GET", "/console/workers"): "operator",
    ("GET", "/console/metrics"): "operator",
    ("POST", "/console/tenant"): "operator",
    # no such route (404) or method (405): any valid key, so that only key holders learn what exists
    ("GET", "/v1/nothing-here"): "call",
    ("PATCH", "/v1/objects/Counter/a"): "call",
    ("GET", "/v1/objects/Counter/a/ws"): "call",
}
ALLOWED = {
    "call": {"POST /v1/objects/Counter/a/increment", "GET /v1/calls/0123", "GET /v1/whoami", "GET /v1/classes"},
    "admin": {
        "POST /v1/objects/Counter/a/increment",
        "GET /v1/calls/0123",
        "GET /v1/whoami",
        "GET /v1/classes",
        "GET /v1/objects/Counter/a",
        "HEAD /v1/objects/Counter/a",
        "GET /v1/objects/Counter/a/export",
        "PUT /v1/objects/Counter/a/import",
        "POST /v1/objects/Counter/a/restore",
        "DELETE /v1/objects/Counter/a",
        "DELETE /v1/objects/Counter/a/mailbox",
        "GET /v1/alarms",
        "GET /v1/objects",
        "POST /v1/objects/Counter/a/evict",
        "DELETE /v1/alarms",
        "GET /console/objects",
        "GET /console/objects/Counter/a",
        "POST /console/objects/Counter/a/evict",
        "POST /console/objects/Counter/a/delete",
        "POST /console/alarms/purge",
        "POST /console/logout",
    },
}
ALLOWED["operator"] = {
    *ALLOWED["admin"],
    "GET /metrics",
    "GET /console/workers",
    "GET /console/metrics",
    "POST /console/tenant",
}


def http_scope(method: str, path: str, query: bytes = b"", headers=()) -> dict:
    return {"type": "http", "method": method, "path": path, "query_string": query, "headers": list(headers)}


@pytest.mark.parametrize("method, path", sorted(NEEDED))
def test_the_scope_a_request_needs_comes_from_its_route(method, path):
    assert requirement(app_routes(), http_scope(method, path)).scope == NEEDED[(method, path)]


@pytest.mark.parametrize("scope", SCOPES)
def test_each_scope_may_use_exactly_its_routes(scope):
    routes = app_routes()
    principal = Principal("k", "acme", scope)
    allowed = set()
    for method, path in NEEDED:
        needed = requirement(routes, http_scope(method, path)).scope
        if needed is not None and principal.allows(needed):
            allowed.add(f"{method} {path}")
    unmatched = {"GET /v1/nothing-here", "PATCH /v1/objects/Counter/a", "GET /v1/objects/Counter/a/ws"}
    assert allowed - unmatched == ALLOWED[scope]


def test_a_route_missing_from_the_table_needs_the_operator():
    from starlette.routing import Route

    async def endpoint(request):  # pragma: no cover - never called
        raise AssertionError

    routes = [Route("/v1/secret", endpoint, methods=["GET"])]
    assert requirement(routes, http_scope("GET", "/v1/secret")).scope == "operator"


# -- the key a request presents -------------------------------------------------------------


@pytest.mark.parametrize(
    "scope, key",
    [
        (http_scope("POST", "/v1/x", headers=[(b"authorization", f"Bearer {TOKEN}".encode())]), TOKEN),
        (http_scope("POST", "/v1/x", headers=[(b"authorization", f"bearer   {TOKEN} ".encode())]), TOKEN),
        (http_scope("POST", "/v1/x", headers=[(b"authorization", f"Basic {TOKEN}".encode())]), None),
        (http_scope("POST", "/v1/x", headers=[(b"authorization", b"Bearer")]), None),
        (http_scope("POST", "/v1/x"), None),
        # the token query parameter: only for a WebSocket handshake, or a GET of a path ending in /ws
        (http_scope("GET", "/v1/objects/Chat/a/ws", query=f"token={TOKEN}".encode()), TOKEN),
        ({**http_scope("GET", "/v1/objects/Chat/a/ws", query=f"token={TOKEN}".encode()), "type": "websocket"}, TOKEN),
        ({**http_scope("GET", "/v1/anything", query=f"a=1&token={TOKEN}".encode()), "type": "websocket"}, TOKEN),
        (http_scope("POST", "/v1/objects/Chat/a/ws", query=f"token={TOKEN}".encode()), None),
        (http_scope("GET", "/v1/objects/Chat/a", query=f"token={TOKEN}".encode()), None),
    ],
)
def test_the_key_comes_from_the_bearer_header_or_for_websockets_the_token_parameter(scope, key):
    assert presented_key(scope) == key


# -- the key cache --------------------------------------------------------------------------


class FakeKeys:
    """A key table in memory that counts its reads."""

    def __init__(self) -> None:
        self.rows: dict[str, StoredKey] = {}
        self.reads = 0

    def add(self, token: str, scope="call", tenant="acme", revoked=False) -> None:
        key_id = token.split("_")[1]
        self.rows[key_id] = StoredKey(token_digest(token), Principal(key_id, tenant, scope), None, revoked)

    def lookup(self, key_id: str) -> StoredKey | None:
        self.reads += 1
        return self.rows.get(key_id)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(coroutine):
    return asyncio.run(coroutine)


def test_a_warm_key_is_checked_without_reading_the_database():
    store, clock = FakeKeys(), Clock()
    store.add(TOKEN)
    cache = KeyCache(store.lookup, ttl_s=2.0, clock=clock)

    async def many() -> list:
        return [await cache.check(TOKEN) for _ in range(100)]

    found = run(many())
    assert all(s is not None and s.principal.tenant == "acme" for s in found)
    assert store.reads == 1 and cache.reads == 1


def test_a_revoked_key_is_refused_once_its_entry_expires():
    store, clock = FakeKeys(), Clock()
    store.add(TOKEN)
    cache = KeyCache(store.lookup, ttl_s=2.0, clock=clock)
    assert run(cache.check(TOKEN)) is not None

    store.add(TOKEN, revoked=True)  # revoked in the database
    clock.now += 1.9
    assert run(cache.check(TOKEN)) is not None  # still within the entry's life
    clock.now += 0.1
    assert run(cache.check(TOKEN)) is None  # read again, and refused
    assert store.reads == 2


def test_a_wrong_secret_for_a_cached_id_is_refused_without_another_read():
    store, clock = FakeKeys(), Clock()
    store.add(TOKEN)
    cache = KeyCache(store.lookup, clock=clock)
    assert run(cache.check(TOKEN)) is not None
    assert run(cache.check(TOKEN[:-1] + "t")) is None
    assert run(cache.check("not a key")) is None  # not even looked up
    assert store.reads == 1


def test_an_unknown_id_is_remembered_too():
    store, clock = FakeKeys(), Clock()
    cache = KeyCache(store.lookup, clock=clock)
    for _ in range(10):
        assert run(cache.check(TOKEN)) is None
    assert store.reads == 1


def test_concurrent_requests_with_a_cold_key_wait_on_one_read():
    store, clock = FakeKeys(), Clock()
    store.add(TOKEN)
    cache = KeyCache(store.lookup, clock=clock)

    async def together() -> list:
        return await asyncio.gather(*(cache.check(TOKEN) for _ in range(50)))

    assert all(found is not None for found in run(together()))
    assert store.reads == 1


def test_the_cache_keeps_at_most_its_bound_dropping_the_oldest():
    store, clock = FakeKeys(), Clock()
    cache = KeyCache(store.lookup, max_entries=3, clock=clock)
    tokens = [f"solo_{i:016x}_{'s' * 43}" for i in range(5)]
    for token in tokens:
        run(cache.check(token))
    assert list(cache._entries) == [f"{i:016x}" for i in (2, 3, 4)]


# -- the authenticator and the middleware -----------------------------------------------------


def test_with_auth_off_every_request_is_the_operator_of_tenant_default():
    auth = Authenticator("off", None, None)
    assert run(auth.admit(None, Requirement("operator", "/v1/x"))) == DEV_PRINCIPAL
    assert DEV_PRINCIPAL == Principal(None, "default", "operator")


def test_the_authenticator_refuses_a_missing_key_an_unknown_key_and_a_narrow_scope():
    store = FakeKeys()
    store.add(TOKEN, scope="call")
    auth = Authenticator("keys", KeyCache(store.lookup), limiter=object())  # no rate on this key
    with pytest.raises(Unauthenticated):
        run(auth.admit(None, Requirement("call", "/v1/x")))
    with pytest.raises(Unauthenticated):
        run(auth.admit(TOKEN[:-1] + "t", Requirement("call", "/v1/x")))
    with pytest.raises(Forbidden, match="needs admin"):
        run(auth.admit(TOKEN, Requirement("admin", "/v1/x")))
    assert run(auth.admit(TOKEN, Requirement("call", "/v1/x"))).key_id == KEY_ID


def test_refusals_are_counted_by_reason_and_tenant():
    store = FakeKeys()
    store.add(TOKEN, scope="call")
    auth = Authenticator("keys", KeyCache(store.lookup), limiter=object())
    for token, needed in ((None, "call"), ("solo_bad", "call"), (TOKEN, "admin"), (TOKEN, "operator")):
        with pytest.raises((Unauthenticated, Forbidden)):
            run(auth.admit(token, Requirement(needed, "/v1/x")))
    refusals = auth.metrics.registry.get_sample_value
    assert refusals("solo_api_refusals_total", {"reason": "unauthenticated", "tenant": ""}) == 2
    assert refusals("solo_api_refusals_total", {"reason": "forbidden", "tenant": "acme"}) == 2


def websocket_app(store: FakeKeys) -> Starlette:
    async def chat(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"tenant": websocket.state.principal.tenant})
        await websocket.close()

    routes = [WebSocketRoute("/v1/objects/{class_name}/{name}/ws", chat)]
    auth = Authenticator("keys", KeyCache(store.lookup), limiter=object())
    return Starlette(routes=routes, middleware=[Middleware(AuthMiddleware, authenticator=auth, routes=routes)])


def test_a_websocket_route_missing_from_the_table_needs_the_operator(monkeypatch):
    monkeypatch.delitem(ROUTE_SCOPES, ("WEBSOCKET", "/v1/objects/{class_name}/{name}/ws"))
    store = FakeKeys()
    store.add(TOKEN, scope="admin")
    with TestClient(websocket_app(store)) as client:
        with pytest.raises(WebSocketDenialResponse) as refused:
            with client.websocket_connect(f"/v1/objects/Chat/a/ws?token={TOKEN}"):
                pass
        assert refused.value.status_code == 403


def test_a_websocket_handshake_is_refused_with_401_without_a_key_and_admitted_with_the_token_parameter():
    store = FakeKeys()
    store.add(TOKEN, tenant="acme")
    with TestClient(websocket_app(store)) as client:
        with pytest.raises(WebSocketDenialResponse) as refused:
            with client.websocket_connect("/v1/objects/Chat/a/ws"):
                pass
        assert refused.value.status_code == 401
        assert refused.value.json()["error"]["code"] == "unauthenticated"

        with client.websocket_connect(f"/v1/objects/Chat/a/ws?token={TOKEN}") as ws:
            assert ws.receive_json() == {"tenant": "acme"}


def test_the_openapi_document_declares_the_bearer_key_and_the_open_routes():
    from solo.api.openapi import openapi_document
    from solo.objects.registry import load_object_modules

    document = openapi_document(load_object_modules(("solo.examples",)))
    assert document["components"]["securitySchemes"]["apiKey"] == {"type": "http", "scheme": "bearer"}
    assert document["security"] == [{"apiKey": []}]
    assert document["paths"]["/healthz"]["get"]["security"] == []
    assert document["paths"]["/readyz"]["get"]["security"] == []
    assert "401" in document["paths"]["/v1/objects/Counter/{name}/increment"]["post"]["responses"]
