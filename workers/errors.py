"""Errors of worker processes. The object model's own errors are in solo.objects.errors."""

from __future__ import annotations

from solo.objects.errors import SoloError


class WorkerError(SoloError):
    """Root of the errors only a worker process raises."""


class WorkerIdInUse(WorkerError):
    """Raised at start when another live worker holds the directory of this worker id.

    Two workers with one id would share a data directory and a wake list; the
    second refuses to start instead.
    """

    code = "worker_id_in_use"


class MetricsPortInUse(WorkerError):
    """Raised at start when SOLO_METRICS_PORT cannot be bound: each process on a machine needs its own."""

    code = "metrics_port_in_use"
