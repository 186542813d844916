"""Worker and scheduler processes.

`solo worker` runs a Dramatiq worker for activations plus the object host
(and, unless SOLO_SCHEDULER_IN_WORKERS is off, a standby scheduler).
SIGTERM and SIGINT drain: stop taking activations, finish current batches,
release every lease, exit. `solo scheduler` runs a scheduler alone.
"""

from __future__ import annotations

import gc
import logging
import os
import resource
import signal
import threading

import dramatiq
import redis
import sqlalchemy as sa

from solo.objects.coordination.redis_clients import sync_client
from solo.objects.metrics import RuntimeMetrics, SchedulerMetrics, new_registry
from solo.objects.registry import load_object_modules
from solo.objects.runtime.connection import set_soft_heap_limit
from solo.objects.settings import Settings
from solo.objects.state.alarm_index import AlarmIndex
from solo.objects.state.catalog import Catalog
from solo.objects.state.compactor import Compactor
from solo.objects.state.schema import make_engine
from solo.workers.broker import DramatiqDispatcher, declare_actors, make_broker
from solo.workers.host import ObjectHost
from solo.workers.metrics_port import MetricsPort
from solo.workers.scheduler import Scheduler

log = logging.getLogger(__name__)


FILES_PER_DATABASE = 2  # an open object: its file and its -wal (no -shm: objects/runtime/connection.py)
FILES_RESERVED = 256  # sockets, logs and everything else a worker opens


def raise_open_file_limit(wanted: int) -> int:
    """Raise this process's soft open-file limit towards `wanted`, as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def fit_open_databases(settings: Settings, file_limit: int) -> Settings:
    """Open no more databases than `file_limit` open files hold (each takes FILES_PER_DATABASE)."""
    fits = max(16, (file_limit - FILES_RESERVED) // FILES_PER_DATABASE)
    if fits >= settings.max_open_databases:
        return settings
    # A warning where an operator asked for more; the default is a ceiling, not a request.
    explicit = "SOLO_MAX_OPEN_DATABASES" in os.environ
    log.log(
        logging.WARNING if explicit else logging.INFO,
        "the open-file limit (%d) fits %d open databases, not SOLO_MAX_OPEN_DATABASES=%d: using %d;"
        " raise `ulimit -n` to keep more objects open",
        file_limit,
        fits,
        settings.max_open_databases,
        fits,
    )
    return settings.with_changes(max_open_databases=fits)


def limit_sqlite_heap(settings: Settings) -> None:
    """SQLite's soft heap limit for this process: one setting for every object the worker runs."""
    set_soft_heap_limit(settings.sqlite_soft_heap_bytes)
    log.info("SQLite soft heap limit: %d bytes (SOLO_SQLITE_SOFT_HEAP_BYTES)", settings.sqlite_soft_heap_bytes)


def compactor_of(settings: Settings, engine: sa.Engine) -> Compactor:
    return Compactor(engine, settings.namespace, settings.retention_s)


def redis_client(settings: Settings) -> redis.Redis:
    return sync_client(settings.redis_url)


class WorkerProcess:
    """Everything one worker process runs, wired from settings; start() and stop() it."""

    def __init__(self, settings: Settings) -> None:
        wanted_files = settings.max_open_databases * FILES_PER_DATABASE + FILES_RESERVED
        settings = fit_open_databases(settings, raise_open_file_limit(wanted_files))
        limit_sqlite_heap(settings)
        self.settings = settings
        self.redis = redis_client(settings)
        self.broker = make_broker(settings, self.redis)
        # Every drain thread ships, plus the scheduler, the maintainer and the activation actor.
        self.engine = make_engine(settings.database_url, connections=settings.worker_threads + 4)
        registry = load_object_modules(settings.object_modules)
        dispatch = DramatiqDispatcher(self.broker)
        self.done = threading.Event()  # set by a signal, or when user code is stuck (the host's on_stuck)
        metrics = new_registry()  # the host's and the standby scheduler's, served together
        self.metrics_port = MetricsPort(settings, metrics)
        self.host = ObjectHost(
            settings,
            self.redis,
            Catalog(self.engine),
            registry,
            dispatch,
            on_stuck=lambda _: self.done.set(),
            metrics=RuntimeMetrics(metrics),
        )
        self.scheduler: Scheduler | None = None
        if settings.scheduler_in_workers:  # a standby unless it holds the scheduler's lease
            self.scheduler = Scheduler(
                settings,
                self.redis,
                AlarmIndex(self.engine, settings.namespace),
                dispatch,
                compactor=compactor_of(settings, self.engine),
                metrics=SchedulerMetrics(metrics),
            )
        declare_actors(self.broker, self.host.activate)
        self.dramatiq_worker = dramatiq.Worker(
            self.broker, worker_timeout=settings.dramatiq_timeout_ms, worker_threads=2
        )

    def start(self) -> None:
        self.metrics_port.start()
        self.host.start()
        self.dramatiq_worker.start()
        if self.scheduler is not None:
            self.scheduler.start()

    def stop(self) -> bool:
        """Drain and stop; False if user code was stuck and its thread abandoned (exit at once then)."""
        if self.scheduler is not None:
            self.scheduler.stop()
        self.dramatiq_worker.stop()
        clean = self.host.stop()
        self.broker.close()
        self.engine.dispose()
        self.metrics_port.stop()
        return clean


class SchedulerProcess:
    """`solo scheduler`: only the scheduler (it sends activations through Dramatiq like the API)."""

    def __init__(self, settings: Settings) -> None:
        self.done = threading.Event()
        self.redis = redis_client(settings)
        self.broker = make_broker(settings, self.redis)
        self.engine = make_engine(settings.database_url)
        metrics = SchedulerMetrics()
        self.metrics_port = MetricsPort(settings, metrics.registry)
        self.scheduler = Scheduler(
            settings,
            self.redis,
            AlarmIndex(self.engine, settings.namespace),
            DramatiqDispatcher(self.broker),
            compactor=compactor_of(settings, self.engine),
            metrics=metrics,
        )

    def start(self) -> None:
        self.metrics_port.start()
        self.scheduler.start()

    def stop(self) -> bool:
        self.scheduler.stop()
        self.broker.close()
        self.engine.dispose()
        self.metrics_port.stop()
        return True


EXIT_STUCK = 70  # user code could not be stopped: a supervisor restarts the process


def _run_until_signalled(process: WorkerProcess | SchedulerProcess, what: str) -> None:
    def _on_signal(signum, _frame):
        log.info("signal %s: draining", signum)
        process.done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    process.start()
    # What start-up made (modules, classes, settings) lives as long as the process: frozen, every
    # full collection skips it. Such a collection stops all threads for as long as it takes to
    # scan the objects the collector tracks, and alarms and calls wait meanwhile.
    gc.collect()
    gc.freeze()
    log.info("%s ready", what)
    while not process.done.wait(1):  # a timeout, so that the main thread gets to run signal handlers
        pass
    if not process.stop():
        # A thread is stuck in user code: the interpreter would wait for it forever at exit.
        log.error("%s exits with status %d; its stuck objects go to other workers", what, EXIT_STUCK)
        logging.shutdown()
        os._exit(EXIT_STUCK)


def run_worker(settings: Settings) -> None:
    _run_until_signalled(WorkerProcess(settings), f"worker {settings.worker_id}")


def run_scheduler(settings: Settings) -> None:
    _run_until_signalled(SchedulerProcess(settings), f"scheduler {settings.worker_id}")
