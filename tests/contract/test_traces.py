"""Traces (objects/tracing.py): one request's spans form one trace, across objects, sends and alarms.

An in-process system on both backends, its spans kept by the SDK's in-memory exporter.
"""

from __future__ import annotations

import time
import uuid

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from solo.objects.tracing import TRACER_NAME, Tracing
from solo.testing import ManualClock
from solo.testing.inprocess import InProcessSystem

CALL_SPAN = "POST /v1/objects/{class_name}/{name}/{method}"


@pytest.fixture
def exporter():
    return InMemorySpanExporter()


@pytest.fixture
def tracing(exporter):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield Tracing(provider.get_tracer(TRACER_NAME))
    provider.shutdown()


@pytest.fixture
def system(settings, redis_client, async_redis_client, tracing):
    return InProcessSystem(settings, redis_client, async_redis_client, tracing=tracing)


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def result(http, address: str, method: str, /, headers=None, **body):
    response = http.post(f"/v1/objects/{address}/{method}", json=body, headers=headers or {})
    assert response.status_code == 200, response.text
    return response.json()["result"]


def spans_named(exporter, name: str, count: int = 1, timeout_s: float = 5.0) -> list[ReadableSpan]:
    """The finished spans called `name`, once there are `count` of them (spans end on other threads)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [s for s in exporter.get_finished_spans() if s.name == name]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def one(exporter, name: str) -> ReadableSpan:
    (span,) = spans_named(exporter, name)
    return span


def child_of(span: ReadableSpan, parent: ReadableSpan) -> bool:
    return span.parent is not None and span.parent.span_id == parent.context.span_id


def test_a_request_to_an_object_that_calls_another_is_one_trace(system, exporter):
    a, t = f"Relay/{fresh('a')}", f"Tally/{fresh('t')}"
    with system.running() as http:
        assert result(http, a, "ask", target=t, method="add", args={"tag": "x"}) == 1

    # Then every span of the request, on the API and on the worker, is in the request's trace
    server = one(exporter, CALL_SPAN)
    assert server.kind == SpanKind.SERVER and server.parent is None
    assert server.attributes["solo.class"] == "Relay" and server.attributes["solo.method"] == "ask"
    run_a, run_t = one(exporter, "solo.run Relay.ask"), one(exporter, "solo.run Tally.add")
    calling = one(exporter, "solo.call Tally.add")
    # A call is queued, and an object hydrated, once more if its first activation did not get to
    # run it (a lease lapsed on a busy machine): one span each time.
    queued_a, queued_t = spans_named(exporter, "solo.queued Relay.ask"), spans_named(exporter, "solo.queued Tally.add")
    hydrate_a, hydrate_t = spans_named(exporter, "solo.hydrate Relay"), spans_named(exporter, "solo.hydrate Tally")
    ships = spans_named(exporter, "solo.ship", 4)  # each hydrate's, and each batch's
    request = [server, run_a, run_t, calling, *queued_a, *queued_t, *hydrate_a, *hydrate_t, *ships]
    assert queued_a and queued_t and hydrate_a and hydrate_t
    assert {s.context.trace_id for s in request} == {server.context.trace_id}
    # and the spans nest as the work did: request -> A runs -> A calls T -> T runs
    assert child_of(run_a, server) and all(child_of(s, server) for s in [*queued_a, *hydrate_a])
    assert child_of(calling, run_a)
    assert child_of(run_t, calling) and all(child_of(s, calling) for s in [*queued_t, *hydrate_t])
    assert run_a.attributes["solo.call_id"] == server.attributes["solo.call_id"]
    assert run_a.attributes["solo.epoch"] == hydrate_a[-1].attributes["solo.epoch"] >= 1
    assert run_t.attributes["solo.tenant"] == "default"
    assert all(s.start_time <= s.end_time <= run_a.start_time for s in queued_a)


def test_calls_sent_with_send_run_in_the_trace_of_the_call_that_sent_them(system, exporter):
    a, t = f"Relay/{fresh('a')}", f"Tally/{fresh('t')}"
    with system.running() as http:
        assert result(http, a, "tell", target=t, tags=["x", "y"]) == 2
        runs = spans_named(exporter, "solo.run Tally.add", 2)

    server, run_a = one(exporter, CALL_SPAN), one(exporter, "solo.run Relay.tell")
    assert len(runs) == 2
    assert all(s.context.trace_id == server.context.trace_id and child_of(s, run_a) for s in runs)


def test_the_traceparent_a_client_sends_is_the_parent_of_the_call(system, exporter):
    trace_id, parent_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    with system.running() as http:
        result(http, f"Tally/{fresh('t')}", "add", headers={"traceparent": f"00-{trace_id}-{parent_id}-01"}, tag="x")

    server, run = one(exporter, CALL_SPAN), one(exporter, "solo.run Tally.add")
    assert server.context.trace_id == run.context.trace_id == int(trace_id, 16)
    assert server.parent is not None and server.parent.span_id == int(parent_id, 16) and server.parent.is_remote
    assert child_of(run, server)


def test_a_malformed_traceparent_starts_a_new_trace(system, exporter):
    with system.running() as http:
        result(http, f"Tally/{fresh('t')}", "add", headers={"traceparent": "00-not-a-trace-01"}, tag="x")
    server = one(exporter, CALL_SPAN)
    assert server.parent is None
    assert one(exporter, "solo.run Tally.add").context.trace_id == server.context.trace_id


def test_an_alarm_set_by_a_call_fires_in_a_trace_linked_to_that_call(
    settings, redis_client, async_redis_client, tracing, exporter
):
    clock = ManualClock()
    system = InProcessSystem(settings, redis_client, async_redis_client, clock_ms=clock, tracing=tracing)
    name = fresh("alarmed")
    at = clock() + 10_000
    with system.running() as http:
        assert system.scheduler.lead()
        result(http, f"Alarmed/{name}", "set_alarm", at_ms=at)
        clock.set(at)
        assert system.scheduler.tick() == 1
        (fired,) = result(http, f"Alarmed/{name}", "fires")
        assert fired["scheduled_ms"] == at

    setter = one(exporter, "solo.run Alarmed.set_alarm")
    fire = one(exporter, "solo.run Alarmed.alarm")
    # The fire runs later, in a trace of its own, linked to the call that set the alarm
    assert fire.context.trace_id != setter.context.trace_id
    assert [(link.context.trace_id, link.context.span_id) for link in fire.links] == [
        (setter.context.trace_id, setter.context.span_id)
    ]


def test_a_failing_method_is_an_error_span_and_a_refused_request_is_no_server_fault(system, exporter):
    t = f"Tally/{fresh('t')}"
    with system.running() as http:
        assert http.post(f"/v1/objects/{t}/crash", json={}).status_code == 500
        assert http.post(f"/v1/objects/{t}/no_such_method", json={}).status_code == 404

    crashed = one(exporter, "solo.run Tally.crash")
    assert crashed.status.status_code == StatusCode.ERROR and crashed.attributes["solo.error"] == "method_error"
    failed, refused = sorted(spans_named(exporter, CALL_SPAN, 2), key=lambda s: s.start_time)
    assert failed.status.status_code == StatusCode.ERROR and failed.attributes["http.response.status_code"] == 500
    assert refused.status.status_code == StatusCode.UNSET and refused.attributes["http.response.status_code"] == 404
    assert refused.attributes["error.type"] == "unknown_method" and "solo.method" not in refused.attributes
