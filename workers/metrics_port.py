"""SOLO_METRICS_PORT: a worker's or scheduler's metrics, served over HTTP for Prometheus to scrape.

prometheus_client's own server, on a thread of its own, answers every path with the
process's registry (objects/metrics.py); the API serves its metrics at its own `/metrics`
instead. Each process on a machine needs a port of its own: one that is taken stops the
process at start (MetricsPortInUse) rather than leaving it unscraped.
"""

from __future__ import annotations

import logging
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from solo.objects.settings import Settings
from solo.workers.errors import MetricsPortInUse

log = logging.getLogger(__name__)


class MetricsPort:
    def __init__(self, settings: Settings, registry: CollectorRegistry) -> None:
        self.host = settings.metrics_host
        self.port = settings.metrics_port  # 0: not served
        self.registry = registry
        self._server: WSGIServer | None = None

    def start(self) -> None:
        if not self.port:
            return
        try:
            self._server, _ = start_http_server(self.port, addr=self.host, registry=self.registry)
        except OSError as exc:
            raise MetricsPortInUse(
                f"cannot serve metrics on {self.host}:{self.port} (SOLO_METRICS_PORT): {exc.strerror};"
                " give each process on a machine a port of its own"
            ) from None
        log.info("metrics on http://%s:%d/metrics", self.host, self.server_port)

    @property
    def server_port(self) -> int:
        """The port listened on (the one asked for, or the one chosen for port 0 in tests)."""
        return self._server.server_port if self._server is not None else self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
