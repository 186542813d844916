"""Domain errors to HTTP: the only place that knows status codes."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from solo.objects import errors as e
from solo.objects.state.store import InvalidImage

STATUS_BY_CODE: dict[str, int] = {
    e.InvalidName.code: 400,
    "invalid_idempotency_key": 400,
    e.UnknownClass.code: 404,
    e.UnknownMethod.code: 404,
    e.ObjectNotFound.code: 404,
    e.CallNotFound.code: 404,
    "not_found": 404,
    "method_not_allowed": 405,
    e.PayloadTooLarge.code: 413,
    "unsupported_media_type": 415,
    e.InvalidArguments.code: 422,
    InvalidImage.code: 422,
    "out_of_retention": 422,
    e.CallTimeout.code: 504,
    e.SchemaTooNew.code: 503,
    e.OwnershipLost.code: 503,
    "unavailable": 503,
    "call_cycle": 508,
    "remote_call_timeout": 504,
    "remote_call_failed": 502,
}


def status_for(error: dict[str, Any]) -> int:
    """A call outcome's error -> HTTP status; UserError carries its own."""
    return int(error.get("status") or STATUS_BY_CODE.get(error.get("code", ""), 500))


def error_response(code: str, message: str, status: int | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message, **extra}
    return JSONResponse({"error": body}, status_code=status or STATUS_BY_CODE.get(code, 500))


def outcome_error_response(error: dict[str, Any], call_id: str) -> JSONResponse:
    body = {k: v for k, v in error.items() if k != "status"}
    return JSONResponse({"error": {**body, "call_id": call_id}}, status_code=status_for(error))


async def solo_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, e.SoloError)
    extra = {"call_id": exc.call_id} if isinstance(exc, e.CallTimeout) else {}
    return error_response(exc.code, exc.message, **extra)


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    status = getattr(exc, "status_code", 500)
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
    return error_response(code, str(getattr(exc, "detail", "")) or code, status)


async def redis_error_handler(request: Request, exc: Exception) -> JSONResponse:
    # Nothing was acknowledged; the caller may retry (with an Idempotency-Key to be safe).
    return error_response("unavailable", f"Redis is unavailable: {type(exc).__name__}: {exc}", 503)


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    return error_response("internal_error", f"{type(exc).__name__}: {exc}", 500)
