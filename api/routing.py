"""The router: each request is matched against the routes once, by the gateway (api/auth.py).

With API keys on, `AuthMiddleware` finds the route a request matches fully, to know the
scope it needs, and leaves it in the request's scope (`MATCHED_ROUTE`); this router hands
the request to that route as Starlette's would have after the same loop over the same
routes (docs/adr/0020). Without one (auth off, the console, a path no route matches fully:
405s and 404s) it matches as Starlette's router does.
"""

from __future__ import annotations

from starlette.routing import Router
from starlette.types import Receive, Scope, Send

from solo.api.auth import MATCHED_ROUTE


class MatchedOnceRouter(Router):
    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = scope.pop(MATCHED_ROUTE, None)
        if matched is None:
            await super().app(scope, receive, send)
            return
        route, child_scope = matched
        if "router" not in scope:
            scope["router"] = self
        scope["route"] = route
        scope.update(child_scope)
        await route.handle(scope, receive, send)
