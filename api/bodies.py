"""Request bodies, parsed into solo's own types at the edge, before anything is written.

Every body may be written by an attacker: each parser refuses what the rest of
solo could not carry with a SoloError (a 4xx), never lets it through to fail later.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request

from solo.objects.errors import InvalidArguments, PayloadTooLarge


def refuse_declared_excess(request: Request, limit: int, message: str) -> None:
    """PayloadTooLarge before anything is read, if the body's Content-Length is past `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(message)


async def read_body(request: Request, limit: int, too_large: str | None = None) -> bytes:
    """The body, refused with PayloadTooLarge (`too_large` its message) as soon as it passes `limit`."""
    message = too_large or f"request body is larger than {limit} bytes"
    refuse_declared_excess(request, limit, message)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(message)
    return bytes(body)


def _reject_constant(name: str) -> Any:
    raise InvalidArguments(f"the request body is not valid JSON: {name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidArguments(f"the request body is not valid JSON: the number {text[:40]} is out of range")
    return value


MAX_ARGUMENT_DEPTH = 64  # nesting of arrays and objects in a request body


def _check_text(text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidArguments("the request body has a string with an unpaired surrogate") from None


def _check_encodable(value: Any) -> None:
    """Refuse what the JSON decoder lets through but the call's path cannot carry.

    Deep nesting overflows the recursion of the encoders downstream (a 500 after
    validation), and strings with unpaired surrogates ("\\ud800") cannot be
    encoded as UTF-8 by SQLite or in the response. Iterative, so it cannot
    overflow itself.
    """
    if isinstance(value, str):
        _check_text(value)
    if not isinstance(value, (dict, list)):
        return
    stack: list[tuple[dict | list, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_ARGUMENT_DEPTH:
            raise InvalidArguments(f"the request body is nested deeper than {MAX_ARGUMENT_DEPTH} levels")
        children: Iterable[Any]
        if isinstance(item, dict):
            for key in item:
                _check_text(key)
            children = item.values()
        else:
            children = item
        for child in children:
            if isinstance(child, str):
                _check_text(child)
            elif isinstance(child, (dict, list)):
                stack.append((child, depth + 1))


_STRICT_JSON = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def parse_arguments(body: bytes) -> Any:
    if not body:  # no body: no arguments. Whitespace is a body, and not JSON: refused below.
        return {}
    try:
        # Strict JSON: Python's parser would accept NaN, Infinity and 1e999, which
        # the mailbox cannot encode again (a 500 after validation).
        # As json.loads(body, parse_constant=..., parse_float=...) does, without a decoder made per call.
        arguments = _STRICT_JSON.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except (ValueError, RecursionError) as exc:  # includes bad UTF-8, integers over the digit limit, deep nesting
        reason = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise InvalidArguments(f"the request body is not valid JSON: {reason}") from None
    _check_encodable(arguments)
    return arguments


def parse_restore_point(body: bytes) -> int | dt.datetime:
    """A sequence, or an aware UTC time, from a JSON body with exactly one of "seq" and "at"."""
    try:
        point = json.loads(body) if body.strip() else None
    except (ValueError, RecursionError):
        raise InvalidArguments('the body must be JSON: {"seq": n} or {"at": "<ISO-8601 time>"}') from None
    if not isinstance(point, dict) or len(point) != 1 or not set(point) <= {"seq", "at"}:
        raise InvalidArguments('the body must be exactly one of {"seq": n} or {"at": "<ISO-8601 time>"}')
    if "seq" in point:
        seq = point["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise InvalidArguments(f"seq must be an integer, not {json.dumps(seq)[:40]}")
        return seq
    at = point["at"]
    try:
        when = dt.datetime.fromisoformat(at)
    except (TypeError, ValueError):
        raise InvalidArguments(f"at must be an ISO-8601 time, not {json.dumps(at)[:60]}") from None
    if when.tzinfo is None:  # a time without an offset is UTC, as every stored time
        when = when.replace(tzinfo=dt.UTC)
    try:
        return when.astimezone(dt.UTC)
    except OverflowError:  # an offset that moves the time past year 1 or 9999
        raise InvalidArguments(f"at is out of range: {json.dumps(at)[:60]} is not in years 1 to 9999 in UTC") from None
