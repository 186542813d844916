"""Traces across real processes: the API and a worker, configured by OTEL_* alone, export one trace.

Both processes export with the SDK's console exporter into their logs; the test reads the
spans back from there. The spans' shapes are in tests/contract/test_traces.py.
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests import REPO
from tests.e2e.conftest import module_cluster, wait_until

OTEL = {"OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_SERVICE_NAME": "solo-e2e"}


def spans_in(log: str) -> list[dict]:
    """The console exporter's spans in a process's log: each an indented JSON object among the log lines."""
    spans, lines = [], None
    for line in log.splitlines():
        if line == "{":
            lines = [line]
        elif lines is not None:
            lines.append(line)
            if line == "}":
                spans.append(json.loads("\n".join(lines)))
                lines = None
    return spans


@pytest.fixture(scope="module")
def traced_cluster(real_redis_url, postgres_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("traces")
    with module_cluster(real_redis_url, postgres_url, tmp, pythonpath=REPO, SOLO_OBJECTS="tests.objects", **OTEL) as (
        cluster,
        _,
    ):
        cluster.start_worker()
        cluster.start_api()
        yield cluster


def test_a_request_through_two_objects_is_one_trace_across_the_api_and_the_worker(traced_cluster):
    cluster, url = traced_cluster, traced_cluster.url
    trace_id, parent_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    relay, tally = f"r-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:8]}"
    # When a client in trace `trace_id` calls Relay, which waits on a call to Tally
    response = httpx.post(
        f"{url}/v1/objects/Relay/{relay}/ask",
        json={"target": f"Tally/{tally}", "method": "add", "args": {"tag": "x"}},
        headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
        timeout=30,
    )
    assert response.status_code == 200, response.text

    def of_trace(name: str) -> list[dict]:
        return [s for s in spans_in(cluster.log(name)) if s["context"]["trace_id"] == f"0x{trace_id}"]

    # Then the API's span and the worker's spans of both objects are in the client's trace
    api = wait_until(lambda: of_trace("api"), 30, "the API's span")
    names = {"solo.run Relay.ask", "solo.call Tally.add", "solo.run Tally.add", "solo.ship"}
    worker = wait_until(
        lambda: (found := of_trace("worker0")) and names <= {s["name"] for s in found} and found,
        30,
        "the worker's spans",
    )
    (server,) = api
    assert server["name"] == "POST /v1/objects/{class_name}/{name}/{method}"
    assert server["parent_id"] == f"0x{parent_id}"
    assert server["resource"]["attributes"]["service.name"] == "solo-e2e"
    run = next(s for s in worker if s["name"] == "solo.run Relay.ask")
    assert run["parent_id"] == server["context"]["span_id"]
    assert run["attributes"]["solo.call_id"] == server["attributes"]["solo.call_id"]
