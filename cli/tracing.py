"""Every process's tracer provider, from the standard OTEL_* environment variables (solo[otel]).

Traces are on when ``OTEL_TRACES_EXPORTER`` names exporters (not ``none``) and
``OTEL_SDK_DISABLED`` is not ``true``. The SDK reads the rest itself: the resource
(``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``; the service is ``solo`` unless they say),
the sampler (``OTEL_TRACES_SAMPLER``, ``OTEL_TRACES_SAMPLER_ARG``), the batch processor
(``OTEL_BSP_*``) and each exporter's own settings (``OTEL_EXPORTER_OTLP_*``). Exporters are
found by name as the SDK finds them, through the ``opentelemetry_traces_exporter`` entry points:
``console`` comes with the SDK, ``otlp`` with opentelemetry-exporter-otlp.

A process started under ``opentelemetry-instrument`` already has a provider: it is kept.
objects/tracing.py's ``process_tracing`` then hands the provider's tracer to the API and workers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from importlib.metadata import entry_points

log = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "solo"


def wanted_exporters(environ: Mapping[str, str]) -> list[str]:
    """The exporters OTEL_TRACES_EXPORTER names; none when it is unset, "none", or the SDK is disabled."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [n.strip() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    return [] if names in ([], ["none"]) else [n for n in names if n != "none"]


def configure_tracing(environ: Mapping[str, str] | None = None) -> bool:
    """Install this process's tracer provider if the environment asks for traces; True if traces are on."""
    environ = os.environ if environ is None else environ
    names = wanted_exporters(environ)
    if not names:
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("OTEL_TRACES_EXPORTER is set but solo[otel] is not installed: no traces (pip install 'solo[otel]')")
        return False
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return True  # installed already (opentelemetry-instrument): that one is used
    named = "OTEL_SERVICE_NAME" in environ or "service.name=" in environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    provider = TracerProvider(resource=Resource.create({} if named else {"service.name": DEFAULT_SERVICE_NAME}))
    exporting = False
    for name in names:
        found = entry_points(group="opentelemetry_traces_exporter", name=name)
        if not found:
            hint = " (pip install opentelemetry-exporter-otlp)" if name.startswith("otlp") else ""
            log.warning("no span exporter named %r%s: OTEL_TRACES_EXPORTER", name, hint)
            continue
        exporter = next(iter(found)).load()
        provider.add_span_processor(BatchSpanProcessor(exporter()))
        exporting = True
    if not exporting:
        return False
    trace.set_tracer_provider(provider)
    log.info("traces on: exporting spans to %s (OTEL_TRACES_EXPORTER)", ", ".join(names))
    return True
