"""The metrics' own rules: outcome labels, alarm lateness, a worker's metrics port, the sample dashboard."""

import json
import re
from pathlib import Path

import httpx
import pytest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from solo.objects.alarms import FIRE_METHOD
from solo.objects.calls import Call, Outcome
from solo.objects.metrics import ApiMetrics, RuntimeMetrics, SchedulerMetrics, outcome_label
from solo.objects.settings import Settings
from solo.testing.cluster import free_port
from solo.workers.errors import MetricsPortInUse
from solo.workers.metrics_port import MetricsPort


def test_outcomes_are_labelled_ok_user_error_or_by_solos_own_code():
    assert outcome_label(Outcome.success("c", 1)) == "ok"
    assert outcome_label(Outcome.failure("c", "out_of_stock", "no", status=409, type_="UserError")) == "user_error"
    assert outcome_label(Outcome.failure("c", "method_error", "boom", type_="ValueError")) == "method_error"


def fire(due_ms: int) -> Call:
    return Call("c1", "0" * 32, "Alarmed", "a", FIRE_METHOD, {"name": "_alarm", "due_ms": due_ms}, enqueued_ms=1)


def test_only_fires_that_ran_are_late_and_only_failed_ones_count_as_failed():
    metrics = RuntimeMetrics()
    calls = [fire(1_000), fire(2_000), fire(3_000)]
    outcomes = [
        Outcome.success("c1", {"fired": True, "scheduled_ms": 1_000, "retry_count": 0}),
        Outcome.success("c1", {"fired": False}),  # no longer due: nothing ran
        Outcome.failure("c1", "method_error", "boom", type_="RuntimeError"),
    ]
    metrics.batch_done("Alarmed", "default", calls, outcomes, claimed_ms=10, done_ms=20, remaining=0, clock_ms=5_000)
    get = metrics.registry.get_sample_value
    assert get("solo_alarm_lateness_seconds_count", {"class": "Alarmed"}) == 2
    assert get("solo_alarm_lateness_seconds_sum", {"class": "Alarmed"}) == 4.0 + 2.0
    assert get("solo_alarm_fires_failed_total", {"class": "Alarmed"}) == 1
    assert get("solo_call_duration_seconds_sum", {"class": "Alarmed"}) == pytest.approx(3 * 0.019)


def test_a_call_enqueued_on_a_clock_ahead_is_not_negative():
    metrics = RuntimeMetrics()
    ahead = Call("c1", "0" * 32, "Counter", "a", "increment", {}, enqueued_ms=10_000)
    metrics.batch_done(
        "Counter", "default", [ahead], [Outcome.success("c1", 1)], claimed_ms=10, done_ms=20, remaining=3, clock_ms=0
    )
    assert metrics.registry.get_sample_value("solo_call_queued_seconds_sum", {"class": "Counter"}) == 0
    assert metrics.registry.get_sample_value("solo_mailbox_depth_calls_sum") == 3


def test_a_metrics_port_serves_the_registry_in_prometheus_text_format():
    metrics = SchedulerMetrics()
    metrics.dispatched.inc(5)
    port = MetricsPort(Settings.from_mapping({"metrics_port": free_port()}), metrics.registry)
    port.start()
    try:
        page = httpx.get(f"http://127.0.0.1:{port.server_port}/metrics", timeout=10)
    finally:
        port.stop()
    families = {f.name: f for f in text_string_to_metric_families(page.text)}
    assert families["solo_alarm_fires_dispatched"].samples[0].value == 5


def test_a_metrics_port_in_use_stops_the_process_with_a_clear_error():
    first = MetricsPort(Settings.from_mapping({"metrics_port": free_port()}), SchedulerMetrics().registry)
    first.start()
    try:
        second = MetricsPort(Settings.from_mapping({"metrics_port": first.server_port}), SchedulerMetrics().registry)
        with pytest.raises(MetricsPortInUse, match="SOLO_METRICS_PORT"):
            second.start()
    finally:
        first.stop()


def test_no_metrics_port_serves_nothing():
    port = MetricsPort(Settings(), SchedulerMetrics().registry)
    port.start()
    assert port.server_port == 0
    port.stop()


def exported_samples() -> set[str]:
    """Every sample name solo's metrics export (a labelled one shows once it has a child)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    names = set()
    for metrics in (RuntimeMetrics(), SchedulerMetrics(), ApiMetrics()):
        for metric in vars(metrics).values():
            if isinstance(metric, MetricWrapperBase):
                for family in metric.describe():
                    names.update(family.name + suffix for suffix in suffixes[family.type])
    return names


def test_the_sample_grafana_dashboard_queries_only_metrics_solo_exports():
    dashboard = json.loads((Path(__file__).parents[2] / "docs" / "grafana-dashboard.json").read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bsolo_[a-z_]+", target["expr"])
    }
    assert queried and queried <= exported_samples(), queried - exported_samples()
