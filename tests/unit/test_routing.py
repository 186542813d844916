"""Routing (api/routing.py): RouteMatcher picks the route Starlette's router picks, for any request."""

from __future__ import annotations

import pytest
from starlette.routing import Match

from solo.api.app import create_app
from solo.api.routing import RouteMatcher
from solo.objects.settings import Settings


@pytest.fixture(scope="module")
def routes():
    settings = Settings.from_mapping({"redis_url": "redis://fake", "database_url": "sqlite://"})
    return create_app(settings, dispatch=lambda _id: None).routes


def starlette_pick(routes, scope):
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is Match.FULL:
            return route, child_scope
    return None


PATHS = [
    "/v1/objects/Counter/a/increment",
    "/v1/objects/Counter/a/restore",
    "/v1/objects/Counter/a/restore\n",
    "/v1/objects/Counter/a/evict",
    "/v1/objects/Counter/a/ws",
    "/v1/objects/Counter/a/export",
    "/v1/objects/Counter/a/history",
    "/v1/objects/Counter/a/mailbox",
    "/v1/objects/Counter/a/alarms/x",
    "/v1/objects/Counter/a/alarms/x/fire-now",
    "/v1/objects/Counter/a",
    "/v1/objects/Counter/a/",
    "/v1/objects/Counter",
    "/v1/objects",
    "/v1/objects/",
    "/v1/calls/abc",
    "/v1/calls/",
    "/healthz",
    "/healthz\n",
    "/healthz/",
    "/docs",
    "/docs/x.css",
    "/console",
    "/console/objects/C/n",
    "/console/static/app.js",
    "/pages/chat",
    "/metrics",
    "/",
    "",
    "/v1/objects/Counter/a/b/c/d/e",
    "/v1/objects//a/increment",
    "/v1/objects/Counter/a\n/increment",
    "//v1/objects/Counter/a/increment",
]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]


@pytest.mark.parametrize("path", PATHS)
def test_the_matcher_picks_starlette_s_route_for_every_method_and_kind(routes, path):
    matcher = RouteMatcher(routes)
    scopes = [{"type": "http", "method": m, "path": path} for m in METHODS]
    scopes += [{"type": "websocket", "path": path}, {"type": "http", "method": "POST", "path": path, "root_path": ""}]
    for scope in scopes:
        assert matcher.full_match(dict(scope)) == starlette_pick(routes, dict(scope)), scope


def test_a_route_added_later_is_matched_too(routes):
    from starlette.routing import Route

    live = list(routes)
    matcher = RouteMatcher(live)
    scope = {"type": "http", "method": "GET", "path": "/added/x"}
    assert matcher.full_match(dict(scope)) is None
    live.append(Route("/added/{thing}", lambda request: None))
    assert matcher.full_match(dict(scope)) == starlette_pick(live, dict(scope))
