"""The API's access log (SOLO_ACCESS_LOG=1): one line per HTTP request, without secrets.

A line holds the method, the path and query (a ``token`` parameter, which may carry an
API key, is left out), the status, the time taken, and who asked: the key's id and the
tenant, never the key, and no header at all (``Authorization`` carries the key). The
same values are the line's fields (``http_method``, ``path``, ``status``,
``duration_ms``, ``key_id``, ``tenant``) for SOLO_LOG_FORMAT=json.
The middleware is the outermost, so that it sees the status every answer went out with,
the gateway's refusals and internal errors too.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from solo.api.auth import TOKEN_QUERY_PARAMETER
from solo.objects.runtime.log_fields import FIELDS_ATTRIBUTE

log = logging.getLogger("solo.api.access")


def without_secrets(query: bytes) -> str:
    """The query string as sent, less every `token` parameter."""
    parts = query.decode("latin-1").split("&")
    kept = [p for p in parts if p and unquote_plus(p.partition("=")[0]) != TOKEN_QUERY_PARAMETER]
    return "&".join(kept)


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500  # if the app ends without starting an answer, the server sends a 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            self._write(scope, status, time.perf_counter() - began)

    @staticmethod
    def _write(scope: Scope, status: int, elapsed_s: float) -> None:
        query = without_secrets(scope.get("query_string", b""))
        path = scope.get("path", "") + (f"?{query}" if query else "")
        principal = scope.get("state", {}).get("principal")  # recorded by AuthMiddleware (api/auth.py)
        key_id = principal.key_id if principal is not None else None
        tenant = principal.tenant if principal is not None else None
        duration_ms = round(elapsed_s * 1000, 2)
        fields = {
            "http_method": scope.get("method"),
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
            "key_id": key_id,
            "tenant": tenant,
        }
        log.info(
            "%s %s %d %.2f ms key=%s tenant=%s",
            scope.get("method"),
            path,
            status,
            duration_ms,
            key_id or "-",
            tenant or "-",
            extra={FIELDS_ATTRIBUTE: {k: v for k, v in fields.items() if v is not None}},
        )
