"""Domain errors to HTTP: the only place that knows status codes."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from solo.objects import errors as e

log = logging.getLogger(__name__)


class ApiError(e.SoloError):
    """Root of the errors only the HTTP edge raises (the rest are the object model's)."""


class UnsupportedMediaType(ApiError):
    """Raised when an import's body is not declared as application/octet-stream."""

    code = "unsupported_media_type"


class UpgradeRequired(ApiError):
    """Raised when a plain GET (no WebSocket upgrade) reaches an object's WebSocket route."""

    code = "upgrade_required"


class InvalidIdempotencyKey(ApiError, e.InvalidName):
    """Raised when an Idempotency-Key header is empty, too long or not printable ASCII."""

    code = "invalid_idempotency_key"


class ClassServed(ApiError):
    """Raised when an operator purges the alarms of a class this API serves: its objects run, and
    cancel their own alarms; only alarms no worker can run (orphaned) are purged from outside."""

    code = "class_served"


class Unauthenticated(ApiError):
    """Raised when a request carries no API key, or one that is malformed, unknown or revoked (api/auth.py)."""

    code = "unauthenticated"


class Forbidden(ApiError):
    """Raised when a request's key is valid but its scope does not allow the route (api/auth.py)."""

    code = "forbidden"


class RateLimited(ApiError):
    """Raised when a key has used up its rate (`--rate` when it was created); retry after `retry_after_s`."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class CallError(ApiError):
    """Raised by the Python client (api/client.py) when the API answered with an error.

    ``code``, ``message`` and ``call_id`` are the API's, ``status`` the HTTP status; ``details``
    a UserError's details (None without), ``suggestions`` the close names of an unknown class.
    """

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        self.status = status
        self.error = error
        self.call_id = error.get("call_id")
        self.details: dict[str, Any] | None = error.get("details")
        self.suggestions: list[str] = list(error.get("suggestions") or [])
        super().__init__(str(error.get("message", "")))
        self.code = str(error.get("code", "unknown"))

    def __str__(self) -> str:
        return f"{self.code} ({self.status}): {self.message}"


# Every error class a request can end in, and its status. Outcomes of calls carry only
# the code (they cross Redis as data), so the codes map through the same table.
STATUS_BY_CLASS: dict[type[e.SoloError], int] = {
    e.InvalidName: 400,
    InvalidIdempotencyKey: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    RateLimited: 429,
    e.UnknownClass: 404,
    e.UnknownMethod: 404,
    e.ObjectNotFound: 404,
    e.WebSocketsNotSupported: 404,
    e.CallNotFound: 404,
    e.AlarmNotFound: 404,
    e.PayloadTooLarge: 413,
    e.MailboxFull: 429,
    e.IdempotencyKeyReused: 422,
    # A statement of an object's SQL that no rewording lets run: refused by policy, whoever asks.
    e.SqlNotAllowed: 403,
    # A statement that may run, but made a value (or is itself) past the limits: the content is at fault.
    e.SqlTooBig: 422,
    e.SocketLimitExceeded: 422,
    e.TooManySockets: 429,
    UnsupportedMediaType: 415,
    UpgradeRequired: 426,
    ClassServed: 409,
    e.StateConflict: 409,
    e.InvalidArguments: 422,
    # Raised in an object's call, from what its caller sent: an alarm or schedule that cannot be set,
    # and a value the shared database cannot hold (NUL in text, a number past its column's range).
    e.InvalidSchedule: 422,
    e.SharedValueRefused: 422,
    # The method ran and returned more than SOLO_MAX_RESULT_BYTES: a failure on the server's side
    # (the method's result, not the request, is past a limit the server keeps), and the same call
    # fails the same way again. Not 413, which is about the request's own content; not 504 or 502:
    # nothing timed out, nothing answered wrongly. Its writes were rolled back.
    e.ResultTooLarge: 500,
    e.InvalidImage: 422,
    e.WalFormatError: 422,
    e.OutOfRetention: 422,
    e.IncompleteLog: 422,
    e.CallTimeout: 504,
    e.SchemaTooNew: 503,
    e.OwnershipLost: 503,
    e.ShippingFailed: 503,
    e.RemoteCallUnavailable: 503,
    e.CycleError: 508,
    e.RemoteCallTimeout: 504,
    e.RemoteCallError: 502,
}
STATUS_BY_CODE: dict[str, int] = {
    **{cls.code: status for cls, status in STATUS_BY_CLASS.items()},
    "not_found": 404,  # routing (Starlette's HTTPException)
    "method_not_allowed": 405,
    # Outcomes of calls that solo's runtime ended (objects/runtime/instance.py)
    "time_limit_exceeded": 504,
    "poisoned": 422,
    "purged": 410,  # the call was removed from its mailbox by an operator, unrun
}


def status_for(error: dict[str, Any]) -> int:
    """A call outcome's error -> HTTP status; UserError carries its own."""
    return int(error.get("status") or STATUS_BY_CODE.get(error.get("code", ""), 500))


def error_response(
    code: str, message: str, status: int | None = None, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message, **extra}
    return JSONResponse({"error": body}, status_code=status or STATUS_BY_CODE.get(code, 500), headers=headers)


def outcome_error_response(error: dict[str, Any], call_id: str) -> JSONResponse:
    body = {k: v for k, v in error.items() if k != "status"}
    return JSONResponse({"error": {**body, "call_id": call_id}}, status_code=status_for(error))


def headers_of(exc: e.SoloError) -> dict[str, str] | None:
    """The headers an error's answer carries besides its body."""
    if isinstance(exc, Unauthenticated):
        return {"WWW-Authenticate": 'Bearer realm="solo"'}
    if isinstance(exc, RateLimited):
        return {"Retry-After": str(exc.retry_after_s)}
    if isinstance(exc, UpgradeRequired):
        return {"Upgrade": "websocket"}  # what a 426 must name (RFC 9110)
    return None


def solo_error_response(exc: e.SoloError) -> JSONResponse:
    extra: dict[str, Any] = {"call_id": exc.call_id} if isinstance(exc, e.CallTimeout) else {}
    if isinstance(exc, (e.UnknownClass, e.UnknownMethod)):
        extra["suggestions"] = exc.suggestions
    return error_response(exc.code, exc.message, status_of(exc), headers=headers_of(exc), **extra)


def status_of(exc: e.SoloError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_CLASS:
            return STATUS_BY_CLASS[cls]
    return 500


async def solo_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, e.SoloError)
    return solo_error_response(exc)


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    status = getattr(exc, "status_code", 500)
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
    headers = dict(getattr(exc, "headers", None) or {})
    if status == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return error_response(code, str(getattr(exc, "detail", "")) or code, status, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path (RFC 9110's Allow).

    Starlette's 405 names only the methods of the first route that matched the path;
    solo has several routes on some paths (GET and DELETE of an object).
    """
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return sorted(methods)


def _debug(request: Request) -> bool:
    api = getattr(request.app.state, "api", None)
    return bool(api is not None and api.settings.debug)


def _method(request: HTTPConnection) -> str:
    """The request's method for the log; a WebSocket upgrade (which these handlers answer too) has none."""
    return str(request.scope.get("method", "WEBSOCKET"))


async def redis_error_handler(request: Request, exc: Exception) -> JSONResponse:
    # Nothing was acknowledged; the caller may retry (with an Idempotency-Key to be safe).
    # The exception's text names hosts and ports: it goes to the log, not to the caller.
    log.warning("%s %s: Redis is unavailable: %s: %s", _method(request), request.url.path, type(exc).__name__, exc)
    detail = f": {type(exc).__name__}: {exc}" if _debug(request) else ""
    return error_response("unavailable", f"Redis is unavailable{detail}", 503)


async def database_error_handler(request: Request, exc: Exception) -> JSONResponse:
    # The shared database could not be reached (down, restarting, a connection cut): a request
    # that needs it fails at once, nothing written (its transaction, if any, rolled back).
    # SQLAlchemy has invalidated the pool's connections, so a retry opens fresh ones.
    log.warning(
        "%s %s: the shared database is unavailable: %s: %s",
        _method(request),
        request.url.path,
        type(exc).__name__,
        exc,
    )
    detail = f": {type(exc).__name__}: {exc}" if _debug(request) else ""
    return error_response("unavailable", f"the shared database is unavailable; retry{detail}", 503)


class InternalErrors:
    """The last handler of a request's exceptions (a bug in solo): a JSON 500 `internal_error`.

    In place of Starlette's handler for `Exception`, which answers and then raises the
    exception again: the server logs it a second time and, as the response has started,
    closes the connection, so a client's keep-alive connection is lost with it. Here the
    exception is logged once, with its traceback and an id that the answer quotes, and not
    raised again, unless part of the response is already sent (then only closing the
    connection tells the client that the body is incomplete). The exception's text reaches
    the caller only under SOLO_DEBUG: it may name hosts, SQL or data.
    """

    def __init__(self, app: ASGIApp, debug: bool = False) -> None:
        self.app = app
        self.debug = debug

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_)
        except Exception as exc:
            if started:
                raise
            error_id = secrets.token_hex(6)
            log.error("internal error %s on %s %s", error_id, scope["method"], scope["path"], exc_info=exc)
            detail = f": {type(exc).__name__}: {exc}" if self.debug else ""
            message = f"internal error {error_id} (the API's log has its details){detail}"
            await error_response("internal_error", message, 500)(scope, receive, send)
