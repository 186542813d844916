"""An in-process solo: object host and API in one process, for unit and integration tests.

Activations call the host directly instead of going through Dramatiq; the
mailbox, leases, replies, catalog and scheduler are the real ones, on
whichever Redis and shared database the fixtures chose, and objects and the
scheduler may run on a fake clock.
"""

from __future__ import annotations

from contextlib import contextmanager

from starlette.testclient import TestClient

from solo.api.app import create_app
from solo.objects.context import wall_clock_ms
from solo.objects.registry import load_object_modules
from solo.objects.settings import Settings
from solo.objects.state.alarm_index import AlarmIndex
from solo.objects.state.catalog import Catalog
from solo.objects.state.compactor import Compactor
from solo.objects.state.schema import make_engine
from solo.objects.tracing import OFF, Tracing
from solo.workers.host import ObjectHost
from solo.workers.scheduler import Scheduler


class InProcessSystem:
    def __init__(
        self, settings: Settings, redis_client, async_redis_client, clock_ms=wall_clock_ms, tracing: Tracing = OFF
    ) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self.catalog = Catalog(self.engine)
        registry = load_object_modules(settings.object_modules)
        self.host = ObjectHost(
            settings, redis_client, self.catalog, registry, self._activate, clock_ms=clock_ms, tracing=tracing
        )
        self.compactor = Compactor(self.engine, settings.namespace, settings.retention_s)
        # Not started: tests drive it step by step (lead, refill, tick) on their clock.
        self.scheduler = Scheduler(
            settings,
            redis_client,
            AlarmIndex(self.engine, settings.namespace),
            self._activate,
            compactor=self.compactor,
            clock_ms=clock_ms,
        )
        self.app = create_app(settings, dispatch=self._activate, client=async_redis_client, tracing=tracing)

    def _activate(self, object_id: str) -> None:
        self.host.activate(object_id)

    @contextmanager
    def running(self):
        self.host.start()
        try:
            with TestClient(self.app, raise_server_exceptions=False) as http:
                yield http
        finally:
            self.host.stop()
            self.engine.dispose()
