"""Domain errors to HTTP: the only place that knows status codes."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from solo.objects import errors as e


class ApiError(e.SoloError):
    """Root of the errors only the HTTP edge raises (the rest are the object model's)."""


class UnsupportedMediaType(ApiError):
    """Raised when an import's body is not declared as application/octet-stream."""

    code = "unsupported_media_type"


class InvalidIdempotencyKey(ApiError, e.InvalidName):
    """Raised when an Idempotency-Key header is empty, too long or not printable ASCII."""

    code = "invalid_idempotency_key"


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

    ``code``, ``message`` and ``call_id`` are the API's, ``status`` the HTTP status.
    """

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        self.status = status
        self.error = error
        self.call_id = error.get("call_id")
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
    e.CallNotFound: 404,
    e.PayloadTooLarge: 413,
    e.MailboxFull: 429,
    e.IdempotencyKeyReused: 422,
    # A statement of an object's SQL that no rewording lets run: refused by policy, whoever asks.
    e.SqlNotAllowed: 403,
    # A statement that may run, but made a value (or is itself) past the limits: the content is at fault.
    e.SqlTooBig: 422,
    UnsupportedMediaType: 415,
    e.InvalidArguments: 422,
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
    return None


def solo_error_response(exc: e.SoloError) -> JSONResponse:
    extra = {"call_id": exc.call_id} if isinstance(exc, e.CallTimeout) else {}
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
    return error_response(code, str(getattr(exc, "detail", "")) or code, status)


async def redis_error_handler(request: Request, exc: Exception) -> JSONResponse:
    # Nothing was acknowledged; the caller may retry (with an Idempotency-Key to be safe).
    return error_response("unavailable", f"Redis is unavailable: {type(exc).__name__}: {exc}", 503)


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    return error_response("internal_error", f"{type(exc).__name__}: {exc}", 500)
