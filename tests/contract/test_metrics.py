"""Metrics over a real host and API: the exposition parses, and the counters move with calls."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from solo.testing.inprocess import InProcessSystem


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and sorted labels (the parser fails on a malformed page)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_workers_counters_move_with_its_calls_and_its_page_parses(system):
    name = uuid.uuid4().hex
    with system.running() as http:
        for _ in range(3):
            assert http.post(f"/v1/objects/Counter/{name}/increment", json={"by": 1}).status_code == 200
        assert http.post(f"/v1/objects/Fragile/{name}/add_then_fail", json={"text": "x"}).status_code == 500
        active = samples(generate_latest(system.host.metrics.registry).decode())
    # Read once the host has stopped: a batch is counted just after its outcomes are published,
    # so a reply may come a moment before its count; stopping waits for every drain.
    found = samples(generate_latest(system.host.metrics.registry).decode())
    assert value(active, "solo_active_objects") == 2  # held until idle eviction (60 s here)
    assert value(found, "solo_active_objects") == 0
    assert value(found, "solo_evictions_total", reason="shutdown") == 2
    ok = {"class": "Counter", "method": "increment", "outcome": "ok", "tenant": "default"}
    assert value(found, "solo_calls_total", **ok) == 3
    failed = {"class": "Fragile", "method": "add_then_fail", "outcome": "method_error", "tenant": "default"}
    assert value(found, "solo_calls_total", **failed) == 1
    assert value(found, "solo_call_duration_seconds_count", **{"class": "Counter"}) == 3
    assert value(found, "solo_call_queued_seconds_count", **{"class": "Counter"}) == 3
    assert value(found, "solo_activations_total", **{"class": "Counter"}) == 1
    assert value(found, "solo_hydrate_duration_seconds_count", **{"class": "Counter"}) == 1
    assert value(found, "solo_batch_size_calls_sum") == 4  # every call ran in some batch
    assert value(found, "solo_shipment_duration_seconds_count") >= 3  # each increment's commit, at least
    assert value(found, "solo_shipment_bytes_sum") > 0
    assert value(found, "solo_mailbox_depth_calls_count") == value(found, "solo_batch_size_calls_count")


def test_the_apis_metrics_page_parses_and_shows_the_calls_it_waits_on(system):
    with system.running() as http:
        page = http.get("/metrics")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain")
    found = samples(page.text)
    assert value(found, "solo_api_waiting_calls") == 0
    assert any(name == "process_cpu_seconds_total" for name, _ in found)  # the process collector too


@pytest.mark.parametrize(
    "accept, content_type",
    [
        ("application/openmetrics-text; version=1.0.0", "application/openmetrics-text"),
        ("application/openmetrics-text; version=abc", "text/plain"),  # unreadable: the plain format
        ("*/*", "text/plain"),
    ],
)
def test_the_apis_metrics_page_answers_in_the_format_asked_for_or_the_plain_one(system, accept, content_type):
    with system.running() as http:
        page = http.get("/metrics", headers={"Accept": accept})
    assert page.status_code == 200 and page.headers["content-type"].startswith(content_type)


def test_alarm_fires_are_counted_with_their_lateness_and_failures(settings, redis_client, async_redis_client):
    from solo.testing import ManualClock

    clock = ManualClock()
    system = InProcessSystem(settings, redis_client, async_redis_client, clock_ms=clock)
    name = uuid.uuid4().hex
    with system.running() as http:
        assert system.scheduler.lead()
        at = clock() + 10_000
        assert (
            http.post(f"/v1/objects/Alarmed/{name}/set_alarm", json={"at_ms": at, "fail_times": 1}).status_code == 200
        )
        clock.set(at + 2_000)  # fired two seconds late, and failing: a retry is set
        assert system.scheduler.tick() == 1
        assert http.post(f"/v1/objects/Alarmed/{name}/fires", json={}).status_code == 200  # behind the fire
    worker = samples(generate_latest(system.host.metrics.registry).decode())  # stopped: every batch counted
    scheduler = samples(generate_latest(system.scheduler.metrics.registry).decode())
    assert value(worker, "solo_alarm_fires_failed_total", **{"class": "Alarmed"}) == 1
    assert value(worker, "solo_alarm_lateness_seconds_count", **{"class": "Alarmed"}) == 1
    assert value(worker, "solo_alarm_lateness_seconds_sum", **{"class": "Alarmed"}) == 2.0
    assert value(scheduler, "solo_alarm_fires_dispatched_total") == 1
    assert value(scheduler, "solo_scheduler_leading") == 1
