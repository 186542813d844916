"""Routing: each request is matched against the routes once, and most routes are skipped by a string test.

Starlette's router tries its routes in order, each with a regular expression, and takes
the first that matches fully (path and method). The gateway (api/auth.py) needs that route
too, for the scope it asks of the key, so it matched the routes a first time. Here:

- `RouteMatcher` finds the same first full match, but tries a route's expression only when
  the path starts and ends with the route's literal text (its path before the first and
  after the last parameter) and the request is of the route's kind (HTTP or WebSocket): a
  path without them cannot match it. A call (``/v1/objects/C/n/method``) tries two
  expressions instead of eleven.
- The gateway leaves the route it found in the request's scope (`MATCHED_ROUTE`), and
  `MatchedOnceRouter` hands the request to it as Starlette's router does after its loop.
  Without one (auth off, the console's pages) the router matches with `RouteMatcher`; a
  request no route matches fully (404, 405, a redirect for a slash) goes Starlette's way.

docs/adr/0020-api-cpu-per-call.md has the measurements.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Match, Route, Router, WebSocketRoute, compile_path, get_route_path
from starlette.types import Receive, Scope, Send

# Where the gateway leaves the route it matched, with its child scope, for the router to take.
MATCHED_ROUTE = "solo.matched_route"

_Bounds = tuple[str, str, str] | None  # (scope type, literal prefix, literal suffix); None: always try


def _bounds(route: BaseRoute) -> _Bounds:
    if type(route) is Route:
        kind = "http"
    elif type(route) is WebSocketRoute:
        kind = "websocket"
    else:  # a Mount, a Host or anything else matches by its own rules: tried every time
        return None
    path: str = route.path
    _, path_format, convertors = compile_path(path)
    if not convertors:
        return kind, path, path
    first, last = path_format.index("{"), path_format.rindex("}")
    return kind, path_format[:first], path_format[last + 1 :]


class RouteMatcher:
    """The first route of `routes` (a live list: routes added later count) that matches a request fully."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.routes = routes
        self._bounds: dict[int, _Bounds] = {}  # by id(route): routes compare by value and are not hashable

    def full_match(self, scope: Scope) -> tuple[BaseRoute, Scope] | None:
        path, kind, known = get_route_path(scope), scope["type"], self._bounds
        # An expression's "$" matches before a final newline too ("/healthz\n" is /healthz): such a
        # path tries every route, as Starlette's router does.
        skipping = not path.endswith("\n")
        for route in self.routes:
            key = id(route)
            if key not in known:
                known[key] = _bounds(route)
            bounds = known[key]
            if (
                skipping
                and bounds is not None
                and (bounds[0] != kind or not path.startswith(bounds[1]) or not path.endswith(bounds[2]))
            ):
                continue  # its expression cannot match this path
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return route, child_scope
        return None


class MatchedOnceRouter(Router):
    """Starlette's router, taking the gateway's match, else finding the first full match with RouteMatcher."""

    def __init__(self, *args, **kwargs) -> None:  # Router's own
        super().__init__(*args, **kwargs)
        self.matcher = RouteMatcher(self.routes)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = scope.pop(MATCHED_ROUTE, None)
        if matched is None and scope["type"] in ("http", "websocket"):
            matched = self.matcher.full_match(scope)
        if matched is None:  # lifespan, or no full match: partial matches (405), redirects and 404 as Starlette's
            await super().app(scope, receive, send)
            return
        route, child_scope = matched
        if "router" not in scope:
            scope["router"] = self
        scope["route"] = route
        scope.update(child_scope)
        await route.handle(scope, receive, send)
