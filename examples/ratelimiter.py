"""Rate limiting in one object: sliding windows, token buckets and concurrency slots.

Sliding windows and token buckets answer from memory, with no write per check:
their counters live in plain attributes and are lost when the object is evicted
(after a minute without any call, by default) or its worker dies, which starts
every key afresh. That is the intended trade: a check costs no database write,
and a restart briefly forgives clients. Long windows (an hour, a day) therefore
hold only while the object stays busy.
Concurrency slots are different: a slot held by a request that is still running
must not be forgotten, so slots are kept in ``self.storage`` and survive any
restart; a slot that is never released is reclaimed when its lease expires.
"""

from __future__ import annotations

import math
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from solo import DurableObject, UserError, rpc

MAX_KEY_CHARS = 200
MAX_WINDOW_LIMIT = 100_000  # a sliding window keeps one timestamp per counted request
MAX_WINDOW_S = 7 * 24 * 3600
MAX_SLOT_TTL_S = 24 * 3600
MAX_BUCKET_CAPACITY = 1e9
# A token in 11.6 days at the slowest: a wait is then at most 1e15 s, where a slower refill
# could make it a float too large to answer (infinite).
MIN_REFILL_PER_S = 1e-6
SWEEP_EVERY_CHECKS = 1000  # how often idle keys are dropped from memory
API_WINDOWS_S = {"minute": 60, "hour": 3600, "day": 86400}


def _seconds(ms: float) -> float:
    """Milliseconds as seconds, rounded up to the millisecond (never 0 for a wait that is not over)."""
    return math.ceil(ms) / 1000


def _check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_CHARS:
        raise UserError(f"key must be 1 to {MAX_KEY_CHARS} characters", code="invalid_key")


def _check_positive(name: str, value: float, upper: float) -> None:
    if not math.isfinite(value) or not 0 < value <= upper:
        raise UserError(f"{name} must be greater than 0 and at most {upper}, not {value}", code="invalid_limit")


def _check_range(name: str, value: float, lowest: float, upper: float) -> None:
    if not math.isfinite(value) or not lowest <= value <= upper:
        raise UserError(f"{name} must be from {lowest} to {upper}, not {value}", code="invalid_limit")


class SlidingWindow:
    """A log of the times of the requests counted in the last `window_ms`: exact, one entry per request."""

    def __init__(self) -> None:
        self.times: deque[int] = deque()

    def prune(self, now_ms: int, window_ms: int) -> None:
        while self.times and self.times[0] <= now_ms - window_ms:
            self.times.popleft()

    def peek(self, now_ms: int, limit: int, window_ms: int, *, counting: bool = True) -> dict[str, Any]:
        """Whether one more request fits, without counting it; `remaining` as if it is counted when
        `counting` (and it fits), else as it stands."""
        self.prune(now_ms, window_ms)
        used = len(self.times)
        allowed = used < limit
        counted = 1 if allowed and counting else 0
        # reset_after: until every request counted so far (and this one, if counted) has left the window
        if counted:
            reset_ms = window_ms
        else:
            reset_ms = self.times[-1] + window_ms - now_ms if used else 0
        result: dict[str, Any] = {
            "allowed": allowed,
            "limit": limit,
            "remaining": max(0, limit - used - counted),
            "reset_after": _seconds(reset_ms),
        }
        if not allowed:
            # the oldest request that must leave before one more fits
            blocking = self.times[used - limit]
            result["retry_after"] = _seconds(blocking + window_ms - now_ms)
        return result

    def record(self, now_ms: int) -> None:
        self.times.append(now_ms)


@dataclass
class TokenBucket:
    capacity: float
    refill_per_s: float
    tokens: float
    updated_ms: int

    def refill(self, now_ms: int) -> None:
        elapsed_s = max(0, now_ms - self.updated_ms) / 1000
        self.tokens = min(self.capacity, self.tokens + elapsed_s * self.refill_per_s)
        self.updated_ms = now_ms


