"""A worker process: a Dramatiq worker for activations plus the object host.

`solo worker` runs this. SIGTERM and SIGINT drain: stop taking activations,
finish current batches, release every lease, exit.
"""

from __future__ import annotations

import logging
import signal
import threading

import dramatiq
import redis

from objects.catalog import Catalog, make_engine
from objects.definition import load_object_modules
from objects.redis_clients import sync_client
from objects.settings import Settings

from .broker import DramatiqDispatcher, declare_actors, make_broker
from .host import ObjectHost

log = logging.getLogger(__name__)


def redis_client(settings: Settings) -> redis.Redis:
    return sync_client(settings.redis_url)


class WorkerProcess:
    """Everything one worker process runs, wired from settings; start() and stop() it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis = redis_client(settings)
        self.broker = make_broker(settings, self.redis)
        self.engine = make_engine(settings.database_url)
        registry = load_object_modules(settings.object_modules)
        self.host = ObjectHost(settings, self.redis, Catalog(self.engine), registry, DramatiqDispatcher(self.broker))
        declare_actors(self.broker, self.host.activate)
        self.dramatiq_worker = dramatiq.Worker(
            self.broker, worker_timeout=settings.dramatiq_timeout_ms, worker_threads=2
        )

    def start(self) -> None:
        self.host.start()
        self.dramatiq_worker.start()

    def stop(self) -> None:
        self.dramatiq_worker.stop()
        self.host.stop()
        self.broker.close()
        self.engine.dispose()


def run_worker(settings: Settings) -> None:
    worker = WorkerProcess(settings)
    done = threading.Event()

    def _on_signal(signum, _frame):
        log.info("signal %s: draining", signum)
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    worker.start()
    log.info("worker %s ready", settings.worker_id)
    done.wait()
    worker.stop()
