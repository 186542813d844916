"""RateLimiter: windows and buckets in memory (forgotten on restart), slots in storage (kept).

Its behaviour on solo.testing.LocalSystem, where time is moved by hand; a worker's kill -9 on
real processes.
"""

from __future__ import annotations

import pytest

from solo import CallError


def test_sliding_window_refuses_past_the_limit_with_retry_after(local):
    limiter = local.object("RateLimiter", "window")
    answers = [limiter.check(key="alice", limit=3, window_s=60) for _ in range(4)]

    assert [a["allowed"] for a in answers] == [True, True, True, False]
    assert [a["remaining"] for a in answers] == [2, 1, 0, 0]
    assert answers[3]["retry_after"] == 60  # the clock stood still
    assert "retry_after" not in answers[0]
    # another key has its own window
    assert limiter.check(key="bob", limit=3, window_s=60)["allowed"]


def test_sliding_window_slides_rather_than_resetting(local):
    limiter = local.object("RateLimiter", "slide")
    assert limiter.check(key="k", limit=2, window_s=10)["allowed"]
    local.clock.advance(seconds=6)
    assert limiter.check(key="k", limit=2, window_s=10)["allowed"]
    refused = limiter.check(key="k", limit=2, window_s=10)
    assert not refused["allowed"] and refused["retry_after"] == 4

    # Once the earliest request is a window old, room comes back for one, not for two.
    local.clock.advance(seconds=4)
    assert limiter.check(key="k", limit=2, window_s=10)["allowed"]
    assert not limiter.check(key="k", limit=2, window_s=10)["allowed"]


def test_token_bucket_spends_and_refuses_with_retry_after(local):
    limiter = local.object("RateLimiter", "bucket")
    first = limiter.take(key="k", capacity=5, refill_per_s=0.01, tokens=4)
    second = limiter.take(key="k", capacity=5, refill_per_s=0.01, tokens=4)

    assert first["allowed"] and first["tokens"] == pytest.approx(1)
    assert not second["allowed"]
    assert second["retry_after"] == pytest.approx(300)  # three missing tokens at one per 100 s
    assert second["reset_after"] >= second["retry_after"]

    local.clock.advance(seconds=300)
    assert limiter.take(key="k", capacity=5, refill_per_s=0.01, tokens=4)["allowed"]


def test_api_check_counts_a_request_only_when_every_window_has_room(local):
    limiter = local.object("RateLimiter", "api")
    limits = {"api_key": "key-1", "endpoint": "/search", "per_minute": 5, "per_hour": 2}

    first = limiter.check_api(**limits)
    second = limiter.check_api(**limits)
    third = limiter.check_api(**limits)

    assert first["allowed"] and second["allowed"]
    assert first["limits"]["minute"]["remaining"] == 4
    assert not third["allowed"]
    assert third["retry_after"] == 3600
    # the hour refused, so the minute did not count the third request
    assert third["limits"]["minute"]["remaining"] == 3
    assert third["limits"]["hour"]["remaining"] == 0


def test_bad_limits_are_refused_and_change_nothing(local):
    limiter = local.object("RateLimiter", "bad")
    bad_calls = [
        ("check", {"key": "k", "limit": 0, "window_s": 10}),
        ("check", {"key": "k", "limit": 5, "window_s": -1}),
        ("check", {"key": "", "limit": 5, "window_s": 10}),
        ("take", {"key": "k", "capacity": 2, "refill_per_s": 1, "tokens": 3}),
        ("acquire", {"key": "k", "max_concurrent": 0}),
        ("check_api", {"api_key": "a", "endpoint": "/"}),
    ]
    for method, args in bad_calls:
        with pytest.raises(CallError) as failure:
            limiter.call(method, **args)
        assert failure.value.status == 400
        assert failure.value.code in ("invalid_limit", "invalid_key")

    with pytest.raises(CallError) as failure:
        limiter.check(key="k", limit="ten", window_s=10)
    assert failure.value.code == "invalid_arguments"

    assert limiter.slots(key="k") == []


def test_slots_survive_a_restart_but_counters_do_not(local):
    limiter = local.object("RateLimiter", "restart")
    held = [limiter.acquire(key="jobs", max_concurrent=2, ttl_s=600) for _ in range(2)]
    assert all(slot["acquired"] for slot in held)
    limiter.check(key="k", limit=1, window_s=600)
    assert not limiter.check(key="k", limit=1, window_s=600)["allowed"]

    local.restart()

    assert limiter.check(key="k", limit=1, window_s=600)["allowed"]  # the window lived in memory
    refused = limiter.acquire(key="jobs", max_concurrent=2, ttl_s=600)
    assert not refused["acquired"] and refused["active"] == 2 and refused["retry_after"] == 600


def test_an_expired_slot_is_reclaimed(local):
    limiter = local.object("RateLimiter", "expiry")
    slot = limiter.acquire(key="jobs", max_concurrent=1, ttl_s=60)
    assert slot["acquired"]
    assert not limiter.acquire(key="jobs", max_concurrent=1, ttl_s=60)["acquired"]

    # Never released: its lease runs out and the slot is free again.
    local.clock.advance(seconds=60)
    assert limiter.acquire(key="jobs", max_concurrent=1, ttl_s=60)["acquired"]
    assert limiter.release(key="jobs", slot_id=slot["slot_id"])["released"] is False


# -- on real processes ----------------------------------------------------------------


def test_slots_survive_a_worker_restart_but_counters_do_not(api, solo, run_id):
    limiter = f"RateLimiter/restart-{run_id}"
    held = [api.call(limiter, "acquire", key="jobs", max_concurrent=2, ttl_s=600) for _ in range(2)]
    assert all(slot["acquired"] for slot in held)
    assert not api.call(limiter, "acquire", key="jobs", max_concurrent=2, ttl_s=600)["acquired"]
    api.call(limiter, "check", key="k", limit=1, window_s=600)
    assert not api.call(limiter, "check", key="k", limit=1, window_s=600)["allowed"]

    solo.restart_workers()

    # The window lived in memory: it starts afresh, as intended.
    assert api.call(limiter, "check", key="k", limit=1, window_s=600)["allowed"]
    # The slots were stored: both are still held.
    refused = api.call(limiter, "acquire", key="jobs", max_concurrent=2, ttl_s=600)
    assert not refused["acquired"] and refused["active"] == 2 and refused["retry_after"] > 500

    released = api.call(limiter, "release", key="jobs", slot_id=held[0]["slot_id"])
    assert released == {"released": True, "active": 1}
    assert api.call(limiter, "release", key="jobs", slot_id=held[0]["slot_id"])["released"] is False
    assert api.call(limiter, "acquire", key="jobs", max_concurrent=2, ttl_s=600)["acquired"]
