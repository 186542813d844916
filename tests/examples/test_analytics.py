"""Analytics over HTTP: values buffered in memory, durable once flushed (explicitly, periodically, or when full)."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import wait_until
from tests.examples.conftest import CallFailed

DAY_MS = 86_400_000
TWENTY_YEARS = {"start": "2020-01-01", "end": "2040-01-01"}  # 7,305 day buckets: under the limit


def _day_totals(api, analytics, name):
    points = api.call(analytics, "get_metrics", name=name, **TWENTY_YEARS, granularity="day")
    return [(p["sum"], p["count"]) for p in points["points"]]


def test_counters_and_measurements_are_bucketed_and_read_with_the_unflushed_buffer(api, run_id):
    analytics = f"Analytics/read-{run_id}"
    api.call(analytics, "increment", name="signups")
    api.call(analytics, "increment", name="signups", value=2)
    for ms in (120, 80, 250):
        api.call(analytics, "track", name="latency_ms", value=ms)
    api.call(analytics, "gauge", name="online", value=7)

    latency = api.call(analytics, "get_metrics", name="latency_ms", **TWENTY_YEARS, granularity="day")
    dashboard = api.call(analytics, "get_dashboard")

    assert _day_totals(api, analytics, "signups") == [(3, 2)]
    [point] = latency["points"]
    assert (point["count"], point["min"], point["max"], point["avg"]) == (3, 80, 250, 150)
    assert point["start"].endswith("T00:00Z")
    assert dashboard["today"]["signups"]["sum"] == 3
    assert dashboard["gauges"]["online"]["value"] == 7
    assert dashboard["unflushed"] == {"buckets": 2, "gauges": 1}


def test_flushed_values_survive_a_worker_restart_and_unflushed_ones_do_not(api, solo, run_id):
    kept = f"Analytics/kept-{run_id}"
    lost = f"Analytics/lost-{run_id}"
    api.call(kept, "increment", name="orders", value=5)
    api.call(kept, "gauge", name="queue", value=3)
    assert api.call(kept, "flush") == {"buckets": 1, "gauges": 1}
    api.call(kept, "increment", name="orders", value=100)  # after the flush: in memory only
    api.call(lost, "increment", name="orders", value=5)

    solo.restart_workers()

    assert _day_totals(api, kept, "orders") == [(5, 1)]
    assert api.call(kept, "get_dashboard")["gauges"]["queue"]["value"] == 3
    assert _day_totals(api, lost, "orders") == []  # the deliberate trade: no write per increment


def test_the_periodic_flush_makes_values_durable_without_a_call(api, solo, run_id):
    analytics = f"Analytics/periodic-{run_id}"
    api.call(analytics, "increment", name="visits", value=4)
    api.call(analytics, "track", name="visits", value=6)

    # The flush schedule declared in on_start empties the buffer on its own.
    wait_until(lambda: api.call(analytics, "get_dashboard")["unflushed"]["buckets"] == 0, 30, "the periodic flush")
    solo.restart_workers()

    assert _day_totals(api, analytics, "visits") == [(10, 2)]
    days = api.call(analytics, "get_metrics", name="visits", **TWENTY_YEARS, granularity="day")
    assert days["points"][0]["max"] == 6


def test_a_full_buffer_is_flushed_without_waiting(api, run_id):
    analytics = f"Analytics/full-{run_id}"
    # One more distinct metric than the buffer holds, sent from several clients at once: the calls
    # run in batches, well within the 10 s after which the first value's scheduled flush would run.
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda index: api.call(analytics, "increment", name=f"metric-{index}"), range(201)))

    assert api.call(analytics, "get_dashboard")["unflushed"]["buckets"] == 0
    assert _day_totals(api, analytics, "metric-0") == [(1, 1)]


def test_minute_and_hour_buckets_combine_flushed_and_buffered_values(api, run_id):
    analytics = f"Analytics/range-{run_id}"
    api.call(analytics, "track", name="size", value=10)
    api.call(analytics, "flush")
    api.call(analytics, "track", name="size", value=30)  # buffered; most likely in the same bucket

    now = dt.datetime.now(dt.UTC)
    around_now = {"start": (now - dt.timedelta(hours=2)).isoformat(), "end": (now + dt.timedelta(hours=2)).isoformat()}
    for granularity in ("minute", "hour"):
        result = api.call(analytics, "get_metrics", name="size", granularity=granularity, **around_now)
        assert sum(point["sum"] for point in result["points"]) == 40
        assert all(point["start_ms"] % 60_000 == 0 for point in result["points"])


@pytest.mark.parametrize(
    ("method", "args", "status", "code"),
    [
        ("get_metrics", {"name": "x", "start": 0, "end": 1, "granularity": "week"}, 422, "invalid_arguments"),
        ("increment", {"name": "x", "value": "many"}, 422, "invalid_arguments"),
        ("track", {"name": "x"}, 422, "invalid_arguments"),
        ("increment", {"name": "", "value": 1}, 400, "invalid_name"),
        ("get_metrics", {"name": "x", "start": 10 * DAY_MS, "end": 0, "granularity": "day"}, 400, "invalid_range"),
        ("get_metrics", {"name": "x", "start": 0, "end": 100 * DAY_MS, "granularity": "minute"}, 400, "invalid_range"),
        ("get_metrics", {"name": "x", "start": "yesterday", "end": 0, "granularity": "day"}, 400, "invalid_time"),
    ],
)
def test_bad_input_is_refused_and_records_nothing(api, run_id, method, args, status, code):
    analytics = f"Analytics/bad-{run_id}"
    with pytest.raises(CallFailed) as failure:
        api.call(analytics, method, **args)

    assert (failure.value.status, failure.value.error["code"]) == (status, code)
    assert api.call(analytics, "get_dashboard")["unflushed"] == {"buckets": 0, "gauges": 0}


def _schedules(api, analytics):
    return [a["name"] for a in api.http.get(f"/v1/objects/{analytics}").json()["alarms"]]


def test_a_flush_is_scheduled_only_while_values_wait_in_memory(api, run_id):
    analytics = f"Analytics/idle-{run_id}"
    api.call(analytics, "get_dashboard")
    assert _schedules(api, analytics) == []  # nothing buffered: nothing will wake the object
    api.call(analytics, "increment", name="visits")
    api.call(analytics, "increment", name="visits")
    assert _schedules(api, analytics) == ["flush"]  # one schedule for the buffer, not one per value
    api.call(analytics, "flush")
    assert _schedules(api, analytics) == []


def test_values_in_memory_are_flushed_by_on_stop_before_an_eviction(api, solo, run_id):
    # Given values only in memory
    analytics = f"Analytics/evicted-{run_id}"
    api.call(analytics, "increment", name="orders", value=5)
    api.call(analytics, "gauge", name="queue", value=2)
    # When an operator evicts the object (a graceful eviction: on_stop runs), then every worker dies
    assert api.http.post(f"/v1/objects/{analytics}/evict").json() == {"evicting": True}
    wait_until(lambda: api.http.get(f"/v1/objects/{analytics}").json()["active"] is False, 30, "the eviction")
    solo.restart_workers()
    # Then what was buffered was written before the object let go
    assert _day_totals(api, analytics, "orders") == [(5, 1)]
    assert api.call(analytics, "get_dashboard")["gauges"]["queue"]["value"] == 2
    assert _schedules(api, analytics) == []


def test_get_metrics_reads_the_last_days_without_a_range(api, run_id):
    analytics = f"Analytics/recent-{run_id}"
    api.call(analytics, "track", name="latency_ms", value=120)
    api.call(analytics, "flush")
    api.call(analytics, "track", name="latency_ms", value=80)
    [point] = api.call(analytics, "get_metrics", name="latency_ms", granularity="day")["points"]
    assert (point["sum"], point["count"], point["min"], point["max"]) == (200, 2, 80, 120)
