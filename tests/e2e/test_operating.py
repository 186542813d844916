"""Operating solo over real processes: JSON logs, the access log, the address the API announces."""

import json
import uuid

import httpx

from tests.e2e.conftest import wait_until


def json_lines(text: str) -> list[dict]:
    """Every line of a log, each parsed as JSON (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_with_json_logs_a_failing_method_is_one_parsable_line_with_its_traceback_and_fields(cluster):
    cluster.start_worker(SOLO_LOG_FORMAT="json", SOLO_LOG_LEVEL="INFO")
    cluster.start_api(SOLO_LOG_FORMAT="json", SOLO_LOG_LEVEL="INFO", SOLO_ACCESS_LOG="1")
    name = f"f-{uuid.uuid4().hex[:8]}"
    reply = httpx.post(f"{cluster.url}/v1/objects/Fragile/{name}/add_then_fail", json={"text": "x"}, timeout=30)
    assert reply.status_code == 500
    call_id = reply.json()["error"]["call_id"]

    def failure_logged():
        lines = json_lines(cluster.log("worker0"))
        return [e for e in lines if e.get("call_id") == call_id and e["level"] == "ERROR"]

    (entry,) = wait_until(failure_logged, 30, "the failure in the worker's log")
    assert entry["object"] == f"Fragile/{name}" and entry["tenant"] == "default" and entry["epoch"] >= 1
    assert entry["logger"] == "solo.objects.runtime.instance" and "Traceback" in entry["exception"]
    assert "ValueError" in entry["exception"]

    def access_logged():  # written once the answer has gone out: it may follow the client's read
        lines = json_lines(cluster.log("api"))
        return [e for e in lines if e.get("path") == f"/v1/objects/Fragile/{name}/add_then_fail"]

    (access,) = wait_until(access_logged, 30, "the call's line in the API's access log")
    api_lines = json_lines(cluster.log("api"))
    assert any(e["message"].startswith("solo api listening on http://127.0.0.1:") for e in api_lines)
    assert access["status"] == 500 and access["http_method"] == "POST" and access["tenant"] == "default"


def test_each_process_serves_metrics_that_parse_and_count_its_calls(cluster):
    from prometheus_client.parser import text_string_to_metric_families

    from solo.testing.cluster import free_port

    port = free_port()
    cluster.start_worker(SOLO_METRICS_PORT=str(port))
    cluster.start_api()
    name = f"m-{uuid.uuid4().hex[:8]}"
    for _ in range(3):
        reply = httpx.post(f"{cluster.url}/v1/objects/Counter/{name}/increment", json={}, timeout=30)
        assert reply.status_code == 200, reply.text

    def calls_counted() -> float:
        page = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        for family in text_string_to_metric_families(page):
            for sample in family.samples:
                if sample.name == "solo_calls_total" and sample.labels.get("class") == "Counter":
                    return sample.value
        return 0.0

    # counted just after the outcomes are published: a reply may come a moment before its count
    wait_until(lambda: calls_counted() == 3, 30, "the worker to count three calls")
    api_page = httpx.get(f"{cluster.url}/metrics", timeout=10)
    assert api_page.status_code == 200
    names = {f.name for f in text_string_to_metric_families(api_page.text)}
    assert {"solo_api_refusals", "solo_api_waiting_calls"} <= names


def test_an_object_evicted_over_http_is_activated_again_by_its_next_call(cluster, cluster_env):
    from tests.e2e.conftest import history

    cluster.start_worker()
    cluster.start_api()
    name = f"e-{uuid.uuid4().hex[:8]}"
    url = f"{cluster.url}/v1/objects/Counter/{name}"
    assert httpx.post(f"{url}/increment", json={}, timeout=30).json()["result"] == 1
    assert httpx.post(f"{url}/evict", timeout=30).json() == {"evicting": True}
    assert httpx.post(f"{url}/increment", json={}, timeout=30).json()["result"] == 2
    activations = history(cluster_env, "Counter", name)
    # (the first epoch is above the epoch floor, which other tests' pruned tombstones may have raised)
    epochs = [a.epoch for a in activations]
    assert epochs == [epochs[0], epochs[0] + 1] and activations[0].stopped_at is not None
    listing = httpx.get(f"{cluster.url}/v1/objects", params={"prefix": name}, timeout=30).json()
    (listed,) = listing["objects"]
    assert listed["epoch"] == epochs[1] and listed["active"] and listing["next_cursor"] is None
