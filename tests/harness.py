"""An in-process solo: object host and API in one process, for unit and integration tests.

Activations call the host directly instead of going through Dramatiq; the
mailbox, leases, replies and catalog are the real ones, on whichever Redis
and shared database the fixtures chose.
"""

from __future__ import annotations

from contextlib import contextmanager

from starlette.testclient import TestClient

from api.app import create_app
from objects.catalog import Catalog, make_engine
from objects.definition import load_object_modules
from objects.settings import Settings
from workers.host import ObjectHost


class InProcessSystem:
    def __init__(self, settings: Settings, redis_client, async_redis_client) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self.catalog = Catalog(self.engine)
        registry = load_object_modules(settings.object_modules)
        self.host = ObjectHost(settings, redis_client, self.catalog, registry, self._activate)
        self.app = create_app(settings, dispatch=self._activate, client=async_redis_client)

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
