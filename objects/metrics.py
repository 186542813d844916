"""Every metric solo exports (Prometheus, `prometheus_client`): names, units, labels and buckets.

Each process kind has its own set, on a registry of its own that also carries the
client's process, platform and garbage-collector collectors (``new_registry``):

- ``RuntimeMetrics``: what workers measure of the objects they run (recorded by
  runtime/activation.py, observed by workers/host.py);
- ``SchedulerMetrics``: alarms the scheduler dispatches;
- ``ApiMetrics``: what the API refuses, and the calls it is waiting on.

Names follow Prometheus' guide: ``solo_`` first, the base unit in the name
(``_seconds``, ``_bytes``), ``_total`` on counters. Labels take a bounded set of
values only: class, method, outcome, tenant and a few fixed reasons; never an
object's name or id, which would make a time series per object. Histograms are
labelled by class at most (a series per bucket per label value).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from solo.objects.alarms import FIRE_METHOD
from solo.objects.calls import Call, Outcome

# Warm calls take milliseconds; a call that waits on other objects or a slow method, seconds.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
LATENESS_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
DEPTH_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)
SHIPMENT_BUCKETS_BYTES = tuple(4**n * 1024 for n in range(10))  # 1 KiB to 256 MiB

# Why an activation ended (solo_evictions_total's `reason`): a fixed set.
EVICTION_REASONS = ("idle", "shutdown", "operator", "lease_lost", "stopped", "failed", "disk_full")


def new_registry() -> CollectorRegistry:
    """A process's registry: solo's metrics go here, with the process's CPU, memory, files and GC."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def outcome_label(outcome: Outcome) -> str:
    """ "ok", "user_error" for any UserError (their codes are the application's), else solo's error code."""
    if outcome.ok:
        return "ok"
    error = outcome.error or {}
    if error.get("type") == "UserError":
        return "user_error"
    return str(error.get("code") or "error")


class RuntimeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else new_registry()
        r = self.registry
        self.calls = Counter(
            "solo_calls", "Calls run, by outcome", ["class", "method", "outcome", "tenant"], registry=r
        )
        self.call_duration = Histogram(
            "solo_call_duration_seconds",
            "From a call's enqueueing to its outcome's publication",
            ["class"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.call_queued = Histogram(
            "solo_call_queued_seconds",
            "From a call's enqueueing to its batch's claim by the object's worker",
            ["class"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.batch_size = Histogram(
            "solo_batch_size_calls",
            "Calls per batch (one transaction and one shipment)",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.mailbox_depth = Histogram(
            "solo_mailbox_depth_calls",
            "Calls still queued in an object's mailbox when a batch of it completes",
            buckets=DEPTH_BUCKETS,
            registry=r,
        )
        self.shipment_duration = Histogram(
            "solo_shipment_duration_seconds",
            "Shipping one commit to the shared database",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.shipment_bytes = Histogram(
            "solo_shipment_bytes", "WAL bytes in one shipment", buckets=SHIPMENT_BUCKETS_BYTES, registry=r
        )
        self.hydrate_duration = Histogram(
            "solo_hydrate_duration_seconds",
            "Taking an object over: new epoch, state restored, migrations, on_start()",
            ["class"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.activations = Counter("solo_activations", "Objects hydrated on this worker", ["class"], registry=r)
        self.evictions = Counter(
            "solo_evictions", "Activations ended, by why: " + ", ".join(EVICTION_REASONS), ["reason"], registry=r
        )
        self.fenced = Counter(
            "solo_fenced_batches",
            "Batches refused by the epoch fence (another owner took the object over); nothing committed",
            ["class"],
            registry=r,
        )
        self.alarm_lateness = Histogram(
            "solo_alarm_lateness_seconds",
            "From an alarm's or schedule's due time to the start of the batch that fired it",
            ["class"],
            buckets=LATENESS_BUCKETS_S,
            registry=r,
        )
        self.alarms_failed = Counter(
            "solo_alarm_fires_failed", "Alarm and schedule fires whose handler failed", ["class"], registry=r
        )
        self.active_objects = Gauge("solo_active_objects", "Objects this worker holds the lease of", registry=r)
        self.open_databases = Gauge("solo_open_databases", "Objects' SQLite files open on this worker", registry=r)
        self.busy_threads = Gauge("solo_busy_threads", "Object threads running a batch now", registry=r)
        # solo_calls_total's children by their labels: found once, then a dict lookup per call
        self._calls_by_labels: dict[tuple[str, str, str, str], Counter] = {}
        # A class's children of the two per-call histograms, likewise (labels() takes a lock and checks its values)
        self._latency_by_class: dict[str, tuple[Histogram, Histogram]] = {}

    def watch_host(self, active: Callable[[], int], open_databases: Callable[[], int], busy: Callable[[], int]) -> None:
        """Gauges read at each scrape from the host's own counts."""
        self.active_objects.set_function(active)
        self.open_databases.set_function(open_databases)
        self.busy_threads.set_function(busy)

    def batch_done(
        self,
        class_name: str,
        tenant: str,
        calls: Sequence[Call],
        outcomes: Sequence[Outcome],
        *,
        claimed_ms: int,
        done_ms: int,
        remaining: int,
        clock_ms: int,
    ) -> None:
        """A batch committed, shipped and published: its calls, their times, and the alarms it fired.

        `claimed_ms` and `done_ms` are wall-clock times, as calls' `enqueued_ms` are; `clock_ms` is
        the objects' clock when the batch was claimed, on which alarms fall due.
        """
        self.batch_size.observe(len(calls))
        self.mailbox_depth.observe(max(remaining, 0))
        latency = self._latency_by_class.get(class_name)
        if latency is None:
            latency = self._latency_by_class[class_name] = (
                self.call_duration.labels(class_name),
                self.call_queued.labels(class_name),
            )
        duration, queued = latency
        for call, outcome in zip(calls, outcomes, strict=True):
            self.count_call(class_name, call.method, outcome_label(outcome), tenant)
            if call.enqueued_ms:  # clocks of different machines: never below zero
                duration.observe(max(done_ms - call.enqueued_ms, 0) / 1000)
                queued.observe(max(claimed_ms - call.enqueued_ms, 0) / 1000)
            if call.method == FIRE_METHOD:
                self._fired(class_name, call, outcome, clock_ms)

    def count_call(self, class_name: str, method: str, outcome: str, tenant: str) -> None:
        key = (class_name, method, outcome, tenant)
        child = self._calls_by_labels.get(key)
        if child is None:
            child = self._calls_by_labels[key] = self.calls.labels(*key)
        child.inc()

    def _fired(self, class_name: str, call: Call, outcome: Outcome, clock_ms: int) -> None:
        if outcome.ok and not (isinstance(outcome.result, dict) and outcome.result.get("fired")):
            return  # not due (replaced, deleted, already fired): nothing ran, nothing was late
        due_ms = call.args.get("due_ms")
        if isinstance(due_ms, int):
            self.alarm_lateness.labels(class_name).observe(max(clock_ms - due_ms, 0) / 1000)
        if not outcome.ok:
            self.alarms_failed.labels(class_name).inc()

    def shipped(self, duration_s: float, size_bytes: int) -> None:
        self.shipment_duration.observe(duration_s)
        self.shipment_bytes.observe(size_bytes)


class SchedulerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else new_registry()
        r = self.registry
        self.dispatched = Counter(
            "solo_alarm_fires_dispatched", "Fires the scheduler put in objects' mailboxes", registry=r
        )
        self.missing = Counter(
            "solo_alarms_refilled",
            "Alarms the scheduler found in the shared index but not in Redis (a Redis restart, a lost announce)",
            registry=r,
        )
        self.orphaned = Counter(
            "solo_alarms_orphaned",
            "Due alarms the scheduler took out of its time index: no live worker serves their class",
            registry=r,
        )
        self.passes = Counter(
            "solo_scheduler_passes", "Looks the scheduler took at its time index (each is one round trip)", registry=r
        )
        self.wakeups = Counter(
            "solo_scheduler_wakeups",
            "Sleeps of the scheduler cut short by an announcement of an alarm due sooner (or by stopping)",
            registry=r,
        )
        self.leading = Gauge("solo_scheduler_leading", "1 while this process is the scheduler, else 0", registry=r)
        self.compaction_passes = Counter("solo_compaction_passes", "Compaction passes run by this process", registry=r)
        self.compaction_seconds = Counter(
            "solo_compaction_seconds", "Wall-clock time spent in compaction passes", registry=r
        )
        # The compactor's own thread's CPU (time.thread_time): its cost in this process, apart from the database's.
        self.compaction_cpu_seconds = Counter(
            "solo_compaction_cpu_seconds", "CPU time of the compactor's thread in this process", registry=r
        )
        self.compaction_deleted_rows = Counter(
            "solo_compaction_deleted_rows", "Rows the compactor deleted from the shared database", registry=r
        )

    def compacted(self, deleted_rows: int, seconds: float, cpu_seconds: float) -> None:
        self.compaction_passes.inc()
        self.compaction_seconds.inc(seconds)
        self.compaction_cpu_seconds.inc(cpu_seconds)
        self.compaction_deleted_rows.inc(deleted_rows)


# Why the API refused a request before it reached an object (solo_api_refusals_total's `reason`).
REFUSAL_REASONS = ("unauthenticated", "forbidden", "rate_limited", "mailbox_full")


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else new_registry()
        r = self.registry
        self.refusals = Counter(
            "solo_api_refusals",
            "Requests refused: " + ", ".join(REFUSAL_REASONS) + " (tenant empty when no valid key named one)",
            ["reason", "tenant"],
            registry=r,
        )
        self.waiting_calls = Gauge("solo_api_waiting_calls", "Requests waiting for a call's outcome", registry=r)

    def refused(self, reason: str, tenant: str | None = None) -> None:
        self.refusals.labels(reason, tenant or "").inc()