class RateLimiter(DurableObject):
    """Rate limits for many keys: sliding windows and token buckets in memory, concurrency slots in storage.

    One object can serve a whole tenant: every method takes the `key` it limits
    (a user, an API key, an endpoint). Refusals carry `retry_after` in seconds.
    """

    def on_start(self) -> None:
        self.windows: dict[tuple[str, int], SlidingWindow] = {}
        self.buckets: dict[str, TokenBucket] = {}
        self.checks = 0

    # -- sliding window ----------------------------------------------------------

    @rpc
    def check(self, key: str, limit: int, window_s: float) -> dict[str, Any]:
        """Count one request against `limit` requests per sliding `window_s` seconds, if it fits.

        Answers {allowed, limit, remaining, reset_after, retry_after (when refused)}.
        """
        _check_key(key)
        _check_positive("limit", limit, MAX_WINDOW_LIMIT)
        _check_positive("window_s", window_s, MAX_WINDOW_S)
        now = self.ctx.now_ms()
        window_ms = math.ceil(window_s * 1000)
        window = self._window(key, window_ms)
        result = window.peek(now, limit, window_ms)
        if result["allowed"]:
            window.record(now)
        self._sweep(now)
        return result

    @rpc
    def check_api(
        self,
        api_key: str,
        endpoint: str,
        per_minute: int | None = None,
        per_hour: int | None = None,
        per_day: int | None = None,
    ) -> dict[str, Any]:
        """One API request against per-minute, per-hour and per-day sliding windows at once.

        The request is counted in every window only if every window has room; if any
        refuses, nothing is counted and `retry_after` is the longest wait among them.
        """
        _check_key(api_key)
        _check_key(endpoint)
        limits = {"minute": per_minute, "hour": per_hour, "day": per_day}
        limits = {period: limit for period, limit in limits.items() if limit is not None}
        if not limits:
            raise UserError("give at least one of per_minute, per_hour, per_day", code="invalid_limit")
        for period, limit in limits.items():
            _check_positive(f"per_{period}", limit, MAX_WINDOW_LIMIT)
        now = self.ctx.now_ms()
        windows_ms = {period: API_WINDOWS_S[period] * 1000 for period in limits}
        windows = {period: self._window(f"{api_key}\n{endpoint}\n{period}", windows_ms[period]) for period in limits}
        results = {period: windows[period].peek(now, limit, windows_ms[period]) for period, limit in limits.items()}
        refused = [result for result in results.values() if not result["allowed"]]
        if refused:  # nothing is counted: report every window as it stands
            results = {
                period: windows[period].peek(now, limit, windows_ms[period], counting=False)
                for period, limit in limits.items()
            }
            self._sweep(now)
            return {"allowed": False, "retry_after": max(r["retry_after"] for r in refused), "limits": results}
        for window in windows.values():
            window.record(now)
        self._sweep(now)
        return {"allowed": True, "limits": results}

    def _window(self, key: str, window_ms: int) -> SlidingWindow:
        return self.windows.setdefault((key, window_ms), SlidingWindow())

    def _sweep(self, now_ms: int) -> None:
        """Now and then, forget keys whose windows have emptied and buckets that have refilled."""
        self.checks += 1
        if self.checks % SWEEP_EVERY_CHECKS:
            return
        for (key, window_ms), window in list(self.windows.items()):
            window.prune(now_ms, window_ms)
            if not window.times:
                del self.windows[key, window_ms]
        for key, bucket in list(self.buckets.items()):
            bucket.refill(now_ms)
            if bucket.tokens >= bucket.capacity:  # the same as a new bucket
                del self.buckets[key]

    # -- token bucket -------------------------------------------------------------

    @rpc
    def take(self, key: str, capacity: float, refill_per_s: float, tokens: float = 1) -> dict[str, Any]:
        """Take `tokens` from the bucket of `key` (holding up to `capacity`, refilled at `refill_per_s`).

        A new bucket starts full. Answers {allowed, tokens (left), reset_after (until full),
        retry_after (when refused)}.
        """
        _check_key(key)
        _check_positive("capacity", capacity, MAX_BUCKET_CAPACITY)
        _check_range("refill_per_s", refill_per_s, MIN_REFILL_PER_S, 1e9)
        _check_positive("tokens", tokens, capacity)  # more than a full bucket could never be granted
        now = self.ctx.now_ms()
        bucket = self.buckets.setdefault(key, TokenBucket(capacity, refill_per_s, capacity, now))
        bucket.refill(now)
        bucket.capacity, bucket.refill_per_s = capacity, refill_per_s  # the caller's latest terms apply
        bucket.tokens = min(bucket.tokens, capacity)
        allowed = bucket.tokens >= tokens
        if allowed:
            bucket.tokens -= tokens
        result: dict[str, Any] = {
            "allowed": allowed,
            "tokens": round(bucket.tokens, 6),
            "reset_after": _seconds((capacity - bucket.tokens) / refill_per_s * 1000),
        }
        if not allowed:
            result["retry_after"] = _seconds((tokens - bucket.tokens) / refill_per_s * 1000)
        return result

    # -- concurrency slots (durable) -------------------------------------------------

    @rpc
    def acquire(self, key: str, max_concurrent: int, ttl_s: float = 30) -> dict[str, Any]:
        """Take one of `max_concurrent` slots of `key` for at most `ttl_s` seconds.

        Answers {acquired, slot_id, active, max, expires_ms}, or when every slot is
        held {acquired: false, active, max, retry_after} (until the first lease expires).
        Slots are stored: they survive restarts until released or expired.
        """
        _check_key(key)
        _check_positive("max_concurrent", max_concurrent, MAX_WINDOW_LIMIT)
        _check_positive("ttl_s", ttl_s, MAX_SLOT_TTL_S)
        now = self.ctx.now_ms()
        slots = self._live_slots(key, now)
        if len(slots) >= max_concurrent:
            first_expiry = min(slot["expires_ms"] for slot in slots)
            return {
                "acquired": False,
                "active": len(slots),
                "max": max_concurrent,
                "retry_after": _seconds(first_expiry - now),
            }
        slot = {"slot_id": uuid.uuid4().hex, "acquired_ms": now, "expires_ms": now + math.ceil(ttl_s * 1000)}
        slots.append(slot)
        self._save_slots(key, slots)
        return {"acquired": True, **slot, "active": len(slots), "max": max_concurrent}

    @rpc
    def release(self, key: str, slot_id: str) -> dict[str, Any]:
        """Give a slot back. `released` is false if it was unknown or had already expired."""
        _check_key(key)
        now = self.ctx.now_ms()
        slots = self._live_slots(key, now)
        kept = [slot for slot in slots if slot["slot_id"] != slot_id]
        if len(kept) < len(slots):
            self._save_slots(key, kept)
        return {"released": len(kept) < len(slots), "active": len(kept)}

    @rpc
    def slots(self, key: str) -> list[dict[str, Any]]:
        """The slots of `key` held now (expired ones left out)."""
        _check_key(key)
        return self._live_slots(key, self.ctx.now_ms())

    def _live_slots(self, key: str, now_ms: int) -> list[dict[str, Any]]:
        """The unexpired slots of `key`; expired ones are reclaimed (removed from storage) on the way."""
        stored = self.storage.get(f"slots:{key}", [])
        live = [slot for slot in stored if slot["expires_ms"] > now_ms]
        if len(live) < len(stored):
            self._save_slots(key, live)
        return live

    def _save_slots(self, key: str, slots: list[dict[str, Any]]) -> None:
        if slots:
            self.storage.put(f"slots:{key}", slots)
        else:
            self.storage.delete(f"slots:{key}")
