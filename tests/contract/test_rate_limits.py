"""Key rates shared by API processes, on both backends: two limiters on one Redis are two processes.

A process takes a key's requests from the shared counter in shares (1 % of the rate) and admits
them from memory: together the processes never admit more than the rate, refuse at most the
unused rest of the shares early, and ask Redis about once per share rather than per request.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from solo.api.auth import KeyRateLimiter
from solo.api.errors import RateLimited
from solo.objects.coordination.keys import Keys
from solo.objects.state.keys import parse_rate


async def admitted(limiters: list[KeyRateLimiter], key_id: str, rate_text: str, attempts: int) -> int:
    rate, count = parse_rate(rate_text), 0
    for i in range(attempts):
        try:
            await limiters[i % len(limiters)].hit(key_id, rate)
        except RateLimited:
            continue
        count += 1
    return count


@pytest.fixture
def two_processes(async_redis_client, key_prefix) -> list[KeyRateLimiter]:
    # A clock that stands still: no share expires during a test, however slow the machine.
    return [KeyRateLimiter(async_redis_client, Keys(key_prefix), clock=lambda: 0.0) for _ in range(2)]


def test_two_processes_together_admit_no_more_than_the_rate_and_ask_redis_once_a_share(two_processes):
    asked = 0
    for limiter in two_processes:
        hit = limiter.limiter.hit

        async def counted(*args, _hit=hit, **kwargs):
            nonlocal asked
            asked += 1
            return await _hit(*args, **kwargs)

        limiter.limiter.hit = counted

    key_id = uuid.uuid4().hex[:16]

    async def run() -> tuple[int, int, int]:
        first = await admitted(two_processes, key_id, "2000/minute", attempts=1_900)
        asked_for_first = asked
        return first, asked_for_first, await admitted(two_processes, key_id, "2000/minute", attempts=500)

    first, asked_for_first, more = asyncio.run(run())
    assert first == 1_900
    assert asked_for_first <= 1_900 // 20 + 2  # one share of 20 per 20 requests (each process's first, rounded up)
    assert 100 - 2 * 20 <= more <= 100  # in all, never past the rate; refused early by at most the unused shares


def test_a_small_rate_is_counted_one_request_at_a_time_exactly(two_processes):
    assert asyncio.run(admitted(two_processes, uuid.uuid4().hex[:16], "150/hour", attempts=200)) == 150


def test_concurrent_requests_wait_for_one_share_instead_of_each_taking_one(two_processes):
    limiter, asked = two_processes[0], []
    hit = limiter.limiter.hit

    async def counted(*args, **kwargs):
        asked.append(kwargs.get("cost", 1))
        return await hit(*args, **kwargs)

    limiter.limiter.hit = counted
    rate = parse_rate("100000/minute")  # shares of 1,000

    async def run() -> None:
        await asyncio.gather(*(limiter.hit("concurrent", rate) for _ in range(64)))

    asyncio.run(run())
    assert asked == [1000]
